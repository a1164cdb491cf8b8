package core

import (
	"testing"
	"time"
)

func TestTTLCache(t *testing.T) {
	const ttl = time.Second
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	at := func(d time.Duration) time.Time { return t0.Add(d) }
	get := func(t *testing.T, c *ttlCache[string, int], k string, now time.Time, want int, wantOK bool) {
		t.Helper()
		if v, ok := c.get(k, now); v != want || ok != wantOK {
			t.Errorf("get(%q) at %s = %d, %v; want %d, %v", k, now.Sub(t0), v, ok, want, wantOK)
		}
	}

	t.Run("an entry lives ttl", func(t *testing.T) {
		c := newTTLCache[string, int](ttl)
		c.put("a", 1, at(0))
		get(t, c, "a", at(0), 1, true)
		get(t, c, "a", at(ttl-time.Microsecond), 1, true)
		get(t, c, "a", at(ttl), 0, false)
		get(t, c, "b", at(0), 0, false)
	})

	t.Run("an entry survives one rotation and is served from the previous generation", func(t *testing.T) {
		c := newTTLCache[string, int](ttl)
		c.rotate(at(0))
		c.put("a", 1, at(900*time.Millisecond))
		c.put("b", 2, at(1100*time.Millisecond)) // rotates: a moves to the previous generation
		get(t, c, "a", at(1500*time.Millisecond), 1, true)
		get(t, c, "b", at(1500*time.Millisecond), 2, true)
		if c.len() != 2 {
			t.Errorf("len = %d, want 2", c.len())
		}
	})

	t.Run("memory is freed within two ttl without a scan", func(t *testing.T) {
		c := newTTLCache[string, int](ttl)
		c.rotate(at(0))
		for i, k := range []string{"a", "b", "c"} {
			c.put(k, i, at(0))
		}
		c.rotate(at(ttl))
		if c.len() != 3 {
			t.Fatalf("after one rotation len = %d, want 3 (the previous generation)", c.len())
		}
		c.rotate(at(2 * ttl))
		if c.len() != 0 {
			t.Errorf("after two rotations len = %d, want 0", c.len())
		}
		c.put("d", 4, at(2*ttl))
		c.rotate(at(5 * ttl)) // a long quiet spell drops both generations at once
		if c.len() != 0 {
			t.Errorf("after a quiet spell len = %d, want 0", c.len())
		}
	})

	t.Run("rotation waits for ttl", func(t *testing.T) {
		c := newTTLCache[string, int](ttl)
		c.rotate(at(0))
		c.put("a", 1, at(0))
		c.rotate(at(ttl - time.Microsecond))
		c.rotate(at(ttl - time.Microsecond))
		get(t, c, "a", at(ttl-time.Microsecond), 1, true)
	})

	t.Run("a put replaces the previous generation's entry", func(t *testing.T) {
		c := newTTLCache[string, int](ttl)
		c.rotate(at(0))
		c.put("a", 1, at(0))
		c.put("a", 2, at(ttl)) // rotates first, then stores in the new generation
		get(t, c, "a", at(ttl), 2, true)
		if c.len() != 1 {
			t.Errorf("len = %d, want 1", c.len())
		}
	})

	t.Run("delete and deleteFunc reach both generations", func(t *testing.T) {
		c := newTTLCache[string, int](ttl)
		c.rotate(at(0))
		c.put("a", 1, at(0))
		c.put("b", 2, at(0))
		c.put("c", 3, at(ttl)) // a and b are now in the previous generation
		c.put("d", 4, at(ttl))
		c.delete("a")
		c.deleteFunc(func(v int) bool { return v%2 == 0 })
		get(t, c, "a", at(ttl), 0, false)
		get(t, c, "b", at(ttl), 0, false)
		get(t, c, "c", at(ttl), 3, true)
		get(t, c, "d", at(ttl), 0, false)
	})
}

// TestTTLCacheFresh: fresh serves only what was stored less than maxAge ago,
// however long the cache would keep it.
func TestTTLCacheFresh(t *testing.T) {
	t0 := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c := newTTLCache[string, int](10 * time.Minute)
	c.put("a", 1, t0)
	for _, tc := range []struct {
		at, maxAge time.Duration
		ok         bool
	}{
		{time.Second - time.Microsecond, time.Second, true},
		{time.Second, time.Second, false},
		{9 * time.Minute, 10 * time.Minute, true},
		{10 * time.Minute, time.Hour, false}, // past the cache's own ttl
	} {
		if _, ok := c.fresh("a", t0.Add(tc.at), tc.maxAge); ok != tc.ok {
			t.Errorf("fresh at %s with maxAge %s = %v, want %v", tc.at, tc.maxAge, ok, tc.ok)
		}
	}
}
