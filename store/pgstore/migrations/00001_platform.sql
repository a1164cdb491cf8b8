-- +goose Up
-- The control plane: plans, tenants, the operator's idempotency keys and the
-- platform's own audit chain. These tables hold no tenant data, so they have
-- no row-level security; the application role reads and writes them with the
-- grants Migrate gives it. Every name is qualified: goose runs this file with
-- whatever search_path the owner's connection has.

CREATE TABLE bulkhead.plans (
	name         text COLLATE "C" NOT NULL PRIMARY KEY,
	rate_per_sec float8 NOT NULL,
	burst        bigint NOT NULL,
	max_inflight bigint NOT NULL,
	weight       bigint NOT NULL,
	max_records  bigint NOT NULL,
	max_bytes    bigint NOT NULL
);

CREATE TABLE bulkhead.tenants (
	id         uuid NOT NULL PRIMARY KEY,
	slug       text COLLATE "C" NOT NULL UNIQUE,
	name       text NOT NULL,
	plan       text COLLATE "C" NOT NULL REFERENCES bulkhead.plans (name),
	isolation  text NOT NULL CHECK (isolation IN ('pooled', 'silo')),
	status     text NOT NULL CHECK (status IN ('active', 'suspended')),
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL
);

CREATE INDEX tenants_created_at ON bulkhead.tenants (created_at, id);

CREATE TABLE bulkhead.platform_idempotency (
	key          text COLLATE "C" NOT NULL PRIMARY KEY,
	request_hash bytea,
	response     bytea,
	created_at   timestamptz NOT NULL
);

CREATE TABLE bulkhead.platform_audit_log (
	seq        bigint NOT NULL PRIMARY KEY,
	time       timestamptz NOT NULL,
	actor      text NOT NULL,
	action     text NOT NULL,
	resource   text NOT NULL,
	request_id text NOT NULL,
	outcome    text NOT NULL,
	prev_hash  bytea,
	hash       bytea
);

CREATE TABLE bulkhead.platform_audit_checkpoints (
	seq       bigint NOT NULL PRIMARY KEY,
	hash      bytea,
	key_id    text NOT NULL,
	signature bytea,
	time      timestamptz NOT NULL
);

-- The platform chain's head: one row, locked by AuditHead in a read-write
-- transaction so that concurrent appenders serialize.
CREATE TABLE bulkhead.platform_audit_head (
	id   boolean NOT NULL PRIMARY KEY DEFAULT true CHECK (id),
	seq  bigint NOT NULL,
	hash bytea
);
