package store

import "errors"

var (
	// ErrNotFound is returned when no row matches, including when the row
	// belongs to another tenant.
	ErrNotFound = errors.New("not found")
	// ErrConflict is returned when a write would duplicate a unique name, such
	// as a tenant slug or a user's email.
	ErrConflict = errors.New("conflict")
	// ErrVersionMismatch is returned when an update or delete names a version
	// that is not the record's current version.
	ErrVersionMismatch = errors.New("version mismatch")
	// ErrNoTenant is returned when InTenant or ReadTenant is called with the
	// zero tenant.ID.
	ErrNoTenant = errors.New("no tenant")
	// ErrReadOnly is returned by write methods of a Tx opened by ReadTenant or
	// ReadPlatform.
	ErrReadOnly = errors.New("read-only transaction")

	// ErrUnavailable is returned, wrapping the driver's error, when the
	// database cannot serve the operation now but may soon: it is
	// unreachable or refuses connections, is restarting or shutting down,
	// has too many connections or no memory, is read-only (a read-only
	// file or a standby), stays locked past the busy timeout, fails with an
	// I/O error, or aborted the transaction for a serialization failure or
	// a deadlock. The failed transaction committed nothing, unless the
	// fault hit its COMMIT (a connection lost or an I/O error during COMMIT
	// leaves the outcome unknown), so a retry should be idempotent. Callers
	// may retry after a pause; the HTTP layer answers 503 with
	// Retry-After. An ended context is not a fault of the database:
	// context.Canceled and context.DeadlineExceeded are returned as they
	// are, never as ErrUnavailable.
	ErrUnavailable = errors.New("database unavailable")
	// ErrStorageFull is returned, wrapping the driver's error, when the
	// database has no room to store a write: the disk or a quota is full.
	// The failed transaction committed nothing. Reads go on working, and
	// writes do again once there is room; the HTTP layer answers 507.
	ErrStorageFull = errors.New("database storage full")
	// ErrIsolationUnavailable is returned, wrapped with what is missing,
	// when the backend cannot provision a tenant of the requested
	// isolation mode as it is configured, such as a PostgreSQL store
	// opened without the owner role's connection, which silo tenants'
	// schemas and roles need. Nothing was written; the same request
	// succeeds once the deployment is configured for it.
	ErrIsolationUnavailable = errors.New("isolation mode unavailable")
)
