package ratelimit

import (
	"context"
	"sync"
	"time"
)

// start is the origin of the limiters' monotonic clock. time.Since(start)
// reads only the monotonic clock, so wall-clock steps (NTP, an operator's
// date command) never move a TAT.
var start = time.Now()

// numShards splits limiter state so that concurrent requests of different
// tenants rarely meet on one mutex. Buckets are sharded by tenant alone, so a
// tenant's bucket and its credentials' buckets share a shard and Admit takes
// one lock.
const numShards = 1 << shardBits

const shardBits = 6

// sweepEvery is the fewest operations a shard sees between two sweeps. A shard
// sweeps after max(sweepEvery, its size) operations, so a sweep visits at
// most about one entry per operation, amortized.
const sweepEvery = 1024

// shardOf picks a shard from the top bits of a tenant hash; the shard's
// table indexes by the low bits.
func shardOf(th uint64) uint64 { return th >> (64 - shardBits) }

// Local is an in-memory GCRA limiter for one process. Its zero value is ready
// to use and it is safe for concurrent use; it must not be copied after first
// use.
//
// State is one int64 theoretical arrival time (TAT) per bucket, in
// nanoseconds of the monotonic clock since process start, in one of 64
// shards (a mutex and a hash table each) chosen by a hash of the tenant, with
// the tenant's credential buckets in the same shard. After a
// key's first use, Allow and Admit do not allocate. A bucket whose TAT has
// passed is full again and carries no information: each shard drops such
// buckets after max(1024, shard size) operations (or on Sweep), so idle
// tenants cost no memory for long and eviction never admits more than Burst.
type Local struct {
	// NowFunc, if set, replaces the clock: it returns the time elapsed since
	// an arbitrary fixed origin and must never go backwards. Tests set it;
	// the default is the monotonic time since process start. Set it before
	// first use.
	NowFunc func() time.Duration

	shards [numShards]localShard
}

type localShard struct {
	mu   sync.Mutex
	tab  table // TAT per bucket
	ops  int   // operations since the last sweep
	last int64 // latest clock reading used in this shard
	_    [128 - 56]byte
}

// NewLocal returns a Local using the monotonic clock. It is the same as
// new(Local).
func NewLocal() *Local { return new(Local) }

func (l *Local) now() int64 {
	if l.NowFunc != nil {
		return int64(l.NowFunc())
	}
	return int64(time.Since(start))
}

// Allow decides one request against bucket key under lim and charges the
// bucket if it allows. It never blocks beyond a shard mutex, ignores ctx,
// and denies (the zero Decision, with Limit set) under an invalid lim.
func (l *Local) Allow(_ context.Context, key Key, lim Limit) Decision {
	t, bo, ok := lim.interval()
	if !ok {
		return Decision{Limit: lim}
	}
	now := l.now()
	th := tenantHash(key.Owner)
	h := keyHash(th, key.Actor)
	s := &l.shards[shardOf(th)]
	s.mu.Lock()
	now = s.monotonic(now)
	i, next, d := s.peek(h, key, now, t, bo)
	if d.Allowed {
		s.store(i, h, key, next)
	}
	s.tick(now)
	s.mu.Unlock()
	d.Limit = lim
	return d
}

// Admit decides one request against the tenant's bucket and, when key.Actor
// and lim.Actor are set, the credential's bucket, atomically: see
// Limiter.Admit. It denies under an invalid lim.Tenant, or an invalid lim.Actor
// other than the zero Limit. It ignores ctx.
func (l *Local) Admit(_ context.Context, key Key, lim Limits) Decision {
	tt, tbo, ok := lim.Tenant.interval()
	if !ok {
		return Decision{Limit: lim.Tenant}
	}
	withActor := key.Actor != "" && lim.Actor != (Limit{})
	var at, abo int64
	if withActor {
		if at, abo, ok = lim.Actor.interval(); !ok {
			return Decision{Limit: lim.Actor}
		}
	}
	now := l.now()
	tk := Key{Owner: key.Owner}
	th := tenantHash(key.Owner)
	s := &l.shards[shardOf(th)]
	s.mu.Lock()
	defer s.mu.Unlock()
	now = s.monotonic(now)
	defer s.tick(now)
	ti, tnext, td := s.peek(th, tk, now, tt, tbo)
	td.Limit = lim.Tenant
	if !withActor {
		if td.Allowed {
			s.store(ti, th, tk, tnext)
		}
		return td
	}
	ah := keyHash(th, key.Actor)
	ai, anext, ad := s.peek(ah, key, now, at, abo)
	ad.Limit = lim.Actor
	d := combine(td, ad)
	if d.Allowed {
		s.store(ti, th, tk, tnext)
		if ti < 0 {
			ai = s.tab.find(ah, key) // inserting the tenant may have resized
		}
		s.store(ai, ah, key, anext)
	}
	return d
}

// monotonic returns now, or the latest time this shard has used if that is
// later. The clock is read before taking the mutex (to keep the critical
// section short), so a request that waited for the lock may hold an older
// reading than one already processed; deciding it at the later time keeps
// every shard's history exactly that of a serial run, so a bucket swept at
// time t is never consulted at a time before t.
func (s *localShard) monotonic(now int64) int64 {
	if now < s.last {
		return s.last
	}
	s.last = now
	return now
}

// peek computes the decision for key (hash h) at now without changing
// anything. i is the key's slot, -1 if the bucket is absent.
func (s *localShard) peek(h uint64, key Key, now, t, bo int64) (i int, next int64, d Decision) {
	tat := now // an absent bucket is full: exactly what a TAT of now means
	if i = s.tab.find(h, key); i >= 0 {
		tat = s.tab.slots[i].tat
	}
	next, d = gcra(tat, now, t, bo)
	return i, next, d
}

// store records key's new TAT in slot i, or inserts key if i < 0.
func (s *localShard) store(i int, h uint64, key Key, tat int64) {
	if i >= 0 {
		s.tab.slots[i].tat = tat
		return
	}
	s.tab.insert(h, key, tat)
}

func (s *localShard) tick(now int64) {
	s.ops++
	if s.ops >= sweepEvery && s.ops >= s.tab.n {
		s.sweep(now)
	}
}

// sweep drops buckets that are full again. Such a bucket decides exactly as
// an absent one (gcra treats both as TAT = now), so dropping it never admits
// more than Burst.
func (s *localShard) sweep(now int64) {
	s.ops = 0
	s.tab.sweep(s.monotonic(now))
}

// Sweep drops every bucket that is full again, in all shards. Allow and Admit
// already sweep each shard as it is used, so calling Sweep is optional: a
// periodic call (say once a minute) also frees the state of shards that see
// no traffic. It is safe to call concurrently with everything else.
func (l *Local) Sweep() {
	now := l.now()
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		s.sweep(now)
		s.mu.Unlock()
	}
}

// Len returns the number of buckets held, including full ones not yet swept.
// It is meant for metrics and tests and locks each shard in turn.
func (l *Local) Len() int {
	n := 0
	for i := range l.shards {
		s := &l.shards[i]
		s.mu.Lock()
		n += s.tab.n
		s.mu.Unlock()
	}
	return n
}
