-- Control plane: applied to the main database file only (see migrate.go).

CREATE TABLE plans (
	name         TEXT    NOT NULL PRIMARY KEY,
	rate_per_sec REAL    NOT NULL,
	burst        INTEGER NOT NULL,
	max_inflight INTEGER NOT NULL,
	weight       INTEGER NOT NULL,
	max_records  INTEGER NOT NULL,
	max_bytes    INTEGER NOT NULL
) STRICT;

CREATE TABLE tenants (
	id         TEXT    NOT NULL PRIMARY KEY,
	slug       TEXT    NOT NULL UNIQUE,
	name       TEXT    NOT NULL,
	plan       TEXT    NOT NULL REFERENCES plans (name),
	isolation  TEXT    NOT NULL CHECK (isolation IN ('pooled', 'silo')),
	status     TEXT    NOT NULL CHECK (status IN ('active', 'suspended')),
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL
) STRICT;

CREATE INDEX tenants_created_at ON tenants (created_at, id);

CREATE TABLE platform_idempotency (
	key          TEXT    NOT NULL PRIMARY KEY,
	request_hash BLOB,
	response     BLOB,
	created_at   INTEGER NOT NULL
) STRICT;
