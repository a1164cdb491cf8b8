-- +goose Up
-- Envelope encryption: each tenant's data keys, wrapped by the tenant's key
-- in the key management service (never in this database). purpose is data
-- (versioned, rotated) or index (the blind-index key); a retired key's
-- wrapped material is erased (NULL). A control-plane table: it holds no
-- tenant data, only wrapped keys, so it has no row-level security.

CREATE TABLE bulkhead.data_keys (
	tenant_id  uuid NOT NULL REFERENCES bulkhead.tenants (id) ON DELETE CASCADE,
	purpose    text NOT NULL CHECK (purpose IN ('data', 'index')),
	version    integer NOT NULL,
	state      text NOT NULL CHECK (state IN ('active', 'retiring', 'retired')),
	wrapped    bytea,
	created_at timestamptz NOT NULL,
	updated_at timestamptz NOT NULL,
	PRIMARY KEY (tenant_id, purpose, version)
);
