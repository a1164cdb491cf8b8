// Package changefeed carries cache invalidations between nodes.
//
// A node caches what it reads on every request (tenants by slug, API keys,
// plans, whether a session has ended) for long, and drops an entry when an
// Event says it changed. Whoever changes one of these publishes an Event
// after the change commits; every node, the publisher's included, delivers
// it to its subscribers, which drop what it names. A node that may have
// missed events (its subscription broke and was established again) is sent
// a Reset, locally, once the subscription is back: it drops everything.
// While Live reports false, events may be missed and caches should not be
// trusted.
//
// NewLocal serves a single node (SQLite); NewPostgres and NewRedis carry
// events between nodes with PostgreSQL's LISTEN/NOTIFY or Redis's pub/sub.
// Events are not stored: a node that is down or disconnected misses them,
// which is what Reset is for.
package changefeed

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// Kind says what changed.
type Kind string

const (
	// KindTenant: the tenant's row changed (name, plan, status) or it was
	// deleted. Tenant is set.
	KindTenant Kind = "tenant"
	// KindAPIKey: an API key was revoked. Tenant is set; Key is the key's
	// id.
	KindAPIKey Kind = "api_key"
	// KindPlan: a plan changed. Key is the plan's name.
	KindPlan Kind = "plan"
	// KindSession: sessions of a user ended (a refresh token reused, the
	// user removed or given another role). Tenant is set; Key is the
	// user's id.
	KindSession Kind = "session"
	// KindContainment: a containment action against one of the tenant's
	// credentials or accounts was taken or lifted. Tenant is set.
	KindContainment Kind = "containment"
	// KindDataKeys: a tenant's data keys changed (a rotation began or
	// ended, or they were destroyed). Tenant is set.
	KindDataKeys Kind = "data_keys"
	// KindReset: drop everything cached. A feed delivers it locally when
	// its subscription is established again after a gap, during which
	// events may have been missed. Publishing it makes every node drop
	// everything.
	KindReset Kind = "reset"
)

// Valid reports whether k is one of the kinds above.
func (k Kind) Valid() bool {
	switch k {
	case KindTenant, KindAPIKey, KindPlan, KindSession, KindContainment, KindDataKeys, KindReset:
		return true
	}
	return false
}

// Event names something that changed.
type Event struct {
	Kind   Kind      `json:"kind"`
	Tenant tenant.ID `json:"tenant,omitempty"`
	Key    string    `json:"key,omitempty"`
}

// Reset is the event that drops everything cached.
var Reset = Event{Kind: KindReset}

// Feed carries events between the nodes sharing it. Its methods are safe
// for concurrent use.
type Feed interface {
	// Publish sends e to every subscriber on every node, this one
	// included. It returns once the feed has taken e (for PostgreSQL and
	// Redis, once the server has); delivery happens afterwards, on each
	// node's feed goroutine.
	Publish(ctx context.Context, e Event) error
	// Subscribe calls fn with every event delivered from now on, Resets
	// included, until cancel is called or the feed is closed. fn runs on
	// the feed's goroutine, one event at a time in the order they
	// arrived, and must not block long: while it runs, later events wait
	// (and if too many wait, they are replaced by one Reset). fn must not
	// call Close. An event being delivered while cancel is called may
	// still reach fn once.
	Subscribe(fn func(Event)) (cancel func())
	// Live reports whether the subscription is established now, so that
	// no event is being missed. It is false while a broken subscription
	// is being established again; a Reset follows once it is.
	Live() bool
	// Close stops delivery and releases the feed's connections. No fn
	// runs once Close has returned; events not yet delivered are
	// dropped. Close is idempotent.
	Close() error
}

// ErrClosed is returned by Publish after Close.
var ErrClosed = errors.New("changefeed: closed")

// maxPayload bounds an encoded event: PostgreSQL's NOTIFY takes less than
// 8000 bytes, and events are ids.
const maxPayload = 4000

// encode returns e's payload, after checking e.
func encode(e Event) ([]byte, error) {
	if !e.Kind.Valid() {
		return nil, fmt.Errorf("changefeed: unknown event kind %q", e.Kind)
	}
	b, err := json.Marshal(e)
	if err != nil {
		return nil, fmt.Errorf("changefeed: encode event: %w", err)
	}
	if len(b) > maxPayload {
		return nil, fmt.Errorf("changefeed: event of %d bytes encoded, at most %d", len(b), maxPayload)
	}
	return b, nil
}

// decode reads a payload. One that is not an event (garbage on the
// channel, or an event of a newer version) comes back as Reset with an
// error to log: something changed that this node cannot name.
func decode(payload []byte) (Event, error) {
	var e Event
	if err := json.Unmarshal(payload, &e); err != nil {
		return Reset, fmt.Errorf("changefeed: undecodable event %q: %w", truncate(payload), err)
	}
	if !e.Kind.Valid() {
		return Reset, fmt.Errorf("changefeed: event of unknown kind %q", e.Kind)
	}
	return e, nil
}

func truncate(b []byte) string {
	if len(b) > 200 {
		return string(b[:200]) + "…"
	}
	return string(b)
}

// maxQueue bounds the events waiting for delivery on one node. Past it,
// what waits is replaced by one Reset: dropping everything is always a
// correct answer to events that could not be kept.
const maxQueue = 4096

// link is the state every feed linked to other nodes (Postgres, Redis)
// keeps beside its connection: its subscribers, whether its subscription
// is up, and whether it is closed. It implements Subscribe and Live.
type link struct {
	hub    *hub
	opts   options
	live   atomic.Bool
	cancel context.CancelFunc // ends run
	done   chan struct{}      // closed when run returns

	mu     sync.Mutex // guards closed, and the connection of the feed that embeds link
	closed bool
}

// Subscribe implements Feed.
func (l *link) Subscribe(fn func(Event)) (cancel func()) { return l.hub.subscribe(fn) }

// Live implements Feed.
func (l *link) Live() bool { return l.live.Load() && !l.isClosed() }

func (l *link) isClosed() bool {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.closed
}

// setLive records whether the subscription is up, telling opts.onLive of
// a change.
func (l *link) setLive(live bool) {
	if l.live.Swap(live) != live && l.opts.onLive != nil {
		l.opts.onLive(live)
	}
}

// hub delivers events to a node's subscribers on a goroutine of its own,
// so that whoever receives them (a PostgreSQL or Redis connection, or
// Publish for a Local feed) never waits for a subscriber.
type hub struct {
	mu     sync.Mutex
	subs   []*subscriber
	queue  []Event
	closed bool
	wake   chan struct{} // buffered 1: the queue has events
	stop   chan struct{} // closed by close
	done   chan struct{} // closed when the delivery goroutine has returned
}

type subscriber struct {
	fn     func(Event)
	active bool // guarded by hub.mu
}

func newHub() *hub {
	h := &hub{wake: make(chan struct{}, 1), stop: make(chan struct{}), done: make(chan struct{})}
	go h.deliver()
	return h
}

// post queues e for delivery. After close it does nothing.
func (h *hub) post(e Event) {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		return
	}
	if len(h.queue) >= maxQueue {
		h.queue = append(h.queue[:0], Reset)
	}
	h.queue = append(h.queue, e)
	h.mu.Unlock()
	select {
	case h.wake <- struct{}{}:
	default:
	}
}

func (h *hub) subscribe(fn func(Event)) (cancel func()) {
	s := &subscriber{fn: fn, active: true}
	h.mu.Lock()
	if !h.closed {
		h.subs = append(h.subs, s)
	}
	h.mu.Unlock()
	return func() {
		h.mu.Lock()
		defer h.mu.Unlock()
		s.active = false
		for i, x := range h.subs {
			if x == s {
				h.subs = append(h.subs[:i:i], h.subs[i+1:]...)
				break
			}
		}
	}
}

// deliver runs until close, calling the subscribers with each event.
func (h *hub) deliver() {
	defer close(h.done)
	var batch []Event
	for {
		select {
		case <-h.stop:
			return
		case <-h.wake:
		}
		h.mu.Lock()
		if h.closed {
			h.mu.Unlock()
			return
		}
		batch, h.queue = h.queue, batch[:0]
		h.mu.Unlock()
		for _, e := range batch {
			h.mu.Lock()
			if h.closed {
				h.mu.Unlock()
				return
			}
			subs := h.subs // subscribe and cancel copy, never modify in place
			h.mu.Unlock()
			for _, s := range subs {
				h.mu.Lock()
				active := s.active && !h.closed
				h.mu.Unlock()
				if active {
					s.fn(e)
				}
			}
		}
		clear(batch)
	}
}

// close stops delivery and waits for an event being delivered to finish.
func (h *hub) close() {
	h.mu.Lock()
	if h.closed {
		h.mu.Unlock()
		<-h.done
		return
	}
	h.closed = true
	h.queue = nil
	h.subs = nil
	h.mu.Unlock()
	close(h.stop)
	<-h.done
}

// backoff returns how long to wait before the attempt'th attempt (from 1)
// to establish a subscription again: nothing before the first, then from
// 100ms doubling to 5s, with jitter.
func backoff(attempt int) time.Duration {
	if attempt <= 1 {
		return 0
	}
	d := 100 * time.Millisecond << min(attempt-2, 6)
	d = min(d, 5*time.Second)
	return d/2 + rand.N(d/2+1)
}
