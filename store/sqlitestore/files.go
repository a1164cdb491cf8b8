package sqlitestore

import (
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"regexp"
	"runtime"
)

// The store's files are readable by the process's user only, whatever the
// umask: they hold every tenant's data. SQLite creates a database's -wal
// and -shm files (and a -journal, should it need one) with the mode of the
// database file, so creating the database file with fileMode before SQLite
// opens it is enough for all of them.
const (
	fileMode = 0o600
	dirMode  = 0o700
)

// sidecars are the suffixes of the files SQLite keeps beside a database.
var sidecars = []string{"-wal", "-shm", "-journal"}

// siloFileName matches the names of silo files and their sidecars.
var siloFileName = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}\.db(-wal|-shm|-journal)?$`)

// createFile creates the database file path, empty, with fileMode unless
// it exists.
func createFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, fileMode)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	// The umask may have taken more bits off than fileMode leaves out.
	err = f.Chmod(fileMode)
	return errors.Join(err, f.Close())
}

// makeDir creates the directory path and any missing parents. The
// directory itself gets exactly dirMode if makeDir created it.
func makeDir(path string) (created bool, err error) {
	if _, err := os.Stat(path); err == nil || !errors.Is(err, fs.ErrNotExist) {
		return false, err
	}
	if err := os.MkdirAll(path, dirMode); err != nil {
		return false, err
	}
	return true, os.Chmod(path, dirMode)
}

// tighten takes the group and other permissions off path, if it exists and
// has any, and logs that it did: files and directories made by older
// versions, or by hand, may be readable by other local users. Windows has
// no such permissions to take off.
func tighten(path string, log *slog.Logger) error {
	if runtime.GOOS == "windows" {
		return nil
	}
	fi, err := os.Stat(path)
	if errors.Is(err, fs.ErrNotExist) {
		return nil
	}
	if err != nil {
		return err
	}
	was := fi.Mode().Perm()
	if was&0o077 == 0 {
		return nil
	}
	if err := os.Chmod(path, was&^0o077); err != nil {
		return err
	}
	log.Info("sqlitestore: took group and other permissions off a file of the store",
		"path", path, "was", was.String(), "now", (was &^ 0o077).String())
	return nil
}

// prepareFiles makes the main database file at path and the silo
// directory before SQLite opens anything: it creates what is missing with
// the store's modes and tightens what exists. The main file's directory is
// created if missing, but an existing one is left as it is, since it may
// be shared (the working directory, say).
func prepareFiles(path, siloDir string, log *slog.Logger) error {
	if _, err := makeDir(filepath.Dir(path)); err != nil {
		return err
	}
	created, err := makeDir(siloDir)
	if err != nil {
		return err
	}
	if created {
		log.Info("sqlitestore: created the directory of silo tenants' files", "path", siloDir)
	} else {
		if err := tighten(siloDir, log); err != nil {
			return err
		}
	}
	var errs []error
	for _, p := range append([]string{path}, suffixed(path, sidecars)...) {
		errs = append(errs, tighten(p, log))
	}
	entries, err := os.ReadDir(siloDir)
	if err != nil {
		return errors.Join(append(errs, err)...)
	}
	for _, e := range entries {
		if e.Type().IsRegular() && siloFileName.MatchString(e.Name()) {
			errs = append(errs, tighten(filepath.Join(siloDir, e.Name()), log))
		}
	}
	errs = append(errs, createFile(path))
	return errors.Join(errs...)
}

// suffixed returns path with each suffix appended.
func suffixed(path string, suffixes []string) []string {
	ps := make([]string, len(suffixes))
	for i, s := range suffixes {
		ps[i] = path + s
	}
	return ps
}
