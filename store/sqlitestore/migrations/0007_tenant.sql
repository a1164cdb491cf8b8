-- Containment actions: credentials suspended, accounts locked, keys
-- flagged by automatic containment, listed and lifted through the API.
CREATE TABLE containments (
	tenant_id  TEXT    NOT NULL,
	id         TEXT    NOT NULL,
	kind       TEXT    NOT NULL,
	subject    TEXT    NOT NULL,
	reason     TEXT    NOT NULL,
	count      INTEGER NOT NULL,
	created_by TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	expires_at INTEGER,
	lifted_at  INTEGER,
	lifted_by  TEXT    NOT NULL DEFAULT '',
	PRIMARY KEY (tenant_id, id)
) STRICT;

CREATE INDEX containments_created_at ON containments (tenant_id, created_at, id);
