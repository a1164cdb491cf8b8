-- Background jobs (store.Job): each tenant's record of its jobs, which
-- package jobs keeps up to date while River runs them, kept with the
-- tenant's data (the main file for pooled tenants, the silo file for silo
-- tenants).

CREATE TABLE jobs (
	tenant_id   TEXT    NOT NULL,
	id          TEXT    NOT NULL,
	kind        TEXT    NOT NULL,
	state       TEXT    NOT NULL,
	args        BLOB    NOT NULL,
	done        INTEGER NOT NULL DEFAULT 0,
	total       INTEGER NOT NULL DEFAULT 0,
	attempts    INTEGER NOT NULL DEFAULT 0,
	error       TEXT    NOT NULL DEFAULT '',
	result      BLOB,
	created_by  TEXT    NOT NULL DEFAULT '',
	queue_id    INTEGER NOT NULL DEFAULT 0,
	created_at  INTEGER NOT NULL,
	updated_at  INTEGER NOT NULL,
	started_at  INTEGER,
	finished_at INTEGER,
	PRIMARY KEY (tenant_id, id)
) STRICT;

CREATE INDEX jobs_created_at ON jobs (tenant_id, created_at, id);
CREATE INDEX jobs_kind_created_at ON jobs (tenant_id, kind, created_at, id);
CREATE INDEX jobs_active ON jobs (tenant_id, state) WHERE state IN ('queued', 'running');
