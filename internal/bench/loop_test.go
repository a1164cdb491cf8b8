package bench

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// autoClock is a fake clock that jumps to whatever time is slept until:
// the arrivals of a run happen at once, in order.
type autoClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *autoClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *autoClock) SleepUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	if t.After(c.now) {
		c.now = t
	}
	c.mu.Unlock()
	return ctx.Err()
}

// stepClock is a fake clock that only the test moves: SleepUntil blocks
// until Advance passes its time.
type stepClock struct {
	mu       sync.Mutex
	cond     *sync.Cond
	now      time.Time
	sleepers int
}

func newStepClock() *stepClock {
	c := &stepClock{now: time.Unix(1_000_000, 0)}
	c.cond = sync.NewCond(&c.mu)
	return c
}

func (c *stepClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *stepClock) SleepUntil(ctx context.Context, t time.Time) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.sleepers++
	c.cond.Broadcast()
	for c.now.Before(t) {
		c.cond.Wait()
	}
	c.sleepers--
	return ctx.Err()
}

func (c *stepClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.cond.Broadcast()
	c.mu.Unlock()
}

// waitSleeping waits until the dispatcher sleeps for its next arrival.
func (c *stepClock) waitSleeping(t *testing.T) {
	t.Helper()
	c.mu.Lock()
	defer c.mu.Unlock()
	for c.sleepers == 0 {
		c.cond.Wait()
	}
}

// eventually polls cond; it waits for goroutines, not for time to pass in
// the code under test, whose clock is fake.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for range 10_000 {
		if cond() {
			return
		}
		time.Sleep(time.Millisecond)
	}
	t.Fatalf("gave up waiting for %s", what)
}

// statusFor is the fake transport's answer to request seq.
func statusFor(seq int64) (int, error) {
	switch seq % 10 {
	case 6:
		return 429, nil
	case 7:
		return 503, nil
	case 8:
		return 404, nil
	case 9:
		return 0, errors.New("connection refused")
	}
	return 200, nil
}

func TestRunAccounting(t *testing.T) {
	clock := &autoClock{now: time.Unix(1_000_000, 0)}
	var calls atomic.Int64
	rn := &Runner{Clock: clock, Timeout: time.Hour}
	res := rn.Run(context.Background(), 2500*time.Millisecond, &Stream{Name: "s", Rate: 40, Workers: 1000,
		SendFunc: func(ctx context.Context, seq int64) (int, error) {
			calls.Add(1)
			return statusFor(seq)
		}})
	r := res[0]
	// 40/s for 2.5s: 100 arrivals, at 0, 25ms, …, 2475ms.
	want := Result{Name: "s", OfferedRate: 40, DurationSec: 2.5, Scheduled: 100, Sent: 100,
		OK: 60, Limited: 10, Shed: 10, ClientErrors: 10, TransportErrors: 10, FirstError: "connection refused"}
	got := *r
	if n := got.LimitedServiceLatency.Count(); n != got.Limited {
		t.Errorf("LimitedServiceLatency holds %d answers, want the %d 429s", n, got.Limited)
	}
	got.Latency, got.OKLatency, got.LimitedLatency, got.SendLag, got.OKPerSecond, got.ElapsedSec = nil, nil, nil, nil, nil, 0
	got.LimitedServiceLatency = nil
	if diff := cmp.Diff(map[int]int64{200: 60, 429: 10, 503: 10, 404: 10}, got.Statuses); diff != "" {
		t.Errorf("Statuses mismatch (-want +got):\n%s", diff)
	}
	got.Statuses = nil
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("Run() mismatch (-want +got):\n%s", diff)
	}
	if calls.Load() != 100 {
		t.Errorf("Send called %d times, want 100", calls.Load())
	}
	var perSecond int64
	for _, n := range r.OKPerSecond {
		perSecond += n
	}
	if len(r.OKPerSecond) != 3 || perSecond != 60 {
		t.Errorf("OKPerSecond = %v, want 3 seconds adding up to 60", r.OKPerSecond)
	}
	if r.Latency.Count() != 100 || r.OKLatency.Count() != 60 || r.LimitedLatency.Count() != 10 || r.SendLag.Count() != 100 {
		t.Errorf("histogram counts = %d, %d, %d, %d; want 100, 60, 10, 100",
			r.Latency.Count(), r.OKLatency.Count(), r.LimitedLatency.Count(), r.SendLag.Count())
	}
	if r.Errors() != 40 {
		t.Errorf("Errors() = %d, want 40", r.Errors())
	}
}

// A request due while every worker is busy is counted late, sent when a
// worker frees, and its latency counts from its due time; the dispatcher
// does not slow down: the next arrival keeps its schedule.
func TestLateRequestLatencyCountsFromDueTime(t *testing.T) {
	clock := newStepClock()
	release := make(chan struct{})
	var sentAt sync.Map // seq → fake time it reached the transport
	rn := &Runner{Clock: clock, Timeout: time.Hour}
	run := rn.Start(context.Background(), 400*time.Millisecond, &Stream{Name: "s", Rate: 10, Workers: 1,
		SendFunc: func(ctx context.Context, seq int64) (int, error) {
			sentAt.Store(seq, clock.Now())
			if seq == 0 {
				<-release // the server stalls on the first request
			}
			return 200, nil
		}})
	start := clock.Now()

	clock.waitSleeping(t) // waiting for 100ms
	eventually(t, "request 0 to reach the transport", func() bool { _, ok := sentAt.Load(int64(0)); return ok })
	clock.Advance(100 * time.Millisecond)
	eventually(t, "request 1 to be counted late", func() bool { return run.Totals().Late == 1 })
	clock.Advance(90 * time.Millisecond) // the stall goes on to 190ms
	close(release)
	clock.waitSleeping(t) // request 1 went out at 190ms; waiting for 200ms
	eventually(t, "requests 0 and 1 to finish", func() bool { return run.Totals().Done == 2 })
	clock.Advance(10 * time.Millisecond) // 200ms: request 2, on time
	clock.waitSleeping(t)
	eventually(t, "request 2 to finish", func() bool { return run.Totals().Done == 3 })
	clock.Advance(100 * time.Millisecond) // 300ms: request 3, on time
	r := run.Wait()[0]

	if r.Sent != 4 || r.Late != 1 || r.OK != 4 {
		t.Errorf("Sent, Late, OK = %d, %d, %d; want 4, 1, 4", r.Sent, r.Late, r.OK)
	}
	for seq, want := range []time.Duration{0, 190 * time.Millisecond, 200 * time.Millisecond, 300 * time.Millisecond} {
		if v, _ := sentAt.Load(int64(seq)); v.(time.Time).Sub(start) != want {
			t.Errorf("request %d sent at %v, want %v", seq, v.(time.Time).Sub(start), want)
		}
	}
	// Latencies from due times: 190ms (the stall), 90ms (request 1 waited
	// from 100ms to 190ms for the worker), 0 and 0.
	if got := r.Latency.Max(); got != 190*time.Millisecond {
		t.Errorf("max latency = %v, want 190ms", got)
	}
	if got := r.Latency.Quantile(0.75); !within(got, 90*time.Millisecond) {
		t.Errorf("p75 latency = %v, want 90ms: the wait for a worker counts", got)
	}
	if got := r.Latency.Quantile(0.5); got != 0 {
		t.Errorf("p50 latency = %v, want 0", got)
	}
	if got := r.SendLag.Max(); got != 90*time.Millisecond {
		t.Errorf("max send lag = %v, want 90ms", got)
	}
}

// A request that waits its whole timeout for a worker fails as expired and
// never reaches the transport.
func TestExpiredRequestIsNotSent(t *testing.T) {
	clock := newStepClock()
	release := make(chan struct{})
	var sent []int64
	var mu sync.Mutex
	rn := &Runner{Clock: clock, Timeout: 50 * time.Millisecond}
	run := rn.Start(context.Background(), 200*time.Millisecond, &Stream{Name: "s", Rate: 10, Workers: 1,
		SendFunc: func(ctx context.Context, seq int64) (int, error) {
			mu.Lock()
			sent = append(sent, seq)
			mu.Unlock()
			if seq == 0 {
				<-release // ignores ctx: the fake server answers late
			}
			return 200, nil
		}})
	clock.waitSleeping(t)
	eventually(t, "request 0 to reach the transport", func() bool { mu.Lock(); defer mu.Unlock(); return len(sent) == 1 })
	clock.Advance(100 * time.Millisecond) // request 1 due; the worker is busy
	eventually(t, "request 1 to be counted late", func() bool { return run.Totals().Late == 1 })
	clock.Advance(80 * time.Millisecond) // 180ms: past request 1's 150ms deadline
	close(release)
	r := run.Wait()[0]
	if r.Sent != 2 || r.Late != 1 || r.OK != 1 || r.TransportErrors != 1 || r.Timeouts != 1 || r.Expired != 1 {
		t.Errorf("Sent, Late, OK, TransportErrors, Timeouts, Expired = %d, %d, %d, %d, %d, %d; want 2, 1, 1, 1, 1, 1",
			r.Sent, r.Late, r.OK, r.TransportErrors, r.Timeouts, r.Expired)
	}
	if !slices.Equal(sent, []int64{0}) {
		t.Errorf("transport saw requests %v, want only 0", sent)
	}
	if got := r.Latency.Quantile(0); got != 80*time.Millisecond {
		t.Errorf("expired request's latency = %v, want 80ms (due at 100ms, given up at 180ms)", got)
	}
}

// Arrivals still waiting for a worker when the window ends are not sent:
// they fail as unsent, with the time they waited as their latency.
func TestUnsentAtWindowEnd(t *testing.T) {
	clock := newStepClock()
	release := make(chan struct{})
	var calls atomic.Int64
	rn := &Runner{Clock: clock, Timeout: time.Hour}
	run := rn.Start(context.Background(), 300*time.Millisecond, &Stream{Name: "s", Rate: 10, Workers: 1,
		SendFunc: func(ctx context.Context, seq int64) (int, error) {
			calls.Add(1)
			if seq == 0 {
				<-release
			}
			return 200, nil
		}})
	clock.waitSleeping(t)
	eventually(t, "request 0 to reach the transport", func() bool { return calls.Load() == 1 })
	clock.Advance(100 * time.Millisecond) // request 1 due; the worker is busy
	eventually(t, "request 1 to be counted late", func() bool { return run.Totals().Late == 1 })
	clock.Advance(250 * time.Millisecond) // 350ms: the window ended at 300ms
	close(release)
	r := run.Wait()[0]
	if r.Scheduled != 3 || r.Sent != 1 || r.Unsent != 2 || r.Late != 2 || r.OK != 1 || r.Errors() != 2 {
		t.Errorf("Scheduled, Sent, Unsent, Late, OK, Errors = %d, %d, %d, %d, %d, %d; want 3, 1, 2, 2, 1, 2",
			r.Scheduled, r.Sent, r.Unsent, r.Late, r.OK, r.Errors())
	}
	if calls.Load() != 1 {
		t.Errorf("transport called %d times, want once", calls.Load())
	}
	// Latencies: 350ms (request 0), 250ms and 150ms (waited from 100ms and
	// 200ms to 350ms).
	if r.Latency.Count() != 3 || r.Latency.Max() != 350*time.Millisecond || r.Latency.Min() != 150*time.Millisecond ||
		!within(r.Latency.Quantile(0.5), 250*time.Millisecond) {
		t.Errorf("latencies: count %d, min %v, p50 %v, max %v; want 3, 150ms, 250ms, 350ms",
			r.Latency.Count(), r.Latency.Min(), r.Latency.Quantile(0.5), r.Latency.Max())
	}
	if tot := run.Totals(); tot.Errors != 2 || tot.Late != 2 {
		t.Errorf("Totals() = %+v, want 2 errors and 2 late", tot)
	}
}

func TestClosedLoop(t *testing.T) {
	clock := &autoClock{now: time.Unix(1_000_000, 0)}
	rn := &Runner{Clock: clock, Timeout: time.Hour}
	var n atomic.Int64
	res := rn.Run(context.Background(), time.Second, &Stream{Name: "closed", Workers: 3,
		SendFunc: func(ctx context.Context, seq int64) (int, error) {
			if n.Add(1) == 50 {
				clock.SleepUntil(ctx, clock.Now().Add(time.Second)) // the window ends
			}
			return 200, nil
		}})
	r := res[0]
	if r.Sent != r.OK || r.Sent < 50 || r.Scheduled != r.Sent || r.Late != 0 {
		t.Errorf("closed loop: Scheduled, Sent, OK, Late = %d, %d, %d, %d; want Sent = OK = Scheduled ≥ 50, no Late",
			r.Scheduled, r.Sent, r.OK, r.Late)
	}
}

func TestResultMergeAndSteadyRate(t *testing.T) {
	a := &Result{OfferedRate: 10, DurationSec: 4, Sent: 40, OK: 30, Limited: 10, OKPerSecond: []int64{20, 5, 3, 2},
		Latency: new(Histogram), OKLatency: new(Histogram), LimitedLatency: new(Histogram), SendLag: new(Histogram)}
	a.Latency.Record(time.Millisecond)
	b := &Result{OfferedRate: 5, DurationSec: 4, Sent: 20, OK: 20, OKPerSecond: []int64{5, 5, 5, 5},
		Latency: new(Histogram), OKLatency: new(Histogram), LimitedLatency: new(Histogram), SendLag: new(Histogram)}
	m := merged("m", []*Result{a, b})
	if m.OfferedRate != 15 || m.Sent != 60 || m.OK != 50 || m.Limited != 10 || !slices.Equal(m.OKPerSecond, []int64{25, 10, 8, 7}) || m.Latency.Count() != 1 {
		t.Errorf("merged = %+v", m)
	}
	// The burst of the first second is left out: (5+3+2)/3s.
	if got := steadyRate(a, 4*time.Second); got != 10.0/3 {
		t.Errorf("steadyRate = %v, want %v", got, 10.0/3)
	}
}

// coarseClock is an autoClock that counts the sleeps of each kind.
type coarseClock struct {
	autoClock
	precise, coarse atomic.Int64
}

func (c *coarseClock) SleepUntil(ctx context.Context, t time.Time) error {
	c.precise.Add(1)
	return c.autoClock.SleepUntil(ctx, t)
}

func (c *coarseClock) SleepUntilCoarse(ctx context.Context, t time.Time) error {
	c.coarse.Add(1)
	return c.autoClock.SleepUntil(ctx, t)
}

func TestCoarseStreamSleepsWithoutSpinning(t *testing.T) {
	clock := &coarseClock{autoClock: autoClock{now: time.Unix(1_000_000, 0)}}
	ok := func(context.Context, int64) (int, error) { return 200, nil }
	rn := &Runner{Clock: clock, Timeout: time.Hour}
	res := rn.Run(context.Background(), time.Second,
		&Stream{Name: "precise", Rate: 10, SendFunc: ok},
		&Stream{Name: "coarse", Rate: 30, Coarse: true, SendFunc: ok})
	if res[0].OK != 10 || res[1].OK != 30 {
		t.Fatalf("OK = %d, %d; want 10, 30", res[0].OK, res[1].OK)
	}
	if p, c := clock.precise.Load(), clock.coarse.Load(); p != 10 || c != 30 {
		t.Errorf("precise, coarse sleeps = %d, %d; want 10, 30", p, c)
	}
}

// A StopAtEnd stream's requests still in flight when its window ends are
// cancelled and counted Cut; a connection closed without an answer counts
// as Closed; the stream's own Timeout replaces the Runner's.
func TestStopAtEndCutsRequestsInFlight(t *testing.T) {
	clock := newStepClock()
	// The Runner's timeout would fail the held requests at once: the
	// stream's own must be the one used.
	rn := &Runner{Clock: clock, Timeout: time.Nanosecond}
	run := rn.Start(context.Background(), time.Second, &Stream{Name: "holder", Workers: 2, StopAtEnd: true, Timeout: time.Hour,
		SendFunc: func(ctx context.Context, seq int64) (int, error) {
			switch seq {
			case 0:
				return 0, fmt.Errorf("read answer: %w", errUnanswered)
			case 1:
				return 429, nil
			}
			<-ctx.Done() // holds its connection for as long as it may
			return 0, ctx.Err()
		}})
	eventually(t, "both workers to hold a request", func() bool { return run.Totals().Sent == 4 })
	clock.Advance(time.Second)
	r := run.Wait()[0]
	if r.Sent != 4 || r.Limited != 1 || r.TransportErrors != 3 || r.Closed != 1 || r.Cut != 2 || r.Timeouts != 0 {
		t.Errorf("Sent, Limited, TransportErrors, Closed, Cut, Timeouts = %d, %d, %d, %d, %d, %d; want 4, 1, 3, 1, 2, 0",
			r.Sent, r.Limited, r.TransportErrors, r.Closed, r.Cut, r.Timeouts)
	}
	if got, want := errorsText(r), "1 429, 1 closed unanswered, 2 cut at end"; got != want {
		t.Errorf("errorsText = %q, want %q", got, want)
	}
}
