-- Declared indexes of collections (store.Index), in the main file for
-- pooled tenants and in every silo file. A row is one declaration, keyed by
-- the name of its physical index on records (see package recsql): fields is
-- the JSON array of its fields as declared, position its place among the
-- collection's declarations, state building, ready or failed (with error
-- saying why). The physical index itself is a partial index of the
-- tenant's collection, built by BuildIndexes and dropped with the
-- declaration.

CREATE TABLE collection_indexes (
	tenant_id  TEXT    NOT NULL,
	collection TEXT    NOT NULL,
	physical   TEXT    NOT NULL,
	fields     TEXT    NOT NULL,
	is_unique  INTEGER NOT NULL,
	position   INTEGER NOT NULL,
	state      TEXT    NOT NULL CHECK (state IN ('building', 'ready', 'failed', 'dropping')),
	error      TEXT    NOT NULL,
	created_at INTEGER NOT NULL,
	PRIMARY KEY (tenant_id, collection, physical)
) STRICT;
