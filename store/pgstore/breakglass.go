package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
)

const (
	breakGlassColumns   = `id, reason, actor, created_at, expires_at, ended_at, ended_by`
	sqlCreateBreakGlass = `INSERT INTO break_glass (tenant_id, id, reason, actor, created_at, expires_at, ended_at, ended_by)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING`
	sqlListBreakGlass = `SELECT ` + breakGlassColumns + ` FROM break_glass WHERE tenant_id = $1
		ORDER BY created_at DESC, id DESC`
	sqlActiveBreakGlass = `SELECT ` + breakGlassColumns + ` FROM break_glass
		WHERE tenant_id = $1 AND ended_at IS NULL AND expires_at > $2 ORDER BY created_at DESC, id DESC`
	sqlEndBreakGlass = `UPDATE break_glass SET ended_at = $3, ended_by = $4
		WHERE tenant_id = $1 AND id = $2 AND ended_at IS NULL AND expires_at > $3
		RETURNING ` + breakGlassColumns
)

func scanBreakGlass(r scanner) (*store.BreakGlass, error) {
	var g store.BreakGlass
	if err := r.Scan(&g.ID, &g.Reason, &g.Actor, &g.CreatedAt, &g.ExpiresAt, &g.EndedAt, &g.EndedBy); err != nil {
		return nil, err
	}
	g.CreatedAt, g.ExpiresAt = g.CreatedAt.UTC(), g.ExpiresAt.UTC()
	if g.EndedAt != nil {
		e := g.EndedAt.UTC()
		g.EndedAt = &e
	}
	return &g, nil
}

func (t *tx) CreateBreakGlass(ctx context.Context, g *store.BreakGlass) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	tag, err := t.q.exec(ctx, sqlCreateBreakGlass, t.tid.arg, string(g.ID), g.Reason, g.Actor, g.CreatedAt, g.ExpiresAt, g.EndedAt, g.EndedBy)
	if err != nil {
		return wrap(err, "create break-glass grant %s", g.ID)
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("create break-glass grant %s: id is taken: %w", g.ID, store.ErrConflict)
	}
	return nil
}

func (t *tx) listBreakGlass(ctx context.Context, what, query string, args ...any) ([]*store.BreakGlass, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rows, err := t.q.query(ctx, query, args...)
	if err != nil {
		return nil, wrap(err, "%s", what)
	}
	defer rows.Close()
	var gs []*store.BreakGlass
	for rows.Next() {
		g, err := scanBreakGlass(rows)
		if err != nil {
			return nil, wrap(err, "%s", what)
		}
		gs = append(gs, g)
	}
	return gs, wrap(rows.Err(), "%s", what)
}

func (t *tx) ListBreakGlass(ctx context.Context) ([]*store.BreakGlass, error) {
	return t.listBreakGlass(ctx, "list break-glass grants", sqlListBreakGlass, t.tid.arg)
}

func (t *tx) ActiveBreakGlass(ctx context.Context, at time.Time) ([]*store.BreakGlass, error) {
	return t.listBreakGlass(ctx, "list active break-glass grants", sqlActiveBreakGlass, t.tid.arg, at)
}

func (t *tx) EndBreakGlass(ctx context.Context, id store.BreakGlassID, by string, at time.Time) (*store.BreakGlass, error) {
	unlock, err := t.begin(true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	g, err := scanBreakGlass(t.q.queryRow(ctx, sqlEndBreakGlass, t.tid.arg, string(id), at, by))
	return g, wrap(err, "end break-glass grant %s", id)
}
