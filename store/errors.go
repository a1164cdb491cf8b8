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
	// ErrUnavailable wraps an error that means the database cannot serve
	// the operation now but may soon: it is unreachable, restarting or
	// read-only, or refused for a reason a retry may not meet.
	ErrUnavailable = errors.New("database unavailable")
	// ErrStorageFull wraps an error that means the database has no room
	// left for the write.
	ErrStorageFull = errors.New("database storage full")
)
