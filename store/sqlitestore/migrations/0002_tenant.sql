-- Tenant data: applied to the main database file (pooled tenants) and to
-- every silo tenant's own file. tenant_id leads every primary and unique key
-- in both, so one set of statements serves both and every statement is
-- confined to one tenant by its tenant_id predicate.

CREATE TABLE users (
	tenant_id     TEXT    NOT NULL,
	id            TEXT    NOT NULL,
	email         TEXT    NOT NULL,
	password_hash TEXT    NOT NULL,
	role          TEXT    NOT NULL,
	created_at    INTEGER NOT NULL,
	updated_at    INTEGER NOT NULL,
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, email)
) STRICT;

CREATE TABLE api_keys (
	tenant_id  TEXT    NOT NULL,
	id         TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	role       TEXT    NOT NULL,
	hash       BLOB    NOT NULL,
	created_by TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	revoked_at INTEGER,
	PRIMARY KEY (tenant_id, id)
) STRICT;

CREATE INDEX api_keys_created_at ON api_keys (tenant_id, created_at, id);

CREATE TABLE refresh_tokens (
	tenant_id  TEXT    NOT NULL,
	id         TEXT    NOT NULL,
	user_id    TEXT    NOT NULL,
	family     TEXT    NOT NULL,
	hash       BLOB    NOT NULL,
	expires_at INTEGER NOT NULL,
	created_at INTEGER NOT NULL,
	used_at    INTEGER,
	revoked_at INTEGER,
	PRIMARY KEY (tenant_id, id)
) STRICT;

CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family);

CREATE TABLE collections (
	tenant_id  TEXT    NOT NULL,
	name       TEXT    NOT NULL,
	schema     TEXT,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (tenant_id, name)
) STRICT;

-- data is the record's JSON object as TEXT, byte for byte as given. The CHECK
-- keeps malformed JSON out: one bad row would otherwise make every filtered
-- listing of its collection fail.
CREATE TABLE records (
	tenant_id  TEXT    NOT NULL,
	collection TEXT    NOT NULL,
	id         TEXT    NOT NULL,
	version    INTEGER NOT NULL,
	data       TEXT    NOT NULL CHECK (CASE WHEN json_valid(data) THEN json_type(data) = 'object' ELSE 0 END),
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (tenant_id, collection, id),
	FOREIGN KEY (tenant_id, collection) REFERENCES collections (tenant_id, name)
) STRICT;

CREATE INDEX records_created_at ON records (tenant_id, collection, created_at, id);
CREATE INDEX records_updated_at ON records (tenant_id, collection, updated_at, id);

CREATE TABLE idempotency_keys (
	tenant_id    TEXT    NOT NULL,
	key          TEXT    NOT NULL,
	request_hash BLOB,
	response     BLOB,
	created_at   INTEGER NOT NULL,
	PRIMARY KEY (tenant_id, key)
) STRICT;

CREATE TABLE audit_log (
	tenant_id  TEXT    NOT NULL,
	seq        INTEGER NOT NULL,
	time       INTEGER NOT NULL,
	actor      TEXT    NOT NULL,
	action     TEXT    NOT NULL,
	resource   TEXT    NOT NULL,
	request_id TEXT    NOT NULL,
	outcome    TEXT    NOT NULL,
	prev_hash  BLOB,
	hash       BLOB,
	PRIMARY KEY (tenant_id, seq)
) STRICT;

CREATE TABLE audit_checkpoints (
	tenant_id TEXT    NOT NULL,
	seq       INTEGER NOT NULL,
	hash      BLOB,
	key_id    TEXT    NOT NULL,
	signature BLOB,
	time      INTEGER NOT NULL,
	PRIMARY KEY (tenant_id, seq)
) STRICT;

CREATE TABLE usage (
	tenant_id TEXT    NOT NULL PRIMARY KEY,
	records   INTEGER NOT NULL,
	bytes     INTEGER NOT NULL
) STRICT;
