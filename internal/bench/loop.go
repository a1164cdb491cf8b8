package bench

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Clock is the time source of a Runner. Now must be monotonic.
type Clock interface {
	Now() time.Time
	// SleepUntil returns when t has come, or ctx's error if ctx ends first.
	SleepUntil(ctx context.Context, t time.Time) error
}

// realClock sleeps on a timer until spinWindow before the time asked for,
// then yields the processor in a loop until it: Go's timers alone wake up to
// a millisecond or more late, which would add that much to every latency
// measured from a due time. The loop yields, so it takes no CPU from
// goroutines that have work.
type realClock struct{}

const spinWindow = time.Millisecond

// Now returns the wall and monotonic time.
func (realClock) Now() time.Time { return time.Now() }

// SleepUntilCoarse sleeps on a timer alone until t: no CPU spent spinning,
// at the cost of waking up to a timer tick late.
func (realClock) SleepUntilCoarse(ctx context.Context, t time.Time) error {
	if d := time.Until(t); d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
		}
	}
	return ctx.Err()
}

// coarseSleeper is a Clock that can also sleep without precision.
type coarseSleeper interface {
	SleepUntilCoarse(ctx context.Context, t time.Time) error
}

// SleepUntil sleeps, then spins, until t.
func (realClock) SleepUntil(ctx context.Context, t time.Time) error {
	if d := time.Until(t) - spinWindow; d > 0 {
		timer := time.NewTimer(d)
		select {
		case <-timer.C:
		case <-ctx.Done():
			timer.Stop()
			return ctx.Err()
		}
	}
	for time.Now().Before(t) {
		if err := ctx.Err(); err != nil {
			return err
		}
		runtime.Gosched()
	}
	return ctx.Err()
}

// SendFunc sends request number seq of a stream and returns the HTTP status
// of the answer, having read its body, or an error when no answer came. ctx
// ends at the request's deadline. It is called from many goroutines.
type SendFunc func(ctx context.Context, seq int64) (status int, err error)

// Stream is one arrival process: requests due at fixed times, sent by a
// bounded pool of workers.
type Stream struct {
	// Name identifies the stream in results and progress.
	Name string
	// Rate is the arrival rate in requests per second: request i is due at
	// start + i/Rate whatever became of earlier ones (open loop). Zero
	// means closed loop: Workers send back to back, and latency counts from
	// the actual send, so a stall hides the requests it delayed.
	Rate float64
	// Workers bounds the requests in flight (and so the connections the
	// stream needs). A request due while all are busy is counted Late and
	// sent as soon as one frees; its latency still counts from its due
	// time. Defaults to 64.
	Workers int
	// SendFunc sends one request.
	SendFunc SendFunc
	// Coarse sends on the timer alone, without spinning through the last
	// millisecond before each due time. A precise stream of rate r spins
	// for up to r milliseconds a second; at 1,000/s that is a processor's
	// whole time, taken from the server when both share the machine. Coarse
	// suits a flood whose own latency is not the measurement: its requests
	// go out up to a timer tick late, and their latency still counts from
	// the due time (LimitedServiceLatency, from the send, leaves the lag out).
	Coarse bool
	// Timeout bounds this stream's requests instead of the Runner's, for
	// aggressors whose requests last as long as the server lets them.
	// Zero means the Runner's.
	Timeout time.Duration
	// StopAtEnd cancels the requests still in flight when the arrival
	// window ends, and counts them Cut, so that an aggressor holding
	// connections open does not outlast its phase. Without it, requests
	// sent in the window run to their answer or their timeout.
	StopAtEnd bool
}

// Runner runs streams side by side for a fixed duration. Its zero value
// uses the real clock and a 10s timeout.
type Runner struct {
	// Clock defaults to the real monotonic clock.
	Clock Clock
	// Timeout bounds each request, counted from its due time, so a backlog
	// drains within Timeout after the run ends. Defaults to 10s.
	Timeout time.Duration
}

// Result is what one stream did during a run. Once the run has finished,
// Sent + Unsent = Scheduled (unless it was cancelled), and the status
// classes partition Sent: OK + Limited + Shed + ClientErrors + ServerErrors
// + OtherStatus + TransportErrors = Sent.
type Result struct {
	// Name is the Stream's.
	Name string `json:"name"`
	// OfferedRate is the Stream's Rate; zero for closed loop.
	OfferedRate float64 `json:"offered_rate"`
	// DurationSec is the length of the arrival window.
	DurationSec float64 `json:"duration_s"`
	// Scheduled counts the requests due in the window; Sent those handed
	// to a worker. Unsent counts those still waiting for a worker when the
	// window ended: they are never sent, so that a backlog does not load
	// the server after the window, and count as failures whose latency is
	// at least the time they waited (it is recorded as that).
	Scheduled int64 `json:"scheduled"`
	Sent      int64 `json:"sent"`
	Unsent    int64 `json:"unsent"`
	// Late counts requests due while every worker was busy: sent late
	// (the wait counted in their latency), or Unsent.
	Late int64 `json:"late"`

	// The answers by status class: 2xx, 429, 503, other 4xx, other 5xx
	// and anything else (1xx, 3xx).
	OK           int64 `json:"ok_2xx"`
	Limited      int64 `json:"limited_429"`
	Shed         int64 `json:"shed_503"`
	ClientErrors int64 `json:"other_4xx"`
	ServerErrors int64 `json:"other_5xx"`
	OtherStatus  int64 `json:"other_status"`
	// TransportErrors counts requests without an answer; Timeouts of them
	// ran past Timeout, and Expired of those waited out their whole
	// Timeout for a worker and were never sent.
	TransportErrors int64 `json:"transport_errors"`
	Timeouts        int64 `json:"timeouts"`
	Expired         int64 `json:"expired_unsent"`
	// Closed counts the requests whose connection the server closed
	// without an answer, and Cut those a StopAtEnd stream still had in
	// flight at the end of its window; both are among TransportErrors.
	Closed int64 `json:"closed_unanswered"`
	Cut    int64 `json:"cut_at_end"`
	// FirstError is the text of the first transport error, for diagnosis.
	FirstError string `json:"first_error,omitempty"`
	// Statuses counts the answers by HTTP status code.
	Statuses map[int]int64 `json:"statuses,omitempty"`

	// ElapsedSec runs from the start to the last answer.
	ElapsedSec float64 `json:"elapsed_s"`
	// OKPerSecond counts 2xx answers by the second of the window their
	// request was sent in: the rate the server admitted them at.
	OKPerSecond []int64 `json:"ok_per_second"`

	// Latency covers every request, answered or not, from its due time to
	// its answer (or failure). OKLatency and LimitedLatency cover the 2xx
	// and 429 answers. SendLag is how long after its due time each request
	// started: the generator's own delay, included in Latency.
	// LimitedServiceLatency covers the 429 answers from their send instead:
	// how long the server took to refuse, without the generator's lag.
	Latency               *Histogram `json:"-"`
	OKLatency             *Histogram `json:"-"`
	LimitedLatency        *Histogram `json:"-"`
	SendLag               *Histogram `json:"-"`
	LimitedServiceLatency *Histogram `json:"-"`
}

// Errors returns the requests that did not get a 2xx answer, the unsent
// ones included.
func (r *Result) Errors() int64 { return r.Sent + r.Unsent - r.OK }

// Throughput returns 2xx answers per second of the arrival window.
func (r *Result) Throughput() float64 {
	if r.DurationSec <= 0 {
		return 0
	}
	return float64(r.OK) / r.DurationSec
}

// Merge adds o's counts and histograms to r, for aggregates over streams.
// Rates add up; durations take the longer.
func (r *Result) Merge(o *Result) {
	r.OfferedRate += o.OfferedRate
	r.DurationSec = max(r.DurationSec, o.DurationSec)
	r.ElapsedSec = max(r.ElapsedSec, o.ElapsedSec)
	r.Scheduled += o.Scheduled
	r.Sent += o.Sent
	r.Unsent += o.Unsent
	r.Late += o.Late
	r.OK += o.OK
	r.Limited += o.Limited
	r.Shed += o.Shed
	r.ClientErrors += o.ClientErrors
	r.ServerErrors += o.ServerErrors
	r.OtherStatus += o.OtherStatus
	r.TransportErrors += o.TransportErrors
	r.Timeouts += o.Timeouts
	r.Expired += o.Expired
	r.Closed += o.Closed
	r.Cut += o.Cut
	if r.FirstError == "" {
		r.FirstError = o.FirstError
	}
	for code, n := range o.Statuses {
		if r.Statuses == nil {
			r.Statuses = make(map[int]int64)
		}
		r.Statuses[code] += n
	}
	for i, n := range o.OKPerSecond {
		if i >= len(r.OKPerSecond) {
			r.OKPerSecond = append(r.OKPerSecond, 0)
		}
		r.OKPerSecond[i] += n
	}
	for _, p := range []struct{ dst, src **Histogram }{
		{&r.Latency, &o.Latency}, {&r.OKLatency, &o.OKLatency},
		{&r.LimitedLatency, &o.LimitedLatency}, {&r.SendLag, &o.SendLag},
		{&r.LimitedServiceLatency, &o.LimitedServiceLatency},
	} {
		if *p.dst == nil {
			*p.dst = new(Histogram)
		}
		(*p.dst).Merge(*p.src)
	}
}

// Totals are live counters over all streams of a run, for progress: the
// requests sent and those finished, the finished ones by outcome (2xx, 429,
// 503, anything else including no answer), and the late ones.
type Totals struct {
	Sent, Done                int64
	OK, Limited, Shed, Errors int64
	Late                      int64
}

// Run is a run in progress.
type Run struct {
	start   time.Time
	d       time.Duration
	clock   Clock
	streams []*streamRun
	done    chan struct{}
}

type streamRun struct {
	s       *Stream
	timeout time.Duration
	clock   Clock
	start   time.Time

	// Live counters, read by Totals while the run goes on.
	sent, done, ok, limited, shed, errs, late atomic.Int64

	mu  sync.Mutex
	res Result
}

// Start starts streams now and returns at once. Each stream's arrivals stop
// after d; the run ends when every request sent has been answered or has
// timed out. Cancelling ctx stops arrivals and cancels requests in flight.
func (rn *Runner) Start(ctx context.Context, d time.Duration, streams ...*Stream) *Run {
	clock := rn.Clock
	if clock == nil {
		clock = realClock{}
	}
	timeout := rn.Timeout
	if timeout <= 0 {
		timeout = 10 * time.Second
	}
	run := &Run{start: clock.Now(), d: d, clock: clock, done: make(chan struct{})}
	secs := int(math.Ceil(d.Seconds()))
	var wg sync.WaitGroup
	for _, s := range streams {
		sr := &streamRun{s: s, timeout: cmp.Or(s.Timeout, timeout), clock: clock, start: run.start}
		sr.res = Result{
			Name: s.Name, OfferedRate: s.Rate, DurationSec: d.Seconds(),
			OKPerSecond: make([]int64, max(secs, 1)),
			Latency:     new(Histogram), OKLatency: new(Histogram), LimitedLatency: new(Histogram),
			SendLag: new(Histogram), LimitedServiceLatency: new(Histogram), Statuses: make(map[int]int64),
		}
		run.streams = append(run.streams, sr)
		wg.Go(func() { sr.run(ctx, d) })
	}
	go func() {
		wg.Wait()
		close(run.done)
	}()
	return run
}

// Done is closed when the run has ended.
func (r *Run) Done() <-chan struct{} { return r.done }

// Elapsed returns the time since the run started.
func (r *Run) Elapsed() time.Duration { return r.clock.Now().Sub(r.start) }

// Duration returns the length of the arrival window.
func (r *Run) Duration() time.Duration { return r.d }

// Totals returns the live counters summed over the streams.
func (r *Run) Totals() Totals {
	var t Totals
	for _, s := range r.streams {
		t.Sent += s.sent.Load()
		t.Done += s.done.Load()
		t.OK += s.ok.Load()
		t.Limited += s.limited.Load()
		t.Shed += s.shed.Load()
		t.Errors += s.errs.Load()
		t.Late += s.late.Load()
	}
	return t
}

// Wait waits for the run to end and returns one Result per stream, in the
// order they were given to Start.
func (r *Run) Wait() []*Result {
	<-r.done
	out := make([]*Result, len(r.streams))
	for i, s := range r.streams {
		s.mu.Lock()
		res := s.res
		s.mu.Unlock()
		out[i] = &res
	}
	return out
}

// Run runs streams for d and returns their results: Start followed by Wait.
func (rn *Runner) Run(ctx context.Context, d time.Duration, streams ...*Stream) []*Result {
	return rn.Start(ctx, d, streams...).Wait()
}

func (sr *streamRun) run(ctx context.Context, d time.Duration) {
	workers := sr.s.Workers
	if workers <= 0 {
		workers = 64
	}
	if sr.s.StopAtEnd {
		var cancel context.CancelCauseFunc
		ctx, cancel = context.WithCancelCause(ctx)
		defer cancel(nil)
		go func() {
			if sr.sleepCoarse(ctx, sr.start.Add(d)) == nil {
				cancel(errCut)
			}
		}()
	}
	if sr.s.Rate <= 0 {
		sr.closedLoop(ctx, d, workers)
		return
	}
	// The semaphore holds one token per busy worker. A goroutine per
	// request, bounded by it, is a worker pool without idle goroutines.
	sem := make(chan struct{}, workers)
	var wg sync.WaitGroup
	interval := float64(time.Second) / sr.s.Rate
	n := int64(math.Ceil(float64(d) / interval))
	end := sr.start.Add(d)
	sr.mu.Lock()
	sr.res.Scheduled = n
	sr.mu.Unlock()
	sleep := sr.clock.SleepUntil
	if sr.s.Coarse {
		sleep = sr.sleepCoarse
	}
loop:
	for i := range n {
		due := sr.start.Add(time.Duration(float64(i) * interval))
		if sleep(ctx, due) != nil {
			break
		}
		select {
		case sem <- struct{}{}:
		default:
			// Every worker is busy: the request cannot go out on time. It
			// waits for a worker, and the wait counts in its latency.
			sr.late.Add(1)
			select {
			case sem <- struct{}{}:
			case <-ctx.Done():
				if errors.Is(context.Cause(ctx), errCut) {
					sr.abandon(i, n, interval, sr.clock.Now())
				}
				break loop
			}
			if now := sr.clock.Now(); !now.Before(end) {
				<-sem
				sr.abandon(i, n, interval, now)
				break loop
			}
		}
		sr.sent.Add(1)
		wg.Add(1)
		go func() {
			sr.do(ctx, i, due)
			// Free the worker before counting the request done, so that
			// whoever sees Done advance also finds the worker free.
			<-sem
			sr.done.Add(1)
			wg.Done()
		}()
	}
	wg.Wait()
	sr.finish()
}

func (sr *streamRun) closedLoop(ctx context.Context, d time.Duration, workers int) {
	end := sr.start.Add(d)
	var next atomic.Int64
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for ctx.Err() == nil {
				now := sr.clock.Now()
				if !now.Before(end) {
					return
				}
				sr.sent.Add(1)
				sr.do(ctx, next.Add(1)-1, now)
				sr.done.Add(1)
			}
		})
	}
	wg.Wait()
	sr.mu.Lock()
	sr.res.Scheduled = sr.sent.Load()
	sr.mu.Unlock()
	sr.finish()
}

// sleepCoarse sleeps until t on the clock's timer alone when it can.
func (sr *streamRun) sleepCoarse(ctx context.Context, t time.Time) error {
	if c, ok := sr.clock.(coarseSleeper); ok {
		return c.SleepUntilCoarse(ctx, t)
	}
	return sr.clock.SleepUntil(ctx, t)
}

// abandon records arrivals from..n-1, all overdue at now, as unsent.
func (sr *streamRun) abandon(from, n int64, interval float64, now time.Time) {
	sr.errs.Add(n - from)
	sr.late.Add(n - from - 1) // the first was counted already
	sr.mu.Lock()
	defer sr.mu.Unlock()
	sr.res.Unsent += n - from
	for i := from; i < n; i++ {
		sr.res.Latency.Record(now.Sub(sr.start.Add(time.Duration(float64(i) * interval))))
	}
	sr.res.ElapsedSec = max(sr.res.ElapsedSec, now.Sub(sr.start).Seconds())
}

func (sr *streamRun) finish() {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	sr.res.Sent = sr.sent.Load()
	sr.res.Late = sr.late.Load()
}

// errExpired fails a request that waited its whole timeout for a worker.
var errExpired = fmt.Errorf("waited the whole timeout for a free worker: %w", context.DeadlineExceeded)

// errCut fails the requests a StopAtEnd stream cancels at the end of its
// window.
var errCut = errors.New("still in flight at the end of the window: cancelled")

// errUnanswered is what a SendFunc wraps when the server closed the
// connection without answering.
var errUnanswered = errors.New("the server closed the connection without an answer")

// do sends request seq, due at due, and records its outcome.
func (sr *streamRun) do(ctx context.Context, seq int64, due time.Time) {
	var status int
	var err error
	begin := sr.clock.Now()
	remaining := due.Add(sr.timeout).Sub(begin)
	if remaining <= 0 {
		err = errExpired
	} else {
		rctx, cancel := context.WithTimeout(ctx, remaining)
		status, err = sr.s.SendFunc(rctx, seq)
		switch {
		case err != nil && errors.Is(context.Cause(ctx), errCut):
			err = errCut
		case err != nil && rctx.Err() != nil && ctx.Err() == nil:
			err = context.DeadlineExceeded
		}
		cancel()
	}
	end := sr.clock.Now()
	sr.record(due, begin, end, status, err)
}

func (sr *streamRun) record(due, begin, end time.Time, status int, err error) {
	lag, latency := begin.Sub(due), end.Sub(due)
	switch {
	case err != nil:
		sr.errs.Add(1)
	case status >= 200 && status < 300:
		sr.ok.Add(1)
	case status == 429:
		sr.limited.Add(1)
	case status == 503:
		sr.shed.Add(1)
	default:
		sr.errs.Add(1)
	}
	sr.mu.Lock()
	defer sr.mu.Unlock()
	r := &sr.res
	r.Latency.Record(latency)
	r.SendLag.Record(lag)
	r.ElapsedSec = max(r.ElapsedSec, end.Sub(sr.start).Seconds())
	if err != nil {
		r.TransportErrors++
		if errors.Is(err, context.DeadlineExceeded) {
			r.Timeouts++
		}
		switch {
		case err == errExpired:
			r.Expired++
		case err == errCut:
			r.Cut++
		case errors.Is(err, errUnanswered):
			r.Closed++
		}
		if r.FirstError == "" {
			r.FirstError = err.Error()
		}
		return
	}
	r.Statuses[status]++
	switch {
	case status >= 200 && status < 300:
		r.OK++
		r.OKLatency.Record(latency)
		sec := int(begin.Sub(sr.start) / time.Second)
		r.OKPerSecond[min(max(sec, 0), len(r.OKPerSecond)-1)]++
	case status == 429:
		r.Limited++
		r.LimitedLatency.Record(latency)
		r.LimitedServiceLatency.Record(end.Sub(begin))
	case status == 503:
		r.Shed++
	case status >= 400 && status < 500:
		r.ClientErrors++
	case status >= 500:
		r.ServerErrors++
	default:
		r.OtherStatus++
	}
}
