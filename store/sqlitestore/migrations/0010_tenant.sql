-- Retention (store.RetentionTx): how long a collection keeps its records,
-- counted from created_at, updated_at or a data field; how long the tenant
-- keeps its audit entries; and the signed cuts of its audit chain. A cut
-- names the first entry kept (with its hash); entries and checkpoints
-- before the latest cut are removed. Applied like 0002. The tables are
-- WITHOUT ROWID: keyed by their primary key alone, one b-tree each.

ALTER TABLE collections ADD COLUMN retention_seconds INTEGER NOT NULL DEFAULT 0;
ALTER TABLE collections ADD COLUMN retention_field TEXT NOT NULL DEFAULT '';

CREATE TABLE audit_retention (
	tenant_id    TEXT    NOT NULL PRIMARY KEY,
	keep_seconds INTEGER NOT NULL,
	updated_by   TEXT    NOT NULL,
	updated_at   INTEGER NOT NULL
) STRICT, WITHOUT ROWID;

CREATE TABLE audit_cuts (
	tenant_id TEXT    NOT NULL,
	seq       INTEGER NOT NULL,
	hash      BLOB    NOT NULL,
	key_id    TEXT    NOT NULL,
	signature BLOB    NOT NULL,
	time      INTEGER NOT NULL,
	PRIMARY KEY (tenant_id, seq)
) STRICT, WITHOUT ROWID;
