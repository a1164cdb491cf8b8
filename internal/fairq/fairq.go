package fairq

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"strconv"
	"sync"
	"time"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// Class is a request's priority class. Interactive requests are granted
// before Batch ones, within the fairness rule described in the package
// documentation.
type Class uint8

const (
	// Interactive is work a person or client is waiting for. It is the zero
	// Class.
	Interactive Class = iota
	// Batch is background work: jobs, exports, retention.
	Batch

	numClasses = 2
)

// String returns "interactive" or "batch".
func (c Class) String() string {
	switch c {
	case Interactive:
		return "interactive"
	case Batch:
		return "batch"
	default:
		return "Class(" + strconv.Itoa(int(c)) + ")"
	}
}

// Outcome is how the operation run under a slot ended. It feeds the tenant's
// breaker and the hold-time estimate behind ShedError.RetryAfter.
type Outcome uint8

const (
	// OutcomeOK means the database answered in time, whether with a result
	// or an application error (not found, conflict, constraint violation).
	// It closes a half-open breaker.
	OutcomeOK Outcome = iota
	// OutcomeTimeout means the operation hit its statement timeout or
	// deadline. Enough of them in a window open the tenant's breaker.
	OutcomeTimeout
	// OutcomeCanceled means the operation was abandoned for a reason that
	// says nothing about its cost: the client went away, the connection
	// failed. It is neutral for the breaker and the hold-time estimate.
	OutcomeCanceled
)

// String returns "ok", "timeout" or "canceled".
func (o Outcome) String() string {
	switch o {
	case OutcomeOK:
		return "ok"
	case OutcomeTimeout:
		return "timeout"
	case OutcomeCanceled:
		return "canceled"
	default:
		return "Outcome(" + strconv.Itoa(int(o)) + ")"
	}
}

// Config configures a Scheduler. Its zero value means all defaults.
type Config struct {
	// Slots is how many database operations may run at once over all
	// tenants. Set it to the store's connection pool size, so that a
	// granted slot never waits for a connection. Defaults to
	// 2 × GOMAXPROCS.
	Slots int
	// MaxTenantSlots is the most slots one tenant may hold, even when no
	// other tenant waits. Defaults to Slots minus a quarter of them (at least
	// one, when there are two slots or more): slots are never taken back, so
	// the reserve is what lets another tenant's first request start at once
	// while one tenant, however its plan is set, holds all it may. Set it to
	// Slots for a scheduler that is fully work conserving. Values above Slots
	// mean Slots.
	MaxTenantSlots int
	// BatchSlots is the most slots Batch work may hold at once, over all
	// tenants: the rest are kept for Interactive requests, so that a burst of
	// long batch operations cannot occupy every slot (and, with slots sized
	// to the processors, every processor) while short requests wait for one
	// to finish. Defaults to Slots / 4, at least 1: with the default Slots,
	// half the processors. Values above Slots mean Slots.
	BatchSlots int
	// MaxQueue is how many requests may wait at once over all tenants;
	// past it requests are shed with ShedQueueFull (see the package
	// documentation for which one). Defaults to 256 × Slots.
	MaxQueue int
	// MaxWait is how long a request may wait for a slot when Acquire is
	// given a zero deadline. Defaults to 1s.
	MaxWait time.Duration
	// Quantum is how many grants a tenant of weight 1 is credited per
	// deficit-round-robin turn; a tenant of weight w gets w × Quantum.
	// Defaults to 1, the finest interleaving.
	Quantum int
	// BreakerThreshold is how many releases with OutcomeTimeout within
	// BreakerWindow open a tenant's breaker. Defaults to 5; a negative value
	// disables the breaker.
	BreakerThreshold int
	// BreakerWindow is the sliding window BreakerThreshold counts in.
	// Defaults to 10s.
	BreakerWindow time.Duration
	// BreakerCooldown is how long an opened breaker stays open before it
	// becomes half-open. Defaults to 5s.
	BreakerCooldown time.Duration
	// BreakerSlots is the most slots a tenant whose breaker is open or
	// half-open may hold. Defaults to 1.
	BreakerSlots int
	// Clock is the source of time. Defaults to the system clock.
	Clock Clock
	// BreakerOpenFunc, if set, is called each time a tenant's breaker
	// opens (a security event: one tenant's work keeps timing out). It is
	// called with the scheduler's lock held, so it must return quickly and
	// must not call the Scheduler.
	BreakerOpenFunc func(tid tenant.ID)
}

func (c Config) validate() error {
	ints := []struct {
		name string
		v    int
	}{
		{"Slots", c.Slots}, {"MaxTenantSlots", c.MaxTenantSlots}, {"BatchSlots", c.BatchSlots}, {"MaxQueue", c.MaxQueue},
		{"Quantum", c.Quantum}, {"BreakerSlots", c.BreakerSlots},
	}
	for _, f := range ints {
		if f.v < 0 {
			return fmt.Errorf("fairq: %s must be >= 0, got %d", f.name, f.v)
		}
	}
	durs := []struct {
		name string
		v    time.Duration
	}{
		{"MaxWait", c.MaxWait}, {"BreakerWindow", c.BreakerWindow}, {"BreakerCooldown", c.BreakerCooldown},
	}
	for _, f := range durs {
		if f.v < 0 {
			return fmt.Errorf("fairq: %s must be >= 0, got %v", f.name, f.v)
		}
	}
	return nil
}

type breakerConfig struct {
	threshold int // < 0: disabled
	window    time.Duration
	cooldown  time.Duration
	slots     int
}

// Scheduler grants database slots to tenants fairly; see the package
// documentation for the rules. Create one with New. It is safe for concurrent
// use. It starts no goroutine of its own and needs no closing: its only timer
// is stopped or fires harmlessly.
type Scheduler struct {
	mu sync.Mutex

	// Settings, fixed at New.
	slots, maxTenant, maxQueue, quantum int
	batchSlots                          int
	maxWait                             time.Duration
	brk                                 breakerConfig
	clock                               Clock
	expireFunc                          func()
	onBreakerOpen                       func(tenant.ID)

	tenants map[tenant.ID]*tenantState
	free    []*tenantState // idle states kept for reuse
	gen     uint64         // last generation given to a tenantState

	inUse          int // slots held
	batchInUse     int // slots held by Batch work
	waiting        int // waiters queued
	waitingTenants int // tenants with at least one waiter
	activeWeight   int // Σ weight of tenants that hold or wait (W)

	rings [numClasses]ring

	deadlines waiterHeap // queued waiters by deadline
	timer     Timer      // armed for timerAt, or nil
	timerAt   time.Time

	linger lingerHeap // idle tenants kept for their breaker, by forgetAt

	avgHold time.Duration // exponentially weighted mean time a slot is held

	granted, shedDeadline, shedQueueFull, canceled uint64

	waiters sync.Pool // *waiter

	// Test hooks, called with mu held; nil outside tests.
	hookQueued  func(w *waiter)
	hookGranted func(t *tenantState)
}

// tenantState is everything the scheduler knows about one tenant that holds
// a slot, waits for one, or has breaker history.
type tenantState struct {
	id        tenant.ID
	gen       uint64 // changes when the state is reused for another tenant
	weight    int
	active    bool // counted in Scheduler.activeWeight: inUse > 0 || waiting > 0
	inUse     int
	waiting   int
	q         [numClasses]queue
	dr        [numClasses]drr
	brk       breaker
	lingerIdx int // index in Scheduler.linger, or -1
	forgetAt  time.Time
}

// queue is a FIFO of waiters, linked through waiter.prev and next.
type queue struct {
	head, tail *waiter
	n          int
}

// drr is a tenant's place in one class's round.
type drr struct {
	prev, next *tenantState
	deficit    int // credit left in its current or owed turn
	owed       int // 1 + its index in ring.owed; 0 when not owed
}

// ring is one class's deficit round robin: a circular list of the tenants
// with waiters of that class, whose turn it is, and whose turns were cut
// short by their cap.
type ring struct {
	cur     *tenantState
	n       int
	started bool // cur has been credited for its current turn
	owed    []*tenantState
}

// waiter is one Acquire call that waits for a slot.
type waiter struct {
	t          *tenantState
	class      Class
	deadline   time.Time
	prev, next *waiter
	heapIdx    int
	ready      chan struct{} // receives one value once done is set
	done       bool          // granted (err == nil) or shed; out of every queue
	err        error
	start      time.Time // when granted
}

// New returns a Scheduler configured by cfg. It returns an error naming the
// first field of cfg that is invalid.
func New(cfg Config) (*Scheduler, error) {
	if err := cfg.validate(); err != nil {
		return nil, err
	}
	s := &Scheduler{
		slots:      cfg.Slots,
		maxTenant:  cfg.MaxTenantSlots,
		batchSlots: cfg.BatchSlots,
		maxQueue:   cfg.MaxQueue,
		quantum:    cfg.Quantum,
		maxWait:    cfg.MaxWait,
		brk: breakerConfig{
			threshold: cfg.BreakerThreshold,
			window:    cfg.BreakerWindow,
			cooldown:  cfg.BreakerCooldown,
			slots:     cfg.BreakerSlots,
		},
		clock:         cfg.Clock,
		tenants:       make(map[tenant.ID]*tenantState),
		onBreakerOpen: cfg.BreakerOpenFunc,
	}
	if s.slots == 0 {
		s.slots = 2 * runtime.GOMAXPROCS(0)
	}
	if s.maxTenant == 0 {
		s.maxTenant = s.slots - reserve(s.slots)
	}
	s.maxTenant = min(s.maxTenant, s.slots)
	if s.batchSlots == 0 {
		s.batchSlots = max(1, s.slots/4)
	}
	s.batchSlots = min(s.batchSlots, s.slots)
	if s.maxQueue == 0 {
		s.maxQueue = 256 * s.slots
	}
	if s.quantum == 0 {
		s.quantum = 1
	}
	if s.maxWait == 0 {
		s.maxWait = time.Second
	}
	if s.brk.threshold == 0 {
		s.brk.threshold = 5
	}
	if s.brk.window == 0 {
		s.brk.window = 10 * time.Second
	}
	if s.brk.cooldown == 0 {
		s.brk.cooldown = 5 * time.Second
	}
	if s.brk.slots == 0 {
		s.brk.slots = 1
	}
	if s.clock == nil {
		s.clock = systemClock{}
	}
	s.expireFunc = s.expire
	s.waiters.New = func() any { return &waiter{ready: make(chan struct{}, 1), heapIdx: -1} }
	return s, nil
}

// reserve is how many of slots no single tenant may hold by default: a
// quarter, at least one when there are two or more.
func reserve(slots int) int {
	if slots < 2 {
		return 0
	}
	return max(1, slots/4)
}

// Slot is a database slot granted by Acquire. Its holder must call Release
// exactly once. The zero Slot holds nothing; its Release does nothing.
type Slot struct {
	s     *Scheduler
	t     *tenantState
	gen   uint64
	start time.Time
	class Class
}

// Release frees the slot, records how its operation ended, and grants the
// slot to the next waiter if there is one. It is safe to call from any
// goroutine. Calling it twice on the same Slot is a bug; it panics when it
// can tell.
func (sl Slot) Release(o Outcome) {
	s := sl.s
	if s == nil {
		return
	}
	s.mu.Lock()
	if sl.t.gen != sl.gen || sl.t.inUse == 0 {
		s.mu.Unlock()
		panic("fairq: Slot released twice")
	}
	s.release(sl, o, s.clock.Now())
	s.mu.Unlock()
}

// Acquire waits for a database slot for tenant tid and returns it; the caller
// must Release it. weight is the tenant's plan weight (values below 1 mean 1;
// the latest call's weight applies to the tenant). class is the request's
// priority; values other than Interactive mean Batch. deadline is the latest
// time the work may start; a zero deadline means Config.MaxWait from now.
//
// Acquire returns at once when a slot can be granted under the rules of the
// package documentation; otherwise it queues the request and blocks. It
// returns:
//   - a *ShedError (errors.Is(err, ErrShed)) with reason ShedDeadline when no
//     slot was granted by deadline, or by ctx's deadline while waiting, and
//     with reason ShedQueueFull when the queue was full (see the package
//     documentation);
//   - ctx.Err() when ctx is done before Acquire is called, or is canceled
//     while it waits.
//
// A waiter that gives up is removed from its queue. When a grant and the
// cancellation happen together, Acquire either returns the slot or releases
// it again and returns the error: no slot leaks. Acquire is safe for
// concurrent use and starts no goroutine.
func (s *Scheduler) Acquire(ctx context.Context, tid tenant.ID, weight int, class Class, deadline time.Time) (Slot, error) {
	if err := ctx.Err(); err != nil {
		return Slot{}, err
	}
	weight = max(weight, 1)
	if class != Interactive {
		class = Batch
	}

	s.mu.Lock()
	now := s.clock.Now()
	s.sweep(now)
	t := s.tenant(tid, weight)
	if s.waiting == 0 && s.inUse < s.slots && t.inUse < s.hardCap(t, now) && s.classFree(class) {
		// Nobody waits, so the tenant's share is every slot: grant at once.
		sl := s.take(t, class, now)
		s.mu.Unlock()
		return sl, nil
	}
	if deadline.IsZero() {
		deadline = now.Add(s.maxWait)
	}
	if !deadline.After(now) {
		err := s.shedNew(t, ShedDeadline, now)
		s.mu.Unlock()
		return Slot{}, err
	}
	if s.waiting >= s.maxQueue && !s.pushOut(t, now) {
		err := s.shedNew(t, ShedQueueFull, now)
		s.mu.Unlock()
		return Slot{}, err
	}

	w := s.waiters.Get().(*waiter)
	w.t, w.class, w.deadline = t, class, deadline
	s.enqueue(w)
	s.dispatch(now) // a slot may be free while others wait at their hard cap
	if w.done {
		s.mu.Unlock()
		<-w.ready
		return s.finish(w)
	}
	s.arm(now)
	if s.hookQueued != nil {
		s.hookQueued(w)
	}
	s.mu.Unlock()

	select {
	case <-w.ready:
		return s.finish(w)
	case <-ctx.Done():
	}

	s.mu.Lock()
	if w.done {
		// Granted or shed while ctx was being canceled.
		s.mu.Unlock()
		<-w.ready
		sl, err := s.finish(w)
		if err != nil {
			return Slot{}, err
		}
		s.mu.Lock()
		now = s.clock.Now()
		err = s.abandonErr(ctx, sl.t, now)
		s.release(sl, OutcomeCanceled, now)
		s.mu.Unlock()
		return Slot{}, err
	}
	now = s.clock.Now()
	s.unqueue(w)
	err := s.abandonErr(ctx, t, now)
	s.settle(t, now)
	s.dispatch(now)
	s.mu.Unlock()
	s.putWaiter(w)
	return Slot{}, err
}

// finish collects the result of a done waiter whose signal has been
// received, and recycles it.
func (s *Scheduler) finish(w *waiter) (Slot, error) {
	var sl Slot
	err := w.err
	if err == nil {
		sl = Slot{s: s, t: w.t, gen: w.t.gen, start: w.start, class: w.class}
	}
	s.putWaiter(w)
	return sl, err
}

func (s *Scheduler) putWaiter(w *waiter) {
	*w = waiter{ready: w.ready, heapIdx: -1}
	s.waiters.Put(w)
}

// abandonErr is the error for a waiter whose ctx is done: a shed when ctx's
// deadline passed, ctx.Err() otherwise. mu is held.
func (s *Scheduler) abandonErr(ctx context.Context, t *tenantState, now time.Time) error {
	err := ctx.Err()
	if errors.Is(err, context.DeadlineExceeded) {
		s.shedDeadline++
		return s.shedError(t, ShedDeadline, now)
	}
	s.canceled++
	return err
}

// tenant returns tid's state, creating it, and sets its weight. mu is held.
func (s *Scheduler) tenant(tid tenant.ID, weight int) *tenantState {
	t := s.tenants[tid]
	if t == nil {
		if n := len(s.free); n > 0 {
			t = s.free[n-1]
			s.free = s.free[:n-1]
		} else {
			t = &tenantState{lingerIdx: -1}
		}
		s.gen++
		t.id, t.gen = tid, s.gen
		s.tenants[tid] = t
	}
	if t.active {
		s.activeWeight += weight - t.weight
	}
	t.weight = weight
	return t
}

func (s *Scheduler) activate(t *tenantState) {
	if !t.active {
		t.active = true
		s.activeWeight += t.weight
	}
}

// settle updates t after it may have become idle: it leaves W, and its state
// is dropped, or kept until its breaker has nothing to remember. mu is held.
func (s *Scheduler) settle(t *tenantState, now time.Time) {
	if t.inUse > 0 || t.waiting > 0 {
		return
	}
	if t.active {
		t.active = false
		s.activeWeight -= t.weight
	}
	t.forgetAt = t.brk.forgetAt(&s.brk)
	if t.forgetAt.After(now) {
		s.linger.set(t)
		return
	}
	s.drop(t)
}

// drop forgets idle tenant t. mu is held.
func (s *Scheduler) drop(t *tenantState) {
	if s.tenants[t.id] == t {
		delete(s.tenants, t.id)
	}
	if t.lingerIdx >= 0 {
		s.linger.remove(t)
	}
	t.brk.reset()
	times := t.brk.times
	*t = tenantState{lingerIdx: -1, brk: breaker{times: times}}
	if len(s.free) < 64 {
		s.free = append(s.free, t)
	}
}

// sweep drops idle tenants whose breaker history has expired. mu is held.
func (s *Scheduler) sweep(now time.Time) {
	for len(s.linger) > 0 && !s.linger[0].forgetAt.After(now) {
		t := s.linger[0]
		s.linger.remove(t)
		if !t.active {
			s.drop(t)
		}
	}
}

// take grants t a slot for work of class c. mu is held.
func (s *Scheduler) take(t *tenantState, c Class, now time.Time) Slot {
	s.activate(t)
	t.inUse++
	s.inUse++
	if c == Batch {
		s.batchInUse++
	}
	s.granted++
	if s.hookGranted != nil {
		s.hookGranted(t)
	}
	return Slot{s: s, t: t, gen: t.gen, start: now, class: c}
}

// classFree reports whether a slot may go to work of class c: Batch work
// is held to BatchSlots. mu is held.
func (s *Scheduler) classFree(c Class) bool {
	return c != Batch || s.batchInUse < s.batchSlots
}

// release frees sl's slot and grants freed slots. mu is held.
func (s *Scheduler) release(sl Slot, o Outcome, now time.Time) {
	t := sl.t
	t.inUse--
	s.inUse--
	if sl.class == Batch {
		s.batchInUse--
	}
	if o != OutcomeCanceled {
		hold := max(now.Sub(sl.start), 0)
		if s.avgHold == 0 {
			s.avgHold = hold
		} else {
			s.avgHold += (hold - s.avgHold) / 8
		}
		if t.brk.record(o, now, &s.brk) && s.onBreakerOpen != nil {
			s.onBreakerOpen(t.id)
		}
	}
	s.settle(t, now)
	s.sweep(now)
	s.dispatch(now)
}

// hardCap is the most slots t may ever hold now. mu is held.
func (s *Scheduler) hardCap(t *tenantState, now time.Time) int {
	c := s.maxTenant
	if s.brk.threshold >= 0 && t.brk.current(now) != BreakerClosed {
		c = min(c, s.brk.slots)
	}
	return c
}

// shareCap is the most slots t may hold while other tenants wait: its
// weighted share of Slots (see the package documentation), within its hard
// cap. mu is held.
func (s *Scheduler) shareCap(t *tenantState, now time.Time) int {
	c := s.hardCap(t, now)
	others := s.waitingTenants
	if t.waiting > 0 {
		others--
	}
	if others == 0 {
		return c
	}
	w := s.activeWeight
	if !t.active {
		w += t.weight
	}
	share := max(1, (s.slots*t.weight+w-1)/w)
	return min(c, share)
}

// enqueue appends w to its tenant's queue. mu is held.
func (s *Scheduler) enqueue(w *waiter) {
	t := w.t
	q := &t.q[w.class]
	w.prev, w.next = q.tail, nil
	if q.tail != nil {
		q.tail.next = w
	} else {
		q.head = w
	}
	q.tail = w
	q.n++
	if q.n == 1 {
		s.rings[w.class].add(t, w.class)
	}
	if t.waiting == 0 {
		s.waitingTenants++
	}
	t.waiting++
	s.waiting++
	s.activate(t)
	s.deadlines.set(w)
}

// unqueue removes w from its tenant's queue and the deadline heap. The
// caller settles the tenant. mu is held.
func (s *Scheduler) unqueue(w *waiter) {
	t := w.t
	q := &t.q[w.class]
	if w.prev != nil {
		w.prev.next = w.next
	} else {
		q.head = w.next
	}
	if w.next != nil {
		w.next.prev = w.prev
	} else {
		q.tail = w.prev
	}
	w.prev, w.next = nil, nil
	q.n--
	if q.n == 0 {
		s.rings[w.class].remove(t, w.class)
	}
	t.waiting--
	s.waiting--
	if t.waiting == 0 {
		s.waitingTenants--
	}
	s.deadlines.remove(w)
}

// dispatch grants free slots to waiters, shedding those past their
// deadline. mu is held.
func (s *Scheduler) dispatch(now time.Time) {
	for s.inUse < s.slots && s.waiting > 0 {
		t, c := s.pick(now)
		if t == nil {
			return
		}
		w := t.q[c].head
		if !w.deadline.After(now) {
			s.shed(w, ShedDeadline, now)
			continue
		}
		s.unqueue(w)
		sl := s.take(t, c, now)
		w.done, w.err, w.start = true, nil, sl.start
		w.ready <- struct{}{}
	}
}

// pick chooses the tenant and class to grant the next slot to, in the
// order of passes of the package documentation. mu is held.
func (s *Scheduler) pick(now time.Time) (*tenantState, Class) {
	for c := range Class(numClasses) {
		if !s.classFree(c) {
			continue
		}
		if t := s.pickIn(c, now, true); t != nil {
			return t, c
		}
	}
	if s.waitingTenants > 1 { // else the share is the hard cap: nothing new to find
		for c := range Class(numClasses) {
			if !s.classFree(c) {
				continue
			}
			if t := s.pickIn(c, now, false); t != nil {
				return t, c
			}
		}
	}
	return nil, 0
}

// pickIn runs class c's deficit round robin to find a tenant under its share
// (or, if !share, under its hard cap) to grant one slot to, and charges it one
// grant.
//
// When the cursor reaches a tenant its turn starts: its credit is set to
// Quantum × weight. It is served while it has credit; its turn ends when the
// credit is spent or the tenant cannot be served, and the cursor moves on. A
// turn that ends with credit left because the tenant was at its cap is owed:
// it is finished, ahead of the cursor, as soon as the tenant may hold another
// slot, and what is still owed when the tenant's next turn starts is
// forfeited. So a tenant gets its weight's worth of grants per round unless
// it held its full share for a whole round, its credit never exceeds one
// turn's, and each tenant is visited at most twice. mu is held.
func (s *Scheduler) pickIn(c Class, now time.Time, share bool) *tenantState {
	r := &s.rings[c]
	for _, t := range r.owed {
		if t.inUse < s.limit(t, now, share) {
			r.charge(t, c)
			return t
		}
	}
	for range r.n + 1 {
		t := r.cur
		if t == nil {
			return nil
		}
		if !r.started {
			t.dr[c].deficit = s.quantum * t.weight
			r.started = true
		}
		if t.inUse < s.limit(t, now, share) {
			r.charge(t, c)
			return t
		}
		if t.dr[c].owed == 0 {
			r.owed = append(r.owed, t)
			t.dr[c].owed = len(r.owed)
		}
		r.started = false
		r.cur = t.dr[c].next
	}
	return nil
}

func (s *Scheduler) limit(t *tenantState, now time.Time, share bool) int {
	if share {
		return s.shareCap(t, now)
	}
	return s.hardCap(t, now)
}

// charge takes one grant of t's credit, which is positive. When it is spent,
// t's turn ends: it leaves the owed list, or, if it is the cursor, the cursor
// moves on.
func (r *ring) charge(t *tenantState, c Class) {
	d := &t.dr[c]
	d.deficit--
	if d.deficit > 0 {
		return
	}
	r.unowe(t, c)
	if r.cur == t {
		r.started = false
		r.cur = d.next
	}
}

// unowe takes t off the owed list, if it is on it.
func (r *ring) unowe(t *tenantState, c Class) {
	i := t.dr[c].owed - 1
	if i < 0 {
		return
	}
	last := len(r.owed) - 1
	r.owed[i] = r.owed[last]
	r.owed[i].dr[c].owed = i + 1
	r.owed[last] = nil
	r.owed = r.owed[:last]
	t.dr[c].owed = 0
}

// add puts t at the end of the round: just before the tenant whose turn it is.
func (r *ring) add(t *tenantState, c Class) {
	d := &t.dr[c]
	d.deficit = 0
	if r.cur == nil {
		d.prev, d.next = t, t
		r.cur, r.started = t, false
	} else {
		p := r.cur.dr[c].prev
		d.prev, d.next = p, r.cur
		p.dr[c].next = t
		r.cur.dr[c].prev = t
	}
	r.n++
}

// remove takes t out of the round; it loses its credit.
func (r *ring) remove(t *tenantState, c Class) {
	r.unowe(t, c)
	d := &t.dr[c]
	if d.next == t {
		r.cur, r.started = nil, false
	} else {
		d.prev.dr[c].next = d.next
		d.next.dr[c].prev = d.prev
		if r.cur == t {
			r.cur, r.started = d.next, false
		}
	}
	d.prev, d.next, d.deficit = nil, nil, 0
	r.n--
}

// shed removes queued waiter w and fails it with reason. mu is held.
func (s *Scheduler) shed(w *waiter, reason ShedReason, now time.Time) {
	t := w.t
	s.unqueue(w)
	w.done, w.err = true, s.shedError(t, reason, now)
	s.count(reason)
	w.ready <- struct{}{}
	s.settle(t, now)
}

// shedNew fails a request of t that was never queued. mu is held.
func (s *Scheduler) shedNew(t *tenantState, reason ShedReason, now time.Time) error {
	err := s.shedError(t, reason, now)
	s.count(reason)
	s.settle(t, now)
	return err
}

func (s *Scheduler) count(reason ShedReason) {
	if reason == ShedQueueFull {
		s.shedQueueFull++
	} else {
		s.shedDeadline++
	}
}

// shedError estimates when a request of t shed now should retry: the time to
// serve t's waiters and one more at t's share of slots, each holding its slot
// for the recent mean hold time, and no sooner than the end of an open
// breaker's cool-down. mu is held.
func (s *Scheduler) shedError(t *tenantState, reason ShedReason, now time.Time) *ShedError {
	est := time.Duration(t.waiting+1) * s.avgHold / time.Duration(max(1, s.shareCap(t, now)))
	if t.brk.current(now) == BreakerOpen {
		est = max(est, t.brk.until.Sub(now))
	}
	return &ShedError{Reason: reason, RetryAfter: retryAfter(est)}
}

// pushOut makes room in a full queue for a request of t by shedding the
// newest waiter (Batch first) of the tenant whose queue is longest relative to
// its weight, if that queue is strictly longer, relative to weight, than t's
// would be with the request. It reports whether it made room. mu is held.
func (s *Scheduler) pushOut(t *tenantState, now time.Time) bool {
	var v *tenantState
	for c := range Class(numClasses) {
		r := &s.rings[c]
		u := r.cur
		for range r.n {
			if u != t && (v == nil || u.waiting*v.weight > v.waiting*u.weight) {
				v = u
			}
			u = u.dr[c].next
		}
	}
	if v == nil || v.waiting*t.weight <= (t.waiting+1)*v.weight {
		return false
	}
	w := v.q[Batch].tail
	if w == nil {
		w = v.q[Interactive].tail
	}
	s.shed(w, ShedQueueFull, now)
	return true
}

// arm makes sure the timer fires by the earliest deadline. mu is held.
func (s *Scheduler) arm(now time.Time) {
	if len(s.deadlines) == 0 {
		return
	}
	d := s.deadlines[0].deadline
	if s.timer != nil && !d.Before(s.timerAt) {
		return
	}
	if s.timer != nil {
		s.timer.Stop()
	}
	s.timer = s.clock.AfterFunc(d.Sub(now), s.expireFunc)
	s.timerAt = d
}

// expire is the timer's function: it sheds waiters past their deadline and
// re-arms the timer.
func (s *Scheduler) expire() {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	if s.timer != nil && !now.Before(s.timerAt) {
		s.timer = nil // this is the armed timer firing, not a stopped one
	}
	for len(s.deadlines) > 0 && !s.deadlines[0].deadline.After(now) {
		s.shed(s.deadlines[0], ShedDeadline, now)
	}
	s.sweep(now)
	s.dispatch(now)
	s.arm(now)
}

// Stats are scheduler-wide figures: gauges of the moment and counters since
// New.
type Stats struct {
	// Slots is the number of slots; InUse how many are held, BatchInUse
	// how many of those by Batch work, at most BatchSlots.
	Slots, InUse, BatchSlots, BatchInUse int
	// Waiting is how many requests are queued.
	Waiting int
	// Tenants is how many tenants the scheduler keeps state for: those
	// holding or waiting for a slot, and idle ones with breaker history.
	Tenants int
	// Granted counts slots granted.
	Granted uint64
	// ShedDeadline and ShedQueueFull count requests shed, by reason.
	ShedDeadline, ShedQueueFull uint64
	// Canceled counts waiters whose context was canceled.
	Canceled uint64
	// AvgHold is the recent mean time a slot is held.
	AvgHold time.Duration
}

// Stats returns the scheduler's figures. It is safe for concurrent use.
func (s *Scheduler) Stats() Stats {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.sweep(s.clock.Now())
	return Stats{
		Slots: s.slots, InUse: s.inUse, BatchSlots: s.batchSlots, BatchInUse: s.batchInUse,
		Waiting: s.waiting, Tenants: len(s.tenants),
		Granted: s.granted, ShedDeadline: s.shedDeadline, ShedQueueFull: s.shedQueueFull,
		Canceled: s.canceled, AvgHold: s.avgHold,
	}
}

// TenantStats is one tenant's state in the scheduler, for metrics and
// health. A tenant the scheduler keeps no state for has the zero value with
// Tenant set.
type TenantStats struct {
	// Tenant is the tenant described.
	Tenant tenant.ID
	// Weight is the weight given by the tenant's latest Acquire.
	Weight int
	// InUse is how many slots the tenant holds.
	InUse int
	// Interactive and Batch are how many of its requests wait, by class.
	Interactive, Batch int
	// Cap is the most slots it may hold at the moment: its share while other
	// tenants wait, else its hard cap (see the package documentation).
	Cap int
	// Breaker is its breaker's state.
	Breaker BreakerState
}

// TenantStats returns tid's state. It is safe for concurrent use.
func (s *Scheduler) TenantStats(tid tenant.ID) TenantStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sweep(now)
	t := s.tenants[tid]
	if t == nil {
		return TenantStats{Tenant: tid}
	}
	return s.tenantStats(t, now)
}

// Tenants returns the state of every tenant the scheduler keeps state for, in
// no particular order. It is safe for concurrent use; it takes time linear
// in their number with the scheduler locked, so call it for health pages and
// metric scrapes, not per request.
func (s *Scheduler) Tenants() []TenantStats {
	s.mu.Lock()
	defer s.mu.Unlock()
	now := s.clock.Now()
	s.sweep(now)
	out := make([]TenantStats, 0, len(s.tenants))
	for _, t := range s.tenants {
		out = append(out, s.tenantStats(t, now))
	}
	return out
}

func (s *Scheduler) tenantStats(t *tenantState, now time.Time) TenantStats {
	return TenantStats{
		Tenant: t.id, Weight: t.weight, InUse: t.inUse,
		Interactive: t.q[Interactive].n, Batch: t.q[Batch].n,
		Cap: s.shareCap(t, now), Breaker: t.brk.current(now),
	}
}
