-- Containment actions: credentials suspended, accounts locked, keys
-- flagged by automatic containment, listed and lifted through the API.
-- Applied like 00003 to the pooled schema and every silo schema, confined
-- by the same row-level security policy as every tenant table.

CREATE TABLE containments (
	tenant_id  uuid NOT NULL,
	id         text COLLATE "C" NOT NULL,
	kind       text NOT NULL,
	subject    text COLLATE "C" NOT NULL,
	reason     text NOT NULL,
	count      bigint NOT NULL,
	created_by text NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz,
	lifted_at  timestamptz,
	lifted_by  text NOT NULL DEFAULT '',
	PRIMARY KEY (tenant_id, id)
);

CREATE INDEX containments_created_at ON containments (tenant_id, created_at, id);

ALTER TABLE containments ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON containments
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
