package pgstore

import (
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bulkheadhq/bulkhead/store"
)

// SQLSTATE codes the store interprets.
const (
	codeUniqueViolation          = "23505"
	codeInvalidTextRepresenation = "22P02"
	codeInsufficientPrivilege    = "42501"
)

// ErrClosed is returned by every method of a Store after Close.
var ErrClosed = errors.New("pgstore: store is closed")

// errTxDone is returned by a Tx or PlatformTx used after its function
// returned.
var errTxDone = errors.New("pgstore: transaction has already ended")

// errRowSecurity marks a statement that the database refused for lack of
// privilege, such as a row that row-level security does not let the
// transaction's tenant write. The store confines every statement to the
// transaction's tenant and Open checks the grants, so this never happens
// unless the store has a bug or the grants were changed behind its back; it
// is kept distinct so that it stands out in logs.
var errRowSecurity = errors.New("pgstore: bug: the database refused a statement of the store (row-level security or privileges)")

// interpretError maps a driver error to the store's sentinels, in one place
// (river's interpretError, openfga's HandleSQLError): no row becomes
// store.ErrNotFound, a unique violation store.ErrConflict, text that is not
// a valid value (a tenant id that is not a UUID) store.ErrNotFound, and a
// row-level security violation errRowSecurity. Anything else is returned
// unchanged for the caller to wrap with context.
//
// The messages of pgx and PostgreSQL errors name constraints and tables but
// never carry the statement's text or its arguments, so wrapped errors are
// safe to log; like every store error they are not meant for clients.
func interpretError(err error) error {
	if err == nil {
		return nil
	}
	if errors.Is(err, pgx.ErrNoRows) {
		return store.ErrNotFound
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch pgErr.Code {
		case codeUniqueViolation:
			return fmt.Errorf("%w: %s", store.ErrConflict, pgErr.ConstraintName)
		case codeInvalidTextRepresenation:
			return fmt.Errorf("%w: %s", store.ErrNotFound, pgErr.Message)
		case codeInsufficientPrivilege:
			return fmt.Errorf("%w: %w", errRowSecurity, err)
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

// isNotFound is errors.Is(err, store.ErrNotFound) after interpreting err.
func isNotFound(err error) bool {
	return errors.Is(interpretError(err), store.ErrNotFound)
}
