package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"syscall"

	"github.com/bulkheadhq/bulkhead/store"
)

// SQLite extended result codes for the constraint violations that mean "the
// name or key is taken". The driver turns extended result codes on for every
// connection.
const (
	codeConstraintPrimaryKey = 1555 // SQLITE_CONSTRAINT_PRIMARYKEY
	codeConstraintUnique     = 2067 // SQLITE_CONSTRAINT_UNIQUE
)

// SQLite primary result codes (the low byte of an extended code) that mean
// the database cannot serve the operation now, or has no room for it.
const (
	codeBusy     = 5  // SQLITE_BUSY: locked past the busy timeout
	codeLocked   = 6  // SQLITE_LOCKED: a conflict within the connection
	codeNoMem    = 7  // SQLITE_NOMEM
	codeReadOnly = 8  // SQLITE_READONLY: a read-only file or directory
	codeIOErr    = 10 // SQLITE_IOERR
	codeFull     = 13 // SQLITE_FULL: disk full, or max_page_count reached
	codeCantOpen = 14 // SQLITE_CANTOPEN
	codeProtocol = 15 // SQLITE_PROTOCOL: a WAL lock race that kept failing
)

// ErrClosed is returned by every method of a Store after Close.
var ErrClosed = errors.New("sqlitestore: store is closed")

// errTxDone is returned by a Tx or PlatformTx used after its function
// returned.
var errTxDone = errors.New("sqlitestore: transaction has already ended")

// interpretError maps a driver error to the store's sentinels: no row becomes
// store.ErrNotFound and a unique or primary key violation store.ErrConflict.
// Faults of the database or its files keep the driver's error in the chain
// behind a sentinel: SQLITE_FULL (and ENOSPC or EDQUOT from the file system)
// becomes store.ErrStorageFull; SQLITE_BUSY, SQLITE_LOCKED, SQLITE_NOMEM,
// SQLITE_READONLY, SQLITE_IOERR, SQLITE_CANTOPEN and SQLITE_PROTOCOL (and
// EROFS or EIO) store.ErrUnavailable. SQLITE_CORRUPT and SQLITE_NOTADB are
// not mapped: a damaged file does not heal by waiting, so it stays an
// internal error for an operator to see. Context errors are returned as they
// are, and so is anything else, for the caller to wrap with context. Every
// statement's error passes through here, so the mapping lives in one place
// (river's interpretError, openfga's HandleSQLError). Errors already mapped
// are returned unchanged, so a caller may interpret an error again.
func interpretError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, sql.ErrNoRows):
		return store.ErrNotFound
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrStorageFull),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	var coder interface{ Code() int } // *sqlite.Error
	if errors.As(err, &coder) {
		code := coder.Code()
		switch code {
		case codeConstraintPrimaryKey, codeConstraintUnique:
			return fmt.Errorf("%w: %v", store.ErrConflict, err)
		}
		switch code & 0xff {
		case codeFull:
			return fmt.Errorf("%w: %w", store.ErrStorageFull, err)
		case codeBusy, codeLocked, codeNoMem, codeReadOnly, codeIOErr, codeCantOpen, codeProtocol:
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return err
	}
	switch {
	case errors.Is(err, syscall.ENOSPC), errors.Is(err, syscall.EDQUOT):
		return fmt.Errorf("%w: %w", store.ErrStorageFull, err)
	case errors.Is(err, syscall.EROFS), errors.Is(err, syscall.EIO):
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
	}
	return err
}

// fault returns store.ErrStorageFull or store.ErrUnavailable if err (once
// interpreted) is one, and nil otherwise.
func fault(err error) error {
	err = interpretError(err)
	for _, f := range []error{store.ErrStorageFull, store.ErrUnavailable} {
		if errors.Is(err, f) {
			return f
		}
	}
	return nil
}

// wrap adds context to a statement's error after interpreting it.
func wrap(err error, format string, args ...any) error {
	if err == nil {
		return nil
	}
	return fmt.Errorf(format+": %w", append(args, interpretError(err))...)
}

// errorsIsNotFound is errors.Is(err, store.ErrNotFound) after interpreting
// err.
func errorsIsNotFound(err error) bool {
	return errors.Is(interpretError(err), store.ErrNotFound)
}
