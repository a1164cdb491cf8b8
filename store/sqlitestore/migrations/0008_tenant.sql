-- Break-glass grants (store.BreakGlass): the platform operator's
-- time-bound access to read one tenant's data, kept with the tenant's data
-- (the main file for pooled tenants, the silo file for silo tenants).

CREATE TABLE break_glass (
	tenant_id  TEXT    NOT NULL,
	id         TEXT    NOT NULL,
	reason     TEXT    NOT NULL,
	actor      TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER NOT NULL,
	ended_at   INTEGER,
	ended_by   TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (tenant_id, id)
) STRICT;

CREATE INDEX break_glass_created_at ON break_glass (tenant_id, created_at, id);
