-- Background jobs (store.Job): each tenant's record of its jobs, which
-- package jobs keeps up to date while River runs them, applied like 00003
-- to the pooled schema and every silo schema. Row-level security confines
-- it like every tenant table.

CREATE TABLE jobs (
	tenant_id   uuid NOT NULL,
	id          text COLLATE "C" NOT NULL,
	kind        text COLLATE "C" NOT NULL,
	state       text NOT NULL,
	args        bytea NOT NULL,
	done        bigint NOT NULL DEFAULT 0,
	total       bigint NOT NULL DEFAULT 0,
	attempts    integer NOT NULL DEFAULT 0,
	error       text NOT NULL DEFAULT '',
	result      bytea,
	created_by  text NOT NULL DEFAULT '',
	queue_id    bigint NOT NULL DEFAULT 0,
	created_at  timestamptz NOT NULL,
	updated_at  timestamptz NOT NULL,
	started_at  timestamptz,
	finished_at timestamptz,
	PRIMARY KEY (tenant_id, id)
);

CREATE INDEX jobs_created_at ON jobs (tenant_id, created_at, id);
CREATE INDEX jobs_kind_created_at ON jobs (tenant_id, kind, created_at, id);
CREATE INDEX jobs_active ON jobs (tenant_id, state) WHERE state IN ('queued', 'running');

ALTER TABLE jobs ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON jobs
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
