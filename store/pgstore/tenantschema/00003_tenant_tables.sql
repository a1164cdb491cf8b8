-- Tenant data. Applied with search_path set to the schema it builds: the
-- pooled schema "bulkhead", shared by every pooled tenant, and each silo
-- tenant's own schema t_<uuid hex> (by Migrate for the silos that exist, and
-- by CreateTenant for new ones). That is why no name here is qualified.
--
-- tenant_id leads every primary key, unique key and foreign key, in silo
-- schemas too, so that one set of statements serves both kinds of tenant.
-- Row-level security is enabled and forced on every table, with one policy:
-- a row is visible, and may be written, only while the transaction's
-- bulkhead.tenant_id setting names its tenant. With no tenant set the setting
-- is missing or '' (after an earlier transaction on the same connection set
-- it locally), nullif makes that NULL, and no row matches.
--
-- Text keys use the "C" collation: byte order, as the filter language and
-- sqlitestore compare strings, and cheaper than a linguistic collation.

CREATE TABLE users (
	tenant_id     uuid NOT NULL,
	id            text COLLATE "C" NOT NULL,
	email         text COLLATE "C" NOT NULL,
	password_hash text NOT NULL,
	role          text NOT NULL,
	created_at    timestamptz NOT NULL,
	updated_at    timestamptz NOT NULL,
	PRIMARY KEY (tenant_id, id),
	UNIQUE (tenant_id, email)
);

CREATE TABLE api_keys (
	tenant_id  uuid NOT NULL,
	id         text COLLATE "C" NOT NULL,
	name       text NOT NULL,
	role       text NOT NULL,
	hash       bytea NOT NULL,
	created_by text NOT NULL,
	created_at timestamptz NOT NULL,
	revoked_at timestamptz,
	PRIMARY KEY (tenant_id, id)
);

CREATE INDEX api_keys_created_at ON api_keys (tenant_id, created_at, id);

CREATE TABLE refresh_tokens (
	tenant_id  uuid NOT NULL,
	id         text COLLATE "C" NOT NULL,
	user_id    text COLLATE "C" NOT NULL,
	family     text COLLATE "C" NOT NULL,
	hash       bytea NOT NULL,
	expires_at timestamptz NOT NULL,
	created_at timestamptz NOT NULL,
	used_at    timestamptz,
	revoked_at timestamptz,
	PRIMARY KEY (tenant_id, id)
);

CREATE INDEX refresh_tokens_family ON refresh_tokens (tenant_id, family);

CREATE TABLE collections (
	tenant_id  uuid NOT NULL,
	name       text COLLATE "C" NOT NULL,
	schema     text,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	PRIMARY KEY (tenant_id, name)
);

-- data is the record's JSON object as given, byte for byte (jsonb would
-- reorder keys and rewrite escapes). doc is the same object as jsonb, which
-- filters and orders read. jsonb cannot hold U+0000, which JSON text may
-- escape as \u0000: doc spells such escapes (and only those, not an escaped
-- backslash followed by "u0000") as \ufffd, so that every record sqlitestore
-- accepts is accepted here too; filters see U+0000 as U+FFFD.
CREATE TABLE records (
	tenant_id  uuid NOT NULL,
	collection text COLLATE "C" NOT NULL,
	id         text COLLATE "C" NOT NULL,
	version    bigint NOT NULL,
	data       text NOT NULL,
	doc        jsonb NOT NULL GENERATED ALWAYS AS (
		CASE WHEN strpos(data, E'\\u0000') = 0 THEN data::jsonb
		ELSE regexp_replace(data, E'(?<!\\\\)((?:\\\\\\\\)*)\\\\u0000', E'\\1\\\\ufffd', 'g')::jsonb
		END) STORED,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	PRIMARY KEY (tenant_id, collection, id),
	FOREIGN KEY (tenant_id, collection) REFERENCES collections (tenant_id, name),
	CHECK (jsonb_typeof(doc) = 'object')
);

CREATE INDEX records_created_at ON records (tenant_id, collection, created_at, id);
CREATE INDEX records_updated_at ON records (tenant_id, collection, updated_at, id);

CREATE TABLE idempotency_keys (
	tenant_id    uuid NOT NULL,
	key          text COLLATE "C" NOT NULL,
	request_hash bytea,
	response     bytea,
	created_at   timestamptz NOT NULL,
	PRIMARY KEY (tenant_id, key)
);

CREATE TABLE audit_log (
	tenant_id  uuid NOT NULL,
	seq        bigint NOT NULL,
	time       timestamptz NOT NULL,
	actor      text NOT NULL,
	action     text NOT NULL,
	resource   text NOT NULL,
	request_id text NOT NULL,
	outcome    text NOT NULL,
	prev_hash  bytea,
	hash       bytea,
	PRIMARY KEY (tenant_id, seq)
);

CREATE TABLE audit_checkpoints (
	tenant_id uuid NOT NULL,
	seq       bigint NOT NULL,
	hash      bytea,
	key_id    text NOT NULL,
	signature bytea,
	time      timestamptz NOT NULL,
	PRIMARY KEY (tenant_id, seq)
);

-- A tenant's audit head: its last entry's seq and hash, kept by AppendAudit.
-- AuditHead in a read-write transaction locks this row, so that concurrent
-- appenders of one tenant serialize and never append the same seq.
CREATE TABLE audit_heads (
	tenant_id uuid NOT NULL PRIMARY KEY,
	seq       bigint NOT NULL,
	hash      bytea
);

CREATE TABLE usage (
	tenant_id uuid NOT NULL PRIMARY KEY,
	records   bigint NOT NULL,
	bytes     bigint NOT NULL
);

ALTER TABLE users             ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE api_keys          ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE refresh_tokens    ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE collections       ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE records           ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE idempotency_keys  ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_log         ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_checkpoints ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE audit_heads       ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;
ALTER TABLE usage             ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON users
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
CREATE POLICY tenant_isolation ON api_keys
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
CREATE POLICY tenant_isolation ON refresh_tokens
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
CREATE POLICY tenant_isolation ON collections
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
CREATE POLICY tenant_isolation ON records
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
CREATE POLICY tenant_isolation ON idempotency_keys
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
CREATE POLICY tenant_isolation ON audit_log
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
CREATE POLICY tenant_isolation ON audit_checkpoints
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
CREATE POLICY tenant_isolation ON audit_heads
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
CREATE POLICY tenant_isolation ON usage
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
