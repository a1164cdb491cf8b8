package fairq

import (
	"context"
	"sort"
	"sync"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// fakeClock is a Clock that moves only when Advance is called. Timers fire
// from Advance, in the goroutine that calls it.
type fakeClock struct {
	mu     sync.Mutex
	now    time.Time
	timers []*fakeTimer
}

type fakeTimer struct {
	c    *fakeClock
	at   time.Time
	f    func()
	done bool // fired or stopped
}

func newFakeClock() *fakeClock {
	return &fakeClock{now: time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)}
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) AfterFunc(d time.Duration, f func()) Timer {
	c.mu.Lock()
	defer c.mu.Unlock()
	t := &fakeTimer{c: c, at: c.now.Add(d), f: f}
	c.timers = append(c.timers, t)
	return t
}

func (t *fakeTimer) Stop() bool {
	t.c.mu.Lock()
	defer t.c.mu.Unlock()
	if t.done {
		return false
	}
	t.done = true
	return true
}

// Advance moves the clock forward by d, firing each timer that comes due at
// its time, earliest first.
func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	end := c.now.Add(d)
	for {
		live := c.timers[:0]
		var due *fakeTimer
		for _, t := range c.timers {
			if t.done {
				continue
			}
			live = append(live, t)
			if !t.at.After(end) && (due == nil || t.at.Before(due.at)) {
				due = t
			}
		}
		c.timers = live
		if due == nil {
			break
		}
		due.done = true
		if due.at.After(c.now) {
			c.now = due.at
		}
		c.mu.Unlock()
		due.f()
		c.mu.Lock()
	}
	c.now = end
	c.mu.Unlock()
}

// testBundle is a Scheduler on a fake clock with its test hooks wired.
type testBundle struct {
	s       *Scheduler
	clk     *fakeClock
	queued  chan *waiter // one value per Acquire that starts to wait
	results chan *call   // one value per Acquire that returns

	mu     sync.Mutex
	grants []tenant.ID // in grant order
}

// call is one Acquire started by testBundle.start.
type call struct {
	tid    tenant.ID
	class  Class
	cancel context.CancelFunc

	// Set when Acquire returns; read them only after receiving the call
	// from results (or from start when it reports the call returned).
	slot Slot
	err  error
}

// setup is newBundle with a lone tenant free to take every slot, unless
// cfg says otherwise: most tests study sharing among tenants, and
// TestTenantReserve covers the default reserve.
func setup(t *testing.T, cfg Config) *testBundle {
	t.Helper()
	if cfg.MaxTenantSlots == 0 && cfg.Slots > 0 {
		cfg.MaxTenantSlots = cfg.Slots
	}
	return newBundle(t, cfg)
}

// newBundle returns a Scheduler configured by cfg, on a fake clock.
func newBundle(t *testing.T, cfg Config) *testBundle {
	t.Helper()
	clk := newFakeClock()
	cfg.Clock = clk
	s, err := New(cfg)
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	b := &testBundle{
		s:       s,
		clk:     clk,
		queued:  make(chan *waiter, 1<<14),
		results: make(chan *call, 1<<14),
	}
	s.hookQueued = func(w *waiter) { b.queued <- w }
	s.hookGranted = func(ts *tenantState) {
		b.mu.Lock()
		b.grants = append(b.grants, ts.id)
		b.mu.Unlock()
	}
	return b
}

const far = time.Hour

// start calls Acquire in a new goroutine and returns once that call has
// either returned (returned is true; c.slot and c.err are set) or started to
// wait.
func (b *testBundle) start(t *testing.T, tid tenant.ID, weight int, class Class, deadline time.Time) (c *call, returned bool) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	c = &call{tid: tid, class: class, cancel: cancel}
	t.Cleanup(cancel)
	go func() {
		c.slot, c.err = b.s.Acquire(ctx, tid, weight, class, deadline)
		b.results <- c
	}()
	select {
	case <-b.queued:
		return c, false
	case r := <-b.results:
		if r != c {
			t.Fatalf("start(%s): another call returned first", tid)
		}
		return c, true
	case <-time.After(10 * time.Second): // a hang guard, not a timing assertion
		t.Fatalf("start(%s): Acquire neither returned nor queued", tid)
	}
	return nil, false
}

// mustGet acquires at once and fails the test if Acquire had to wait or
// failed.
func (b *testBundle) mustGet(t *testing.T, tid tenant.ID, weight int, class Class) Slot {
	t.Helper()
	c, returned := b.start(t, tid, weight, class, b.clk.Now().Add(far))
	if !returned {
		t.Fatalf("Acquire(%s) waits, want an immediate slot", tid)
	}
	if c.err != nil {
		t.Fatalf("Acquire(%s) = %v, want a slot", tid, c.err)
	}
	return c.slot
}

// mustWait starts an Acquire that must queue.
func (b *testBundle) mustWait(t *testing.T, tid tenant.ID, weight int, class Class, deadline time.Time) *call {
	t.Helper()
	c, returned := b.start(t, tid, weight, class, deadline)
	if returned {
		t.Fatalf("Acquire(%s) returned (err %v), want it to wait", tid, c.err)
	}
	return c
}

// next receives the next call to return.
func (b *testBundle) next(t *testing.T) *call {
	t.Helper()
	select {
	case c := <-b.results:
		return c
	case <-time.After(10 * time.Second): // a hang guard, not a timing assertion
		t.Fatal("no Acquire returned")
	}
	return nil
}

// grantLog returns the tenants granted so far, in order.
func (b *testBundle) grantLog() []tenant.ID {
	b.mu.Lock()
	defer b.mu.Unlock()
	return append([]tenant.ID(nil), b.grants...)
}

// checkEmpty fails unless the scheduler holds no slot, no waiter and no
// tenant state.
func (b *testBundle) checkEmpty(t *testing.T) {
	t.Helper()
	st := b.s.Stats()
	if st.InUse != 0 || st.Waiting != 0 || st.Tenants != 0 {
		t.Fatalf("Stats() = InUse %d, Waiting %d, Tenants %d; want all 0", st.InUse, st.Waiting, st.Tenants)
	}
	b.s.mu.Lock()
	defer b.s.mu.Unlock()
	if len(b.s.tenants) != 0 || len(b.s.deadlines) != 0 || len(b.s.linger) != 0 || b.s.activeWeight != 0 ||
		b.s.waitingTenants != 0 || b.s.rings[Interactive].n != 0 || b.s.rings[Batch].n != 0 {
		t.Fatalf("scheduler not empty: tenants %d, deadlines %d, linger %d, W %d, waitingTenants %d, rings %d/%d",
			len(b.s.tenants), len(b.s.deadlines), len(b.s.linger), b.s.activeWeight, b.s.waitingTenants,
			b.s.rings[Interactive].n, b.s.rings[Batch].n)
	}
}

func counts(ids []tenant.ID) map[tenant.ID]int {
	m := make(map[tenant.ID]int)
	for _, id := range ids {
		m[id]++
	}
	return m
}

func sortedKeys(m map[tenant.ID]int) []tenant.ID {
	ks := make([]tenant.ID, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}
