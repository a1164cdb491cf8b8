-- Declared indexes of collections (store.Index), applied like 00003 to the
-- pooled schema and every silo schema. A row is one declaration, keyed by
-- the name of its physical index on records (bx_…, see package recsql):
-- fields is the JSON array of its fields as declared, position its place
-- among the collection's declarations, state building, ready or failed
-- (with error saying why), or dropping: no longer declared, and kept,
-- hidden from the API, until BuildIndexes has dropped the physical index.
-- Row-level security confines it like every tenant table.

CREATE TABLE collection_indexes (
	tenant_id  uuid NOT NULL,
	collection text COLLATE "C" NOT NULL,
	physical   text COLLATE "C" NOT NULL,
	fields     text NOT NULL,
	is_unique  boolean NOT NULL,
	position   integer NOT NULL,
	state      text NOT NULL CHECK (state IN ('building', 'ready', 'failed', 'dropping')),
	error      text NOT NULL,
	created_at timestamptz NOT NULL,
	PRIMARY KEY (tenant_id, collection, physical)
);

ALTER TABLE collection_indexes ENABLE ROW LEVEL SECURITY, FORCE ROW LEVEL SECURITY;

CREATE POLICY tenant_isolation ON collection_indexes
	USING (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid)
	WITH CHECK (tenant_id = nullif(current_setting('bulkhead.tenant_id', true), '')::uuid);
