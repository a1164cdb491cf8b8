package fairq

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"runtime"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"github.com/prometheus/client_golang/prometheus"

	"github.com/bulkheadhq/bulkhead/tenant"
)

func TestNewConfig(t *testing.T) {
	t.Parallel()

	s, err := New(Config{})
	if err != nil {
		t.Fatalf("New(Config{}) = %v", err)
	}
	slots := 2 * runtime.GOMAXPROCS(0)
	got := []any{s.slots, s.maxTenant, s.maxQueue, s.quantum, s.maxWait, s.brk}
	want := []any{slots, slots - max(1, slots/4), 256 * slots, 1, time.Second,
		breakerConfig{threshold: 5, window: 10 * time.Second, cooldown: 5 * time.Second, slots: 1}}
	if diff := cmp.Diff(want, got, cmp.AllowUnexported(breakerConfig{})); diff != "" {
		t.Errorf("New(Config{}) defaults (-want +got):\n%s", diff)
	}

	s, err = New(Config{Slots: 3, MaxTenantSlots: 9})
	if err != nil {
		t.Fatal(err)
	}
	if s.maxTenant != 3 {
		t.Errorf("MaxTenantSlots 9 with Slots 3 = %d, want 3", s.maxTenant)
	}

	for _, tc := range []struct {
		cfg   Config
		field string
	}{
		{Config{Slots: -1}, "Slots"},
		{Config{MaxTenantSlots: -1}, "MaxTenantSlots"},
		{Config{MaxQueue: -1}, "MaxQueue"},
		{Config{Quantum: -1}, "Quantum"},
		{Config{BreakerSlots: -1}, "BreakerSlots"},
		{Config{MaxWait: -1}, "MaxWait"},
		{Config{BreakerWindow: -1}, "BreakerWindow"},
		{Config{BreakerCooldown: -1}, "BreakerCooldown"},
	} {
		_, err := New(tc.cfg)
		if err == nil || !strings.Contains(err.Error(), tc.field+" ") {
			t.Errorf("New(%+v) = %v, want an error naming %s", tc.cfg, err, tc.field)
		}
	}
}

// TestWeightedProportion keeps three tenants of weights 1, 2 and 4 backlogged
// and releases the oldest held slot again and again: grants must follow the
// weights.
func TestWeightedProportion(t *testing.T) {
	t.Parallel()

	weights := map[tenant.ID]int{"a": 1, "b": 2, "c": 4}
	for _, tc := range []struct {
		name  string
		slots int
	}{
		{"OneSlot", 1},    // pure DRR: every tenant is under its share of 1
		{"FourSlots", 4},  // shares ceil(4w/7) = 1, 2, 3 sum past 4: DRR decides
		{"SevenSlots", 7}, // shares 1, 2, 4 exactly: the share caps decide
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			b := setup(t, Config{Slots: tc.slots})
			deadline := b.clk.Now().Add(far)

			// "a" takes every slot while alone, then all three queue up.
			var held []Slot
			for range tc.slots {
				held = append(held, b.mustGet(t, "a", 1, Interactive))
			}
			for range 8 {
				for _, id := range []tenant.ID{"a", "b", "c"} {
					b.mustWait(t, id, weights[id], Interactive, deadline)
				}
			}

			const warmup, rounds = 70, 300 // a round is 1+2+4 = 7 grants
			got := map[tenant.ID]int{}
			for i := range warmup + 7*rounds {
				held[0].Release(OutcomeOK)
				held = held[1:]
				c := b.next(t)
				if c.err != nil {
					t.Fatalf("grant %d: Acquire(%s) = %v", i, c.tid, c.err)
				}
				held = append(held, c.slot)
				if i >= warmup {
					got[c.tid]++
				}
				b.mustWait(t, c.tid, weights[c.tid], Interactive, deadline) // stay backlogged
			}
			t.Logf("grants over %d rounds: %v", rounds, got)
			for _, id := range sortedKeys(weights) {
				want := rounds * weights[id]
				// The schedule is deterministic and, after the warm-up, repeats
				// every round of 7 grants: the counts are exact.
				if got[id] != want {
					t.Errorf("grants to %s (weight %d) = %d, want %d (all: %v)", id, weights[id], got[id], want, got)
				}
			}
		})
	}
}

// TestShareCap floods with one tenant that starts out holding every slot,
// while two others keep requests waiting. At every grant it checks the share
// rule, and that once its first slots are gone the flooder stays within its
// share.
func TestShareCap(t *testing.T) {
	t.Parallel()

	const slots = 8
	weights := map[tenant.ID]int{"flood": 1, "v1": 4, "v2": 2}
	b := setup(t, Config{Slots: slots})
	s := b.s
	deadline := b.clk.Now().Add(far)

	var (
		violations []string
		grants     int
		maxFlood   int // most slots "flood" held after a grant, after warm-up
		warm       bool
	)
	s.hookGranted = func(ts *tenantState) { // with s.mu held
		grants++
		now := s.clock.Now()
		if ts.id == "flood" && warm {
			maxFlood = max(maxFlood, ts.inUse)
		}
		if ts.inUse <= s.shareCap(ts, now) {
			return
		}
		for _, u := range s.tenants {
			if u != ts && u.waiting > 0 && u.inUse < s.shareCap(u, now) {
				violations = append(violations, fmt.Sprintf("grant %d: %s holds %d > share %d while %s waits holding %d < share %d",
					grants, ts.id, ts.inUse, s.shareCap(ts, now), u.id, u.inUse, s.shareCap(u, now)))
			}
		}
	}

	var held []Slot
	for range slots {
		held = append(held, b.mustGet(t, "flood", 1, Interactive))
	}
	for range 40 {
		b.mustWait(t, "flood", 1, Interactive, deadline)
	}
	for range 2 {
		b.mustWait(t, "v1", 4, Interactive, deadline)
		b.mustWait(t, "v2", 2, Batch, deadline)
	}
	for i := range 600 {
		if i == slots { // the flooder's first slots have all been released
			s.mu.Lock()
			warm = true
			s.mu.Unlock()
		}
		held[0].Release(OutcomeOK)
		held = held[1:]
		c := b.next(t)
		held = append(held, c.slot)
		b.mustWait(t, c.tid, weights[c.tid], c.class, deadline)
	}

	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range violations {
		t.Error(v)
	}
	// W = 7: shares are flood 2, v1 5, v2 3.
	if maxFlood > 2 {
		t.Errorf("flood held up to %d slots while others waited, want <= its share 2", maxFlood)
	}
	if maxFlood == 0 {
		t.Errorf("flood was never granted a slot: starved")
	}
}

// TestVictimFirst: a tenant that holds every slot and has a deep queue does
// not delay another tenant's request by more than the first release.
func TestVictimFirst(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{Slots: 4})
	deadline := b.clk.Now().Add(far)
	var held []Slot
	for range 4 {
		held = append(held, b.mustGet(t, "flood", 1, Interactive))
	}
	for range 100 {
		b.mustWait(t, "flood", 1, Interactive, deadline)
	}
	b.mustWait(t, "victim", 1, Batch, deadline) // even a batch request
	held[0].Release(OutcomeOK)
	if c := b.next(t); c.tid != "victim" || c.err != nil {
		t.Fatalf("after one release, Acquire(%s) returned (err %v), want victim granted", c.tid, c.err)
	}
}

func TestWorkConserving(t *testing.T) {
	t.Parallel()

	t.Run("LoneTenant", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Slots: 4})
		var held []Slot
		for range 4 {
			held = append(held, b.mustGet(t, "a", 1, Interactive))
		}
		c := b.mustWait(t, "a", 1, Interactive, b.clk.Now().Add(far))
		if got := b.s.TenantStats("a"); got.InUse != 4 || got.Interactive != 1 || got.Cap != 4 {
			t.Errorf("TenantStats(a) = %+v, want InUse 4, Interactive 1, Cap 4", got)
		}
		held[0].Release(OutcomeOK)
		if r := b.next(t); r != c || r.err != nil {
			t.Fatalf("after a release: Acquire(%s) err %v, want a's waiter granted", r.tid, r.err)
		}
	})

	// A heavy tenant that holds a slot but does not wait shrinks the others'
	// shares; slots it leaves unused still go to them.
	t.Run("UnusedShare", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Slots: 4})
		deadline := b.clk.Now().Add(far)
		big := b.mustGet(t, "big", 100, Interactive)
		var held []Slot
		for range 3 {
			held = append(held, b.mustGet(t, "a", 1, Interactive))
		}
		for range 5 {
			b.mustWait(t, "a", 1, Interactive, deadline)
			b.mustWait(t, "c", 1, Interactive, deadline)
		}
		if got := b.s.TenantStats("a").Cap; got != 1 {
			t.Fatalf("share of a = %d, want 1 (4 slots × 1/102)", got)
		}
		for range 6 {
			held[0].Release(OutcomeOK)
			held = held[1:]
			c := b.next(t)
			held = append(held, c.slot)
			if got := b.s.Stats().InUse; got != 4 {
				t.Fatalf("InUse = %d after a release with waiters, want 4", got)
			}
		}
		got := counts(b.grantLog()[4:])
		if want := map[tenant.ID]int{"a": 3, "c": 3}; !cmp.Equal(got, want) {
			t.Errorf("grants = %v, want %v", got, want)
		}
		big.Release(OutcomeOK)
	})
}

func TestInteractiveBeforeBatch(t *testing.T) {
	t.Parallel()

	t.Run("Order", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Slots: 1})
		deadline := b.clk.Now().Add(far)
		h := b.mustGet(t, "a", 1, Interactive)
		b.mustWait(t, "a", 1, Batch, deadline)
		b.mustWait(t, "a", 1, Batch, deadline)
		b.mustWait(t, "b", 1, Batch, deadline)
		b.mustWait(t, "a", 1, Interactive, deadline)
		b.mustWait(t, "b", 1, Interactive, deadline)

		var got []string
		for range 5 {
			h.Release(OutcomeOK)
			c := b.next(t)
			got = append(got, string(c.tid)+"/"+c.class.String())
			h = c.slot
		}
		h.Release(OutcomeOK)
		want := []string{"a/interactive", "b/interactive", "a/batch", "b/batch", "a/batch"}
		if !slices.Equal(got, want) {
			t.Errorf("grant order = %v, want %v", got, want)
		}
		b.checkEmpty(t)
	})

	// Isolation comes first: a tenant under its share is served before one
	// at its share, whatever their classes.
	t.Run("ShareBeforeClass", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Slots: 2})
		deadline := b.clk.Now().Add(far)
		h1 := b.mustGet(t, "a", 1, Interactive)
		h2 := b.mustGet(t, "a", 1, Interactive)
		b.mustWait(t, "a", 1, Interactive, deadline)
		b.mustWait(t, "b", 1, Batch, deadline)
		h1.Release(OutcomeOK)
		if c := b.next(t); c.tid != "b" {
			t.Errorf("granted %s/%s, want b/batch (a is at its share of 1)", c.tid, c.class)
		}
		h2.Release(OutcomeOK)
		if c := b.next(t); c.tid != "a" {
			t.Errorf("granted %s/%s, want a/interactive", c.tid, c.class)
		}
	})
}

func TestDeadlineShed(t *testing.T) {
	t.Parallel()

	t.Run("Timer", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Slots: 1})
		h := b.mustGet(t, "a", 1, Interactive)
		c := b.mustWait(t, "b", 1, Interactive, b.clk.Now().Add(2*time.Second))

		b.clk.Advance(time.Second)
		if st := b.s.Stats(); st.Waiting != 1 || st.ShedDeadline != 0 {
			t.Fatalf("before the deadline: Waiting %d, ShedDeadline %d; want 1, 0", st.Waiting, st.ShedDeadline)
		}
		b.clk.Advance(time.Second)
		if r := b.next(t); r != c {
			t.Fatalf("Acquire(%s) returned, want b's", r.tid)
		}
		var se *ShedError
		if !errors.Is(c.err, ErrShed) || !errors.As(c.err, &se) || se.Reason != ShedDeadline {
			t.Fatalf("Acquire = %v, want a *ShedError with reason deadline", c.err)
		}
		if se.RetryAfter < time.Second || se.RetryAfterSeconds() < 1 {
			t.Errorf("RetryAfter = %v (%d s), want >= 1s", se.RetryAfter, se.RetryAfterSeconds())
		}
		if st := b.s.Stats(); st.Waiting != 0 || st.ShedDeadline != 1 || st.Tenants != 1 {
			t.Errorf("after the deadline: Waiting %d, ShedDeadline %d, Tenants %d; want 0, 1, 1", st.Waiting, st.ShedDeadline, st.Tenants)
		}
		h.Release(OutcomeOK)
		if got := len(b.grantLog()); got != 1 {
			t.Errorf("%d grants, want 1: a shed waiter must not be granted", got)
		}
		b.checkEmpty(t)
	})

	t.Run("ZeroDeadlineIsMaxWait", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Slots: 1, MaxWait: 500 * time.Millisecond})
		h := b.mustGet(t, "a", 1, Interactive)
		c := b.mustWait(t, "b", 1, Interactive, time.Time{})
		b.clk.Advance(499 * time.Millisecond)
		if st := b.s.Stats(); st.Waiting != 1 {
			t.Fatalf("Waiting = %d before MaxWait, want 1", st.Waiting)
		}
		b.clk.Advance(time.Millisecond)
		if r := b.next(t); r != c || !errors.Is(c.err, ErrShed) {
			t.Fatalf("Acquire(%s) = %v, want b shed", r.tid, r.err)
		}
		h.Release(OutcomeOK)
		b.checkEmpty(t)
	})

	t.Run("PastDeadline", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Slots: 1})
		now := b.clk.Now()
		h := b.mustGet(t, "a", 1, Interactive) // a free slot is granted whatever the deadline
		c, returned := b.start(t, "b", 1, Interactive, now)
		if !returned || !errors.Is(c.err, ErrShed) {
			t.Fatalf("Acquire with a past deadline and no free slot: returned %v, err %v; want shed at once", returned, c.err)
		}
		h.Release(OutcomeOK)
		b.checkEmpty(t)
	})

	// RetryAfter is the tenant's queue, served at its share, at the recent
	// mean hold time.
	t.Run("RetryAfterEstimate", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Slots: 1})
		h := b.mustGet(t, "a", 1, Interactive)
		b.clk.Advance(3 * time.Second)
		h.Release(OutcomeOK) // mean hold: 3s
		h = b.mustGet(t, "a", 1, Interactive)
		deadline := b.clk.Now().Add(time.Second)
		for range 4 {
			b.mustWait(t, "b", 1, Interactive, deadline)
		}
		b.clk.Advance(time.Second)
		var got []time.Duration
		for range 4 {
			var se *ShedError
			if c := b.next(t); !errors.As(c.err, &se) {
				t.Fatalf("Acquire = %v, want shed", c.err)
			}
			got = append(got, se.RetryAfter)
		}
		slices.Sort(got)
		// Shed one by one, the last sees an empty queue: 1×3s, then 2×3s, …
		want := []time.Duration{3 * time.Second, 6 * time.Second, 9 * time.Second, 12 * time.Second}
		if !slices.Equal(got, want) {
			t.Errorf("RetryAfter = %v, want %v", got, want)
		}
		h.Release(OutcomeOK)
		b.checkEmpty(t)
	})

	t.Run("ContextDeadline", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Slots: 1})
		h := b.mustGet(t, "a", 1, Interactive)
		ctx := newManualCtx()
		go func() {
			_, err := b.s.Acquire(ctx, "b", 1, Interactive, b.clk.Now().Add(far))
			b.results <- &call{tid: "b", err: err}
		}()
		<-b.queued
		ctx.finish(context.DeadlineExceeded)
		if c := b.next(t); !errors.Is(c.err, ErrShed) {
			t.Fatalf("Acquire after its context's deadline = %v, want ErrShed", c.err)
		}
		h.Release(OutcomeOK)
		b.checkEmpty(t)
	})
}

func TestRetryAfterRounding(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		in   time.Duration
		want time.Duration
		secs int
	}{
		{0, time.Second, 1},
		{time.Millisecond, time.Second, 1},
		{time.Second, time.Second, 1},
		{1001 * time.Millisecond, 2 * time.Second, 2},
		{59*time.Second + 1, time.Minute, 60},
		{time.Hour, time.Minute, 60},
	} {
		got := retryAfter(tc.in)
		se := &ShedError{RetryAfter: got}
		if got != tc.want || se.RetryAfterSeconds() != tc.secs {
			t.Errorf("retryAfter(%v) = %v (%d s), want %v (%d s)", tc.in, got, se.RetryAfterSeconds(), tc.want, tc.secs)
		}
	}
}

func TestQueueFull(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{Slots: 1, MaxQueue: 2})
	deadline := b.clk.Now().Add(far)
	h := b.mustGet(t, "a", 1, Interactive)
	aBatch := b.mustWait(t, "a", 1, Batch, deadline)
	b.mustWait(t, "a", 1, Interactive, deadline)

	// The queue is full and a's own queue is the longest: rejected at once.
	c, returned := b.start(t, "a", 1, Interactive, deadline)
	var se *ShedError
	if !returned || !errors.As(c.err, &se) || se.Reason != ShedQueueFull {
		t.Fatalf("Acquire(a) on a full queue: returned %v, err %v; want ShedQueueFull at once", returned, c.err)
	}

	// Another tenant pushes out a's newest batch waiter instead.
	b.mustWait(t, "b", 1, Interactive, deadline)
	if r := b.next(t); r != aBatch || !errors.As(r.err, &se) || se.Reason != ShedQueueFull {
		t.Fatalf("push-out: Acquire(%s/%s) = %v, want a's batch waiter shed with queue_full", r.tid, r.class, r.err)
	}

	// Now a and b wait one each: a third tenant is rejected, not pushed in.
	c, returned = b.start(t, "c", 1, Interactive, deadline)
	if !returned || !errors.Is(c.err, ErrShed) {
		t.Fatalf("Acquire(c) on a full, balanced queue: returned %v, err %v; want shed at once", returned, c.err)
	}
	// A heavier tenant gets in: its queue of one is shorter relative to its
	// weight than a's or b's.
	b.mustWait(t, "d", 4, Interactive, deadline)
	if r := b.next(t); r.tid != "a" || !errors.Is(r.err, ErrShed) {
		t.Fatalf("push-out by weight: Acquire(%s) = %v, want a's waiter shed", r.tid, r.err)
	}
	if st := b.s.Stats(); st.ShedQueueFull != 4 || st.Waiting != 2 {
		t.Errorf("ShedQueueFull %d, Waiting %d; want 4, 2", st.ShedQueueFull, st.Waiting)
	}

	for range 2 {
		h.Release(OutcomeOK)
		h = b.next(t).slot
	}
	h.Release(OutcomeOK)
	b.checkEmpty(t)
}

func TestCancel(t *testing.T) {
	t.Parallel()

	t.Run("WhileQueued", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Slots: 1})
		h := b.mustGet(t, "a", 1, Interactive)
		c := b.mustWait(t, "b", 1, Interactive, b.clk.Now().Add(far))
		c.cancel()
		if r := b.next(t); r != c || !errors.Is(c.err, context.Canceled) {
			t.Fatalf("Acquire(%s) = %v, want context.Canceled", r.tid, r.err)
		}
		if st := b.s.Stats(); st.Waiting != 0 || st.Canceled != 1 || st.Tenants != 1 {
			t.Errorf("Stats() = %+v, want Waiting 0, Canceled 1, Tenants 1", st)
		}
		h.Release(OutcomeOK)
		if got := len(b.grantLog()); got != 1 {
			t.Errorf("%d grants, want 1: a canceled waiter must not be granted", got)
		}
		b.checkEmpty(t)
	})

	t.Run("Done", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Slots: 1})
		ctx, cancel := context.WithCancel(context.Background())
		cancel()
		if _, err := b.s.Acquire(ctx, "a", 1, Interactive, time.Time{}); !errors.Is(err, context.Canceled) {
			t.Errorf("Acquire(canceled ctx) = %v, want context.Canceled", err)
		}
		b.checkEmpty(t)
	})

	// Cancellation racing a grant, both ways, many times: whichever wins, no
	// slot, waiter or tenant state is left behind.
	t.Run("RaceWithGrant", func(t *testing.T) {
		t.Parallel()
		outcomes := map[string]int{}
		for i := range 300 {
			b := setup(t, Config{Slots: 1})
			h := b.mustGet(t, "a", 1, Interactive)
			c := b.mustWait(t, "b", 1, Interactive, b.clk.Now().Add(far))
			if i%2 == 0 {
				// Cancel exactly as the grant happens.
				b.s.hookGranted = func(ts *tenantState) {
					if ts.id == "b" {
						c.cancel()
					}
				}
			}
			var wg sync.WaitGroup
			wg.Go(c.cancel)
			wg.Go(func() { h.Release(OutcomeOK) })
			wg.Wait()
			r := b.next(t)
			switch {
			case r.err == nil:
				outcomes["granted"]++
				r.slot.Release(OutcomeOK)
			case errors.Is(r.err, context.Canceled):
				outcomes["canceled"]++
			default:
				t.Fatalf("Acquire = %v, want a slot or context.Canceled", r.err)
			}
			b.checkEmpty(t)
		}
		t.Logf("outcomes: %v", outcomes)
	})
}

func TestBreaker(t *testing.T) {
	t.Parallel()

	cfg := Config{Slots: 4, BreakerThreshold: 3, BreakerWindow: 10 * time.Second, BreakerCooldown: 5 * time.Second}
	timeouts := func(t *testing.T, b *testBundle, n int) {
		t.Helper()
		for range n {
			b.mustGet(t, "a", 1, Interactive).Release(OutcomeTimeout)
		}
	}
	breaker := func(t *testing.T, b *testBundle, want BreakerState) {
		t.Helper()
		if got := b.s.TenantStats("a").Breaker; got != want {
			t.Fatalf("breaker of a = %v, want %v", got, want)
		}
	}

	t.Run("Cycle", func(t *testing.T) {
		t.Parallel()
		b := setup(t, cfg)
		later := b.clk.Now().Add(far)

		timeouts(t, b, 2)
		breaker(t, b, BreakerClosed)
		timeouts(t, b, 1)
		breaker(t, b, BreakerOpen)

		// Open: a may hold one slot though three are free; others use them.
		ha := b.mustGet(t, "a", 1, Interactive)
		wa := b.mustWait(t, "a", 1, Interactive, later)
		if got := b.s.TenantStats("a").Cap; got != 1 {
			t.Errorf("cap of a with its breaker open = %d, want 1", got)
		}
		var hb []Slot
		for range 3 {
			hb = append(hb, b.mustGet(t, "b", 1, Interactive))
		}

		// Shed while open: RetryAfter covers the rest of the cool-down.
		b.clk.Advance(time.Second)
		shed := b.mustWait(t, "a", 1, Interactive, b.clk.Now().Add(time.Second))
		b.clk.Advance(time.Second)
		var se *ShedError
		if r := b.next(t); r != shed || !errors.As(r.err, &se) || se.RetryAfter != 3*time.Second {
			t.Fatalf("shed while open: err %v, want RetryAfter 3s (the rest of the cool-down)", r.err)
		}

		// Successes do not close an open breaker; the cool-down does.
		for _, h := range hb {
			h.Release(OutcomeOK)
		}
		ha.Release(OutcomeOK)
		if r := b.next(t); r != wa {
			t.Fatalf("Acquire(%s) returned, want a's waiter", r.tid)
		}
		ha = wa.slot
		breaker(t, b, BreakerOpen)
		b.clk.Advance(3 * time.Second)
		breaker(t, b, BreakerHalfOpen)

		// Half-open: still capped; one success closes it and a's waiters
		// get the free slots at once.
		w1 := b.mustWait(t, "a", 1, Interactive, later)
		w2 := b.mustWait(t, "a", 1, Interactive, later)
		ha.Release(OutcomeOK)
		breaker(t, b, BreakerClosed)
		r1, r2 := b.next(t), b.next(t)
		if (r1 != w1 || r2 != w2) && (r1 != w2 || r2 != w1) {
			t.Fatal("after the breaker closed, want both of a's waiters granted")
		}
		r1.slot.Release(OutcomeOK)
		r2.slot.Release(OutcomeOK)
		b.checkEmpty(t)
	})

	t.Run("HalfOpenTimeoutReopens", func(t *testing.T) {
		t.Parallel()
		b := setup(t, cfg)
		timeouts(t, b, 3)
		b.clk.Advance(5 * time.Second)
		breaker(t, b, BreakerHalfOpen)
		timeouts(t, b, 1)
		breaker(t, b, BreakerOpen)
		if got := b.s.TenantStats("a").Cap; got != 1 {
			t.Errorf("cap of a = %d, want 1", got)
		}
	})

	t.Run("SlidingWindow", func(t *testing.T) {
		t.Parallel()
		b := setup(t, cfg)
		timeouts(t, b, 2)
		b.clk.Advance(10 * time.Second) // the two leave the window
		timeouts(t, b, 2)
		breaker(t, b, BreakerClosed)
		b.clk.Advance(9 * time.Second)
		timeouts(t, b, 1) // three within 9s
		breaker(t, b, BreakerOpen)
	})

	t.Run("Disabled", func(t *testing.T) {
		t.Parallel()
		c := cfg
		c.BreakerThreshold = -1
		b := setup(t, c)
		timeouts(t, b, 10)
		breaker(t, b, BreakerClosed)
		b.checkEmpty(t)
	})
}

func TestIdleTenantsLeaveNoState(t *testing.T) {
	t.Parallel()

	t.Run("Plain", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Slots: 2, MaxQueue: 4})
		deadline := b.clk.Now().Add(time.Second)
		for i := range 200 {
			id := tenant.ID(fmt.Sprintf("t%03d", i))
			b.mustGet(t, id, i%5, Interactive).Release(OutcomeOK)
		}
		b.checkEmpty(t)

		// Slots held, waiters shed, canceled, pushed out and rejected.
		h1 := b.mustGet(t, "x", 1, Interactive)
		h2 := b.mustGet(t, "x", 1, Interactive)
		b.mustWait(t, "y", 1, Batch, deadline)
		cz := b.mustWait(t, "z", 1, Interactive, deadline.Add(far))
		b.mustWait(t, "y", 1, Interactive, deadline)
		b.mustWait(t, "y", 1, Interactive, deadline)
		if c, _ := b.start(t, "y", 1, Interactive, deadline); !errors.Is(c.err, ErrShed) {
			t.Fatalf("Acquire = %v, want queue full", c.err)
		}
		b.mustWait(t, "w", 1, Interactive, deadline) // pushes out one of y's
		b.next(t)
		cz.cancel()
		b.next(t)
		b.clk.Advance(time.Second) // sheds the rest
		b.next(t)
		b.next(t)
		b.next(t)
		h1.Release(OutcomeOK)
		h2.Release(OutcomeCanceled)
		b.checkEmpty(t)
	})

	t.Run("BreakerHistory", func(t *testing.T) {
		t.Parallel()
		b := setup(t, Config{Slots: 2, BreakerThreshold: 2, BreakerWindow: 10 * time.Second, BreakerCooldown: 5 * time.Second})
		b.mustGet(t, "slow", 1, Interactive).Release(OutcomeTimeout)
		if got := b.s.Stats().Tenants; got != 1 {
			t.Fatalf("Tenants = %d with a timeout in the window, want 1", got)
		}
		b.clk.Advance(10 * time.Second)
		b.checkEmpty(t)

		b.mustGet(t, "slow", 1, Interactive).Release(OutcomeTimeout)
		b.mustGet(t, "slow", 1, Interactive).Release(OutcomeTimeout) // opens
		b.clk.Advance(9 * time.Second)                               // half-open, idle
		if got := b.s.TenantStats("slow").Breaker; got != BreakerHalfOpen {
			t.Fatalf("breaker = %v, want half_open", got)
		}
		b.clk.Advance(time.Second) // a cool-down past the cool-down
		b.checkEmpty(t)
	})
}

// TestStress runs many goroutines against one scheduler with random tenants,
// classes, deadlines, cancellations and outcomes while the fake clock moves,
// checking invariants at every grant. Run it with -race.
func TestStress(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{Slots: 3, MaxQueue: 20, BreakerThreshold: 4, BreakerWindow: 50 * time.Millisecond,
		BreakerCooldown: 20 * time.Millisecond})
	s := b.s
	s.hookQueued = nil
	var bad []string
	s.hookGranted = func(ts *tenantState) {
		now := s.clock.Now()
		if s.inUse > s.slots || ts.inUse > s.hardCap(ts, now) {
			bad = append(bad, fmt.Sprintf("grant to %s: inUse %d/%d, tenant %d cap %d", ts.id, s.inUse, s.slots, ts.inUse, s.hardCap(ts, now)))
		}
	}

	stop := make(chan struct{})
	var ticker sync.WaitGroup
	ticker.Go(func() {
		for {
			select {
			case <-stop:
				return
			default:
				b.clk.Advance(time.Millisecond)
				runtime.Gosched()
			}
		}
	})

	var workers sync.WaitGroup
	for g := range 12 {
		workers.Go(func() {
			r := rand.New(rand.NewPCG(uint64(g), 1))
			for range 300 {
				tid := tenant.ID(fmt.Sprintf("t%d", r.IntN(6)))
				ctx, cancel := context.WithCancel(context.Background())
				if r.IntN(4) == 0 {
					go cancel()
				}
				deadline := b.clk.Now().Add(time.Duration(r.IntN(20)) * time.Millisecond)
				sl, err := s.Acquire(ctx, tid, 1+r.IntN(4), Class(r.IntN(3)), deadline)
				cancel()
				switch {
				case err == nil:
					runtime.Gosched()
					sl.Release(Outcome(r.IntN(3)))
				case errors.Is(err, ErrShed), errors.Is(err, context.Canceled):
				default:
					t.Errorf("Acquire = %v", err)
				}
			}
		})
	}
	workers.Wait()
	close(stop)
	ticker.Wait()

	b.clk.Advance(time.Minute)
	b.checkEmpty(t)
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, v := range bad {
		t.Error(v)
	}
	t.Logf("granted %d, shed %d deadline / %d queue full, canceled %d", s.granted, s.shedDeadline, s.shedQueueFull, s.canceled)
}

// noTimers is a clock whose timers never fire, standing in for a timer that
// runs late.
type noTimers struct{ *fakeClock }

func (noTimers) AfterFunc(time.Duration, func()) Timer { return noTimers{} }
func (noTimers) Stop() bool                            { return true }

// TestShedAtGrant: a waiter past its deadline is shed, not granted, even when
// the timer that should have shed it has not run yet.
func TestShedAtGrant(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Slots: 1})
	b.s.clock = noTimers{b.clk}
	h := b.mustGet(t, "a", 1, Interactive)
	late := b.mustWait(t, "b", 1, Interactive, b.clk.Now().Add(time.Second))
	next := b.mustWait(t, "c", 1, Interactive, b.clk.Now().Add(far))
	b.clk.Advance(time.Second)
	h.Release(OutcomeOK)
	r1, r2 := b.next(t), b.next(t)
	if r1 == next {
		r1, r2 = r2, r1
	}
	if r1 != late || !errors.Is(late.err, ErrShed) || r2 != next || next.err != nil {
		t.Fatalf("late waiter: %v, next waiter: %v; want shed, granted", late.err, next.err)
	}
	next.slot.Release(OutcomeOK)
	b.checkEmpty(t)
}

func TestReleaseTwicePanics(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Slots: 2})
	sl := b.mustGet(t, "a", 1, Interactive)
	sl.Release(OutcomeOK)
	defer func() {
		if recover() == nil {
			t.Error("second Release did not panic")
		}
		b.checkEmpty(t) // and the scheduler is intact
	}()
	sl.Release(OutcomeOK)
}

func TestTenants(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Slots: 2, BreakerThreshold: 1})
	ha := b.mustGet(t, "a", 2, Interactive)
	b.mustGet(t, "c", 1, Interactive).Release(OutcomeTimeout) // idle, breaker open
	hb := b.mustGet(t, "b", 1, Interactive)
	b.mustWait(t, "b", 1, Batch, b.clk.Now().Add(far))
	got := b.s.Tenants()
	slices.SortFunc(got, func(x, y TenantStats) int { return strings.Compare(string(x.Tenant), string(y.Tenant)) })
	want := []TenantStats{
		{Tenant: "a", Weight: 2, InUse: 1, Cap: 2, Breaker: BreakerClosed},
		{Tenant: "b", Weight: 1, InUse: 1, Batch: 1, Cap: 2, Breaker: BreakerClosed},
		{Tenant: "c", Weight: 1, Cap: 1, Breaker: BreakerOpen},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Tenants() (-want +got):\n%s", diff)
	}
	if got := b.s.TenantStats("nobody"); got != (TenantStats{Tenant: "nobody"}) {
		t.Errorf("TenantStats(nobody) = %+v, want only Tenant set", got)
	}
	ha.Release(OutcomeOK)
	b.next(t).slot.Release(OutcomeOK)
	hb.Release(OutcomeOK)
}

func TestStrings(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ got, want string }{
		{Interactive.String(), "interactive"}, {Batch.String(), "batch"}, {Class(7).String(), "Class(7)"},
		{OutcomeOK.String(), "ok"}, {OutcomeTimeout.String(), "timeout"}, {OutcomeCanceled.String(), "canceled"},
		{Outcome(9).String(), "Outcome(9)"},
		{ShedDeadline.String(), "deadline"}, {ShedQueueFull.String(), "queue_full"}, {ShedReason(0).String(), "ShedReason(0)"},
		{BreakerClosed.String(), "closed"}, {BreakerOpen.String(), "open"}, {BreakerHalfOpen.String(), "half_open"},
		{BreakerState(5).String(), "BreakerState(5)"},
		{(&ShedError{Reason: ShedDeadline, RetryAfter: 2 * time.Second}).Error(), "fairq: shed (deadline), retry after 2s"},
	} {
		if tc.got != tc.want {
			t.Errorf("got %q, want %q", tc.got, tc.want)
		}
	}
}

// manualCtx is a context whose end the test decides.
type manualCtx struct {
	context.Context
	done chan struct{}
	mu   sync.Mutex
	err  error
}

func newManualCtx() *manualCtx {
	return &manualCtx{Context: context.Background(), done: make(chan struct{})}
}

func (c *manualCtx) Done() <-chan struct{} { return c.done }

func (c *manualCtx) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

func (c *manualCtx) finish(err error) {
	c.mu.Lock()
	c.err = err
	c.mu.Unlock()
	close(c.done)
}

// TestBatchReservation: batch work holds at most BatchSlots slots, even
// when more are free, so interactive requests always find one.
func TestBatchReservation(t *testing.T) {
	t.Parallel()

	b := setup(t, Config{Slots: 4, BatchSlots: 1})
	deadline := b.clk.Now().Add(far)
	batch := b.mustGet(t, "agg", 1, Batch)
	// Three slots are free, but batch work already holds its one.
	queued := b.mustWait(t, "agg", 1, Batch, deadline)
	b.mustWait(t, "other", 1, Batch, deadline)
	if st := b.s.Stats(); st.BatchSlots != 1 || st.BatchInUse != 1 || st.InUse != 1 {
		t.Fatalf("Stats() = BatchSlots %d, BatchInUse %d, InUse %d; want 1, 1, 1", st.BatchSlots, st.BatchInUse, st.InUse)
	}
	// Interactive requests of any tenant, the batch tenant's included, get
	// the other slots at once.
	var held []Slot
	for _, tid := range []tenant.ID{"victim", "victim", "agg"} {
		held = append(held, b.mustGet(t, tid, 1, Interactive))
	}
	// Releasing an interactive slot does not let batch work in…
	held[0].Release(OutcomeOK)
	held = held[1:]
	if st := b.s.Stats(); st.InUse != 3 || st.Waiting != 2 {
		t.Fatalf("after an interactive release: InUse %d, Waiting %d; want 3, 2 (batch still capped)", st.InUse, st.Waiting)
	}
	// …releasing the batch slot does, in fair order: agg queued first.
	batch.Release(OutcomeOK)
	if c := b.next(t); c != queued || c.err != nil {
		t.Fatalf("after the batch release granted %s/%s (err %v), want agg's queued batch request", c.tid, c.class, c.err)
	} else {
		held = append(held, c.slot)
	}
	if st := b.s.Stats(); st.BatchInUse != 1 || st.Waiting != 1 {
		t.Fatalf("Stats() = BatchInUse %d, Waiting %d; want 1, 1", st.BatchInUse, st.Waiting)
	}
	for _, h := range held {
		h.Release(OutcomeOK)
	}
	c := b.next(t) // other's batch request, now that the batch slot is free
	if c.tid != "other" || c.err != nil {
		t.Fatalf("granted %s (err %v), want other", c.tid, c.err)
	}
	c.slot.Release(OutcomeOK)
	if st := b.s.Stats(); st.BatchInUse != 0 {
		t.Errorf("BatchInUse = %d after every release, want 0", st.BatchInUse)
	}
	b.checkEmpty(t)
}

func TestBatchSlotsDefault(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ slots, batch, want int }{
		{1, 0, 1}, {4, 0, 1}, {8, 0, 2}, {16, 0, 4}, {4, 3, 3}, {4, 9, 4},
	} {
		s, err := New(Config{Slots: tc.slots, BatchSlots: tc.batch})
		if err != nil {
			t.Fatal(err)
		}
		if s.batchSlots != tc.want {
			t.Errorf("Slots %d, BatchSlots %d: batch slots = %d, want %d", tc.slots, tc.batch, s.batchSlots, tc.want)
		}
	}
	if _, err := New(Config{BatchSlots: -1}); err == nil || !strings.Contains(err.Error(), "BatchSlots ") {
		t.Errorf("New(BatchSlots -1) = %v, want an error naming BatchSlots", err)
	}
}

// TestMetrics reads the scheduler's metrics back through a Prometheus
// registry while slots are held, a request waits and one has been shed.
func TestMetrics(t *testing.T) {
	t.Parallel()
	b := setup(t, Config{Slots: 2, BatchSlots: 1})
	reg := prometheus.NewRegistry()
	reg.MustRegister(b.s)

	batch := b.mustGet(t, "a", 1, Batch)
	inter := b.mustGet(t, "b", 1, Interactive)
	shed := b.mustWait(t, "c", 1, Interactive, b.clk.Now().Add(time.Second))
	b.clk.Advance(time.Second)
	if c := b.next(t); c != shed || !errors.Is(c.err, ErrShed) {
		t.Fatalf("want c shed at its deadline, got %v", c.err)
	}
	b.mustWait(t, "c", 1, Interactive, b.clk.Now().Add(far))

	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]float64{}
	for _, mf := range mfs {
		for _, m := range mf.GetMetric() {
			name := mf.GetName()
			for _, l := range m.GetLabel() {
				name += "{" + l.GetValue() + "}"
			}
			switch {
			case m.GetGauge() != nil:
				got[name] = m.GetGauge().GetValue()
			case m.GetCounter() != nil:
				got[name] = m.GetCounter().GetValue()
			}
		}
	}
	want := map[string]float64{
		"bulkhead_scheduler_slots":                     2,
		"bulkhead_scheduler_slots_in_use{interactive}": 1,
		"bulkhead_scheduler_slots_in_use{batch}":       1,
		"bulkhead_scheduler_waiting":                   1,
		"bulkhead_scheduler_granted_total":             2,
		"bulkhead_scheduler_shed_total{deadline}":      1,
		"bulkhead_scheduler_shed_total{queue_full}":    0,
		"bulkhead_scheduler_canceled_total":            0,
		"bulkhead_scheduler_hold_seconds":              0,
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("metrics (-want +got):\n%s", diff)
	}
	batch.Release(OutcomeOK)
	inter.Release(OutcomeOK)
	if c := b.next(t); c.tid != "c" || c.err != nil {
		t.Fatalf("want c granted after the releases, got %s %v", c.tid, c.err)
	} else {
		c.slot.Release(OutcomeOK)
	}
}

// TestTenantReserve: by default no tenant may hold every slot, however much
// it asks for, so another tenant's request starts at once.
func TestTenantReserve(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct{ slots, maxTenant int }{{1, 1}, {2, 1}, {4, 3}, {8, 6}, {16, 12}} {
		t.Run(fmt.Sprint(tc.slots), func(t *testing.T) {
			b := newBundle(t, Config{Slots: tc.slots})
			if b.s.maxTenant != tc.maxTenant {
				t.Fatalf("MaxTenantSlots default with %d slots = %d, want %d", tc.slots, b.s.maxTenant, tc.maxTenant)
			}
			for range tc.maxTenant {
				b.mustGet(t, "hog", 1000, Interactive)
			}
			if tc.slots == 1 {
				return
			}
			b.mustWait(t, "hog", 1000, Interactive, b.clk.Now().Add(far))
			b.mustGet(t, "victim", 1, Interactive)
		})
	}
}
