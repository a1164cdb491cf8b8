package storetest

import (
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// sharedIssuer is an identity provider every tenant of the isolation tests
// federates with, each linking the same subject to a user of its own.
const sharedIssuer = "https://shared-idp.example"

// oidcConfig returns a federation whose every field is named with sfx.
func oidcConfig(sfx string) *store.OIDCConfig {
	return &store.OIDCConfig{Issuer: "https://idp-" + sfx + ".example", ClientID: "client-" + sfx,
		SealedSecret: []byte("secret-" + sfx), DefaultRole: tenant.Member, JIT: true, CreatedAt: base, UpdatedAt: base}
}

func (h *harness) testOIDC(t *testing.T, iso tenant.Isolation) {
	setup := func(t *testing.T) (*env, *store.Tenant) {
		t.Parallel()
		e := h.setup(t)
		return e, e.tenant(iso)
	}

	t.Run("OIDCConfig", func(t *testing.T) {
		e, tn := setup(t)
		e.in(tn.ID, func(tx store.Tx) error {
			_, err := tx.GetOIDCConfig(e.ctx)
			errIs(t, "GetOIDCConfig(none)", err, store.ErrNotFound)
			errIs(t, "DeleteOIDCConfig(none)", tx.DeleteOIDCConfig(e.ctx), store.ErrNotFound)
			errIs(t, "PutOIDCConfig", tx.PutOIDCConfig(e.ctx, oidcConfig("x")), nil)
			return nil
		})
		e.read(tn.ID, func(tx store.Tx) error {
			c, err := tx.GetOIDCConfig(e.ctx)
			if errIs(t, "GetOIDCConfig", err, nil) {
				diff(t, "GetOIDCConfig", oidcConfig("x"), c)
			}
			errIs(t, "PutOIDCConfig(read-only)", tx.PutOIDCConfig(e.ctx, oidcConfig("y")), store.ErrReadOnly)
			errIs(t, "DeleteOIDCConfig(read-only)", tx.DeleteOIDCConfig(e.ctx), store.ErrReadOnly)
			errIs(t, "CreateIdentityLink(read-only)", tx.CreateIdentityLink(e.ctx, &store.IdentityLink{Issuer: "i", Subject: "s",
				UserID: "u", CreatedAt: base}), store.ErrReadOnly)
			return nil
		})
		// Replacing keeps CreatedAt and changes everything else.
		repl := oidcConfig("y")
		repl.JIT, repl.DefaultRole = false, tenant.Viewer
		repl.CreatedAt, repl.UpdatedAt = at(time.Hour), at(time.Hour)
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "PutOIDCConfig(replace)", tx.PutOIDCConfig(e.ctx, repl), nil)
			return nil
		})
		want := *repl
		want.CreatedAt = base
		e.in(tn.ID, func(tx store.Tx) error {
			c, err := tx.GetOIDCConfig(e.ctx)
			if errIs(t, "GetOIDCConfig(replaced)", err, nil) {
				diff(t, "GetOIDCConfig(replaced)", &want, c)
			}
			errIs(t, "DeleteOIDCConfig", tx.DeleteOIDCConfig(e.ctx), nil)
			_, err = tx.GetOIDCConfig(e.ctx)
			errIs(t, "GetOIDCConfig(deleted)", err, store.ErrNotFound)
			return nil
		})
	})

	t.Run("IdentityLinks", func(t *testing.T) {
		e, tn := setup(t)
		link := &store.IdentityLink{Issuer: "https://idp.example", Subject: "248289761001", UserID: "u1", CreatedAt: base}
		e.in(tn.ID, func(tx store.Tx) error {
			ctx := e.ctx
			errIs(t, "CreateIdentityLink(no user)", tx.CreateIdentityLink(ctx, link), store.ErrNotFound)
			for _, id := range []store.UserID{"u1", "u2"} {
				errIs(t, "CreateUser", tx.CreateUser(ctx, &store.User{ID: id, Email: string(id) + "@example.com", PasswordHash: "h",
					Role: tenant.Member, CreatedAt: base, UpdatedAt: base}), nil)
			}
			errIs(t, "CreateIdentityLink", tx.CreateIdentityLink(ctx, link), nil)
			again := *link
			again.UserID = "u2"
			errIs(t, "CreateIdentityLink(linked identity)", tx.CreateIdentityLink(ctx, &again), store.ErrConflict)
			// The same subject at another issuer is another identity, and
			// subjects compare exactly.
			for _, other := range []store.IdentityLink{
				{Issuer: "https://other.example", Subject: link.Subject, UserID: "u2", CreatedAt: base},
				{Issuer: link.Issuer, Subject: "248289761001 ", UserID: "u2", CreatedAt: base},
				{Issuer: link.Issuer + "/", Subject: link.Subject, UserID: "u2", CreatedAt: base},
			} {
				errIs(t, "CreateIdentityLink("+other.Issuer+", "+other.Subject+")", tx.CreateIdentityLink(ctx, &other), nil)
			}
			return nil
		})
		e.read(tn.ID, func(tx store.Tx) error {
			l, err := tx.GetIdentityLink(e.ctx, link.Issuer, link.Subject)
			if errIs(t, "GetIdentityLink", err, nil) {
				diff(t, "GetIdentityLink", link, l)
			}
			_, err = tx.GetIdentityLink(e.ctx, link.Issuer, "unknown")
			errIs(t, "GetIdentityLink(unknown)", err, store.ErrNotFound)
			return nil
		})
		// Deleting a user deletes its links; its identity is free again.
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "DeleteUser", tx.DeleteUser(e.ctx, "u1"), nil)
			_, err := tx.GetIdentityLink(e.ctx, link.Issuer, link.Subject)
			errIs(t, "GetIdentityLink(deleted user)", err, store.ErrNotFound)
			relink := *link
			relink.UserID = "u2"
			errIs(t, "CreateIdentityLink(after delete)", tx.CreateIdentityLink(e.ctx, &relink), nil)
			return nil
		})
	})
}
