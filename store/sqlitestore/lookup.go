package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// sqlLookupTenant reads a tenant's row and its plan for LookupAPIKey.
const sqlLookupTenant = `SELECT t.id, t.slug, t.name, t.plan, t.isolation,
		CASE WHEN t.purge_at IS NULL THEN t.status ELSE 'deleting' END, t.created_at, t.updated_at, t.purge_at, t.deleted_at, t.deleted_by,
		p.name, p.rate_per_sec, p.burst, p.max_inflight, p.weight, p.max_records, p.max_bytes
	FROM tenants t JOIN plans p ON p.name = t.plan WHERE t.id = ?`

// LookupAPIKey reads the key (with the tenant's containments), the
// tenant's row and its plan. A pooled
// tenant's key lives in the main file with the control plane, and all three
// are read in one read transaction, one snapshot. A silo tenant's key lives
// in its own file, which no transaction shares with the main file: the key
// is read first, in a snapshot of the silo file, and then the tenant and its
// plan, in a snapshot of the main file. In that order a tenant deleted
// meanwhile is never returned (DeleteTenant deletes the row before it
// closes the file), and the tenant's row is never older than the key.
//
// It returns ErrNotFound if the tenant or the key does not exist, and
// ErrNoTenant if tid is zero.
func (s *Store) LookupAPIKey(ctx context.Context, tid tenant.ID, id store.APIKeyID) (*store.KeyLookup, error) {
	if tid == "" {
		return nil, store.ErrNoTenant
	}
	d, iso, err := s.route(ctx, tid)
	if err != nil {
		return nil, err
	}
	var l store.KeyLookup
	getKey := func(c *conn) (err error) {
		l.Key, err = scanAPIKey(c.queryRow(ctx, sqlGetAPIKey, string(tid), string(id)))
		if err != nil {
			return wrap(err, "get api key %s", id)
		}
		rows, err := c.query(ctx, sqlUnliftedContainments, string(tid))
		l.Containments, err = collect(rows, err, scanContainment, "list containments")
		return err
	}
	if iso == tenant.Silo {
		if err := d.read(ctx, getKey); err != nil {
			return nil, err
		}
	}
	err = s.main.read(ctx, func(c *conn) error {
		var p tenant.Plan
		var created, updated int64
		var purge, deleted sql.NullInt64
		tn := &store.Tenant{}
		err := c.queryRow(ctx, sqlLookupTenant, string(tid)).Scan(&tn.ID, &tn.Slug, &tn.Name, &tn.Plan, &tn.Isolation,
			&tn.Status, &created, &updated, &purge, &deleted, &tn.DeletedBy, &p.Name, &p.RatePerSec, &p.Burst, &p.MaxInflight, &p.Weight, &p.MaxRecords, &p.MaxBytes)
		if err != nil {
			return wrap(err, "tenant %s", tid)
		}
		if tn.Isolation != iso {
			// Deleted and created again with the other isolation since
			// the route was read: the key read is not this tenant's.
			return fmt.Errorf("tenant %s: %w", tid, store.ErrNotFound)
		}
		tn.CreatedAt, tn.UpdatedAt = fromMicros(created), fromMicros(updated)
		tn.PurgeAt, tn.DeletedAt = fromNullMicros(purge), fromNullMicros(deleted)
		l.Tenant, l.Plan = tn, &p
		if iso == tenant.Silo {
			return nil
		}
		return getKey(c)
	})
	if err != nil {
		return nil, err
	}
	return &l, nil
}
