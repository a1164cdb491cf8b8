package storetest

import (
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// testContainments covers the Containments of a Tx: create, list (all and
// in force), lift once, in each isolation, and that another tenant sees
// and lifts none of them.
func (h *harness) testContainments(t *testing.T) {
	t.Parallel()
	e := h.setup(t)
	ctx := e.ctx
	for _, iso := range isolations {
		name := isoName(iso)
		a, b := e.tenant(iso), e.tenant(iso)
		suspended := &store.Containment{ID: "c1", Kind: store.ContainSuspended, Subject: "api_key:k1", Reason: "probes",
			Count: 20, CreatedBy: "system", CreatedAt: at(time.Second)}
		locked := &store.Containment{ID: "c2", Kind: store.ContainLocked, Subject: "user:u1", Reason: "logins",
			Count: 10, CreatedBy: "system", CreatedAt: at(2 * time.Second), ExpiresAt: ptr(at(time.Minute))}
		for _, tn := range []*store.Tenant{a, b} {
			e.in(tn.ID, func(tx store.Tx) error {
				return tx.CreateAPIKey(ctx, &store.APIKey{ID: "k1", Name: "k", Role: tenant.Admin, Hash: []byte("h"), CreatedBy: "op", CreatedAt: base})
			})
		}
		lookup := func(tn *store.Tenant, want []*store.Containment) {
			t.Helper()
			l, err := e.s.LookupAPIKey(ctx, tn.ID, "k1")
			if errIs(t, name+": LookupAPIKey", err, nil) {
				diff(t, name+": LookupAPIKey's containments", want, l.Containments)
			}
		}
		e.in(a.ID, func(tx store.Tx) error {
			errIs(t, name+": CreateContainment", tx.CreateContainment(ctx, suspended), nil)
			errIs(t, name+": CreateContainment", tx.CreateContainment(ctx, locked), nil)
			errIs(t, name+": CreateContainment(taken id)", tx.CreateContainment(ctx, suspended), store.ErrConflict)
			return nil
		})
		e.read(a.ID, func(tx store.Tx) error {
			all, err := tx.ListContainments(ctx, time.Time{})
			if errIs(t, name+": ListContainments", err, nil) {
				diff(t, name+": ListContainments (newest first)", []*store.Containment{locked, suspended}, all)
			}
			active, err := tx.ListContainments(ctx, at(2*time.Minute)) // the lock has expired
			if errIs(t, name+": ListContainments(active)", err, nil) {
				diff(t, name+": ListContainments(active)", []*store.Containment{suspended}, active)
			}
			return nil
		})
		// A key lookup reads the unlifted ones, expired included.
		lookup(a, []*store.Containment{locked, suspended})
		lookup(b, nil)
		// Tenant b sees none of a's, and cannot lift them.
		e.in(b.ID, func(tx store.Tx) error {
			all, err := tx.ListContainments(ctx, time.Time{})
			if errIs(t, name+": ListContainments as another tenant", err, nil) && len(all) != 0 {
				t.Errorf("%s: another tenant lists %d containments, want 0", name, len(all))
			}
			_, err = tx.LiftContainment(ctx, suspended.ID, "user:x", at(time.Hour))
			errIs(t, name+": LiftContainment as another tenant", err, store.ErrNotFound)
			return nil
		})
		e.in(a.ID, func(tx store.Tx) error {
			got, err := tx.LiftContainment(ctx, suspended.ID, "user:admin", at(time.Hour))
			want := *suspended
			want.LiftedAt, want.LiftedBy = ptr(at(time.Hour)), "user:admin"
			if errIs(t, name+": LiftContainment", err, nil) {
				diff(t, name+": LiftContainment", &want, got)
			}
			_, err = tx.LiftContainment(ctx, suspended.ID, "user:admin", at(2*time.Hour))
			errIs(t, name+": LiftContainment again", err, store.ErrNotFound)
			_, err = tx.LiftContainment(ctx, "nope", "user:admin", at(2*time.Hour))
			errIs(t, name+": LiftContainment(unknown)", err, store.ErrNotFound)
			active, err := tx.ListContainments(ctx, at(time.Second*30))
			if errIs(t, name+": ListContainments(active) after lifting", err, nil) {
				diff(t, name+": ListContainments(active) after lifting", []*store.Containment{locked}, active)
			}
			return nil
		})
		lookup(a, []*store.Containment{locked})
		e.read(a.ID, func(tx store.Tx) error {
			_, err := tx.LiftContainment(ctx, locked.ID, "user:admin", at(time.Hour))
			errIs(t, name+": LiftContainment in a read", err, store.ErrReadOnly)
			return nil
		})
	}
}
