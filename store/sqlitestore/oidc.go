package sqlitestore

import (
	"context"
	"fmt"

	"github.com/bulkheadhq/bulkhead/store"
)

const (
	sqlPutOIDCConfig = `INSERT INTO oidc_configs (tenant_id, issuer, client_id, client_secret, default_role, jit, created_at, updated_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id) DO UPDATE SET issuer = excluded.issuer, client_id = excluded.client_id,
		client_secret = excluded.client_secret, default_role = excluded.default_role, jit = excluded.jit,
		updated_at = excluded.updated_at`
	sqlGetOIDCConfig = `SELECT issuer, client_id, client_secret, default_role, jit, created_at, updated_at
		FROM oidc_configs WHERE tenant_id = ?`
	sqlDeleteOIDCConfig = `DELETE FROM oidc_configs WHERE tenant_id = ?`
	// sqlCreateLink inserts nothing when the user does not exist, which
	// CreateIdentityLink reports as ErrNotFound.
	sqlCreateLink = `INSERT INTO identity_links (tenant_id, issuer, subject, user_id, created_at)
		SELECT ?1, ?2, ?3, ?4, ?5 WHERE EXISTS (SELECT 1 FROM users WHERE tenant_id = ?1 AND id = ?4)`
	sqlGetLink = `SELECT issuer, subject, user_id, created_at FROM identity_links
		WHERE tenant_id = ? AND issuer = ? AND subject = ?`
	sqlDeleteUserLinks = `DELETE FROM identity_links WHERE tenant_id = ? AND user_id = ?`
)

func (t *tx) PutOIDCConfig(ctx context.Context, c *store.OIDCConfig) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlPutOIDCConfig, t.tid, c.Issuer, c.ClientID, c.SealedSecret, string(c.DefaultRole), c.JIT,
		c.CreatedAt.UnixMicro(), c.UpdatedAt.UnixMicro())
	return wrap(err, "put oidc config")
}

func (t *tx) GetOIDCConfig(ctx context.Context) (*store.OIDCConfig, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	var c store.OIDCConfig
	var created, updated int64
	err = t.c.queryRow(ctx, sqlGetOIDCConfig, t.tid).Scan(&c.Issuer, &c.ClientID, &c.SealedSecret, &c.DefaultRole, &c.JIT,
		&created, &updated)
	if err != nil {
		return nil, wrap(err, "get oidc config")
	}
	c.CreatedAt, c.UpdatedAt = fromMicros(created), fromMicros(updated)
	return &c, nil
}

func (t *tx) DeleteOIDCConfig(ctx context.Context) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	return wrap(mustAffect(t.c.exec(ctx, sqlDeleteOIDCConfig, t.tid)), "delete oidc config")
}

func (t *tx) CreateIdentityLink(ctx context.Context, l *store.IdentityLink) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	res, err := t.c.exec(ctx, sqlCreateLink, t.tid, l.Issuer, l.Subject, string(l.UserID), l.CreatedAt.UnixMicro())
	if err != nil {
		return wrap(err, "link identity to user %s", l.UserID)
	}
	if n, err := res.RowsAffected(); err != nil || n == 0 {
		return fmt.Errorf("link identity to user %s: no such user: %w", l.UserID, store.ErrNotFound)
	}
	return nil
}

func (t *tx) GetIdentityLink(ctx context.Context, issuer, subject string) (*store.IdentityLink, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	var l store.IdentityLink
	var created int64
	if err := t.c.queryRow(ctx, sqlGetLink, t.tid, issuer, subject).Scan(&l.Issuer, &l.Subject, &l.UserID, &created); err != nil {
		return nil, wrap(err, "get identity link")
	}
	l.CreatedAt = fromMicros(created)
	return &l, nil
}
