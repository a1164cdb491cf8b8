package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"sync/atomic"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

const (
	sqlTenantIsolation = `SELECT isolation FROM tenants WHERE id = ?`
	sqlTenantExists    = `SELECT 1 FROM tenants WHERE id = ?`
	sqlTenantTaken     = `SELECT 1 FROM tenants WHERE id = ? OR slug = ? LIMIT 1`
	sqlPlanExists      = `SELECT 1 FROM plans WHERE name = ?`
	sqlInsertTenant    = `INSERT INTO tenants (id, slug, name, plan, isolation, status, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	sqlDeleteTenant = `DELETE FROM tenants WHERE id = ? RETURNING isolation`

	tenantColumns       = `id, slug, name, plan, isolation, status, created_at, updated_at`
	sqlGetTenant        = `SELECT ` + tenantColumns + ` FROM tenants WHERE id = ?`
	sqlGetTenantBySlug  = `SELECT ` + tenantColumns + ` FROM tenants WHERE slug = ?`
	sqlListTenants      = `SELECT ` + tenantColumns + ` FROM tenants ORDER BY created_at, id LIMIT ?`
	sqlListTenantsAfter = `SELECT ` + tenantColumns + ` FROM tenants
		WHERE (created_at, id) > (?, ?) ORDER BY created_at, id LIMIT ?`
	sqlUpdateTenant = `UPDATE tenants
		SET name = coalesce(?, name), plan = coalesce(?, plan), status = coalesce(?, status), updated_at = ?
		WHERE id = ? RETURNING ` + tenantColumns

	planColumns  = `name, rate_per_sec, burst, max_inflight, weight, max_records, max_bytes`
	sqlListPlans = `SELECT ` + planColumns + ` FROM plans ORDER BY name`
	sqlGetPlan   = `SELECT ` + planColumns + ` FROM plans WHERE name = ?`
	sqlPutPlan   = `INSERT INTO plans (` + planColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (name) DO UPDATE SET rate_per_sec = excluded.rate_per_sec, burst = excluded.burst,
		max_inflight = excluded.max_inflight, weight = excluded.weight,
		max_records = excluded.max_records, max_bytes = excluded.max_bytes`

	sqlGetPlatformIdempotency = `SELECT request_hash, response, created_at FROM platform_idempotency WHERE key = ?`
	sqlPutPlatformIdempotency = `INSERT INTO platform_idempotency (key, request_hash, response, created_at)
		VALUES (?, ?, ?, ?)
		ON CONFLICT (key) DO UPDATE SET request_hash = excluded.request_hash,
		response = excluded.response, created_at = excluded.created_at`
)

// sqlPurgeTenant deletes every row of a tenant, children before parents.
var sqlPurgeTenant = []string{
	`DELETE FROM records WHERE tenant_id = ?`,
	`DELETE FROM collection_indexes WHERE tenant_id = ?`,
	`DELETE FROM collections WHERE tenant_id = ?`,
	`DELETE FROM identity_links WHERE tenant_id = ?`,
	`DELETE FROM oidc_configs WHERE tenant_id = ?`,
	`DELETE FROM refresh_tokens WHERE tenant_id = ?`,
	`DELETE FROM api_keys WHERE tenant_id = ?`,
	`DELETE FROM break_glass WHERE tenant_id = ?`,
	`DELETE FROM jobs WHERE tenant_id = ?`,
	`DELETE FROM users WHERE tenant_id = ?`,
	`DELETE FROM user_mfa WHERE tenant_id = ?`,
	`DELETE FROM recovery_codes WHERE tenant_id = ?`,
	`DELETE FROM login_throttle WHERE tenant_id = ?`,
	`DELETE FROM login_addresses WHERE tenant_id = ?`,
	`DELETE FROM auth_policy WHERE tenant_id = ?`,
	`DELETE FROM idempotency_keys WHERE tenant_id = ?`,
	`DELETE FROM audit_cuts WHERE tenant_id = ?`,
	`DELETE FROM audit_retention WHERE tenant_id = ?`,
	`DELETE FROM audit_checkpoints WHERE tenant_id = ?`,
	`DELETE FROM audit_log WHERE tenant_id = ?`,
	`DELETE FROM usage WHERE tenant_id = ?`,
	`DELETE FROM containments WHERE tenant_id = ?`,
	`DELETE FROM data_keys WHERE tenant_id = ?`,
}

// fromMicros turns a stored time back into a time.Time in UTC.
func fromMicros(us int64) time.Time { return time.UnixMicro(us).UTC() }

// nullMicros is the stored form of an optional time.
func nullMicros(t *time.Time) any {
	if t == nil {
		return nil
	}
	return t.UnixMicro()
}

func fromNullMicros(v sql.NullInt64) *time.Time {
	if !v.Valid {
		return nil
	}
	t := fromMicros(v.Int64)
	return &t
}

// limitArg is a LIMIT parameter: SQLite reads a negative limit as none.
func limitArg(limit int) int {
	if limit <= 0 {
		return -1
	}
	return limit
}

func checkPlan(ctx context.Context, c *conn, plan string) error {
	var one int
	if err := c.queryRow(ctx, sqlPlanExists, plan).Scan(&one); err != nil {
		return wrap(err, "plan %q", plan)
	}
	return nil
}

// insertTenant inserts t's row after checking that its plan exists.
func insertTenant(ctx context.Context, c *conn, t *store.Tenant) error {
	if err := checkPlan(ctx, c, t.Plan); err != nil {
		return err
	}
	_, err := c.exec(ctx, sqlInsertTenant, string(t.ID), string(t.Slug), t.Name, t.Plan,
		string(t.Isolation), string(t.Status), t.CreatedAt.UnixMicro(), t.UpdatedAt.UnixMicro())
	return wrap(err, "insert tenant %s", t.ID)
}

func planArgs(p *tenant.Plan) []any {
	return []any{p.Name, p.RatePerSec, p.Burst, p.MaxInflight, p.Weight, p.MaxRecords, p.MaxBytes}
}

// platformTx implements store.PlatformTx on one connection.
type platformTx struct {
	c        *conn
	readOnly bool
	ended    atomic.Bool
	// AuditLog is the platform chain: the tenant audit tables of the main
	// file under the reserved tenant_id platformChain.
	store.AuditLog
}

// begin checks that the transaction may run a statement and returns the
// context to run it on: in a read-write transaction one that is never
// cancelled, because the statement shares its transaction with the rest of a
// group-commit batch.
func (t *platformTx) begin(ctx context.Context, write bool) (context.Context, error) {
	if t.ended.Load() {
		return nil, errTxDone
	}
	if write && t.readOnly {
		return nil, store.ErrReadOnly
	}
	if !t.readOnly {
		ctx = context.WithoutCancel(ctx)
	}
	return ctx, nil
}

type scanner interface{ Scan(dest ...any) error }

// collect scans every row of a query's result with scan. It takes the
// query's error too, so that a listing reads as two lines.
func collect[T any](rows *sql.Rows, err error, scan func(scanner) (T, error), what string) ([]T, error) {
	if err != nil {
		return nil, wrap(err, "%s", what)
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, wrap(err, "%s", what)
		}
		out = append(out, v)
	}
	return out, wrap(rows.Err(), "%s", what)
}

func scanTenant(r scanner) (*store.Tenant, error) {
	var t store.Tenant
	var created, updated int64
	if err := r.Scan(&t.ID, &t.Slug, &t.Name, &t.Plan, &t.Isolation, &t.Status, &created, &updated); err != nil {
		return nil, err
	}
	t.CreatedAt, t.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &t, nil
}

func (t *platformTx) GetTenant(ctx context.Context, id tenant.ID) (*store.Tenant, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	tn, err := scanTenant(t.c.queryRow(ctx, sqlGetTenant, string(id)))
	return tn, wrap(err, "get tenant %s", id)
}

func (t *platformTx) GetTenantBySlug(ctx context.Context, slug tenant.Slug) (*store.Tenant, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	tn, err := scanTenant(t.c.queryRow(ctx, sqlGetTenantBySlug, string(slug)))
	return tn, wrap(err, "get tenant %q", slug)
}

func (t *platformTx) ListTenants(ctx context.Context, params *store.ListTenantsParams) ([]*store.Tenant, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	if params == nil {
		params = &store.ListTenantsParams{}
	}
	var rows *sql.Rows
	if a := params.After; a != nil {
		rows, err = t.c.query(ctx, sqlListTenantsAfter, a.CreatedAt.UnixMicro(), string(a.ID), limitArg(params.Limit))
	} else {
		rows, err = t.c.query(ctx, sqlListTenants, limitArg(params.Limit))
	}
	return collect(rows, err, scanTenant, "list tenants")
}

func (t *platformTx) UpdateTenant(ctx context.Context, params *store.UpdateTenantParams) (*store.Tenant, error) {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return nil, err
	}
	if params.Plan != nil {
		if err := checkPlan(ctx, t.c, *params.Plan); err != nil {
			return nil, err
		}
	}
	if params.Status != nil && !params.Status.Valid() {
		return nil, fmt.Errorf("sqlitestore: tenant status %q is not valid", *params.Status)
	}
	var name, plan, status any
	if params.Name != nil {
		name = *params.Name
	}
	if params.Plan != nil {
		plan = *params.Plan
	}
	if params.Status != nil {
		status = string(*params.Status)
	}
	tn, err := scanTenant(t.c.queryRow(ctx, sqlUpdateTenant, name, plan, status,
		params.UpdatedAt.UnixMicro(), string(params.ID)))
	return tn, wrap(err, "update tenant %s", params.ID)
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
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	rows, err := t.c.query(ctx, sqlListPlans)
	return collect(rows, err, scanPlan, "list plans")
}

func (t *platformTx) GetPlan(ctx context.Context, name string) (*tenant.Plan, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	p, err := scanPlan(t.c.queryRow(ctx, sqlGetPlan, name))
	return p, wrap(err, "get plan %q", name)
}

func (t *platformTx) PutPlan(ctx context.Context, plan *tenant.Plan) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlPutPlan, planArgs(plan)...)
	return wrap(err, "put plan %q", plan.Name)
}

func (t *platformTx) GetIdempotency(ctx context.Context, key string) (*store.Idempotency, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	rec, err := scanIdempotency(key, t.c.queryRow(ctx, sqlGetPlatformIdempotency, key))
	return rec, wrap(err, "get idempotency key")
}

func (t *platformTx) PutIdempotency(ctx context.Context, rec *store.Idempotency) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlPutPlatformIdempotency, rec.Key, rec.RequestHash, rec.Response, rec.CreatedAt.UnixMicro())
	return wrap(err, "put idempotency key")
}

func scanIdempotency(key string, r scanner) (*store.Idempotency, error) {
	rec := &store.Idempotency{Key: key}
	var created int64
	if err := r.Scan(&rec.RequestHash, &rec.Response, &created); err != nil {
		return nil, err
	}
	rec.CreatedAt = fromMicros(created)
	return rec, nil
}
