package backup

import (
	"errors"
	"io/fs"
	"os"

	"golang.org/x/sys/unix"
)

// sqliteDMS is the byte of an SQLite WAL index (the -shm file) on which
// every open connection to the database holds a shared lock for as long
// as it is open (UNIX_SHM_DMS in SQLite's os_unix.c).
const sqliteDMS = 128

// sqliteInUse reports whether some process has the SQLite database at
// path open in WAL mode, as a running server does: it tries to take a
// write lock on the WAL index's DMS byte, which SQLite itself takes only
// when no other connection holds the database open. The lock is an open
// file description lock, which conflicts with SQLite's record locks even
// in the same process, and is released at once. (Closing the file drops
// this process's own record locks on it, as closing any descriptor of a
// file does: call it from a process that does not have the database open
// itself, such as the command line's.)
func sqliteInUse(path string) (bool, error) {
	f, err := os.OpenFile(path+"-shm", os.O_RDWR, 0)
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil // no connection has opened it in WAL mode
	}
	if err != nil {
		return false, err
	}
	defer f.Close()
	lk := unix.Flock_t{Type: unix.F_WRLCK, Whence: 0, Start: sqliteDMS, Len: 1}
	err = unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
	if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES) {
		return true, nil
	}
	if err != nil {
		return false, err
	}
	lk.Type = unix.F_UNLCK
	return false, unix.FcntlFlock(f.Fd(), unix.F_OFD_SETLK, &lk)
}
