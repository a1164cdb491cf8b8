-- Break-glass grants (store.BreakGlass): the platform operator's
-- time-bound access to read one tenant's data, applied like 00003 to the
-- pooled schema and every silo schema. Row-level security confines it like
-- every tenant table.

CREATE TABLE break_glass (
	tenant_id  uuid NOT NULL,
	id         text COLLATE "C" NOT NULL,
	reason     text NOT NULL,
	actor      text NOT NULL,
	created_at timestamptz NOT NULL,
	expires_at timestamptz NOT NULL,
	ended_at   timestamptz,
	ended_by   text NOT NULL DEFAULT '',
	PRIMARY KEY (tenant_id, id)
);

CREATE INDEX break_glass_created_at ON break_glass (tenant_id, created_at, id);

ALTER TABLE break_glass ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON break_glass
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
