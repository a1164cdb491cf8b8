package storetest

import (
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// testKeyLookup covers Store.LookupAPIKey: it returns the key with its
// tenant's current row and plan, for pooled and silo tenants, and finds
// only the keys of the tenant it is given.
func (h *harness) testKeyLookup(t *testing.T) {
	t.Parallel()
	e := h.setup(t)
	ctx := e.ctx
	// One tenant of each isolation, each with a key of its own and a key
	// under an id every tenant uses, the second one revoked.
	type keyed struct {
		tn          *store.Tenant
		own, shared *store.APIKey
	}
	var tenants []keyed
	for _, iso := range isolations {
		tn := e.tenant(iso)
		sfx := string(tn.ID[:8])
		k := keyed{
			tn:     tn,
			own:    &store.APIKey{ID: store.APIKeyID("own-" + sfx), Name: "own " + sfx, Role: tenant.Admin, Hash: []byte("hash-own-" + sfx), CreatedBy: "op", CreatedAt: base},
			shared: &store.APIKey{ID: "shared", Name: "shared " + sfx, Role: tenant.Viewer, Hash: []byte("hash-shared-" + sfx), CreatedBy: "op", CreatedAt: at(time.Second)},
		}
		e.in(tn.ID, func(tx store.Tx) error {
			errIs(t, "CreateAPIKey", tx.CreateAPIKey(ctx, k.own), nil)
			errIs(t, "CreateAPIKey", tx.CreateAPIKey(ctx, k.shared), nil)
			errIs(t, "RevokeAPIKey", tx.RevokeAPIKey(ctx, k.shared.ID, at(time.Hour)), nil)
			return nil
		})
		k.shared.RevokedAt = ptr(at(time.Hour))
		tenants = append(tenants, k)
	}
	plan := func(name string) *tenant.Plan {
		t.Helper()
		var p *tenant.Plan
		e.readPlatform(func(tx store.PlatformTx) (err error) {
			p, err = tx.GetPlan(ctx, name)
			return err
		})
		return p
	}
	free := plan(tenant.DefaultPlan)

	for _, k := range tenants {
		name := isoName(k.tn.Isolation)
		for _, key := range []*store.APIKey{k.own, k.shared} {
			l, err := e.s.LookupAPIKey(ctx, k.tn.ID, key.ID)
			if errIs(t, name+": LookupAPIKey("+string(key.ID)+")", err, nil) {
				diff(t, name+": LookupAPIKey("+string(key.ID)+")", &store.KeyLookup{Key: key, Tenant: k.tn, Plan: free}, l)
			}
		}
		_, err := e.s.LookupAPIKey(ctx, k.tn.ID, "no-such-key")
		errIs(t, name+": LookupAPIKey(unknown key)", err, store.ErrNotFound)
		// Every other tenant's own key is unknown here, whatever the
		// isolations: the lookup is confined to its tenant's keys.
		for _, other := range tenants {
			if other.tn.ID == k.tn.ID {
				continue
			}
			_, err := e.s.LookupAPIKey(ctx, k.tn.ID, other.own.ID)
			errIs(t, name+": LookupAPIKey("+isoName(other.tn.Isolation)+" tenant's key)", err, store.ErrNotFound)
		}
	}
	for _, id := range []tenant.ID{tenant.ID(uuid.NewString()), "not-a-uuid"} {
		_, err := e.s.LookupAPIKey(ctx, id, "shared")
		errIs(t, "LookupAPIKey(unknown tenant "+string(id)+")", err, store.ErrNotFound)
	}

	// The tenant's row and plan are read now, not remembered: a suspended
	// tenant on another plan is returned as it is.
	for _, k := range tenants {
		name := isoName(k.tn.Isolation)
		var updated *store.Tenant
		e.platform(func(tx store.PlatformTx) (err error) {
			updated, err = tx.UpdateTenant(ctx, &store.UpdateTenantParams{ID: k.tn.ID, Plan: ptr("pro"),
				Status: ptr(tenant.Suspended), UpdatedAt: at(2 * time.Hour)})
			return err
		})
		l, err := e.s.LookupAPIKey(ctx, k.tn.ID, k.own.ID)
		if errIs(t, name+": LookupAPIKey after UpdateTenant", err, nil) {
			diff(t, name+": LookupAPIKey after UpdateTenant", &store.KeyLookup{Key: k.own, Tenant: updated, Plan: plan("pro")}, l)
		}
		if err := e.s.DeleteTenant(ctx, k.tn.ID, nil); err != nil {
			t.Fatalf("DeleteTenant = %v", err)
		}
		_, err = e.s.LookupAPIKey(ctx, k.tn.ID, k.own.ID)
		errIs(t, name+": LookupAPIKey after DeleteTenant", err, store.ErrNotFound)
	}
	// A tenant created again under a deleted one's id, with the other
	// isolation, has none of its keys.
	for _, k := range tenants {
		p := createParams(tenant.Pooled)
		if k.tn.Isolation == tenant.Pooled {
			p.Isolation = tenant.Silo
		}
		p.ID = k.tn.ID
		if _, err := e.s.CreateTenant(ctx, p, nil, nil); err != nil {
			t.Fatalf("CreateTenant again = %v", err)
		}
		_, err := e.s.LookupAPIKey(ctx, k.tn.ID, k.own.ID)
		errIs(t, isoName(k.tn.Isolation)+": LookupAPIKey after the id is reused", err, store.ErrNotFound)
	}
}
