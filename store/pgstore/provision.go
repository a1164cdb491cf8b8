package pgstore

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

const (
	// sqlInsertTenant inserts a tenant's row if its plan exists and its id
	// and slug are free, and reports which: a failed insert would abort
	// the transaction.
	sqlInsertTenant = `WITH p AS (SELECT 1 FROM bulkhead.plans WHERE name = $4::text),
		ins AS (INSERT INTO bulkhead.tenants (id, slug, name, plan, isolation, status, created_at, updated_at)
			SELECT $1::uuid, $2::text, $3::text, $4::text, $5::text, $6::text, $7::timestamptz, $7::timestamptz
			WHERE EXISTS (SELECT 1 FROM p)
			ON CONFLICT DO NOTHING RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM p), EXISTS (SELECT 1 FROM ins)`
	sqlDeleteTenant = `DELETE FROM bulkhead.tenants WHERE id = $1 RETURNING isolation`
	// sqlProvisionLock is taken (shared) by every transaction that creates
	// or drops a silo schema, and exclusively by Migrate while it brings
	// the silo schemas up to date, so that no silo escapes a migration.
	sqlProvisionLock = `SELECT pg_advisory_xact_lock_shared($1)`
	sqlSetSearchPath = `SELECT set_config('search_path', $1, true)`
)

// schemaLockKey is the advisory lock key of sqlProvisionLock.
const schemaLockKey int64 = 0x6268736368656d61 // "bhschema"

// sqlPurgeTenant deletes every pooled row of a tenant, children before
// parents. They run with bulkhead.tenant_id set to the tenant: row-level
// security binds the purge too.
var sqlPurgeTenant = func() []string {
	var qs []string
	for _, t := range []string{"records", "collection_indexes", "collections", "identity_links", "oidc_configs", "refresh_tokens", "api_keys", "break_glass", "jobs", "users",
		"idempotency_keys", "audit_cuts", "audit_retention", "audit_checkpoints", "audit_log", "audit_heads", "usage", "containments",
		"user_mfa", "recovery_codes", "login_throttle", "login_addresses", "auth_policy"} {
		qs = append(qs, "DELETE FROM "+ident(schemaName, t)+" WHERE tenant_id = $1")
	}
	return qs
}()

// errNoProvision is returned for silo provisioning without
// Options.ProvisionURL.
var errNoProvision = fmt.Errorf("pgstore: creating or deleting a silo tenant needs the owner role's connection "+
	"(Options.ProvisionURL; the --provision-url flag or BULKHEAD_PROVISION_URL): %w", store.ErrIsolationUnavailable)

// CanProvisionSilos reports whether the store can create and delete silo
// tenants: whether it was opened with Options.ProvisionURL. Without it,
// CreateTenant and DeleteTenant of a silo tenant return an error wrapping
// store.ErrIsolationUnavailable; pooled tenants, and silo tenants that
// exist, are served either way.
func (s *Store) CanProvisionSilos() bool { return s.prov != nil }

// errIsolationChanged reports that a tenant's row has another isolation
// than the caller routed for.
var errIsolationChanged = errors.New("pgstore: tenant isolation changed")

func validateCreate(p *store.CreateTenantParams) (tenantID, error) {
	tid, err := parseTenantID(p.ID)
	switch {
	case err != nil:
		return tid, fmt.Errorf("pgstore: tenant id %q is not a canonical lower-case UUID", p.ID)
	case !p.Slug.Valid():
		return tid, fmt.Errorf("pgstore: tenant slug %q does not match %s", p.Slug, tenant.SlugPattern)
	case !p.Isolation.Valid():
		return tid, fmt.Errorf("pgstore: tenant isolation %q is not valid", p.Isolation)
	}
	return tid, nil
}

// CreateTenant provisions a tenant in one transaction, so that either all
// of it exists afterwards or none of it, even if the process dies midway.
//
// A pooled tenant's transaction runs on the application role's pool: it
// inserts the row, runs initPlatform, sets the tenant and runs initTenant.
//
// A silo tenant's runs on the owner role's pool (Options.ProvisionURL; an
// error without it): it inserts the row, runs initPlatform, creates the
// schema t_<hex> with the tenant tables (row-level security forced there
// too) and the NOLOGIN role bulkhead_t_<hex> with exactly the privileges
// the store needs on that schema, lets the application role switch to
// that role, and then switches to it itself, so that initTenant runs with
// the silo role's privileges and row-level security exactly as later
// transactions will. PostgreSQL DDL is transactional: a failure anywhere,
// or a crash, leaves no schema, role or row behind.
//
// It returns ErrConflict if the id or slug is taken and ErrNotFound
// (wrapped) if the plan does not exist.
func (s *Store) CreateTenant(ctx context.Context, p *store.CreateTenantParams, initPlatform func(tx store.PlatformTx) error, initTenant func(tx store.Tx) error) (*store.Tenant, error) {
	tid, err := validateCreate(p)
	if err != nil {
		return nil, err
	}
	if initPlatform == nil {
		initPlatform = func(store.PlatformTx) error { return nil }
	}
	if initTenant == nil {
		initTenant = func(store.Tx) error { return nil }
	}
	created := time.UnixMicro(p.CreatedAt.UnixMicro()).UTC()
	t := &store.Tenant{
		ID:        p.ID,
		Slug:      p.Slug,
		Name:      p.Name,
		Plan:      p.Plan,
		Isolation: p.Isolation,
		Status:    tenant.Active,
		CreatedAt: created,
		UpdatedAt: created,
	}
	pool := s.pool
	if t.Isolation == tenant.Silo {
		if s.prov == nil {
			return nil, errNoProvision
		}
		pool = s.prov
	}
	c, err := s.acquire(ctx, pool)
	if err != nil {
		return nil, err
	}
	defer c.Release()

	b := &pgx.Batch{}
	b.BeginTx(readWrite)
	if t.Isolation == tenant.Silo {
		b.Queue(sqlProvisionLock, schemaLockKey)
	}
	b.Queue(sqlInsertTenant, tid.arg, string(t.Slug), t.Name, t.Plan, string(t.Isolation), string(t.Status), t.CreatedAt)
	b.Queue(sqlPlatformConfig, s.timeout)
	br := c.SendBatch(ctx, b)
	tx := br.Tx()
	err = func() error {
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return wrap(err, "pgstore: begin transaction")
		}
		if t.Isolation == tenant.Silo {
			if _, err := br.Exec(); err != nil {
				return wrap(err, "pgstore: lock silo schemas")
			}
		}
		var planOK, inserted bool
		if err := br.QueryRow().Scan(&planOK, &inserted); err != nil {
			return wrap(err, "insert tenant %s", t.ID)
		}
		switch {
		case !planOK:
			return fmt.Errorf("create tenant %s: plan %q: %w", t.ID, t.Plan, store.ErrNotFound)
		case !inserted:
			return fmt.Errorf("create tenant %s: id or slug %q is taken: %w", t.ID, t.Slug, store.ErrConflict)
		}
		_, err := br.Exec()
		return wrap(err, "pgstore: configure transaction")
	}()
	q := started(tx, s.timeout, s.log)
	if err != nil {
		q.rollback(ctx, tx)
		return nil, err
	}
	err = s.initTenant(ctx, q, tid, t.Isolation, initPlatform, initTenant)
	if err := q.finish(ctx, err); err != nil {
		return nil, err
	}
	s.remember(t.ID, t.Isolation)
	return t, nil
}

// initTenant runs the rest of a creation on q, after the tenant's row is
// inserted: initPlatform, the silo's DDL, the tenant's settings and
// initTenant.
func (s *Store) initTenant(ctx context.Context, q *txn, tid tenantID, iso tenant.Isolation, initPlatform func(tx store.PlatformTx) error, initTenant func(tx store.Tx) error) error {
	pt := newPlatformTx(q, false)
	err := initPlatform(pt)
	pt.end()
	if err != nil {
		return err
	}
	schema, role := s.pooled, "none"
	if iso == tenant.Silo {
		schema, role = tid.siloSchema(), tid.siloRole()
		if err := s.createSiloSchema(ctx, q, tid); err != nil {
			return err
		}
	}
	if _, err := q.exec(ctx, sqlTenantConfig, string(tid.id), searchPath(schema), role, s.timeout); err != nil {
		return wrap(err, "pgstore: configure transaction")
	}
	t := newTx(q, tid, false)
	err = initTenant(t)
	t.end()
	return err
}

// createSiloSchema creates tid's schema, tables and role on q, a
// transaction of the owner role.
func (s *Store) createSiloSchema(ctx context.Context, q *txn, tid tenantID) error {
	schema, role := tid.siloSchema(), tid.siloRole()
	if _, err := q.exec(ctx, "CREATE SCHEMA "+ident(schema)); err != nil {
		return wrap(err, "pgstore: create schema for silo tenant %s", tid.id)
	}
	if _, err := q.exec(ctx, sqlSetSearchPath, searchPath(schema)); err != nil {
		return wrap(err, "pgstore: create schema for silo tenant %s", tid.id)
	}
	for _, m := range tenantMigrations {
		if _, err := q.exec(ctx, m.sql); err != nil {
			return wrap(err, "pgstore: create tables of silo tenant %s (%s)", tid.id, m.name)
		}
	}
	ddl := "CREATE ROLE " + ident(role) + " NOLOGIN NOINHERIT;\n" +
		siloRoleSQL(schema, role, s.role.name, s.role.serverVersion)
	if _, err := q.exec(ctx, ddl); err != nil {
		return wrap(err, "pgstore: create role for silo tenant %s", tid.id)
	}
	return nil
}

// DeleteTenant removes the tenant's row and all its data in one
// transaction: a pooled tenant's rows are purged (with row-level security
// binding the purge to the tenant); a silo tenant's schema and role are
// dropped, on the owner role's pool (Options.ProvisionURL; an error
// without it). fn, if not nil, runs in that transaction after the row is
// deleted. Transactions of the tenant in progress finish first (they hold
// its row); later ones get ErrNotFound. It returns ErrNotFound if no such
// tenant exists.
func (s *Store) DeleteTenant(ctx context.Context, id tenant.ID, fn func(tx store.PlatformTx) error) error {
	tid, iso, err := s.resolve(ctx, id)
	if err != nil {
		return err
	}
	for attempt := 0; ; attempt++ {
		pool := s.pool
		if iso == tenant.Silo {
			if s.prov == nil {
				return errNoProvision
			}
			pool = s.prov
		}
		c, err := s.acquire(ctx, pool)
		if err != nil {
			return err
		}
		actual, err := s.deleteTenant(ctx, c, tid, iso, fn)
		c.Release()
		if errors.Is(err, errIsolationChanged) && attempt == 0 {
			iso = actual
			continue
		}
		if err == nil || errors.Is(err, store.ErrNotFound) {
			s.forget(tid.id)
		}
		if err == nil && iso == tenant.Pooled {
			// A silo's indexes went with its schema.
			s.dropTenantIndexes(ctx, tid)
		}
		return err
	}
}

// deleteTenant deletes tid, assuming isolation iso, on c. If the tenant's
// row says otherwise, it changes nothing and returns the row's isolation
// and errIsolationChanged.
func (s *Store) deleteTenant(ctx context.Context, c *pgxpool.Conn, tid tenantID, iso tenant.Isolation, fn func(tx store.PlatformTx) error) (tenant.Isolation, error) {
	b := &pgx.Batch{}
	b.BeginTx(readWrite)
	if iso == tenant.Silo {
		b.Queue(sqlProvisionLock, schemaLockKey)
	}
	b.Queue(sqlDeleteTenant, tid.arg)
	b.Queue(sqlTenantConfig, string(tid.id), searchPath(schemaName), "none", s.timeout)
	for _, q := range sqlPurgeTenant {
		b.Queue(q, tid.arg)
	}
	br := c.SendBatch(ctx, b)
	tx := br.Tx()
	var actual tenant.Isolation
	err := func() error {
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return wrap(err, "pgstore: begin transaction")
		}
		if iso == tenant.Silo {
			if _, err := br.Exec(); err != nil {
				return wrap(err, "pgstore: lock silo schemas")
			}
		}
		if err := br.QueryRow().Scan(&actual); err != nil {
			return wrap(err, "delete tenant %s", tid.id)
		}
		if actual != iso {
			return errIsolationChanged
		}
		if _, err := br.Exec(); err != nil {
			return wrap(err, "pgstore: configure transaction")
		}
		for range sqlPurgeTenant {
			if _, err := br.Exec(); err != nil {
				return wrap(err, "purge tenant %s", tid.id)
			}
		}
		return nil
	}()
	q := started(tx, s.timeout, s.log)
	if err != nil {
		q.rollback(ctx, tx)
		return actual, err
	}
	if fn != nil {
		pt := newPlatformTx(q, false)
		err = fn(pt)
		pt.end()
	}
	if err == nil && iso == tenant.Silo {
		_, err = q.exec(ctx, "DROP SCHEMA IF EXISTS "+ident(tid.siloSchema())+" CASCADE;\nDROP ROLE IF EXISTS "+ident(tid.siloRole()))
		err = wrap(err, "pgstore: drop schema and role of silo tenant %s", tid.id)
	}
	return actual, q.finish(ctx, err)
}
