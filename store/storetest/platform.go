package storetest

import (
	"cmp"
	"slices"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

func (h *harness) testPlatform(t *testing.T) {
	t.Run("PlansSeeded", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		var want []*tenant.Plan
		for _, p := range tenant.DefaultPlans {
			want = append(want, &p)
		}
		slices.SortFunc(want, func(a, b *tenant.Plan) int { return cmp.Compare(a.Name, b.Name) })
		e.readPlatform(func(tx store.PlatformTx) error {
			got, err := tx.ListPlans(e.ctx)
			if errIs(t, "ListPlans", err, nil) {
				diff(t, "ListPlans", want, got)
			}
			for _, p := range want {
				got, err := tx.GetPlan(e.ctx, p.Name)
				if errIs(t, "GetPlan("+p.Name+")", err, nil) {
					diff(t, "GetPlan("+p.Name+")", p, got)
				}
			}
			_, err = tx.GetPlan(e.ctx, "no-such-plan")
			errIs(t, "GetPlan(no-such-plan)", err, store.ErrNotFound)
			return nil
		})
	})

	t.Run("PutPlan", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		team := &tenant.Plan{Name: "team", RatePerSec: 25.5, Burst: 50, MaxInflight: 8, Weight: 2, MaxRecords: 50_000, MaxBytes: 1 << 30}
		e.platform(func(tx store.PlatformTx) error { return tx.PutPlan(e.ctx, team) })
		e.readPlatform(func(tx store.PlatformTx) error {
			got, err := tx.GetPlan(e.ctx, "team")
			if errIs(t, "GetPlan(team)", err, nil) {
				diff(t, "GetPlan(team)", team, got)
			}
			plans, err := tx.ListPlans(e.ctx)
			if errIs(t, "ListPlans", err, nil) {
				var names []string
				for _, p := range plans {
					names = append(names, p.Name)
				}
				diff(t, "ListPlans names", []string{"enterprise", "free", "pro", "team"}, names)
			}
			return nil
		})
		replaced := &tenant.Plan{Name: "team", RatePerSec: 30, Burst: 60, MaxInflight: 9, Weight: 3, MaxRecords: 60_000, MaxBytes: 2 << 30}
		e.platform(func(tx store.PlatformTx) error { return tx.PutPlan(e.ctx, replaced) })
		e.readPlatform(func(tx store.PlatformTx) error {
			got, err := tx.GetPlan(e.ctx, "team")
			if errIs(t, "GetPlan(team) after replace", err, nil) {
				diff(t, "GetPlan(team) after replace", replaced, got)
			}
			return nil
		})
	})

	t.Run("ReadPlatformIsReadOnly", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		tn := e.tenant(tenant.Pooled)
		e.readPlatform(func(tx store.PlatformTx) error {
			errIs(t, "PutPlan", tx.PutPlan(e.ctx, &tenant.Plan{Name: "ro", RatePerSec: 1, Burst: 1, MaxInflight: 1, Weight: 1}), store.ErrReadOnly)
			_, err := tx.UpdateTenant(e.ctx, &store.UpdateTenantParams{ID: tn.ID, Name: ptr("renamed"), UpdatedAt: at(time.Hour)})
			errIs(t, "UpdateTenant", err, store.ErrReadOnly)
			errIs(t, "PutIdempotency", tx.PutIdempotency(e.ctx, &store.Idempotency{Key: "k", RequestHash: []byte{1}, Response: []byte{2}, CreatedAt: base}), store.ErrReadOnly)
			return nil
		})
		e.readPlatform(func(tx store.PlatformTx) error {
			_, err := tx.GetPlan(e.ctx, "ro")
			errIs(t, "GetPlan(ro)", err, store.ErrNotFound)
			got, err := tx.GetTenant(e.ctx, tn.ID)
			if errIs(t, "GetTenant", err, nil) {
				diff(t, "GetTenant", tn, got)
			}
			_, err = tx.GetIdempotency(e.ctx, "k")
			errIs(t, "GetIdempotency", err, store.ErrNotFound)
			return nil
		})
	})

	for _, iso := range isolations {
		t.Run("CreateAndGet"+isoName(iso), func(t *testing.T) {
			t.Parallel()
			e := h.setup(t)
			p := createParams(iso)
			// A time with nanoseconds in another zone comes back in UTC,
			// truncated to microseconds.
			p.CreatedAt = time.Date(2025, 6, 1, 12, 30, 0, 123456789, time.FixedZone("X", 5*3600+1800))
			created, err := e.s.CreateTenant(e.ctx, p, nil, nil)
			if err != nil {
				t.Fatalf("CreateTenant = %v", err)
			}
			wantTime := p.CreatedAt.Truncate(time.Microsecond).UTC()
			want := &store.Tenant{ID: p.ID, Slug: p.Slug, Name: p.Name, Plan: p.Plan, Isolation: iso,
				Status: tenant.Active, CreatedAt: wantTime, UpdatedAt: wantTime}
			diff(t, "CreateTenant result", want, created)
			e.readPlatform(func(tx store.PlatformTx) error {
				got, err := tx.GetTenant(e.ctx, p.ID)
				if errIs(t, "GetTenant", err, nil) {
					diff(t, "GetTenant", want, got)
					if got.CreatedAt.Location() != time.UTC || got.UpdatedAt.Location() != time.UTC {
						t.Errorf("GetTenant times in %v and %v, want UTC", got.CreatedAt.Location(), got.UpdatedAt.Location())
					}
				}
				got, err = tx.GetTenantBySlug(e.ctx, p.Slug)
				if errIs(t, "GetTenantBySlug", err, nil) {
					diff(t, "GetTenantBySlug", want, got)
				}
				_, err = tx.GetTenant(e.ctx, createParams(iso).ID)
				errIs(t, "GetTenant(unknown)", err, store.ErrNotFound)
				_, err = tx.GetTenantBySlug(e.ctx, "no-such-slug")
				errIs(t, "GetTenantBySlug(unknown)", err, store.ErrNotFound)
				return nil
			})
		})
	}

	// A slug or id is unique across pooled and silo tenants alike.
	for _, first := range isolations {
		for _, second := range isolations {
			t.Run("Conflict"+isoName(first)+isoName(second), func(t *testing.T) {
				t.Parallel()
				e := h.setup(t)
				p := createParams(first)
				if _, err := e.s.CreateTenant(e.ctx, p, nil, nil); err != nil {
					t.Fatalf("CreateTenant = %v", err)
				}
				sameSlug := createParams(second)
				sameSlug.Slug = p.Slug
				_, err := e.s.CreateTenant(e.ctx, sameSlug, nil, nil)
				errIs(t, "CreateTenant(same slug)", err, store.ErrConflict)
				sameID := createParams(second)
				sameID.ID = p.ID
				_, err = e.s.CreateTenant(e.ctx, sameID, nil, nil)
				errIs(t, "CreateTenant(same id)", err, store.ErrConflict)
				e.readPlatform(func(tx store.PlatformTx) error {
					_, err := tx.GetTenant(e.ctx, sameSlug.ID)
					errIs(t, "GetTenant(loser)", err, store.ErrNotFound)
					got, err := tx.GetTenant(e.ctx, p.ID)
					if errIs(t, "GetTenant(winner)", err, nil) && (got.Slug != p.Slug || got.Isolation != first) {
						t.Errorf("GetTenant(winner) = %+v, want slug %s, isolation %s", got, p.Slug, first)
					}
					return nil
				})
			})
		}
	}

	for _, iso := range isolations {
		t.Run("UnknownPlan"+isoName(iso), func(t *testing.T) {
			t.Parallel()
			e := h.setup(t)
			p := createParams(iso)
			p.Plan = "no-such-plan"
			_, err := e.s.CreateTenant(e.ctx, p, nil, nil)
			errIs(t, "CreateTenant(unknown plan)", err, store.ErrNotFound)
			e.readPlatform(func(tx store.PlatformTx) error {
				_, err := tx.GetTenant(e.ctx, p.ID)
				errIs(t, "GetTenant", err, store.ErrNotFound)
				return nil
			})
			// The id and slug are still free.
			p.Plan = "pro"
			if _, err := e.s.CreateTenant(e.ctx, p, nil, nil); err != nil {
				t.Errorf("CreateTenant after failure = %v", err)
			}
		})
	}

	t.Run("ListTenants", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		var want []*store.Tenant
		for i := range 7 {
			p := createParams(isolations[i%2])
			// Pairs share a creation time, so the id breaks ties.
			p.CreatedAt = at(time.Duration(3-i/2) * time.Minute)
			tn, err := e.s.CreateTenant(e.ctx, p, nil, nil)
			if err != nil {
				t.Fatalf("CreateTenant = %v", err)
			}
			want = append(want, tn)
		}
		slices.SortFunc(want, func(a, b *store.Tenant) int {
			return cmp.Or(a.CreatedAt.Compare(b.CreatedAt), cmp.Compare(a.ID, b.ID))
		})
		e.readPlatform(func(tx store.PlatformTx) error {
			got, err := tx.ListTenants(e.ctx, &store.ListTenantsParams{Limit: 100})
			if errIs(t, "ListTenants", err, nil) {
				diff(t, "ListTenants", want, got)
			}
			for _, limit := range []int{1, 2, 3, 7} {
				var all []*store.Tenant
				var after *store.TenantKey
				for range len(want) + 2 {
					page, err := tx.ListTenants(e.ctx, &store.ListTenantsParams{After: after, Limit: limit})
					if !errIs(t, "ListTenants", err, nil) {
						return nil
					}
					if len(page) > limit {
						t.Errorf("ListTenants(limit %d) returned %d tenants", limit, len(page))
					}
					if len(page) == 0 {
						break
					}
					all = append(all, page...)
					last := page[len(page)-1]
					after = &store.TenantKey{CreatedAt: last.CreatedAt, ID: last.ID}
				}
				diff(t, "ListTenants pages", want, all)
			}
			return nil
		})
	})

	t.Run("UpdateTenant", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		for _, iso := range isolations {
			tn := e.tenant(iso)
			other := e.tenant(iso)
			want := *tn
			steps := []struct {
				name   string
				params store.UpdateTenantParams
				apply  func(*store.Tenant)
			}{
				{"Name", store.UpdateTenantParams{Name: ptr("Renamed")}, func(t *store.Tenant) { t.Name = "Renamed" }},
				{"Plan", store.UpdateTenantParams{Plan: ptr("pro")}, func(t *store.Tenant) { t.Plan = "pro" }},
				{"Status", store.UpdateTenantParams{Status: ptr(tenant.Suspended)}, func(t *store.Tenant) { t.Status = tenant.Suspended }},
				{"All", store.UpdateTenantParams{Name: ptr("Again"), Plan: ptr("enterprise"), Status: ptr(tenant.Active)},
					func(t *store.Tenant) { t.Name, t.Plan, t.Status = "Again", "enterprise", tenant.Active }},
			}
			for i, step := range steps {
				step.params.ID = tn.ID
				step.params.UpdatedAt = at(time.Duration(i+1) * time.Hour)
				step.apply(&want)
				want.UpdatedAt = step.params.UpdatedAt
				e.platform(func(tx store.PlatformTx) error {
					got, err := tx.UpdateTenant(e.ctx, &step.params)
					if errIs(t, "UpdateTenant("+step.name+")", err, nil) {
						diff(t, "UpdateTenant("+step.name+")", &want, got)
					}
					return nil
				})
			}
			e.platform(func(tx store.PlatformTx) error {
				_, err := tx.UpdateTenant(e.ctx, &store.UpdateTenantParams{ID: tn.ID, Plan: ptr("no-such-plan"), UpdatedAt: at(time.Hour)})
				errIs(t, "UpdateTenant(unknown plan)", err, store.ErrNotFound)
				_, err = tx.UpdateTenant(e.ctx, &store.UpdateTenantParams{ID: createParams(iso).ID, Name: ptr("x"), UpdatedAt: at(time.Hour)})
				errIs(t, "UpdateTenant(unknown tenant)", err, store.ErrNotFound)
				return nil
			})
			e.readPlatform(func(tx store.PlatformTx) error {
				got, err := tx.GetTenant(e.ctx, tn.ID)
				if errIs(t, "GetTenant", err, nil) {
					diff(t, "GetTenant after updates", &want, got)
				}
				got, err = tx.GetTenant(e.ctx, other.ID)
				if errIs(t, "GetTenant(other)", err, nil) {
					diff(t, "GetTenant(other tenant)", other, got)
				}
				return nil
			})
		}
	})

	t.Run("Idempotency", func(t *testing.T) {
		t.Parallel()
		e := h.setup(t)
		testIdempotency(t, e.ctx, func(fn func(idempotencyTx) error) {
			e.platform(func(tx store.PlatformTx) error { return fn(tx) })
		}, func(fn func(idempotencyTx) error) {
			e.readPlatform(func(tx store.PlatformTx) error { return fn(tx) })
		})
	})
}
