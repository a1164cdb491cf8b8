//go:build unix

package sqlitestore

import (
	"bytes"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// checkModes checks that every file under root has mode 0600 and every
// directory 0700, and returns the paths of the files, relative to root.
func checkModes(t *testing.T, root string) []string {
	t.Helper()
	var files []string
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		want := fs.FileMode(0o600)
		if d.IsDir() {
			want = 0o700
		} else {
			rel, _ := filepath.Rel(root, path)
			files = append(files, rel)
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v, want %v", path, got, want)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// Every file the store creates (the main database, each silo database and
// their -wal and -shm files) is readable by its user only, and so are the
// directories it creates, with the usual umask 022 in effect. Looser files
// and directories left by older versions are tightened at Open. Not
// parallel: the umask is the process's.
func TestFileModes(t *testing.T) {
	defer syscall.Umask(syscall.Umask(0o022))
	root := filepath.Join(t.TempDir(), "data")
	b := &testBundle{path: filepath.Join(root, "bulkhead.db"), ctx: t.Context()}
	b.open(t, nil)
	write := func() (silo tenant.ID) {
		t.Helper()
		pooled, silo := b.tenant(t, tenant.Pooled), b.tenant(t, tenant.Silo)
		for _, tid := range []tenant.ID{pooled, silo} {
			if err := b.s.InTenant(b.ctx, tid, func(tx store.Tx) error { return tx.CreateRecord(b.ctx, rec("x")) }); err != nil {
				t.Fatal(err)
			}
			if err := b.s.ReadTenant(b.ctx, tid, func(tx store.Tx) error { _, err := tx.GetRecord(b.ctx, "c", "x"); return err }); err != nil {
				t.Fatal(err)
			}
		}
		return silo
	}
	silo := write()
	files := checkModes(t, root)
	siloFile := filepath.Join("tenants", string(silo)+".db")
	for _, want := range []string{"bulkhead.db", "bulkhead.db-wal", "bulkhead.db-shm", siloFile, siloFile + "-wal", siloFile + "-shm"} {
		if !strings.Contains(strings.Join(files, "\n")+"\n", want+"\n") {
			t.Errorf("files = %q, want %s among them", files, want)
		}
	}
	if err := b.s.Close(); err != nil {
		t.Fatal(err)
	}

	// Files and directories from an older version, or made by hand.
	loose := map[string]fs.FileMode{
		root:                                 0o755,
		filepath.Join(root, "tenants"):       0o755,
		b.path:                               0o644,
		filepath.Join(root, siloFile):        0o644,
		filepath.Join(root, siloFile+"-shm"): 0o640,
	}
	if err := os.WriteFile(filepath.Join(root, siloFile+"-shm"), nil, 0o640); err != nil {
		t.Fatal(err)
	}
	for path, mode := range loose {
		if err := os.Chmod(path, mode); err != nil {
			t.Fatal(err)
		}
	}
	var logs bytes.Buffer
	b.open(t, &Options{Logger: slog.New(slog.NewTextHandler(&logs, nil))})
	for path, mode := range loose {
		fi, err := os.Stat(path)
		if err != nil {
			t.Fatal(err)
		}
		want := mode &^ 0o077
		if path == root {
			// The main file's directory is the store's only if it made
			// it; an existing one may be shared, and is left alone.
			want = mode
		}
		if got := fi.Mode().Perm(); got != want {
			t.Errorf("%s: mode %v after Open, want %v", path, got, want)
		}
		if logged := strings.Contains(logs.String(), "path="+path+" "); logged != (want != mode) {
			t.Errorf("Open logged the tightening of %s: %v, want %v; logs:\n%s", path, logged, want != mode, logs.String())
		}
	}
	t.Logf("Open logged:\n%s", logs.String())
	if err := os.Chmod(root, 0o700); err != nil {
		t.Fatal(err)
	}
	write()
	checkModes(t, root)
}
