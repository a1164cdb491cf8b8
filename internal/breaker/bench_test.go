package breaker

import (
	"context"
	"log/slog"
	"path/filepath"
	"testing"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/sqlitestore"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// nopStore answers every transaction at once: the cost measured is the
// breaker's alone.
type nopStore struct{ store.Store }

func (nopStore) ReadTenant(context.Context, tenant.ID, func(store.Tx) error) error { return nil }

// BenchmarkStoreOverhead compares a transaction through the database's
// breaker with the same transaction without it, from parallel goroutines;
// report the ratio of the two from one run.
func BenchmarkStoreOverhead(b *testing.B) {
	ctx := context.Background()
	for _, c := range []struct {
		name string
		st   store.Store
	}{
		{"Bare", nopStore{}},
		{"Breaker", NewStore(nopStore{}, Settings{Name: "database", Logger: slog.New(slog.DiscardHandler)})},
	} {
		b.Run("Nop"+c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c.st.ReadTenant(ctx, "t", nil)
				}
			})
		})
	}
}

// BenchmarkSQLiteOverhead is BenchmarkStoreOverhead on a real SQLite
// store: a read transaction of a tenant (that does not exist, so one short
// query), bare and through the breaker.
func BenchmarkSQLiteOverhead(b *testing.B) {
	ctx := context.Background()
	raw, err := sqlitestore.Open(filepath.Join(b.TempDir(), "bench.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer raw.Close()
	tid := tenant.NewID()
	for _, c := range []struct {
		name string
		st   store.Store
	}{
		{"Bare", raw},
		{"Breaker", NewStore(raw, Settings{Name: "database", Logger: slog.New(slog.DiscardHandler)})},
	} {
		b.Run(c.name, func(b *testing.B) {
			b.ReportAllocs()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					c.st.ReadTenant(ctx, tid, func(store.Tx) error { return nil })
				}
			})
		})
	}
}
