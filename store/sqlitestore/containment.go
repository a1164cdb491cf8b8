package sqlitestore

import (
	"context"
	"database/sql"
	"strconv"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
)

const (
	containmentColumns    = `id, kind, subject, reason, count, created_by, created_at, expires_at, lifted_at, lifted_by`
	sqlCreateContainment  = `INSERT INTO containments (tenant_id, ` + containmentColumns + `) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlListContainments   = `SELECT ` + containmentColumns + ` FROM containments WHERE tenant_id = ? ORDER BY created_at DESC, id DESC`
	sqlActiveContainments = `SELECT ` + containmentColumns + ` FROM containments WHERE tenant_id = ? AND lifted_at IS NULL
		AND (expires_at IS NULL OR expires_at > ?) ORDER BY created_at DESC, id DESC`
	sqlLiftContainment = `UPDATE containments SET lifted_at = ?, lifted_by = ? WHERE tenant_id = ? AND id = ? AND lifted_at IS NULL
		RETURNING ` + containmentColumns
)

func (t *tx) CreateContainment(ctx context.Context, c *store.Containment) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlCreateContainment, t.tid, string(c.ID), c.Kind, c.Subject, c.Reason, c.Count, c.CreatedBy,
		c.CreatedAt.UnixMicro(), nullMicros(c.ExpiresAt), nullMicros(c.LiftedAt), c.LiftedBy)
	return wrap(err, "create containment %s", c.ID)
}

func scanContainment(r scanner) (*store.Containment, error) {
	var c store.Containment
	var created int64
	var expires, lifted sql.NullInt64
	if err := r.Scan(&c.ID, &c.Kind, &c.Subject, &c.Reason, &c.Count, &c.CreatedBy, &created, &expires, &lifted, &c.LiftedBy); err != nil {
		return nil, err
	}
	c.CreatedAt, c.ExpiresAt, c.LiftedAt = fromMicros(created), fromNullMicros(expires), fromNullMicros(lifted)
	return &c, nil
}

func (t *tx) ListContainments(ctx context.Context, activeAt time.Time) ([]*store.Containment, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	var rows *sql.Rows
	if activeAt.IsZero() {
		rows, err = t.c.query(ctx, sqlListContainments, t.tid)
	} else {
		rows, err = t.c.query(ctx, sqlActiveContainments, t.tid, activeAt.UnixMicro())
	}
	return collect(rows, err, scanContainment, "list containments")
}

func (t *tx) LiftContainment(ctx context.Context, id store.ContainmentID, by string, at time.Time) (*store.Containment, error) {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return nil, err
	}
	c, err := scanContainment(t.c.queryRow(ctx, sqlLiftContainment, at.UnixMicro(), by, t.tid, string(id)))
	return c, wrap(err, "lift containment %s", id)
}

// sqlUnliftedContainments reads a tenant's containments for LookupAPIKey.
var sqlUnliftedContainments = `SELECT ` + containmentColumns + ` FROM containments WHERE tenant_id = ? AND lifted_at IS NULL
		ORDER BY created_at DESC, id DESC LIMIT ` + strconv.Itoa(store.MaxLookupContainments)
