package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
)

const (
	sqlPutOIDCConfig = `INSERT INTO oidc_configs (tenant_id, issuer, client_id, client_secret, default_role, jit, created_at, updated_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8)
		ON CONFLICT (tenant_id) DO UPDATE SET issuer = excluded.issuer, client_id = excluded.client_id,
		client_secret = excluded.client_secret, default_role = excluded.default_role, jit = excluded.jit,
		updated_at = excluded.updated_at`
	sqlGetOIDCConfig = `SELECT issuer, client_id, client_secret, default_role, jit, created_at, updated_at
		FROM oidc_configs WHERE tenant_id = $1`
	sqlDeleteOIDCConfig = `DELETE FROM oidc_configs WHERE tenant_id = $1`
	// sqlCreateLink inserts the link if its user exists and the identity
	// is not linked yet, and reports both: a conflict must not raise an
	// error, which would abort the transaction.
	sqlCreateLink = `WITH u AS (SELECT 1 FROM users WHERE tenant_id = $1::uuid AND id = $4::text),
		ins AS (
			INSERT INTO identity_links (tenant_id, issuer, subject, user_id, created_at)
			SELECT $1::uuid, $2::text, $3::text, $4::text, $5::timestamptz WHERE EXISTS (SELECT 1 FROM u)
			ON CONFLICT DO NOTHING RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM u), EXISTS (SELECT 1 FROM ins)`
	sqlGetLink = `SELECT issuer, subject, user_id, created_at FROM identity_links
		WHERE tenant_id = $1 AND issuer = $2 AND subject = $3`
)

func (t *tx) PutOIDCConfig(ctx context.Context, c *store.OIDCConfig) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = t.q.exec(ctx, sqlPutOIDCConfig, t.tid.arg, c.Issuer, c.ClientID, c.SealedSecret, string(c.DefaultRole), c.JIT,
		c.CreatedAt, c.UpdatedAt)
	return wrap(err, "put oidc config")
}

func (t *tx) GetOIDCConfig(ctx context.Context) (*store.OIDCConfig, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var c store.OIDCConfig
	err = t.q.queryRow(ctx, sqlGetOIDCConfig, t.tid.arg).Scan(&c.Issuer, &c.ClientID, &c.SealedSecret, &c.DefaultRole, &c.JIT,
		&c.CreatedAt, &c.UpdatedAt)
	if err != nil {
		return nil, wrap(err, "get oidc config")
	}
	c.CreatedAt, c.UpdatedAt = c.CreatedAt.UTC(), c.UpdatedAt.UTC()
	return &c, nil
}

func (t *tx) DeleteOIDCConfig(ctx context.Context) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	tag, err := t.q.exec(ctx, sqlDeleteOIDCConfig, t.tid.arg)
	if err != nil {
		return wrap(err, "delete oidc config")
	}
	if tag.RowsAffected() == 0 {
		return fmt.Errorf("delete oidc config: %w", store.ErrNotFound)
	}
	return nil
}

func (t *tx) CreateIdentityLink(ctx context.Context, l *store.IdentityLink) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	var user, inserted bool
	err = t.q.queryRow(ctx, sqlCreateLink, t.tid.arg, l.Issuer, l.Subject, string(l.UserID), l.CreatedAt).Scan(&user, &inserted)
	switch {
	case err != nil:
		return wrap(err, "link identity to user %s", l.UserID)
	case !user:
		return fmt.Errorf("link identity to user %s: no such user: %w", l.UserID, store.ErrNotFound)
	case !inserted:
		return fmt.Errorf("link identity to user %s: the identity is linked already: %w", l.UserID, store.ErrConflict)
	}
	return nil
}

func (t *tx) GetIdentityLink(ctx context.Context, issuer, subject string) (*store.IdentityLink, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var l store.IdentityLink
	var created time.Time
	if err := t.q.queryRow(ctx, sqlGetLink, t.tid.arg, issuer, subject).Scan(&l.Issuer, &l.Subject, &l.UserID, &created); err != nil {
		return nil, wrap(err, "get identity link")
	}
	l.CreatedAt = created.UTC()
	return &l, nil
}
