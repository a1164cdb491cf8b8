-- Envelope encryption. Tenant-scoped because collections gains a column in
-- every file; data_keys, a control-plane table, is used in the main file
-- only (it stays empty in silo files).
--
-- data_keys holds each tenant's data keys, wrapped by the tenant's key in
-- the key management service (never in this database): purpose data
-- (versioned, rotated) or index (the blind-index key). A retired key's
-- wrapped material is erased (NULL).
CREATE TABLE data_keys (
	tenant_id  TEXT NOT NULL,
	purpose    TEXT NOT NULL CHECK (purpose IN ('data', 'index')),
	version    INTEGER NOT NULL,
	state      TEXT NOT NULL CHECK (state IN ('active', 'retiring', 'retired')),
	wrapped    BLOB,
	created_at INTEGER NOT NULL,
	updated_at INTEGER NOT NULL,
	PRIMARY KEY (tenant_id, purpose, version)
) STRICT;

-- The collection's encrypted fields: a JSON array of top-level data keys.
ALTER TABLE collections ADD COLUMN encrypted_fields TEXT NOT NULL DEFAULT '[]';
