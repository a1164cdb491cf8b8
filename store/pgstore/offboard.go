package pgstore

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
	sqlScheduleTenantPurge = `UPDATE bulkhead.tenants
		SET status = 'suspended', purge_at = $2, deleted_at = $3, deleted_by = $4, updated_at = $3
		WHERE id = $1 RETURNING ` + tenantColumns
	sqlCancelTenantPurge = `UPDATE bulkhead.tenants
		SET status = $2, purge_at = NULL, deleted_at = NULL, deleted_by = '', updated_at = $3
		WHERE id = $1 AND purge_at > $3 RETURNING ` + tenantColumns
	sqlListTenantPurges = `SELECT ` + tenantColumns + ` FROM bulkhead.tenants
		WHERE purge_at IS NOT NULL ORDER BY purge_at, id LIMIT $1`
)

func (t *platformTx) ScheduleTenantPurge(ctx context.Context, p *store.ScheduleTenantPurgeParams) (*store.Tenant, error) {
	unlock, err := t.begin(true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	tid, err := parseTenantID(p.ID)
	if err != nil {
		return nil, fmt.Errorf("schedule purge: %w", err)
	}
	tn, err := scanTenant(t.q.queryRow(ctx, sqlScheduleTenantPurge, tid.arg, p.PurgeAt, p.At, p.DeletedBy))
	return tn, wrap(err, "schedule purge of tenant %s", p.ID)
}

func (t *platformTx) CancelTenantPurge(ctx context.Context, id tenant.ID, status tenant.Status, at time.Time) (*store.Tenant, error) {
	unlock, err := t.begin(true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if !status.Valid() {
		return nil, fmt.Errorf("pgstore: tenant status %q is not valid", status)
	}
	tid, err := parseTenantID(id)
	if err != nil {
		return nil, fmt.Errorf("cancel purge: %w", err)
	}
	tn, err := scanTenant(t.q.queryRow(ctx, sqlCancelTenantPurge, tid.arg, string(status), at))
	return tn, wrap(err, "cancel purge of tenant %s", id)
}

func (t *platformTx) ListTenantPurges(ctx context.Context, limit int) ([]*store.Tenant, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rows, err := t.q.query(ctx, sqlListTenantPurges, limitArg(limit))
	if err != nil {
		return nil, wrap(err, "list tenant purges")
	}
	defer rows.Close()
	var ts []*store.Tenant
	for rows.Next() {
		tn, err := scanTenant(rows)
		if err != nil {
			return nil, wrap(err, "list tenant purges")
		}
		ts = append(ts, tn)
	}
	return ts, wrap(rows.Err(), "list tenant purges")
}
