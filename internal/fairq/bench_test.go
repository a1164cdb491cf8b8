package fairq

import (
	"context"
	"fmt"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/tenant"
)

func BenchmarkAcquireRelease(b *testing.B) {
	ctx := context.Background()

	// One tenant, a free slot every time: the fast path.
	b.Run("Uncontended", func(b *testing.B) {
		s, _ := New(Config{Slots: 4})
		b.ReportAllocs()
		for b.Loop() {
			sl, err := s.Acquire(ctx, "t", 1, Interactive, time.Time{})
			if err != nil {
				b.Fatal(err)
			}
			sl.Release(OutcomeOK)
		}
	})

	// A different tenant each time: its state is created and dropped again.
	b.Run("UncontendedManyTenants", func(b *testing.B) {
		s, _ := New(Config{Slots: 4})
		ids := make([]tenant.ID, 100_000)
		for i := range ids {
			ids[i] = tenant.ID(fmt.Sprintf("tenant-%06d", i))
		}
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			sl, err := s.Acquire(ctx, ids[i%len(ids)], 1, Interactive, time.Time{})
			if err != nil {
				b.Fatal(err)
			}
			sl.Release(OutcomeOK)
			i++
		}
	})

	// Many goroutines of eight tenants (weights 1, 2, 4, 8) on 2 slots: most
	// calls queue and are granted by another goroutine's Release.
	b.Run("Contended", func(b *testing.B) {
		s, _ := New(Config{Slots: 2})
		var g atomic.Int64
		b.ReportAllocs()
		b.SetParallelism(8)
		b.RunParallel(func(pb *testing.PB) {
			n := int(g.Add(1))
			tid := tenant.ID(fmt.Sprintf("t%d", n%8))
			w := 1 << (n % 4)
			for pb.Next() {
				sl, err := s.Acquire(ctx, tid, w, Interactive, time.Time{})
				if err != nil {
					b.Error(err)
					return
				}
				sl.Release(OutcomeOK)
			}
		})
		st := s.Stats()
		b.ReportMetric(float64(st.ShedDeadline+st.ShedQueueFull), "shed")
	})
}
