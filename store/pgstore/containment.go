package pgstore

import (
	"context"
	"fmt"
	"strconv"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
)

const (
	containmentColumns   = `id, kind, subject, reason, count, created_by, created_at, expires_at, lifted_at, lifted_by`
	sqlCreateContainment = `INSERT INTO containments (tenant_id, ` + containmentColumns + `)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11) ON CONFLICT DO NOTHING`
	sqlListContainments   = `SELECT ` + containmentColumns + ` FROM containments WHERE tenant_id = $1 ORDER BY created_at DESC, id DESC`
	sqlActiveContainments = `SELECT ` + containmentColumns + ` FROM containments WHERE tenant_id = $1 AND lifted_at IS NULL
		AND (expires_at IS NULL OR expires_at > $2) ORDER BY created_at DESC, id DESC`
	sqlLiftContainment = `UPDATE containments SET lifted_at = $3, lifted_by = $4 WHERE tenant_id = $1 AND id = $2 AND lifted_at IS NULL
		RETURNING ` + containmentColumns
)

func (t *tx) CreateContainment(ctx context.Context, c *store.Containment) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	tag, err := t.q.exec(ctx, sqlCreateContainment, t.tid.arg, string(c.ID), c.Kind, c.Subject, c.Reason, c.Count, c.CreatedBy,
		c.CreatedAt, c.ExpiresAt, c.LiftedAt, c.LiftedBy)
	if err != nil {
		return wrap(err, "create containment %s", c.ID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("create containment %s: id is taken: %w", c.ID, store.ErrConflict)
	}
	return nil
}

func scanContainment(r scanner) (*store.Containment, error) {
	var c store.Containment
	if err := r.Scan(&c.ID, &c.Kind, &c.Subject, &c.Reason, &c.Count, &c.CreatedBy, &c.CreatedAt, &c.ExpiresAt, &c.LiftedAt, &c.LiftedBy); err != nil {
		return nil, err
	}
	c.CreatedAt = c.CreatedAt.UTC()
	for _, p := range []*time.Time{c.ExpiresAt, c.LiftedAt} {
		if p != nil {
			*p = p.UTC()
		}
	}
	return &c, nil
}

func (t *tx) ListContainments(ctx context.Context, activeAt time.Time) ([]*store.Containment, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	q, args := sqlListContainments, []any{t.tid.arg}
	if !activeAt.IsZero() {
		q, args = sqlActiveContainments, append(args, activeAt)
	}
	rows, err := t.q.query(ctx, q, args...)
	if err != nil {
		return nil, wrap(err, "list containments")
	}
	defer rows.Close()
	var cs []*store.Containment
	for rows.Next() {
		c, err := scanContainment(rows)
		if err != nil {
			return nil, wrap(err, "list containments")
		}
		cs = append(cs, c)
	}
	return cs, wrap(rows.Err(), "list containments")
}

func (t *tx) LiftContainment(ctx context.Context, id store.ContainmentID, by string, at time.Time) (*store.Containment, error) {
	unlock, err := t.begin(true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := scanContainment(t.q.queryRow(ctx, sqlLiftContainment, t.tid.arg, string(id), at, by))
	if err != nil {
		return nil, wrap(err, "lift containment %s", id)
	}
	return c, nil
}

// sqlUnliftedContainments reads a tenant's containments for LookupAPIKey.
var sqlUnliftedContainments = `SELECT ` + containmentColumns + ` FROM containments WHERE tenant_id = $1 AND lifted_at IS NULL
	ORDER BY created_at DESC, id DESC LIMIT ` + strconv.Itoa(store.MaxLookupContainments)
