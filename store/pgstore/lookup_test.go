package pgstore

import (
	"context"
	"errors"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Another process deletes a tenant this store has cached and creates it
// again with the other isolation: LookupAPIKey follows, returning the key of
// the tenant that exists now, and the connection it used stays usable
// although the batch sent for the old route failed.
func TestPostgresLookupAPIKeyStaleRoute(t *testing.T) {
	superURL(t)
	t.Parallel()
	ctx := context.Background()
	d := newTestDB(t, t, true)
	s := openStore(t, d, &Options{MaxConns: 1})
	other := openStore(t, d, nil)
	p := &store.CreateTenantParams{ID: tenant.ID("0190d5a0-0000-7000-8000-0000000000aa"), Slug: "stale", Name: "Stale",
		Plan: tenant.DefaultPlan, Isolation: tenant.Pooled, CreatedAt: base}
	withKey := func(name string) func(tx store.Tx) error {
		return func(tx store.Tx) error {
			return tx.CreateAPIKey(ctx, &store.APIKey{ID: "k", Name: name, Role: tenant.Admin, Hash: []byte("h"), CreatedBy: "op", CreatedAt: base})
		}
	}
	if _, err := s.CreateTenant(ctx, p, nil, withKey("pooled")); err != nil {
		t.Fatal(err)
	}
	if l, err := s.LookupAPIKey(ctx, p.ID, "k"); err != nil || l.Key.Name != "pooled" {
		t.Fatalf("LookupAPIKey = %+v, %v", l, err)
	}
	for _, iso := range []tenant.Isolation{tenant.Silo, tenant.Pooled} {
		if err := other.DeleteTenant(ctx, p.ID, nil); err != nil {
			t.Fatal(err)
		}
		p.Isolation = iso
		if _, err := other.CreateTenant(ctx, p, nil, withKey(string(iso))); err != nil {
			t.Fatal(err)
		}
		l, err := s.LookupAPIKey(ctx, p.ID, "k")
		if err != nil || l.Key.Name != string(iso) || l.Tenant.Isolation != iso {
			t.Errorf("after the tenant became %s elsewhere, LookupAPIKey = %+v, %v", iso, l, err)
		}
	}
	if err := other.DeleteTenant(ctx, p.ID, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := s.LookupAPIKey(ctx, p.ID, "k"); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("after the tenant was deleted elsewhere, LookupAPIKey = %v, want ErrNotFound", err)
	}
	// The store's only connection serves the next transaction.
	if err := s.ReadPlatform(ctx, func(tx store.PlatformTx) error { _, err := tx.ListPlans(ctx); return err }); err != nil {
		t.Errorf("ReadPlatform after the lookups = %v", err)
	}
}

// BenchmarkLookupAPIKey compares LookupAPIKey, one read-only transaction in
// one round trip, with the three transactions it replaces on
// authentication's path: ReadTenant with GetAPIKey, then ReadPlatform with
// GetTenant and ReadPlatform with GetPlan (two round trips each: the first
// batch, then COMMIT). Interleaved alternates the two on every iteration,
// so that both see the same load, and reports each one's time.
func BenchmarkLookupAPIKey(b *testing.B) {
	superURL(b)
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		b.Run(string(iso), func(b *testing.B) {
			s, tid := benchStore(b, iso, 0)
			ctx := context.Background()
			err := s.InTenant(ctx, tid, func(tx store.Tx) error {
				return tx.CreateAPIKey(ctx, &store.APIKey{ID: "k", Name: "k", Role: tenant.Admin, Hash: make([]byte, 32), CreatedBy: "op", CreatedAt: base})
			})
			if err != nil {
				b.Fatal(err)
			}
			one := func() error {
				l, err := s.LookupAPIKey(ctx, tid, "k")
				if err == nil && (l.Key == nil || l.Tenant == nil || l.Plan == nil) {
					err = errors.New("incomplete lookup")
				}
				return err
			}
			three := func() error {
				var l store.KeyLookup
				err := s.ReadTenant(ctx, tid, func(tx store.Tx) (err error) {
					l.Key, err = tx.GetAPIKey(ctx, "k")
					return err
				})
				if err != nil {
					return err
				}
				if err := s.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
					l.Tenant, err = tx.GetTenant(ctx, tid)
					return err
				}); err != nil {
					return err
				}
				return s.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
					l.Plan, err = tx.GetPlan(ctx, l.Tenant.Plan)
					return err
				})
			}
			for range 10 { // warm the connections' statement caches
				if err := one(); err != nil {
					b.Fatal(err)
				}
				if err := three(); err != nil {
					b.Fatal(err)
				}
			}
			alone := func(fn func() error) func(b *testing.B) {
				return func(b *testing.B) {
					for b.Loop() {
						if err := fn(); err != nil {
							b.Fatal(err)
						}
					}
				}
			}
			b.Run("LookupAPIKey", alone(one))
			b.Run("ThreeTransactions", alone(three))
			b.Run("Interleaved", func(b *testing.B) {
				var tOne, tThree time.Duration
				for b.Loop() {
					start := time.Now()
					if err := one(); err != nil {
						b.Fatal(err)
					}
					mid := time.Now()
					if err := three(); err != nil {
						b.Fatal(err)
					}
					tOne, tThree = tOne+mid.Sub(start), tThree+time.Since(mid)
				}
				b.ReportMetric(float64(tOne.Nanoseconds())/float64(b.N), "lookup-ns/op")
				b.ReportMetric(float64(tThree.Nanoseconds())/float64(b.N), "three-ns/op")
				b.ReportMetric(float64(tThree)/float64(tOne), "three/lookup")
			})
		})
	}
}
