package pgstore

import (
	"context"
	"crypto/sha256"
	"encoding/json"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// BenchmarkTenantWrites measures one tenant's write throughput, serially
// and from concurrent writers, through a write transaction shaped like the
// API's record creation (internal/core): CreateRecord, Usage (the quota
// check), AuditHead and AppendAudit, then COMMIT. Every such transaction
// of a tenant serializes on the tenant's audit head and usage row, so what
// matters is how many round trips each holds them for: concurrent writers
// should together be no slower than one writer alone.
//
// Writers/N runs N goroutines against a pool of 8 connections and reports
// writes/s; compare Writers/1 with the others.
func BenchmarkTenantWrites(b *testing.B) {
	superURL(b)
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		b.Run(string(iso), func(b *testing.B) {
			s := openStore(b, newTestDB(b, b, true), &Options{MaxConns: 8})
			ctx := context.Background()
			tid := tenant.ID("0190d5a0-0000-7000-8000-0000000000bb")
			_, err := s.CreateTenant(ctx, &store.CreateTenantParams{ID: tid, Slug: "writes", Name: "Writes", Plan: "enterprise",
				Isolation: iso, CreatedAt: base}, nil, func(tx store.Tx) error {
				_, err := tx.PutCollection(ctx, &store.Collection{Name: "c", CreatedAt: base, UpdatedAt: base})
				return err
			})
			if err != nil {
				b.Fatal(err)
			}
			var seq atomic.Int64
			write := func() error {
				id := store.RecordID(fmt.Sprintf("r%d", seq.Add(1)))
				now := time.Now()
				return s.InTenant(ctx, tid, func(tx store.Tx) error {
					if err := tx.CreateRecord(ctx, &store.Record{Collection: "c", ID: id, Version: 1,
						Data: json.RawMessage(`{"title":"a new record","n":42}`), CreatedAt: now, UpdatedAt: now}); err != nil {
						return err
					}
					u, err := tx.Usage(ctx)
					if err != nil {
						return err
					}
					if u.Records < 1 {
						return fmt.Errorf("usage %+v after a create", u)
					}
					head, prev, err := tx.AuditHead(ctx)
					if err != nil {
						return err
					}
					hash := sha256.Sum256(append(append([]byte(nil), prev...), id...))
					return tx.AppendAudit(ctx, &store.AuditEntry{Seq: head + 1, Time: now, Actor: "bench", Action: "record.create",
						Resource: string(id), RequestID: string(id), Outcome: "success", PrevHash: prev, Hash: hash[:]})
				})
			}
			for range 20 { // warm the pool's connections and statement caches
				if err := write(); err != nil {
					b.Fatal(err)
				}
			}
			for _, writers := range []int{1, 2, 4, 8} {
				b.Run(fmt.Sprintf("Writers/%d", writers), func(b *testing.B) {
					var next atomic.Int64
					var wg sync.WaitGroup
					b.ResetTimer()
					start := time.Now()
					for range writers {
						wg.Go(func() {
							for next.Add(1) <= int64(b.N) {
								if err := write(); err != nil {
									b.Error(err)
									return
								}
							}
						})
					}
					wg.Wait()
					b.ReportMetric(float64(b.N)/time.Since(start).Seconds(), "writes/s")
				})
			}
			// Every write counted once, and the chain has no gap.
			err = s.ReadTenant(ctx, tid, func(tx store.Tx) error {
				u, err := tx.Usage(ctx)
				if err != nil {
					return err
				}
				head, _, err := tx.AuditHead(ctx)
				if err != nil {
					return err
				}
				if u.Records != seq.Load() || head != seq.Load() {
					return fmt.Errorf("%d writes, but usage %+v and audit head %d", seq.Load(), u, head)
				}
				return nil
			})
			if err != nil {
				b.Error(err)
			}
		})
	}
}
