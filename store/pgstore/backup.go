package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// ChainState is an audit chain's head and a tenant's record count in a
// snapshot.
type ChainState struct {
	// Tenant is the tenant, or zero for the platform's own chain.
	Tenant    tenant.ID
	Isolation tenant.Isolation
	// AuditSeq and AuditHash are the chain's last entry (0 and nil when
	// empty).
	AuditSeq  int64
	AuditHash []byte
	// Records is how many records the tenant holds; 0 for the platform.
	Records int64
}

// Snapshot is the state of the store in one exported snapshot, for
// pg_dump --snapshot.
type Snapshot struct {
	// ID is the exported snapshot's name.
	ID string
	// Schemas are the store's schemas: bulkhead, bulkhead_keys and every
	// silo tenant's.
	Schemas []string
	// Platform and Tenants are the chains' heads and the record counts
	// the snapshot sees.
	Platform ChainState
	Tenants  []ChainState
	// SchemaVersion is goose's version of the schema.
	SchemaVersion int64
}

// WithSnapshot opens a REPEATABLE READ READ ONLY transaction on
// databaseURL, exports its snapshot, reads the store's schemas, chain
// heads and record counts in it and calls fn, which may run pg_dump
// --snapshot=snap.ID meanwhile: the dump and snap are then one consistent
// state. The role of databaseURL must see every tenant's rows, which
// row-level security forbids even the owner (it is forced): a superuser
// or a role with BYPASSRLS and SELECT on the store's tables.
//
// Schemas of extra that exist (such as the job queue's) are listed in
// snap.Schemas too.
func WithSnapshot(ctx context.Context, databaseURL string, extra []string, fn func(snap *Snapshot) error) error {
	c, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return fmt.Errorf("pgstore: snapshot: %w", interpretError(err))
	}
	defer c.Close(context.Background())
	tx, err := c.BeginTx(ctx, pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly})
	if err != nil {
		return fmt.Errorf("pgstore: snapshot: %w", interpretError(err))
	}
	defer tx.Rollback(context.Background())
	snap := &Snapshot{}
	if err := tx.QueryRow(ctx, "SELECT pg_export_snapshot()").Scan(&snap.ID); err != nil {
		return fmt.Errorf("pgstore: export snapshot: %w", interpretError(err))
	}
	if err := readSnapshot(ctx, tx, snap); err != nil {
		return fmt.Errorf("pgstore: snapshot: %w", interpretError(err))
	}
	for _, name := range extra {
		var exists bool
		if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)`, name).Scan(&exists); err != nil {
			return fmt.Errorf("pgstore: snapshot: %w", interpretError(err))
		}
		if exists {
			snap.Schemas = append(snap.Schemas, name)
		}
	}
	return fn(snap)
}

func readSnapshot(ctx context.Context, tx pgx.Tx, snap *Snapshot) error {
	if err := tx.QueryRow(ctx, `SELECT max(version_id) FROM bulkhead.goose_db_version`).Scan(&snap.SchemaVersion); err != nil {
		return err
	}
	if err := tx.QueryRow(ctx, `SELECT seq, hash FROM bulkhead.platform_audit_log ORDER BY seq DESC LIMIT 1`).
		Scan(&snap.Platform.AuditSeq, &snap.Platform.AuditHash); err != nil && !errors.Is(err, pgx.ErrNoRows) {
		return err
	}
	snap.Schemas = []string{schemaName, "bulkhead_keys"}
	rows, _ := tx.Query(ctx, `SELECT id::text, isolation FROM bulkhead.tenants ORDER BY id`)
	tenants, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (ChainState, error) {
		var st ChainState
		err := r.Scan(&st.Tenant, &st.Isolation)
		return st, err
	})
	if err != nil {
		return err
	}
	pooled, err := readStates(ctx, tx, schemaName)
	if err != nil {
		return err
	}
	for _, st := range tenants {
		states := pooled
		if st.Isolation == tenant.Silo {
			tid, err := parseTenantID(st.Tenant)
			if err != nil {
				return err
			}
			snap.Schemas = append(snap.Schemas, tid.siloSchema())
			if states, err = readStates(ctx, tx, tid.siloSchema()); err != nil {
				return err
			}
		}
		got := states[st.Tenant]
		got.Tenant, got.Isolation = st.Tenant, st.Isolation
		snap.Tenants = append(snap.Tenants, got)
	}
	return nil
}

// readStates reads the chain heads and record counts of every tenant in
// schema, by tenant.
func readStates(ctx context.Context, tx pgx.Tx, schema string) (map[tenant.ID]ChainState, error) {
	out := map[tenant.ID]ChainState{}
	rows, _ := tx.Query(ctx, `SELECT DISTINCT ON (tenant_id) tenant_id::text, seq, hash FROM `+ident(schema, "audit_log")+
		` ORDER BY tenant_id, seq DESC`)
	var id tenant.ID
	var st ChainState
	if _, err := pgx.ForEachRow(rows, []any{&id, &st.AuditSeq, &st.AuditHash}, func() error {
		out[id] = st
		return nil
	}); err != nil {
		return nil, err
	}
	var n int64
	rows, _ = tx.Query(ctx, `SELECT tenant_id::text, count(*) FROM `+ident(schema, "records")+` GROUP BY tenant_id`)
	if _, err := pgx.ForEachRow(rows, []any{&id, &n}, func() error {
		got := out[id]
		got.Records = n
		out[id] = got
		return nil
	}); err != nil {
		return nil, err
	}
	return out, nil
}

// PrepareRestore creates, on the server of superURL, the silo roles of
// silos that do not exist (the roles are cluster-wide, so a dump restored
// on the server it came from finds most of them), each NOLOGIN NOINHERIT
// with appRole a member, as CreateTenant makes them, so that pg_restore
// can give them their schemas' privileges. It returns the roles it
// created, for DropRoles.
func PrepareRestore(ctx context.Context, superURL, appRole string, silos []tenant.ID) ([]string, error) {
	c, err := pgx.Connect(ctx, superURL)
	if err != nil {
		return nil, fmt.Errorf("pgstore: prepare restore: %w", interpretError(err))
	}
	defer c.Close(context.Background())
	var version int
	if err := c.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&version); err != nil {
		return nil, fmt.Errorf("pgstore: prepare restore: %w", interpretError(err))
	}
	var created []string
	for _, id := range silos {
		tid, err := parseTenantID(id)
		if err != nil {
			return created, err
		}
		role := tid.siloRole()
		var exists bool
		if err := c.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1)`, role).Scan(&exists); err != nil {
			return created, fmt.Errorf("pgstore: prepare restore: %w", interpretError(err))
		}
		if exists {
			continue
		}
		if _, err := c.Exec(ctx, "CREATE ROLE "+ident(role)+" NOLOGIN NOINHERIT;\n"+memberSQL(role, ident(appRole), version)); err != nil {
			return created, fmt.Errorf("pgstore: create role for silo tenant %s: %w", id, interpretError(err))
		}
		created = append(created, role)
	}
	return created, nil
}

// DropRoles drops roles (made by PrepareRestore) on the server of
// superURL, after the databases that use them are dropped.
func DropRoles(ctx context.Context, superURL string, roles []string) error {
	if len(roles) == 0 {
		return nil
	}
	c, err := pgx.Connect(ctx, superURL)
	if err != nil {
		return fmt.Errorf("pgstore: drop roles: %w", interpretError(err))
	}
	defer c.Close(context.Background())
	var errs []error
	for _, r := range roles {
		if _, err := c.Exec(ctx, "DROP ROLE IF EXISTS "+ident(r)); err != nil {
			errs = append(errs, fmt.Errorf("pgstore: drop role %s: %w", r, interpretError(err)))
		}
	}
	return errors.Join(errs...)
}

// TryLock takes the session-level advisory lock key on databaseURL's
// server if it is free, and holds it until unlock is called (or the
// connection breaks). ok is false if another session holds it.
func TryLock(ctx context.Context, databaseURL string, key int64) (unlock func(), ok bool, err error) {
	c, err := pgx.Connect(ctx, databaseURL)
	if err != nil {
		return nil, false, fmt.Errorf("pgstore: lock: %w", interpretError(err))
	}
	if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", key).Scan(&ok); err != nil || !ok {
		c.Close(context.Background())
		if err != nil {
			return nil, false, fmt.Errorf("pgstore: lock %s: %w", strconv.FormatInt(key, 16), interpretError(err))
		}
		return nil, false, nil
	}
	// Closing the session releases the lock.
	return func() { c.Close(context.Background()) }, true, nil
}
