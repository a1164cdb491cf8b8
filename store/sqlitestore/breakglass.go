package sqlitestore

import (
	"context"
	"database/sql"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
)

const (
	breakGlassColumns   = `id, reason, actor, created_at, expires_at, ended_at, ended_by`
	sqlCreateBreakGlass = `INSERT INTO break_glass (tenant_id, id, reason, actor, created_at, expires_at, ended_at, ended_by)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)`
	sqlListBreakGlass = `SELECT ` + breakGlassColumns + ` FROM break_glass WHERE tenant_id = ?
		ORDER BY created_at DESC, id DESC`
	sqlActiveBreakGlass = `SELECT ` + breakGlassColumns + ` FROM break_glass
		WHERE tenant_id = ? AND ended_at IS NULL AND expires_at > ? ORDER BY created_at DESC, id DESC`
	sqlEndBreakGlass = `UPDATE break_glass SET ended_at = ?1, ended_by = ?2
		WHERE tenant_id = ?3 AND id = ?4 AND ended_at IS NULL AND expires_at > ?1
		RETURNING ` + breakGlassColumns
)

func scanBreakGlass(r scanner) (*store.BreakGlass, error) {
	var g store.BreakGlass
	var created, expires int64
	var ended sql.NullInt64
	if err := r.Scan(&g.ID, &g.Reason, &g.Actor, &created, &expires, &ended, &g.EndedBy); err != nil {
		return nil, err
	}
	g.CreatedAt, g.ExpiresAt, g.EndedAt = fromMicros(created), fromMicros(expires), fromNullMicros(ended)
	return &g, nil
}

func (t *tx) CreateBreakGlass(ctx context.Context, g *store.BreakGlass) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlCreateBreakGlass, t.tid, string(g.ID), g.Reason, g.Actor, g.CreatedAt.UnixMicro(),
		g.ExpiresAt.UnixMicro(), nullMicros(g.EndedAt), g.EndedBy)
	return wrap(err, "create break-glass grant %s", g.ID)
}

func (t *tx) ListBreakGlass(ctx context.Context) ([]*store.BreakGlass, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	rows, err := t.c.query(ctx, sqlListBreakGlass, t.tid)
	return collect(rows, err, scanBreakGlass, "list break-glass grants")
}

func (t *tx) ActiveBreakGlass(ctx context.Context, at time.Time) ([]*store.BreakGlass, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	rows, err := t.c.query(ctx, sqlActiveBreakGlass, t.tid, at.UnixMicro())
	return collect(rows, err, scanBreakGlass, "list active break-glass grants")
}

func (t *tx) EndBreakGlass(ctx context.Context, id store.BreakGlassID, by string, at time.Time) (*store.BreakGlass, error) {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return nil, err
	}
	g, err := scanBreakGlass(t.c.queryRow(ctx, sqlEndBreakGlass, at.UnixMicro(), by, t.tid, string(id)))
	return g, wrap(err, "end break-glass grant %s", id)
}
