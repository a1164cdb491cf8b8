package storetest

import (
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
)

// testBreakGlass covers a tenant's break-glass grants: stored and listed
// newest first, active ones by time, ended once, read-only transactions
// refused, and each tenant seeing only its own — for pooled and silo
// tenants.
func (h *harness) testBreakGlass(t *testing.T) {
	t.Parallel()
	e := h.setup(t)
	ctx := e.ctx
	for _, iso := range isolations {
		a, b := e.tenant(iso), e.tenant(iso)
		name := isoName(iso)
		g1 := &store.BreakGlass{ID: "g1", Reason: "incident 1", Actor: "operator", CreatedAt: base, ExpiresAt: at(time.Hour)}
		g2 := &store.BreakGlass{ID: "g2", Reason: "incident 2", Actor: "operator", CreatedAt: at(time.Minute), ExpiresAt: at(30 * time.Minute)}
		e.in(a.ID, func(tx store.Tx) error {
			errIs(t, name+": CreateBreakGlass", tx.CreateBreakGlass(ctx, g1), nil)
			errIs(t, name+": CreateBreakGlass", tx.CreateBreakGlass(ctx, g2), nil)
			dup := *g1
			dup.Reason = "again"
			errIs(t, name+": CreateBreakGlass(same id)", tx.CreateBreakGlass(ctx, &dup), store.ErrConflict)
			return nil
		})
		e.read(a.ID, func(tx store.Tx) error {
			gs, err := tx.ListBreakGlass(ctx)
			if errIs(t, name+": ListBreakGlass", err, nil) {
				diff(t, name+": ListBreakGlass", []*store.BreakGlass{g2, g1}, gs)
			}
			for _, c := range []struct {
				at   time.Time
				want []*store.BreakGlass
			}{
				{at(2 * time.Minute), []*store.BreakGlass{g2, g1}},
				{at(30 * time.Minute), []*store.BreakGlass{g1}}, // g2 expires at that instant
				{at(time.Hour), nil},
			} {
				gs, err := tx.ActiveBreakGlass(ctx, c.at)
				if errIs(t, name+": ActiveBreakGlass", err, nil) {
					diff(t, name+": ActiveBreakGlass at "+c.at.Sub(base).String(), c.want, gs)
				}
			}
			errIs(t, name+": CreateBreakGlass(read-only)", tx.CreateBreakGlass(ctx, &store.BreakGlass{ID: "ro", Reason: "r", Actor: "o",
				CreatedAt: base, ExpiresAt: at(time.Hour)}), store.ErrReadOnly)
			_, err = tx.EndBreakGlass(ctx, "g1", "operator", at(time.Minute))
			errIs(t, name+": EndBreakGlass(read-only)", err, store.ErrReadOnly)
			return nil
		})
		// Tenant B sees none of A's grants and cannot end them.
		e.in(b.ID, func(tx store.Tx) error {
			gs, err := tx.ListBreakGlass(ctx)
			if errIs(t, name+": B ListBreakGlass", err, nil) && len(gs) != 0 {
				t.Errorf("%s: tenant B lists %d grants of tenant A", name, len(gs))
			}
			gs, err = tx.ActiveBreakGlass(ctx, at(2*time.Minute))
			if errIs(t, name+": B ActiveBreakGlass", err, nil) && len(gs) != 0 {
				t.Errorf("%s: tenant B has %d active grants of tenant A", name, len(gs))
			}
			_, err = tx.EndBreakGlass(ctx, "g1", "operator", at(2*time.Minute))
			errIs(t, name+": B EndBreakGlass(A's grant)", err, store.ErrNotFound)
			return nil
		})
		e.in(a.ID, func(tx store.Tx) error {
			// An expired grant cannot be ended; an unknown one neither.
			_, err := tx.EndBreakGlass(ctx, "g2", "operator", at(31*time.Minute))
			errIs(t, name+": EndBreakGlass(expired)", err, store.ErrNotFound)
			_, err = tx.EndBreakGlass(ctx, "nope", "operator", at(2*time.Minute))
			errIs(t, name+": EndBreakGlass(unknown)", err, store.ErrNotFound)
			ended, err := tx.EndBreakGlass(ctx, "g1", "operator:2", at(2*time.Minute))
			want := *g1
			want.EndedAt, want.EndedBy = ptr(at(2*time.Minute)), "operator:2"
			if errIs(t, name+": EndBreakGlass", err, nil) {
				diff(t, name+": EndBreakGlass", &want, ended)
			}
			_, err = tx.EndBreakGlass(ctx, "g1", "operator", at(3*time.Minute))
			errIs(t, name+": EndBreakGlass(twice)", err, store.ErrNotFound)
			gs, err := tx.ActiveBreakGlass(ctx, at(3*time.Minute))
			if errIs(t, name+": ActiveBreakGlass after end", err, nil) {
				diff(t, name+": ActiveBreakGlass after g1 ended", []*store.BreakGlass{g2}, gs)
			}
			return nil
		})
	}
}
