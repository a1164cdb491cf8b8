package pgstore

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Control-plane statements name the schema: they do not depend on the
// transaction's search_path.
const (
	// tenantColumns report a tenant with a purge scheduled as deleting
	// (offboard.go), whatever its stored status.
	tenantColumns = `id, slug, name, plan, isolation,
		CASE WHEN purge_at IS NULL THEN status ELSE 'deleting' END, created_at, updated_at, purge_at, deleted_at, deleted_by`
	sqlGetTenant        = `SELECT ` + tenantColumns + ` FROM bulkhead.tenants WHERE id = $1`
	sqlGetTenantBySlug  = `SELECT ` + tenantColumns + ` FROM bulkhead.tenants WHERE slug = $1`
	sqlListTenants      = `SELECT ` + tenantColumns + ` FROM bulkhead.tenants ORDER BY created_at, id LIMIT $1`
	sqlListTenantsAfter = `SELECT ` + tenantColumns + ` FROM bulkhead.tenants
		WHERE (created_at, id) > ($1, $2) ORDER BY created_at, id LIMIT $3`
	// sqlUpdateTenant changes nothing, and returns no row, if params.Plan
	// names no plan: the foreign key's error would abort the transaction.
	sqlUpdateTenant = `UPDATE bulkhead.tenants
		SET name = coalesce($2::text, name), plan = coalesce($3::text, plan), status = coalesce($4::text, status), updated_at = $5
		WHERE id = $1 AND ($3::text IS NULL OR EXISTS (SELECT 1 FROM bulkhead.plans WHERE name = $3::text))
		RETURNING ` + tenantColumns
	sqlTenantExists = `SELECT 1 FROM bulkhead.tenants WHERE id = $1`

	planColumns  = `name, rate_per_sec, burst, max_inflight, weight, max_records, max_bytes`
	sqlListPlans = `SELECT ` + planColumns + ` FROM bulkhead.plans ORDER BY name`
	sqlGetPlan   = `SELECT ` + planColumns + ` FROM bulkhead.plans WHERE name = $1`
	sqlPutPlan   = `INSERT INTO bulkhead.plans AS p (` + planColumns + `) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (name) DO UPDATE SET rate_per_sec = excluded.rate_per_sec, burst = excluded.burst,
		max_inflight = excluded.max_inflight, weight = excluded.weight,
		max_records = excluded.max_records, max_bytes = excluded.max_bytes`

	sqlGetPlatformIdempotency = `SELECT request_hash, response, created_at FROM bulkhead.platform_idempotency WHERE key = $1`
	sqlPutPlatformIdempotency = `INSERT INTO bulkhead.platform_idempotency AS k (key, request_hash, response, created_at)
		VALUES ($1, $2, $3, $4)
		ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash,
		response = excluded.response, created_at = excluded.created_at`
)

// platformTx implements store.PlatformTx.
type platformTx struct {
	*txCore
	// auditLog is the platform's own chain, in the platform_audit_*
	// tables, apart from every tenant's.
	auditLog
}

var _ store.PlatformTx = (*platformTx)(nil)

func newPlatformTx(q *txn, readOnly bool) *platformTx {
	c := &txCore{q: q, readOnly: readOnly}
	return &platformTx{txCore: c, auditLog: auditLog{txCore: c, sql: &platformAuditSQL, head: &headState{}}}
}

func scanTenant(r scanner) (*store.Tenant, error) {
	var t store.Tenant
	if err := r.Scan(&t.ID, &t.Slug, &t.Name, &t.Plan, &t.Isolation, &t.Status, &t.CreatedAt, &t.UpdatedAt,
		&t.PurgeAt, &t.DeletedAt, &t.DeletedBy); err != nil {
		return nil, err
	}
	t.PurgeAt, t.DeletedAt = utcPtr(t.PurgeAt), utcPtr(t.DeletedAt)
	return &t, nil
}

func (t *platformTx) GetTenant(ctx context.Context, id tenant.ID) (*store.Tenant, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	tid, err := parseTenantID(id)
	if err != nil {
		return nil, err
	}
	tn, err := scanTenant(t.q.queryRow(ctx, sqlGetTenant, tid.arg))
	return tn, wrap(err, "get tenant %s", id)
}

func (t *platformTx) GetTenantBySlug(ctx context.Context, slug tenant.Slug) (*store.Tenant, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	tn, err := scanTenant(t.q.queryRow(ctx, sqlGetTenantBySlug, string(slug)))
	return tn, wrap(err, "get tenant %q", slug)
}

func (t *platformTx) ListTenants(ctx context.Context, params *store.ListTenantsParams) ([]*store.Tenant, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if params == nil {
		params = &store.ListTenantsParams{}
	}
	var rows pgx.Rows
	if a := params.After; a != nil {
		after, perr := parseTenantID(a.ID)
		if perr != nil {
			return nil, fmt.Errorf("list tenants: after: %w", perr)
		}
		rows, err = t.q.query(ctx, sqlListTenantsAfter, a.CreatedAt, after.arg, limitArg(params.Limit))
	} else {
		rows, err = t.q.query(ctx, sqlListTenants, limitArg(params.Limit))
	}
	if err != nil {
		return nil, wrap(err, "list tenants")
	}
	defer rows.Close()
	var ts []*store.Tenant
	for rows.Next() {
		tn, err := scanTenant(rows)
		if err != nil {
			return nil, wrap(err, "list tenants")
		}
		ts = append(ts, tn)
	}
	return ts, wrap(rows.Err(), "list tenants")
}

func (t *platformTx) UpdateTenant(ctx context.Context, params *store.UpdateTenantParams) (*store.Tenant, error) {
	unlock, err := t.begin(true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	tid, err := parseTenantID(params.ID)
	if err != nil {
		return nil, fmt.Errorf("update tenant: %w", err)
	}
	if params.Status != nil && !params.Status.Valid() {
		return nil, fmt.Errorf("pgstore: tenant status %q is not valid", *params.Status)
	}
	var status *string
	if params.Status != nil {
		status = (*string)(params.Status)
	}
	tn, err := scanTenant(t.q.queryRow(ctx, sqlUpdateTenant, tid.arg, params.Name, params.Plan, status, params.UpdatedAt))
	if err == nil || !isNotFound(err) || params.Plan == nil {
		return tn, wrap(err, "update tenant %s", params.ID)
	}
	// No row: either the tenant or the plan does not exist.
	var one int
	if err := t.q.queryRow(ctx, sqlTenantExists, tid.arg).Scan(&one); err != nil {
		return nil, wrap(err, "update tenant %s", params.ID)
	}
	return nil, fmt.Errorf("update tenant %s: plan %q: %w", params.ID, *params.Plan, store.ErrNotFound)
}

func scanPlan(r scanner) (*tenant.Plan, error) {
	var p tenant.Plan
	err := r.Scan(&p.Name, &p.RatePerSec, &p.Burst, &p.MaxInflight, &p.Weight, &p.MaxRecords, &p.MaxBytes)
	if err != nil {
		return nil, err
	}
	return &p, nil
}

func (t *platformTx) ListPlans(ctx context.Context) ([]*tenant.Plan, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rows, err := t.q.query(ctx, sqlListPlans)
	if err != nil {
		return nil, wrap(err, "list plans")
	}
	defer rows.Close()
	var ps []*tenant.Plan
	for rows.Next() {
		p, err := scanPlan(rows)
		if err != nil {
			return nil, wrap(err, "list plans")
		}
		ps = append(ps, p)
	}
	return ps, wrap(rows.Err(), "list plans")
}

func (t *platformTx) GetPlan(ctx context.Context, name string) (*tenant.Plan, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	p, err := scanPlan(t.q.queryRow(ctx, sqlGetPlan, name))
	return p, wrap(err, "get plan %q", name)
}

func planArgs(p *tenant.Plan) []any {
	return []any{p.Name, p.RatePerSec, p.Burst, p.MaxInflight, p.Weight, p.MaxRecords, p.MaxBytes}
}

func (t *platformTx) PutPlan(ctx context.Context, plan *tenant.Plan) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = t.q.exec(ctx, sqlPutPlan, planArgs(plan)...)
	return wrap(err, "put plan %q", plan.Name)
}

func (t *platformTx) GetIdempotency(ctx context.Context, key string) (*store.Idempotency, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rec, err := scanIdempotency(key, t.q.queryRow(ctx, sqlGetPlatformIdempotency, key))
	return rec, wrap(err, "get idempotency key")
}

func (t *platformTx) PutIdempotency(ctx context.Context, rec *store.Idempotency) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = t.q.exec(ctx, sqlPutPlatformIdempotency, rec.Key, rec.RequestHash, rec.Response, rec.CreatedAt)
	return wrap(err, "put idempotency key")
}
