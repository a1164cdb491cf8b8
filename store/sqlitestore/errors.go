package sqlitestore

import (
	"database/sql"
	"errors"
	"fmt"

	"github.com/bulkheadhq/bulkhead/store"
)

// SQLite extended result codes for the constraint violations that mean "the
// name or key is taken". The driver turns extended result codes on for every
// connection.
const (
	codeConstraintPrimaryKey = 1555 // SQLITE_CONSTRAINT_PRIMARYKEY
	codeConstraintUnique     = 2067 // SQLITE_CONSTRAINT_UNIQUE
)

// ErrClosed is returned by every method of a Store after Close.
var ErrClosed = errors.New("sqlitestore: store is closed")

// errTxDone is returned by a Tx or PlatformTx used after its function
// returned.
var errTxDone = errors.New("sqlitestore: transaction has already ended")

// interpretError maps a driver error to the store's sentinels: no row becomes
// store.ErrNotFound and a unique or primary key violation store.ErrConflict.
// Anything else is returned unchanged for the caller to wrap with context.
// Every statement's error passes through here, so the mapping lives in one
// place (river's interpretError, openfga's HandleSQLError).
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, sql.ErrNoRows) {
		return store.ErrNotFound
	}
	var coder interface{ Code() int } // *sqlite.Error
	if errors.As(err, &coder) {
		switch coder.Code() {
		case codeConstraintPrimaryKey, codeConstraintUnique:
			return fmt.Errorf("%w: %v", store.ErrConflict, err)
		}
	}
	return err
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
