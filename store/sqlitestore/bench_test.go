package sqlitestore

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// benchStore opens a store with one tenant of isolation iso, collection c
// and n records r0…r<n-1>.
func benchStore(b *testing.B, opts *Options, iso tenant.Isolation, n int) (*Store, tenant.ID) {
	b.Helper()
	s, err := Open(filepath.Join(b.TempDir(), "bulkhead.db"), opts)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	ctx := context.Background()
	id := tenant.ID(uuid.NewString())
	_, err = s.CreateTenant(ctx, &store.CreateTenantParams{ID: id, Slug: "bench", Name: "Bench", Plan: "free",
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
				data := fmt.Sprintf(`{"n":%d,"s":"item %d","tag":"%s","ok":%t}`, j, j, []string{"red", "green", "blue"}[j%3], j%2 == 0)
				err := tx.CreateRecord(ctx, &store.Record{Collection: "c", ID: store.RecordID(fmt.Sprintf("r%d", j)), Version: 1,
					Data: json.RawMessage(data), CreatedAt: time.UnixMicro(int64(j)), UpdatedAt: time.UnixMicro(int64(j))})
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

var cacheModes = []struct {
	name string
	opts *Options
}{
	{"StmtCache", nil},
	{"NoStmtCache", &Options{noStmtCache: true}},
}

func BenchmarkGetRecord(b *testing.B) {
	for _, mode := range cacheModes {
		b.Run(mode.name, func(b *testing.B) {
			s, tid := benchStore(b, mode.opts, tenant.Pooled, 1000)
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

func BenchmarkCreateRecord(b *testing.B) {
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
	for _, mode := range cacheModes {
		for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
			// One writer at a time: every create pays its own fsync.
			b.Run("Serial/"+mode.name+"/"+string(iso), func(b *testing.B) {
				s, tid := benchStore(b, mode.opts, iso, 0)
				w := s.main.w
				if iso == tenant.Silo {
					w = s.silos[tid].w
				}
				var seq atomic.Int64
				commits := w.commits.Load()
				b.ReportAllocs()
				for b.Loop() {
					create(b, s, tid, &seq)
				}
				b.ReportMetric(float64(w.commits.Load()-commits)/float64(b.N), "commits/op")
			})
		}
		// Many concurrent writers: group commit shares each fsync.
		b.Run("Parallel/"+mode.name, func(b *testing.B) {
			s, tid := benchStore(b, mode.opts, tenant.Pooled, 0)
			var seq atomic.Int64
			commits := s.main.w.commits.Load()
			b.ReportAllocs()
			b.SetParallelism(32)
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					create(b, s, tid, &seq)
				}
			})
			b.ReportMetric(float64(s.main.w.commits.Load()-commits)/float64(b.N), "commits/op")
		})
	}
}

func BenchmarkListRecordsFiltered(b *testing.B) {
	// tag = "green" && n >= 2000 && s ~ "9", newest n first, 20 per page.
	params := &store.ListRecordsParams{
		Collection: "c",
		Filter: &filter.And{Terms: []filter.Expr{
			&filter.Cmp{Field: "tag", Op: filter.Eq, Value: filter.Value{Kind: filter.String, Str: "green"}},
			&filter.Cmp{Field: "n", Op: filter.Ge, Value: filter.Value{Kind: filter.Number, Num: 2000}},
			&filter.Cmp{Field: "s", Op: filter.Contains, Value: filter.Value{Kind: filter.String, Str: "9"}},
		}},
		Order: filter.Order{Field: "n", Desc: true},
		Limit: 20,
	}
	for _, n := range []int{1000, 10000} {
		b.Run(fmt.Sprintf("Records%d", n), func(b *testing.B) {
			s, tid := benchStore(b, nil, tenant.Pooled, n)
			ctx := context.Background()
			b.ReportAllocs()
			for b.Loop() {
				err := s.ReadTenant(ctx, tid, func(tx store.Tx) error {
					page, err := tx.ListRecords(ctx, params)
					if err == nil && n >= 10000 && len(page.Records) != 20 {
						err = fmt.Errorf("page of %d records", len(page.Records))
					}
					return err
				})
				if err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
