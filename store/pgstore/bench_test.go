package pgstore

import (
	"context"
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// benchData is record j's data, as in sqlitestore's benchmarks.
func benchData(j int) string {
	return fmt.Sprintf(`{"n":%d,"s":"item %d","tag":"%s","ok":%t}`, j, j, []string{"red", "green", "blue"}[j%3], j%2 == 0)
}

// BenchmarkRLSCost measures what row-level security costs. On 100,000
// records of 1,000 pooled tenants it runs a point read by id and a filtered
// listing (two terms, 20 records) through two Stores:
//
//   - RLS: the store as Open returns it, as the application role, on the
//     tables of schema bulkhead, which force row-level security.
//   - NoRLS: the same Store code, role, statements and transactions (with
//     their explicit tenant_id predicates), on copies of the tables
//     without row-level security (schema norls).
//
// The ratio RLS/NoRLS is the price of isolation in the database; the goal
// is at most 1.10. The Interleaved runs alternate the two on every
// iteration, so that both see the same load on a shared machine, and
// report each one's time and their ratio. Bare runs the query alone,
// outside a transaction, to show what a transaction's round trips cost by
// comparison.
func BenchmarkRLSCost(b *testing.B) {
	superURL(b)
	ctx := context.Background()
	d := newTestDB(b, b, true)
	s := openStore(b, d, nil)
	const tenants, perTenant = 1000, 100

	// Seed as the superuser with COPY (row-level security would refuse
	// COPY as any other role).
	admin := connect(b, d.adminURL(b))
	ids := make([]tenantID, tenants)
	var tenantRows, collRows, recordRows [][]any
	for i := range ids {
		ids[i], _ = parseTenantID(tenant.ID(uuid.NewString()))
		tenantRows = append(tenantRows, []any{ids[i].arg, fmt.Sprintf("bench-%04d", i), "Bench", tenant.DefaultPlan, "pooled", "active", base, base})
		collRows = append(collRows, []any{ids[i].arg, "c", base, base})
		for j := range perTenant {
			at := base.Add(time.Duration(j) * time.Second)
			recordRows = append(recordRows, []any{ids[i].arg, "c", fmt.Sprintf("r%d", j), int64(1), benchData(j), at, at})
		}
	}
	for _, c := range []struct {
		table string
		cols  []string
		rows  [][]any
	}{
		{"tenants", []string{"id", "slug", "name", "plan", "isolation", "status", "created_at", "updated_at"}, tenantRows},
		{"collections", []string{"tenant_id", "name", "created_at", "updated_at"}, collRows},
		{"records", []string{"tenant_id", "collection", "id", "version", "data", "created_at", "updated_at"}, recordRows},
	} {
		if _, err := admin.CopyFrom(ctx, pgx.Identifier{"bulkhead", c.table}, c.cols, pgx.CopyFromRows(c.rows)); err != nil {
			b.Fatalf("copy %s: %v", c.table, err)
		}
	}
	superExec(b, d.adminURL(b),
		"CREATE SCHEMA norls",
		"CREATE TABLE norls.records (LIKE bulkhead.records INCLUDING ALL)",
		"INSERT INTO norls.records (tenant_id, collection, id, version, data, created_at, updated_at) SELECT tenant_id, collection, id, version, data, created_at, updated_at FROM bulkhead.records",
		"GRANT USAGE ON SCHEMA norls TO "+ident(d.App),
		"GRANT SELECT ON norls.records TO "+ident(d.App),
		"ANALYZE bulkhead.records", "ANALYZE norls.records", "ANALYZE bulkhead.tenants")

	// plain is a Store like s on the copy without row-level security.
	pool, err := newPool(ctx, d.appURL(b), 4, "norls")
	if err != nil {
		b.Fatal(err)
	}
	plain := &Store{opts: s.opts, log: s.log, pool: pool, role: s.role, timeout: s.timeout, pooled: "norls",
		isolation: make(map[tenant.ID]tenant.Isolation)}
	b.Cleanup(func() { plain.Close() })

	list := func(tid tenantID) *store.ListRecordsParams {
		return &store.ListRecordsParams{Collection: "c", Limit: 20, Filter: &filter.And{Terms: []filter.Expr{
			&filter.Cmp{Field: "tag", Op: filter.Eq, Value: filter.Value{Kind: filter.String, Str: "red"}},
			&filter.Cmp{Field: "n", Op: filter.Ge, Value: filter.Value{Kind: filter.Number, Num: 10}},
		}}}
	}
	point := func(s *Store) func(tenantID, store.RecordID) error {
		return func(tid tenantID, id store.RecordID) error {
			return s.ReadTenant(ctx, tid.id, func(tx store.Tx) error {
				_, err := tx.GetRecord(ctx, "c", id)
				return err
			})
		}
	}
	filtered := func(s *Store) func(tenantID, store.RecordID) error {
		return func(tid tenantID, _ store.RecordID) error {
			return s.ReadTenant(ctx, tid.id, func(tx store.Tx) error {
				page, err := tx.ListRecords(ctx, list(tid))
				if err == nil && len(page.Records) != 20 {
					err = fmt.Errorf("listed %d records, want 20", len(page.Records))
				}
				return err
			})
		}
	}
	// Warm both stores' route caches and their connections' statements.
	for _, st := range []*Store{s, plain} {
		for _, tid := range ids {
			if err := point(st)(tid, "r0"); err != nil {
				b.Fatal(err)
			}
			if err := filtered(st)(tid, ""); err != nil {
				b.Fatal(err)
			}
		}
	}

	r := rand.New(rand.NewPCG(1, 2))
	pick := func() (tenantID, store.RecordID) {
		return ids[r.IntN(tenants)], store.RecordID(fmt.Sprintf("r%d", r.IntN(perTenant)))
	}
	interleaved := func(rls, norls func(tenantID, store.RecordID) error) func(b *testing.B) {
		return func(b *testing.B) {
			var withRLS, without time.Duration
			for b.Loop() {
				tid, id := pick()
				start := time.Now()
				if err := rls(tid, id); err != nil {
					b.Fatal(err)
				}
				mid := time.Now()
				if err := norls(tid, id); err != nil {
					b.Fatal(err)
				}
				withRLS, without = withRLS+mid.Sub(start), without+time.Since(mid)
			}
			b.ReportMetric(float64(withRLS.Nanoseconds())/float64(b.N), "rls-ns/op")
			b.ReportMetric(float64(without.Nanoseconds())/float64(b.N), "norls-ns/op")
			b.ReportMetric(float64(withRLS)/float64(without), "rls/norls")
		}
	}
	alone := func(fn func(tenantID, store.RecordID) error) func(b *testing.B) {
		return func(b *testing.B) {
			for b.Loop() {
				if err := fn(pick()); err != nil {
					b.Fatal(err)
				}
			}
		}
	}
	b.Run("PointRead/Interleaved", interleaved(point(s), point(plain)))
	b.Run("FilteredList/Interleaved", interleaved(filtered(s), filtered(plain)))
	b.Run("PointRead/RLS", alone(point(s)))
	b.Run("PointRead/NoRLS", alone(point(plain)))
	b.Run("PointRead/Bare", alone(func(tid tenantID, id store.RecordID) error {
		var v int64
		return pool.QueryRow(ctx, sqlGetRecord, tid.arg, "c", string(id)).Scan(&v, nil, nil, nil)
	}))
	b.Run("FilteredList/RLS", alone(filtered(s)))
	b.Run("FilteredList/NoRLS", alone(filtered(plain)))
	b.Run("FilteredList/Bare", alone(func(tid tenantID, _ store.RecordID) error {
		l, err := listQuery(tid, list(tid))
		if err != nil {
			return err
		}
		rows, _ := pool.Query(ctx, l.Page.String(), l.Page.Args()...)
		n := 0
		if err := forEach(rows, func(pgx.Rows) error { n++; return nil }); err != nil || n != 21 {
			return fmt.Errorf("listed %d rows: %v", n, err)
		}
		return nil
	}))
}

// benchStore opens a store with one tenant of isolation iso, collection c
// and n records r0…r<n-1>, as sqlitestore's benchmarks do.
func benchStore(b *testing.B, iso tenant.Isolation, n int) (*Store, tenant.ID) {
	b.Helper()
	s := openStore(b, newTestDB(b, b, true), nil)
	ctx := context.Background()
	id := tenant.ID(uuid.NewString())
	_, err := s.CreateTenant(ctx, &store.CreateTenantParams{ID: id, Slug: "bench", Name: "Bench", Plan: "free",
		Isolation: iso, CreatedAt: time.Now()}, nil, func(tx store.Tx) error {
		_, err := tx.PutCollection(ctx, &store.Collection{Name: "c", CreatedAt: time.Now(), UpdatedAt: time.Now()})
		return err
	})
	if err != nil {
		b.Fatal(err)
	}
	for i := 0; i < n; i += 500 {
		err := s.InTenant(ctx, id, func(tx store.Tx) error {
			for j := i; j < min(i+500, n); j++ {
				err := tx.CreateRecord(ctx, &store.Record{Collection: "c", ID: store.RecordID(fmt.Sprintf("r%d", j)), Version: 1,
					Data: json.RawMessage(benchData(j)), CreatedAt: time.UnixMicro(int64(j)), UpdatedAt: time.UnixMicro(int64(j))})
				if err != nil {
					return err
				}
			}
			return nil
		})
		if err != nil {
			b.Fatal(err)
		}
	}
	return s, id
}

// BenchmarkGetRecord is sqlitestore's benchmark of the same name: a point
// read in a read-only transaction, here two round trips (the first batch,
// then COMMIT).
func BenchmarkGetRecord(b *testing.B) {
	superURL(b)
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		b.Run(string(iso), func(b *testing.B) {
			s, tid := benchStore(b, iso, 1000)
			ctx := context.Background()
			b.ReportAllocs()
			i := 0
			for b.Loop() {
				id := store.RecordID(fmt.Sprintf("r%d", i%1000))
				i++
				err := s.ReadTenant(ctx, tid, func(tx store.Tx) error {
					_, err := tx.GetRecord(ctx, "c", id)
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkCreateRecord is sqlitestore's benchmark of the same name: one
// record per read-write transaction, serially and from many goroutines.
func BenchmarkCreateRecord(b *testing.B) {
	superURL(b)
	create := func(b *testing.B, s *Store, tid tenant.ID, seq *atomic.Int64) {
		ctx := context.Background()
		id := store.RecordID(fmt.Sprintf("new%d", seq.Add(1)))
		now := time.Now()
		err := s.InTenant(ctx, tid, func(tx store.Tx) error {
			return tx.CreateRecord(ctx, &store.Record{Collection: "c", ID: id, Version: 1,
				Data: json.RawMessage(`{"title":"a new record","n":42}`), CreatedAt: now, UpdatedAt: now})
		})
		if err != nil {
			b.Error(err)
		}
	}
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		b.Run("Serial/"+string(iso), func(b *testing.B) {
			s, tid := benchStore(b, iso, 0)
			var seq atomic.Int64
			b.ReportAllocs()
			for b.Loop() {
				create(b, s, tid, &seq)
			}
		})
	}
	// Many concurrent writers of one tenant serialize on its usage row, as
	// a tenant's writes do on its audit head.
	b.Run("Parallel/pooled", func(b *testing.B) {
		s, tid := benchStore(b, tenant.Pooled, 0)
		var seq atomic.Int64
		b.ReportAllocs()
		b.SetParallelism(4)
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				create(b, s, tid, &seq)
			}
		})
	})
}
