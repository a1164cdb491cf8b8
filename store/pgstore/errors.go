package pgstore

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bulkheadhq/bulkhead/store"
)

// SQLSTATE codes the store interprets.
const (
	codeUniqueViolation          = "23505"
	codeInvalidTextRepresenation = "22P02"
	codeInsufficientPrivilege    = "42501"
	codeProgramLimitExceeded     = "54000" // such as an index row too large
	codeUndefinedTable           = "42P01"
	codeInvalidSchemaName        = "3F000"

	// store.ErrStorageFull
	codeDiskFull = "53100"
	// store.ErrUnavailable, with every code of classConnection except
	// codeProtocolViolation, which PostgreSQL also raises for a client's
	// malformed message (a bug, not an outage).
	classConnection          = "08"
	codeProtocolViolation    = "08P01"
	codeAdminShutdown        = "57P01" // pg_terminate_backend, or a fast shutdown
	codeCrashShutdown        = "57P02"
	codeCannotConnectNow     = "57P03" // starting up, shutting down, in recovery
	codeOutOfMemory          = "53200"
	codeTooManyConnections   = "53300"
	codeReadOnlyTransaction  = "25006" // a standby, or default_transaction_read_only
	codeSerializationFailure = "40001"
	codeDeadlockDetected     = "40P01"
	codeIOError              = "58030"
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
// row-level security violation errRowSecurity.
//
// Faults of the database keep the driver's error in the chain behind a
// sentinel: disk_full (53100) becomes store.ErrStorageFull; connection
// exceptions (class 08, but for 08P01), admin_shutdown, crash_shutdown and
// cannot_connect_now (57P01-57P03), out_of_memory (53200),
// too_many_connections (53300), read_only_sql_transaction (25006),
// serialization_failure (40001), deadlock_detected (40P01) and io_error
// (58030) become store.ErrUnavailable, and so do errors without a SQLSTATE
// that mean the server cannot be reached or the connection broke: a failed
// connect (pgconn.ConnectError), a network error (refused, reset, broken
// pipe), an EOF from the server, or a connection pgx has closed. A
// connect refused with another SQLSTATE (a wrong password, an unknown
// database) is a configuration error and is left alone.
//
// Context errors are returned as they are, in pgx's wrapped forms too, and
// so is a statement timeout (57014 query_canceled): a client that went
// away or a statement that ran too long is not a database outage. So are
// ErrClosed and anything else, for the caller to wrap with context. Errors
// already mapped to a fault are returned unchanged, so a caller may
// interpret an error again.
//
// The messages of pgx and PostgreSQL errors name constraints and tables but
// never carry the statement's text or its arguments, so wrapped errors are
// safe to log; like every store error they are not meant for clients.
func interpretError(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, pgx.ErrNoRows):
		return store.ErrNotFound
	case errors.Is(err, store.ErrUnavailable), errors.Is(err, store.ErrStorageFull),
		errors.Is(err, context.Canceled), errors.Is(err, context.DeadlineExceeded):
		return err
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch code := pgErr.Code; {
		case code == codeUniqueViolation:
			return fmt.Errorf("%w: %s", store.ErrConflict, pgErr.ConstraintName)
		case code == codeInvalidTextRepresenation:
			return fmt.Errorf("%w: %s", store.ErrNotFound, pgErr.Message)
		case code == codeInsufficientPrivilege:
			return fmt.Errorf("%w: %w", errRowSecurity, err)
		case code == codeDiskFull:
			return fmt.Errorf("%w: %w", store.ErrStorageFull, err)
		case strings.HasPrefix(code, classConnection) && code != codeProtocolViolation,
			code == codeAdminShutdown, code == codeCrashShutdown, code == codeCannotConnectNow,
			code == codeOutOfMemory, code == codeTooManyConnections, code == codeReadOnlyTransaction,
			code == codeSerializationFailure, code == codeDeadlockDetected, code == codeIOError:
			return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
		}
		return err
	}
	var connectErr *pgconn.ConnectError
	var netErr net.Error
	if errors.As(err, &connectErr) || errors.As(err, &netErr) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) {
		return fmt.Errorf("%w: %w", store.ErrUnavailable, err)
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
