package ratelimit

import (
	"sync"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// Inflight counts each tenant's requests in progress and caps them. Its zero
// value is ready to use and it is safe for concurrent use; it must not be
// copied after first use. Acquire and Release never block beyond a shard
// mutex and do not allocate once the shard's map has grown to its working
// size. A tenant with nothing in flight has no entry, so idle tenants cost
// nothing.
type Inflight struct {
	shards [numShards]inflightShard
}

type inflightShard struct {
	mu sync.Mutex
	m  map[tenant.ID]int // requests in flight; no zero entries
	_  [128 - 16]byte
}

// Slot is one admitted request's place under its tenant's in-flight cap. It
// is a small value (no allocation); the zero Slot's Release does nothing.
type Slot struct {
	s *inflightShard
	t tenant.ID
}

// Acquire takes a slot for tenant t if fewer than limit of its requests are in
// flight, and returns ok false at once otherwise (the caller answers 429). A
// limit below 1 admits nothing. Every Slot acquired with ok true must be
// released exactly once, typically with defer.
func (f *Inflight) Acquire(t tenant.ID, limit int) (_ Slot, ok bool) {
	if limit < 1 {
		return Slot{}, false
	}
	s := &f.shards[shardOf(tenantHash(string(t)))]
	s.mu.Lock()
	n := s.m[t]
	if n >= limit {
		s.mu.Unlock()
		return Slot{}, false
	}
	if s.m == nil {
		s.m = make(map[tenant.ID]int)
	}
	// The entry keeps t's string, not a copy: it lives only while a request
	// of t is in flight, so it pins nothing for longer than that request.
	s.m[t] = n + 1
	s.mu.Unlock()
	return Slot{s: s, t: t}, true
}

// Release gives the slot back and removes the tenant's entry when its count
// reaches zero. Releasing the zero Slot does nothing; releasing a Slot twice
// frees someone else's place and is a bug, though the count never goes
// below zero.
func (sl Slot) Release() {
	s := sl.s
	if s == nil {
		return
	}
	s.mu.Lock()
	switch n := s.m[sl.t]; {
	case n > 1:
		s.m[sl.t] = n - 1
	case n == 1:
		delete(s.m, sl.t)
	}
	s.mu.Unlock()
}

// Count returns the number of t's requests in flight.
func (f *Inflight) Count(t tenant.ID) int {
	s := &f.shards[shardOf(tenantHash(string(t)))]
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.m[t]
}

// Len returns the number of tenants with requests in flight, for metrics and
// tests. It locks each shard in turn.
func (f *Inflight) Len() int {
	n := 0
	for i := range f.shards {
		s := &f.shards[i]
		s.mu.Lock()
		n += len(s.m)
		s.mu.Unlock()
	}
	return n
}
