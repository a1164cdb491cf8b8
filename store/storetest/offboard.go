package storetest

import (
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// testOffboard covers tenant deletions with a grace period: a scheduled
// purge makes the tenant deleting wherever a tenant is read (by id, by
// slug, in listings and with an API key), rescheduling replaces it, the
// purges are listed soonest first, a cancellation restores the status
// asked for and happens once, and read-only transactions are refused.
func (h *harness) testOffboard(t *testing.T) {
	t.Parallel()
	e := h.setup(t)
	ctx := e.ctx
	a, b, c := e.tenant(tenant.Pooled), e.tenant(tenant.Silo), e.tenant(tenant.Pooled)
	key := &store.APIKey{ID: "k", Name: "k", Role: tenant.Admin, Hash: []byte("h"), CreatedBy: "op", CreatedAt: base}
	e.in(a.ID, func(tx store.Tx) error { return tx.CreateAPIKey(ctx, key) })

	deleting := func(tn *store.Tenant, purge, asked time.Time) *store.Tenant {
		w := *tn
		w.Status, w.PurgeAt, w.DeletedAt, w.DeletedBy, w.UpdatedAt = tenant.Deleting, &purge, &asked, "operator", asked
		return &w
	}
	wantA := deleting(a, at(30*24*time.Hour), at(time.Hour))
	e.platform(func(tx store.PlatformTx) error {
		got, err := tx.ScheduleTenantPurge(ctx, &store.ScheduleTenantPurgeParams{ID: a.ID, PurgeAt: at(30 * 24 * time.Hour),
			DeletedBy: "operator", At: at(time.Hour)})
		if errIs(t, "ScheduleTenantPurge", err, nil) {
			diff(t, "ScheduleTenantPurge", wantA, got)
		}
		_, err = tx.ScheduleTenantPurge(ctx, &store.ScheduleTenantPurgeParams{ID: tenant.NewID(), PurgeAt: base, DeletedBy: "operator", At: base})
		errIs(t, "ScheduleTenantPurge(no such tenant)", err, store.ErrNotFound)
		return nil
	})
	e.readPlatform(func(tx store.PlatformTx) error {
		got, err := tx.GetTenant(ctx, a.ID)
		if errIs(t, "GetTenant", err, nil) {
			diff(t, "GetTenant of a deleting tenant", wantA, got)
		}
		got, err = tx.GetTenantBySlug(ctx, a.Slug)
		if errIs(t, "GetTenantBySlug", err, nil) {
			diff(t, "GetTenantBySlug of a deleting tenant", wantA, got)
		}
		all, err := tx.ListTenants(ctx, &store.ListTenantsParams{})
		if errIs(t, "ListTenants", err, nil) {
			for _, tn := range all {
				if tn.ID == a.ID {
					diff(t, "ListTenants: the deleting tenant", wantA, tn)
				} else if tn.Status != tenant.Active || tn.PurgeAt != nil {
					t.Errorf("ListTenants: tenant %s is %s (purge at %v), want active", tn.ID, tn.Status, tn.PurgeAt)
				}
			}
		}
		_, err = tx.ScheduleTenantPurge(ctx, &store.ScheduleTenantPurgeParams{ID: b.ID, PurgeAt: base, DeletedBy: "operator", At: base})
		errIs(t, "ScheduleTenantPurge(read-only)", err, store.ErrReadOnly)
		_, err = tx.CancelTenantPurge(ctx, a.ID, tenant.Active, base)
		errIs(t, "CancelTenantPurge(read-only)", err, store.ErrReadOnly)
		return nil
	})
	if l, err := e.s.LookupAPIKey(ctx, a.ID, key.ID); errIs(t, "LookupAPIKey", err, nil) {
		diff(t, "LookupAPIKey's tenant", wantA, l.Tenant)
	}

	// b is purged sooner than a; rescheduling a moves it before b.
	wantB := deleting(b, at(24*time.Hour), at(2*time.Hour))
	wantA2 := deleting(a, at(12*time.Hour), at(3*time.Hour))
	e.platform(func(tx store.PlatformTx) error {
		_, err := tx.ScheduleTenantPurge(ctx, &store.ScheduleTenantPurgeParams{ID: b.ID, PurgeAt: at(24 * time.Hour), DeletedBy: "operator", At: at(2 * time.Hour)})
		errIs(t, "ScheduleTenantPurge(b)", err, nil)
		ps, err := tx.ListTenantPurges(ctx, 10)
		if errIs(t, "ListTenantPurges", err, nil) {
			diff(t, "ListTenantPurges", []*store.Tenant{wantB, wantA}, ps)
		}
		got, err := tx.ScheduleTenantPurge(ctx, &store.ScheduleTenantPurgeParams{ID: a.ID, PurgeAt: at(12 * time.Hour), DeletedBy: "operator", At: at(3 * time.Hour)})
		if errIs(t, "ScheduleTenantPurge(again)", err, nil) {
			diff(t, "ScheduleTenantPurge(again)", wantA2, got)
		}
		ps, err = tx.ListTenantPurges(ctx, 1)
		if errIs(t, "ListTenantPurges(limit 1)", err, nil) {
			diff(t, "ListTenantPurges(limit 1)", []*store.Tenant{wantA2}, ps)
		}
		// Renaming a deleting tenant leaves it deleting.
		renamed, err := tx.UpdateTenant(ctx, &store.UpdateTenantParams{ID: b.ID, Name: ptr("Renamed"), UpdatedAt: at(4 * time.Hour)})
		if errIs(t, "UpdateTenant(deleting)", err, nil) && (renamed.Status != tenant.Deleting || renamed.PurgeAt == nil) {
			t.Errorf("UpdateTenant of a deleting tenant = %s (purge at %v), want it deleting still", renamed.Status, renamed.PurgeAt)
		}
		return nil
	})

	// Cancelling restores the status asked for, once.
	e.platform(func(tx store.PlatformTx) error {
		got, err := tx.CancelTenantPurge(ctx, a.ID, tenant.Active, at(5*time.Hour))
		want := *a
		want.UpdatedAt = at(5 * time.Hour)
		if errIs(t, "CancelTenantPurge", err, nil) {
			diff(t, "CancelTenantPurge", &want, got)
		}
		_, err = tx.CancelTenantPurge(ctx, a.ID, tenant.Active, at(6*time.Hour))
		errIs(t, "CancelTenantPurge(again)", err, store.ErrNotFound)
		_, err = tx.CancelTenantPurge(ctx, c.ID, tenant.Active, at(6*time.Hour))
		errIs(t, "CancelTenantPurge(not deleting)", err, store.ErrNotFound)
		// b's purge is due at 24h: from then on it is not cancelled.
		_, err = tx.CancelTenantPurge(ctx, b.ID, tenant.Active, at(24*time.Hour))
		errIs(t, "CancelTenantPurge(due)", err, store.ErrNotFound)
		got, err = tx.CancelTenantPurge(ctx, b.ID, tenant.Suspended, at(6*time.Hour))
		if errIs(t, "CancelTenantPurge(suspended)", err, nil) && (got.Status != tenant.Suspended || got.PurgeAt != nil || got.DeletedAt != nil || got.DeletedBy != "") {
			t.Errorf("CancelTenantPurge(suspended) = %+v, want suspended without a deletion", got)
		}
		if _, err := tx.CancelTenantPurge(ctx, c.ID, tenant.Deleting, at(6*time.Hour)); err == nil {
			t.Error("CancelTenantPurge(status deleting) succeeded, want an error")
		}
		ps, err := tx.ListTenantPurges(ctx, 0)
		if errIs(t, "ListTenantPurges", err, nil) && len(ps) != 0 {
			t.Errorf("ListTenantPurges after the cancellations = %d tenants, want none", len(ps))
		}
		return nil
	})
}
