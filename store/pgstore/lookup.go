package pgstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// sqlLookupTenant reads a tenant's row and its plan for LookupAPIKey. It
// runs as the application role, before the transaction switches to a silo
// tenant's role, which cannot read the control plane.
const sqlLookupTenant = `SELECT t.id, t.slug, t.name, t.plan, t.isolation,
		CASE WHEN t.purge_at IS NULL THEN t.status ELSE 'deleting' END, t.created_at, t.updated_at, t.purge_at, t.deleted_at, t.deleted_by,
		p.name, p.rate_per_sec, p.burst, p.max_inflight, p.weight, p.max_records, p.max_bytes
	FROM bulkhead.tenants t JOIN bulkhead.plans p ON p.name = t.plan WHERE t.id = $1`

// LookupAPIKey reads the key (with the tenant's containments), the
// tenant's row and its plan in one
// read-only transaction (REPEATABLE READ READ ONLY: one snapshot) and one
// round trip: BEGIN, the tenant and plan, the settings that confine the
// transaction to the tenant (its schema and role, for a silo tenant), the
// key and COMMIT travel in one batch. The key is read under row-level
// security, exactly as ReadTenant would read it.
//
// It returns ErrNotFound if the tenant or the key does not exist, and
// ErrNoTenant if tid is zero.
func (s *Store) LookupAPIKey(ctx context.Context, id tenant.ID, key store.APIKeyID) (*store.KeyLookup, error) {
	tid, iso, err := s.resolve(ctx, id)
	if err != nil {
		return nil, err
	}
	c, err := s.acquire(ctx, s.pool)
	if err != nil {
		return nil, err
	}
	defer c.Release()
	for attempt := 0; ; attempt++ {
		l, actual, err := s.lookupAPIKey(ctx, c.Conn(), tid, iso, key)
		switch {
		case errors.Is(err, errIsolationChanged) && attempt == 0:
			// Deleted and created again with the other isolation by
			// another process: the settings were wrong, so try again
			// with the row's.
			s.log.Info("pgstore: tenant isolation changed since it was cached; retrying",
				"tenant", tid.id, "was", iso, "now", actual)
			s.remember(tid.id, actual)
			iso = actual
			continue
		case errors.Is(err, errIsolationChanged):
			return nil, fmt.Errorf("pgstore: tenant %s changed isolation during a key lookup", tid.id)
		case errors.Is(err, store.ErrNotFound) && actual == "":
			s.forget(tid.id) // the tenant is gone
		}
		return l, err
	}
}

// lookupAPIKey runs LookupAPIKey's batch on c for a tenant routed as iso. If
// the tenant's row has another isolation, it returns the row's and
// errIsolationChanged; if there is no row, "" and ErrNotFound.
func (s *Store) lookupAPIKey(ctx context.Context, c *pgx.Conn, tid tenantID, iso tenant.Isolation, key store.APIKeyID) (*store.KeyLookup, tenant.Isolation, error) {
	schema, role := s.pooled, "none"
	if iso == tenant.Silo {
		schema, role = tid.siloSchema(), tid.siloRole()
	}
	b := &pgx.Batch{}
	b.BeginTx(readOnly)
	b.Queue(sqlLookupTenant, tid.arg)
	b.Queue(sqlTenantConfig, string(tid.id), searchPath(schema), role, s.timeout)
	b.Queue(sqlGetAPIKey, tid.arg, string(key))
	b.Queue(sqlUnliftedContainments, tid.arg)
	b.Queue("COMMIT")
	br := c.SendBatch(ctx, b)
	tx := br.Tx()

	var l store.KeyLookup
	var actual tenant.Isolation
	err := func() error {
		if _, err := br.Exec(); err != nil {
			return wrap(err, "pgstore: begin transaction")
		}
		var tn store.Tenant
		var p tenant.Plan
		err := br.QueryRow().Scan(&tn.ID, &tn.Slug, &tn.Name, &tn.Plan, &tn.Isolation, &tn.Status, &tn.CreatedAt, &tn.UpdatedAt,
			&tn.PurgeAt, &tn.DeletedAt, &tn.DeletedBy, &p.Name, &p.RatePerSec, &p.Burst, &p.MaxInflight, &p.Weight, &p.MaxRecords, &p.MaxBytes)
		if err != nil {
			return wrap(err, "tenant %s", tid.id)
		}
		tn.PurgeAt, tn.DeletedAt = utcPtr(tn.PurgeAt), utcPtr(tn.DeletedAt)
		actual = tn.Isolation
		if actual != iso {
			// The settings queued for iso may fail (a silo role that is
			// gone) or confine the transaction to the wrong tables:
			// ignore the rest of the batch.
			return errIsolationChanged
		}
		l.Tenant, l.Plan = &tn, &p
		if _, err := br.Exec(); err != nil {
			return wrap(err, "pgstore: configure transaction")
		}
		if l.Key, err = scanAPIKey(br.QueryRow()); err != nil {
			return wrap(err, "get api key %s", key)
		}
		rows, err := br.Query()
		if err != nil {
			return wrap(err, "list containments")
		}
		for rows.Next() {
			k, err := scanContainment(rows)
			if err != nil {
				rows.Close()
				return wrap(err, "list containments")
			}
			l.Containments = append(l.Containments, k)
		}
		rows.Close()
		if err := rows.Err(); err != nil {
			return wrap(err, "list containments")
		}
		if _, err := br.Exec(); err != nil {
			return wrap(err, "pgstore: commit")
		}
		return nil
	}()
	cerr := br.Close()
	// COMMIT ran in the batch unless something before it failed; then the
	// transaction is still open, and rolls back.
	if c.PgConn().TxStatus() != 'I' {
		(&txn{log: s.log}).rollback(ctx, tx)
	}
	if err == nil && cerr != nil {
		err = wrap(cerr, "pgstore: look up api key")
	}
	if err != nil {
		return nil, actual, err
	}
	s.remember(tid.id, actual)
	return &l, actual, nil
}
