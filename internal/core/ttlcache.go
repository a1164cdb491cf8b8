package core

import "time"

// ttlCache holds values for ttl after they are stored, and forgets them
// within 2 × ttl without scanning: entries go into the current generation,
// and every ttl the current generation becomes the previous one and the
// previous one is dropped whole. A node's memory for tenants and keys so
// tracks the ones used in the last two TTLs, not every one ever seen.
//
// It is not safe for concurrent use; Core.mu guards it.
type ttlCache[K comparable, V any] struct {
	ttl       time.Duration
	cur, prev map[K]ttlEntry[V]
	rotated   time.Time // when cur became the current generation
}

type ttlEntry[V any] struct {
	v       V
	expires time.Time
}

func newTTLCache[K comparable, V any](ttl time.Duration) *ttlCache[K, V] {
	return &ttlCache[K, V]{ttl: ttl, cur: map[K]ttlEntry[V]{}}
}

// get returns k's value if it was stored less than ttl before now.
func (c *ttlCache[K, V]) get(k K, now time.Time) (V, bool) {
	e, ok := c.cur[k]
	if !ok {
		e, ok = c.prev[k]
	}
	if !ok || !now.Before(e.expires) {
		var zero V
		return zero, false
	}
	return e.v, true
}

// fresh is get for a value stored less than maxAge (at most ttl) before now.
func (c *ttlCache[K, V]) fresh(k K, now time.Time, maxAge time.Duration) (V, bool) {
	e, ok := c.cur[k]
	if !ok {
		e, ok = c.prev[k]
	}
	if !ok || !now.Before(e.expires) || now.Sub(e.expires.Add(-c.ttl)) >= maxAge {
		var zero V
		return zero, false
	}
	return e.v, true
}

// put stores v for k from now.
func (c *ttlCache[K, V]) put(k K, v V, now time.Time) {
	c.rotate(now)
	delete(c.prev, k)
	c.cur[k] = ttlEntry[V]{v: v, expires: now.Add(c.ttl)}
}

// rotate starts a new generation if the current one is ttl old, dropping
// the previous one; after 2 × ttl without a rotation, both are dropped.
// Every entry it drops has expired.
func (c *ttlCache[K, V]) rotate(now time.Time) {
	age := now.Sub(c.rotated)
	switch {
	case age < c.ttl:
		return
	case age < 2*c.ttl:
		c.prev = c.cur
	default:
		c.prev = nil
	}
	c.cur = make(map[K]ttlEntry[V], len(c.cur)/2)
	c.rotated = now
}

func (c *ttlCache[K, V]) delete(k K) {
	delete(c.cur, k)
	delete(c.prev, k)
}

// deleteFunc deletes every entry whose value fn matches.
func (c *ttlCache[K, V]) deleteFunc(fn func(V) bool) {
	for _, m := range []map[K]ttlEntry[V]{c.cur, c.prev} {
		for k, e := range m {
			if fn(e.v) {
				delete(m, k)
			}
		}
	}
}

// clear drops every entry.
func (c *ttlCache[K, V]) clear() {
	c.cur = map[K]ttlEntry[V]{}
	c.prev = nil
}

// len returns how many entries the cache holds, expired ones included.
func (c *ttlCache[K, V]) len() int { return len(c.cur) + len(c.prev) }

// deleteKeyFunc deletes every entry whose key fn matches.
func (c *ttlCache[K, V]) deleteKeyFunc(fn func(K) bool) {
	for _, m := range []map[K]ttlEntry[V]{c.cur, c.prev} {
		for k := range m {
			if fn(k) {
				delete(m, k)
			}
		}
	}
}
