package secevent

import (
	"context"
	"errors"
	"log/slog"
	"math/rand/v2"
	"net/http"
	"sync"
	"sync/atomic"
	"time"
)

// Sink writes batches of encoded events (each a JSON line) somewhere: a
// file, standard output, a SIEM's HTTPS endpoint. Send is called from one
// goroutine at a time; an error makes the Queue retry the batch.
type Sink interface {
	Send(ctx context.Context, lines [][]byte) error
}

// Options tune a Queue. The zero value takes every default.
type Options struct {
	// Size is how many events wait at most. Defaults to 10000.
	Size int
	// Batch is how many events one Send carries at most. Defaults to 100.
	Batch int
	// DropNewest makes a full queue drop the event being published instead
	// of the oldest waiting one (the default).
	DropNewest bool
	// Retries is how many times a failed batch is sent again before it is
	// given up and counted as failed. Defaults to 5.
	Retries int
	// Backoff is the first wait before a retry; each next wait doubles, up
	// to MaxBackoff, with full jitter. Defaults to 200ms and 30s.
	Backoff, MaxBackoff time.Duration
	// Logger receives warnings about drops and failures. Defaults to
	// slog.Default().
	Logger *slog.Logger
	// Client sends an https:// destination's requests (Open). Defaults to
	// http.DefaultClient.
	Client *http.Client
}

// Stats are a Queue's counters since it started.
type Stats struct {
	// Published counts events handed to the sink successfully.
	Published uint64
	// Dropped counts events dropped because the queue was full or closed.
	Dropped uint64
	// Failed counts events given up after the sink failed every retry.
	Failed uint64
}

// Queue is a Publisher that encodes events, keeps them in a bounded queue
// and sends them in batches to a Sink from its own goroutine. Publish never
// blocks: when the queue is full it drops an event and counts the drop.
// It is safe for concurrent use.
type Queue struct {
	sink Sink
	opts Options
	log  *slog.Logger

	mu      sync.Mutex
	buf     [][]byte // the waiting events, oldest first
	closed  bool
	sending int // events taken by the sender and not yet settled
	wake    chan struct{}
	idle    *sync.Cond // signalled when buf empties and nothing is being sent

	published, dropped, failed atomic.Uint64
	done                       chan struct{}
	stop                       context.CancelFunc
	life                       context.Context
}

// NewQueue starts a Queue sending to sink.
func NewQueue(sink Sink, opts Options) *Queue {
	if opts.Size <= 0 {
		opts.Size = 10000
	}
	if opts.Batch <= 0 {
		opts.Batch = 100
	}
	if opts.Retries < 0 {
		opts.Retries = 0
	} else if opts.Retries == 0 {
		opts.Retries = 5
	}
	if opts.Backoff <= 0 {
		opts.Backoff = 200 * time.Millisecond
	}
	if opts.MaxBackoff <= 0 {
		opts.MaxBackoff = 30 * time.Second
	}
	q := &Queue{sink: sink, opts: opts, log: opts.Logger, wake: make(chan struct{}, 1), done: make(chan struct{})}
	if q.log == nil {
		q.log = slog.Default()
	}
	q.idle = sync.NewCond(&q.mu)
	q.life, q.stop = context.WithCancel(context.Background())
	go q.run()
	return q
}

// Publish implements Publisher.
func (q *Queue) Publish(ev Event) {
	line := Encode(ev)
	q.mu.Lock()
	switch {
	case q.closed:
		q.mu.Unlock()
		q.dropped.Add(1)
		return
	case len(q.buf) >= q.opts.Size && q.opts.DropNewest:
		q.mu.Unlock()
		q.drop()
		return
	case len(q.buf) >= q.opts.Size:
		q.buf[0] = nil
		q.buf = q.buf[1:]
		q.drop()
	}
	q.buf = append(q.buf, line)
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
}

// drop counts one dropped event, logging the first and then every 1000th.
func (q *Queue) drop() {
	if n := q.dropped.Add(1); n == 1 || n%1000 == 0 {
		q.log.Warn("security events dropped: the queue is full", "dropped_total", n)
	}
}

// Stats returns the queue's counters.
func (q *Queue) Stats() Stats {
	return Stats{Published: q.published.Load(), Dropped: q.dropped.Load(), Failed: q.failed.Load()}
}

// Len returns how many events wait.
func (q *Queue) Len() int {
	q.mu.Lock()
	defer q.mu.Unlock()
	return len(q.buf)
}

// run sends batches until the queue is closed and empty.
func (q *Queue) run() {
	defer close(q.done)
	for {
		q.mu.Lock()
		for len(q.buf) == 0 {
			q.sending = 0
			q.idle.Broadcast()
			if q.closed {
				q.mu.Unlock()
				return
			}
			q.mu.Unlock()
			<-q.wake
			q.mu.Lock()
		}
		n := min(len(q.buf), q.opts.Batch)
		batch := make([][]byte, n)
		copy(batch, q.buf[:n])
		clear(q.buf[:n])
		q.buf = q.buf[n:]
		if len(q.buf) == 0 {
			q.buf = nil // let the backing array go
		}
		q.sending = n
		q.mu.Unlock()
		q.send(batch)
	}
}

// send delivers one batch, retrying with exponential back-off and full
// jitter. Closing the queue cuts the waits short but still tries once more.
func (q *Queue) send(batch [][]byte) {
	wait := q.opts.Backoff
	var err error
	for attempt := 0; attempt <= q.opts.Retries; attempt++ {
		if attempt > 0 {
			d := rand.N(wait) + 1
			select {
			case <-time.After(d):
			case <-q.life.Done():
			}
			wait = min(wait*2, q.opts.MaxBackoff)
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err = q.sink.Send(ctx, batch)
		cancel()
		if err == nil {
			q.published.Add(uint64(len(batch)))
			return
		}
		if q.life.Err() != nil && attempt > 0 {
			break // closing: one more try was made
		}
	}
	n := q.failed.Add(uint64(len(batch)))
	q.log.Warn("security events not delivered", "events", len(batch), "failed_total", n, "err", err)
}

// Flush waits until every event published so far has been sent (or given
// up), or ctx ends.
func (q *Queue) Flush(ctx context.Context) error {
	done := make(chan struct{})
	go func() {
		q.mu.Lock()
		for len(q.buf) > 0 || q.sending > 0 {
			q.idle.Wait()
		}
		q.mu.Unlock()
		close(done)
	}()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// Close stops taking events, sends what waits until ctx ends — retries
// then wait no longer — and stops. Events still waiting when ctx ends
// are counted as dropped.
func (q *Queue) Close(ctx context.Context) error {
	q.mu.Lock()
	if q.closed {
		q.mu.Unlock()
		<-q.done
		return nil
	}
	q.closed = true
	q.mu.Unlock()
	select {
	case q.wake <- struct{}{}:
	default:
	}
	select {
	case <-q.done:
		return nil
	case <-ctx.Done():
	}
	q.stop() // cut back-off waits short
	q.mu.Lock()
	n := len(q.buf)
	q.buf = nil
	q.mu.Unlock()
	q.dropped.Add(uint64(n))
	<-q.done
	if n > 0 {
		return errors.New("secevent: events left unsent at shutdown")
	}
	return nil
}
