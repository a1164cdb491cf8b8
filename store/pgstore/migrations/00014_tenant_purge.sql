-- +goose Up
-- Offboarding with a grace period (store.Tenant.PurgeAt): a tenant being
-- deleted keeps status 'suspended' in its row, so that whatever reads the
-- status alone refuses it, and gains purge_at (when its data is purged and
-- its keys shredded), deleted_at and deleted_by (who asked). The store
-- reports such a tenant's status as 'deleting'.

ALTER TABLE bulkhead.tenants
	ADD COLUMN purge_at   timestamptz,
	ADD COLUMN deleted_at timestamptz,
	ADD COLUMN deleted_by text NOT NULL DEFAULT '';

CREATE INDEX tenants_purge_at ON bulkhead.tenants (purge_at) WHERE purge_at IS NOT NULL;

