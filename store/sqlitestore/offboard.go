package sqlitestore

import (
	"context"
	"fmt"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// A deleting tenant's row keeps status 'suspended': whatever reads the
// stored status alone refuses it. tenantColumns report it as deleting.
const (
	sqlScheduleTenantPurge = `UPDATE tenants
		SET status = 'suspended', purge_at = ?2, deleted_at = ?3, deleted_by = ?4, updated_at = ?3
		WHERE id = ?1 RETURNING ` + tenantColumns
	sqlCancelTenantPurge = `UPDATE tenants
		SET status = ?2, purge_at = NULL, deleted_at = NULL, deleted_by = '', updated_at = ?3
		WHERE id = ?1 AND purge_at > ?3 RETURNING ` + tenantColumns
	sqlListTenantPurges = `SELECT ` + tenantColumns + ` FROM tenants
		WHERE purge_at IS NOT NULL ORDER BY purge_at, id LIMIT ?`
)

func (t *platformTx) ScheduleTenantPurge(ctx context.Context, p *store.ScheduleTenantPurgeParams) (*store.Tenant, error) {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return nil, err
	}
	tn, err := scanTenant(t.c.queryRow(ctx, sqlScheduleTenantPurge, string(p.ID), p.PurgeAt.UnixMicro(), p.At.UnixMicro(), p.DeletedBy))
	return tn, wrap(err, "schedule purge of tenant %s", p.ID)
}

func (t *platformTx) CancelTenantPurge(ctx context.Context, id tenant.ID, status tenant.Status, at time.Time) (*store.Tenant, error) {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return nil, err
	}
	if !status.Valid() {
		return nil, fmt.Errorf("sqlitestore: tenant status %q is not valid", status)
	}
	tn, err := scanTenant(t.c.queryRow(ctx, sqlCancelTenantPurge, string(id), string(status), at.UnixMicro()))
	return tn, wrap(err, "cancel purge of tenant %s", id)
}

func (t *platformTx) ListTenantPurges(ctx context.Context, limit int) ([]*store.Tenant, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	rows, err := t.c.query(ctx, sqlListTenantPurges, limitArg(limit))
	return collect(rows, err, scanTenant, "list tenant purges")
}
