package pgstore

import (
	"context"
	"errors"
	"net/url"
	"testing"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// A later page of ListTenants (one with a cursor) whose query fails returns
// the failure: the query's error, not a panic on rows that never came.
func TestPostgresListTenantsPageFails(t *testing.T) {
	superURL(t)
	t.Parallel()
	d := newTestDB(t, t, true)
	target, err := url.Parse(d.Super)
	if err != nil {
		t.Fatal(err)
	}
	p := pgtest.NewProxy(t, target.Host)
	s, err := Open(context.Background(), p.URL(d.appURL(t)), &Options{MaxConns: 2, ProvisionURL: d.ownerURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for range 3 {
		createTenant(t, s, tenant.Pooled)
	}
	ctx := context.Background()
	var first []*store.Tenant
	err = s.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		first, err = tx.ListTenants(ctx, &store.ListTenantsParams{Limit: 1})
		return err
	})
	if err != nil || len(first) != 1 {
		t.Fatalf("first page = %d tenants, %v; want 1", len(first), err)
	}
	after := &store.TenantKey{CreatedAt: first[0].CreatedAt, ID: first[0].ID}
	nextPage := func(ctx context.Context) error {
		return s.ReadPlatform(context.Background(), func(tx store.PlatformTx) error {
			_, err := tx.ListTenants(ctx, &store.ListTenantsParams{After: after, Limit: 1})
			return err
		})
	}

	// The context ends between the pages.
	cancelled, cancel := context.WithCancel(ctx)
	cancel()
	if err := nextPage(cancelled); !errors.Is(err, context.Canceled) {
		t.Errorf("next page with a cancelled context = %v, want context.Canceled", err)
	}
	// The database becomes unreachable between the pages.
	p.Cut(pgtest.Reset)
	if err := nextPage(ctx); !errors.Is(err, store.ErrUnavailable) {
		t.Errorf("next page with the connection cut = %v, want ErrUnavailable", err)
	}
	p.Restore()
	untilServed(t, "next page after restore", nextPage)
}
