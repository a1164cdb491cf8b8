package ratelimit

import (
	"context"
	"fmt"
	"math/rand/v2"
	"sync"
	"testing"
	"time"
	"unsafe"
)

func TestLocalZeroValue(t *testing.T) {
	t.Parallel()
	var l Local // the real monotonic clock: only decisions that cannot depend on it
	lim := Limit{Rate: 1e-6, Burst: 3}
	n := 0
	for range 10 {
		if l.Allow(context.Background(), Key{Owner: "t"}, lim).Allowed {
			n++
		}
	}
	if n != 3 {
		t.Errorf("zero Local admitted %d of 10 under burst 3 and one per 11 days, want 3", n)
	}
}

func TestLocalKeysAreSeparate(t *testing.T) {
	t.Parallel()
	l, _ := newFakeLocal()
	ctx := context.Background()
	lim := Limit{Rate: 1, Burst: 1}
	keys := []Key{{Owner: "a"}, {Owner: "b"}, {Owner: "a", Actor: "k1"}, {Owner: "a", Actor: "k2"}, {Owner: "b", Actor: "k1"}}
	for _, k := range keys {
		if d := l.Allow(ctx, k, lim); !d.Allowed {
			t.Errorf("first Allow(%+v) denied", k)
		}
	}
	for _, k := range keys {
		if d := l.Allow(ctx, k, lim); d.Allowed {
			t.Errorf("second Allow(%+v) allowed", k)
		}
	}
}

func TestLocalEvictionNeverGrantsMoreThanBurst(t *testing.T) {
	t.Parallel()
	l, clock := newFakeLocal()
	ctx := context.Background()
	key := Key{Owner: "t"}
	lim := Limit{Rate: 10, Burst: 5} // T=100ms
	count := func() int {
		n := 0
		for range 20 {
			if l.Allow(ctx, key, lim).Allowed {
				n++
			}
		}
		return n
	}
	if n := count(); n != 5 {
		t.Fatalf("admitted %d at t=0, want 5", n)
	}
	l.Sweep() // TAT is 500ms ahead: nothing to drop
	if n := l.Len(); n != 1 {
		t.Fatalf("Len() after sweep at t=0 = %d, want 1", n)
	}
	if n := count(); n != 0 {
		t.Fatalf("admitted %d more at t=0 after a sweep, want 0", n)
	}
	clock.Set(250 * ms)
	l.Sweep()
	if n := count(); n != 2 {
		t.Fatalf("admitted %d at t=250ms after a sweep, want 2", n)
	}
	clock.Set(10 * time.Second)
	l.Sweep()
	if n := l.Len(); n != 0 {
		t.Fatalf("Len() after the bucket refilled and a sweep = %d, want 0", n)
	}
	if n := count(); n != 5 {
		t.Fatalf("admitted %d after eviction, want 5 (Burst)", n)
	}
}

// TestLocalEvictionIsUnobservable runs one random request sequence through a
// Local swept after every request and one never swept: eviction must not
// change a single decision.
func TestLocalEvictionIsUnobservable(t *testing.T) {
	t.Parallel()
	swept, c1 := newFakeLocal()
	kept, c2 := newFakeLocal()
	rng := rand.New(rand.NewPCG(1, 2))
	lims := []Limit{{Rate: 10, Burst: 3}, {Rate: 0.5, Burst: 2}, {Rate: 1000, Burst: 50}}
	now := time.Duration(0)
	for i := range 20000 {
		now += time.Duration(rng.Int64N(int64(300 * ms)))
		c1.Set(now)
		c2.Set(now)
		k := Key{Owner: fmt.Sprint("t", rng.IntN(4))}
		lim := lims[rng.IntN(len(lims))]
		if rng.IntN(2) == 0 {
			k.Actor = fmt.Sprint("a", rng.IntN(3))
		}
		var a, b Decision
		if rng.IntN(2) == 0 {
			a, b = swept.Allow(context.Background(), k, lim), kept.Allow(context.Background(), k, lim)
		} else {
			ls := Limits{Tenant: lim, Actor: lims[rng.IntN(len(lims))]}
			a, b = swept.Admit(context.Background(), k, ls), kept.Admit(context.Background(), k, ls)
		}
		if a != b {
			t.Fatalf("request %d: swept limiter decided %+v, unswept %+v", i, a, b)
		}
		swept.Sweep()
	}
}

func TestLocalSweepsAsItGoes(t *testing.T) {
	t.Parallel()
	l, clock := newFakeLocal()
	ctx := context.Background()
	lim := Limit{Rate: 10, Burst: 5}
	const keys = 100_000
	for i := range keys {
		l.Allow(ctx, Key{Owner: fmt.Sprint("tenant-", i)}, lim)
	}
	if n := l.Len(); n < keys/2 {
		t.Fatalf("Len() = %d right after %d keys, want most of them held", n, keys)
	}
	// All buckets are full again. Traffic on one hot tenant per shard sweeps
	// each shard within max(1024, size) operations.
	clock.Advance(time.Second)
	var hot [numShards]Key
	for i, found := 0, 0; found < numShards; i++ {
		k := Key{Owner: fmt.Sprint("hot-", i)}
		if s := shardOf(tenantHash(k.Owner)); hot[s].Owner == "" {
			hot[s] = k
			found++
		}
	}
	for i := range 2 * keys {
		l.Allow(ctx, hot[i%numShards], lim)
	}
	if n := l.Len(); n > numShards {
		t.Errorf("Len() = %d after the idle buckets refilled and traffic went on, want at most %d (the hot keys)", n, numShards)
	}
}

func TestLocalConcurrentExactBurst(t *testing.T) {
	t.Parallel()
	l, _ := newFakeLocal() // frozen: nothing refills
	const goroutines, perG, burst = 16, 100, 250
	lim := Limit{Rate: 1, Burst: burst}
	var wg sync.WaitGroup
	counts := make([]int, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for range perG {
				if l.Allow(context.Background(), Key{Owner: "t"}, lim).Allowed {
					counts[g]++
				}
			}
		})
	}
	wg.Wait()
	total := 0
	for _, c := range counts {
		total += c
	}
	if total != burst {
		t.Errorf("admitted %d of %d concurrent requests, want exactly %d", total, goroutines*perG, burst)
	}
}

func TestLocalAdmit(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	tenantLim, actorLim := Limit{Rate: 1, Burst: 4}, Limit{Rate: 1, Burst: 2}
	lims := Limits{Tenant: tenantLim, Actor: actorLim}

	t.Run("ActorBindsFirst", func(t *testing.T) {
		t.Parallel()
		l, _ := newFakeLocal()
		k1 := Key{Owner: "t", Actor: "k1"}
		want := []Decision{
			{Allowed: true, Remaining: 1, ResetAfter: time.Second, Limit: actorLim},     // tenant 3 left, actor 1
			{Allowed: true, Remaining: 0, ResetAfter: 2 * time.Second, Limit: actorLim}, // tenant 2, actor 0
			{RetryAfter: time.Second, ResetAfter: 2 * time.Second, Limit: actorLim},     // actor denies
			{RetryAfter: time.Second, ResetAfter: 2 * time.Second, Limit: actorLim},     // and charged nothing
		}
		for i, w := range want {
			if got := l.Admit(ctx, k1, lims); got != w {
				t.Errorf("Admit #%d = %+v, want %+v", i+1, got, w)
			}
		}
		// The denied requests did not charge the tenant: two left for k2.
		k2 := Key{Owner: "t", Actor: "k2"}
		if got, w := l.Admit(ctx, k2, lims), (Decision{Allowed: true, Remaining: 1, ResetAfter: 3 * time.Second, Limit: tenantLim}); got != w {
			t.Errorf("Admit(k2) #1 = %+v, want %+v (tie: the tenant reports)", got, w)
		}
		if got, w := l.Admit(ctx, k2, lims), (Decision{Allowed: true, Remaining: 0, ResetAfter: 4 * time.Second, Limit: tenantLim}); got != w {
			t.Errorf("Admit(k2) #2 = %+v, want %+v (tie: the tenant reports)", got, w)
		}
		// The tenant is empty: k3, with a full bucket, is denied by the
		// tenant, and its own bucket is not charged.
		k3 := Key{Owner: "t", Actor: "k3"}
		if got, w := l.Admit(ctx, k3, lims), (Decision{RetryAfter: time.Second, ResetAfter: 4 * time.Second, Limit: tenantLim}); got != w {
			t.Errorf("Admit(k3) = %+v, want %+v", got, w)
		}
		if got := l.Allow(ctx, k3, actorLim); got.Remaining != 1 {
			t.Errorf("k3's bucket after a tenant denial: Allow() = %+v, want Remaining 1 (uncharged)", got)
		}
	})

	t.Run("NoActorBucket", func(t *testing.T) {
		t.Parallel()
		l, _ := newFakeLocal()
		n := 0
		for i := range 10 {
			// Empty actor, or the zero actor Limit: only the tenant bucket.
			k, ls := Key{Owner: "t", Actor: "k"}, Limits{Tenant: tenantLim}
			if i%2 == 0 {
				k, ls = Key{Owner: "t"}, lims
			}
			if l.Admit(ctx, k, ls).Allowed {
				n++
			}
		}
		if n != 4 {
			t.Errorf("admitted %d, want 4 (tenant burst)", n)
		}
		if got := l.Len(); got != 1 {
			t.Errorf("Len() = %d, want 1 (no actor bucket made)", got)
		}
	})

	t.Run("BothDenyLongestWaitReports", func(t *testing.T) {
		t.Parallel()
		l, _ := newFakeLocal()
		k := Key{Owner: "t", Actor: "k"}
		ls := Limits{Tenant: Limit{Rate: 1, Burst: 1}, Actor: Limit{Rate: 0.25, Burst: 1}}
		l.Admit(ctx, k, ls)
		if got, w := l.Admit(ctx, k, ls), (Decision{RetryAfter: 4 * time.Second, ResetAfter: 4 * time.Second, Limit: ls.Actor}); got != w {
			t.Errorf("Admit = %+v, want %+v", got, w)
		}
	})

	t.Run("ConcurrentExact", func(t *testing.T) {
		t.Parallel()
		l, _ := newFakeLocal()
		ls := Limits{Tenant: Limit{Rate: 1, Burst: 100}, Actor: Limit{Rate: 1, Burst: 15}}
		const actors, perActor = 5, 200
		counts := make([]int, actors)
		var wg sync.WaitGroup
		for a := range actors {
			for range 4 {
				wg.Go(func() {
					k := Key{Owner: "t", Actor: fmt.Sprint("k", a)}
					n := 0
					for range perActor / 4 {
						if l.Admit(ctx, k, ls).Allowed {
							n++
						}
					}
					l.shards[shardOf(tenantHash("t"))].mu.Lock()
					counts[a] += n
					l.shards[shardOf(tenantHash("t"))].mu.Unlock()
				})
			}
		}
		wg.Wait()
		for a, c := range counts {
			if c != 15 {
				t.Errorf("actor %d admitted %d, want exactly 15 (its burst)", a, c)
			}
		}
		// 75 charged to the tenant, none of the 925 denials.
		if got := l.Allow(ctx, Key{Owner: "t"}, ls.Tenant); got.Remaining != 24 {
			t.Errorf("tenant bucket after 75 admissions: Allow() = %+v, want Remaining 24", got)
		}
	})
}

func TestLocalDoesNotAllocate(t *testing.T) {
	if raceEnabled {
		t.Skip("allocation counts differ under the race detector")
	}
	l, clock := newFakeLocal()
	ctx := context.Background()
	keys := make([]Key, 64)
	for i := range keys {
		keys[i] = Key{Owner: fmt.Sprintf("%08d-0000-4000-8000-000000000000", i), Actor: fmt.Sprint("key-", i)}
	}
	lim := Limit{Rate: 100, Burst: 10}
	ls := Limits{Tenant: lim, Actor: Limit{Rate: 10, Burst: 5}}
	for _, k := range keys { // first use inserts
		l.Allow(ctx, k, lim)
		l.Admit(ctx, k, ls)
	}
	i := 0
	allocs := testing.AllocsPerRun(10000, func() {
		clock.Advance(ms)
		k := keys[i%len(keys)]
		i++
		l.Allow(ctx, k, lim)
		l.Admit(ctx, k, ls)
	})
	if allocs != 0 {
		t.Errorf("Allow+Admit on known keys allocated %v times per call, want 0", allocs)
	}
}

func TestShardsArePadded(t *testing.T) {
	t.Parallel()
	if got := unsafe.Sizeof(localShard{}); got != 128 {
		t.Errorf("sizeof(localShard) = %d, want 128 (two cache lines, no false sharing)", got)
	}
	if got := unsafe.Sizeof(inflightShard{}); got != 128 {
		t.Errorf("sizeof(inflightShard) = %d, want 128", got)
	}
}
