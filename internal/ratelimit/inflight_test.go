package ratelimit

import (
	"fmt"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bulkheadhq/bulkhead/tenant"
)

func TestInflightCap(t *testing.T) {
	t.Parallel()
	var f Inflight
	var slots []Slot
	for i := range 3 {
		s, ok := f.Acquire("t", 3)
		if !ok {
			t.Fatalf("Acquire #%d under cap 3 refused", i+1)
		}
		slots = append(slots, s)
	}
	if _, ok := f.Acquire("t", 3); ok {
		t.Fatal("fourth Acquire under cap 3 succeeded")
	}
	if _, ok := f.Acquire("other", 3); !ok {
		t.Fatal("another tenant's Acquire refused")
	}
	if got := f.Count("t"); got != 3 {
		t.Errorf("Count(t) = %d, want 3", got)
	}
	slots[0].Release()
	if _, ok := f.Acquire("t", 3); !ok {
		t.Fatal("Acquire after a Release refused")
	}
	// A cap lowered below the count refuses until enough are released.
	if _, ok := f.Acquire("t", 2); ok {
		t.Fatal("Acquire under a lowered cap succeeded")
	}
}

func TestInflightEdgeCases(t *testing.T) {
	t.Parallel()
	var f Inflight
	for _, limit := range []int{0, -1} {
		if _, ok := f.Acquire("t", limit); ok {
			t.Errorf("Acquire(limit %d) succeeded, want refused", limit)
		}
	}
	Slot{}.Release() // no-op
	s, _ := f.Acquire("t", 1)
	s.Release()
	s.Release() // a bug, but harmless here: the count does not go negative
	if got := f.Count("t"); got != 0 {
		t.Errorf("Count after double release = %d, want 0", got)
	}
	if _, ok := f.Acquire("t", 1); !ok {
		t.Error("Acquire after release refused")
	}
	if _, ok := f.Acquire("t", 1); ok {
		t.Error("second Acquire under cap 1 succeeded: the double release leaked a slot")
	}
}

func TestInflightRemovesIdleTenants(t *testing.T) {
	t.Parallel()
	var f Inflight
	var slots []Slot
	for i := range 1000 {
		s, ok := f.Acquire(tenant.ID(fmt.Sprint("t", i)), 1)
		if !ok {
			t.Fatal("Acquire refused")
		}
		slots = append(slots, s)
	}
	if got := f.Len(); got != 1000 {
		t.Errorf("Len() = %d, want 1000", got)
	}
	for _, s := range slots {
		s.Release()
	}
	if got := f.Len(); got != 0 {
		t.Errorf("Len() after releasing everything = %d, want 0", got)
	}
}

func TestInflightConcurrentExact(t *testing.T) {
	t.Parallel()
	var f Inflight
	const goroutines, limit = 200, 17

	// All acquire at once, nobody releases: exactly limit succeed.
	var wg sync.WaitGroup
	var got atomic.Int64
	slots := make(chan Slot, goroutines)
	for range goroutines {
		wg.Go(func() {
			if s, ok := f.Acquire("t", limit); ok {
				got.Add(1)
				slots <- s
			}
		})
	}
	wg.Wait()
	close(slots)
	if got.Load() != limit {
		t.Errorf("%d of %d concurrent Acquires succeeded, want exactly %d", got.Load(), goroutines, limit)
	}
	for s := range slots {
		s.Release()
	}

	// Acquire and release in loops: never more than limit at once, and
	// nothing left at the end.
	var cur, peak atomic.Int64
	for range 32 {
		wg.Go(func() {
			for range 500 {
				s, ok := f.Acquire("t", limit)
				if !ok {
					continue
				}
				n := cur.Add(1)
				for p := peak.Load(); n > p && !peak.CompareAndSwap(p, n); p = peak.Load() {
				}
				cur.Add(-1)
				s.Release()
			}
		})
	}
	wg.Wait()
	if p := peak.Load(); p > limit {
		t.Errorf("peak in flight = %d, want <= %d", p, limit)
	}
	if n := f.Len(); n != 0 {
		t.Errorf("Len() = %d after all released, want 0", n)
	}
}

func TestInflightDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	var f Inflight
	tenants := make([]tenant.ID, 64)
	for i := range tenants {
		tenants[i] = tenant.ID(fmt.Sprintf("%08d-0000-4000-8000-000000000000", i))
		s, _ := f.Acquire(tenants[i], 4) // grow the maps
		s.Release()
	}
	i := 0
	allocs := testing.AllocsPerRun(10000, func() {
		s, ok := f.Acquire(tenants[i%len(tenants)], 4)
		i++
		if ok {
			s.Release()
		}
	})
	if allocs != 0 {
		t.Errorf("Acquire+Release allocated %v times per call, want 0", allocs)
	}
}
