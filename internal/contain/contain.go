// Package contain decides automatic containment: it counts, per node, what
// a credential or an account does in sliding windows — probes of foreign or
// unknown ids, failed logins, distinct client addresses — and says when a
// configured rule is crossed, so that core can suspend, lock or flag. Each
// node counts what it serves; with Shared (NewRedis) the nodes also count
// together, so that a rule trips on the events of all nodes.
package contain

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"time"
)

// Rule is "Limit events within Window". A zero Limit turns the rule off.
type Rule struct {
	Limit  int
	Window time.Duration
}

// On reports whether the rule is enabled.
func (r Rule) On() bool { return r.Limit > 0 && r.Window > 0 }

func (r Rule) String() string {
	if !r.On() {
		return "off"
	}
	return strconv.Itoa(r.Limit) + "/" + r.Window.String()
}

// Rules are the containment rules. The zero value turns every rule off;
// Defaults turns them all on.
type Rules struct {
	// Probes suspends a credential that gets Limit answers of 404 for
	// another tenant's slug or ids unknown in its own tenant within
	// Window. Defaults to 20/1m.
	Probes Rule
	// Logins locks an account after Limit failed logins within Window, for
	// LockFor. Defaults to 10/15m, locked for 15m.
	Logins  Rule
	LockFor time.Duration
	// Addresses flags (alerts on, without blocking) an API key used from
	// more than Limit distinct client addresses within Window. Defaults to
	// 10/1h.
	Addresses Rule
}

// Defaults are the rules in force unless configured otherwise.
var Defaults = Rules{
	Probes:    Rule{Limit: 20, Window: time.Minute},
	Logins:    Rule{Limit: 10, Window: 15 * time.Minute},
	LockFor:   15 * time.Minute,
	Addresses: Rule{Limit: 10, Window: time.Hour},
}

func (r Rules) String() string {
	return fmt.Sprintf("probes=%s,logins=%s,lock=%s,addresses=%s", r.Probes, r.Logins, r.LockFor, r.Addresses)
}

// Parse reads rules in the compact syntax of docs/security-events.md:
// comma-separated settings applied over Defaults, each "probes=N/WINDOW",
// "logins=N/WINDOW", "lock=DURATION", "addresses=N/WINDOW" or
// "NAME=off"; "off" alone turns every rule off, and "" keeps Defaults.
func Parse(s string) (Rules, error) {
	r := Defaults
	s = strings.TrimSpace(s)
	if s == "" || s == "default" || s == "on" {
		return r, nil
	}
	if s == "off" {
		return Rules{}, nil
	}
	for _, part := range strings.Split(s, ",") {
		name, val, ok := strings.Cut(strings.TrimSpace(part), "=")
		if !ok {
			return Rules{}, fmt.Errorf("containment rule %q: want NAME=VALUE", part)
		}
		var err error
		switch name {
		case "probes":
			r.Probes, err = parseRule(val)
		case "logins":
			r.Logins, err = parseRule(val)
		case "addresses":
			r.Addresses, err = parseRule(val)
		case "lock":
			r.LockFor, err = time.ParseDuration(val)
			if err == nil && r.LockFor <= 0 {
				err = fmt.Errorf("must be positive")
			}
		default:
			return Rules{}, fmt.Errorf("containment rule %q: unknown rule (probes, logins, lock, addresses)", name)
		}
		if err != nil {
			return Rules{}, fmt.Errorf("containment rule %q: %w", part, err)
		}
	}
	return r, nil
}

func parseRule(s string) (Rule, error) {
	if s == "off" {
		return Rule{}, nil
	}
	n, w, ok := strings.Cut(s, "/")
	if !ok {
		return Rule{}, fmt.Errorf("want N/WINDOW such as 20/1m, or off")
	}
	limit, err := strconv.Atoi(n)
	if err != nil || limit < 1 {
		return Rule{}, fmt.Errorf("limit must be a positive integer")
	}
	window, err := time.ParseDuration(w)
	if err != nil || window <= 0 {
		return Rule{}, fmt.Errorf("window must be a positive duration such as 1m")
	}
	return Rule{Limit: limit, Window: window}, nil
}

// maxKeys bounds the keys a Counter or Distinct tracks: past it, the
// stalest key is forgotten, so a flood of fresh credentials costs bounded
// memory (and each of them is counted from zero again).
const maxKeys = 100_000

// Counter counts events per key in a sliding window of the rule: Hit
// reports when a key reaches the limit. It is safe for concurrent use.
type Counter struct {
	rule Rule
	mu   sync.Mutex
	keys map[string]*ring
}

// ring holds the times of a key's last Limit events, oldest first.
type ring struct {
	times []time.Time
	next  int
	last  time.Time
}

// NewCounter returns a Counter for rule.
func NewCounter(rule Rule) *Counter { return &Counter{rule: rule, keys: map[string]*ring{}} }

// Hit counts an event of key at now and returns how many events of key lie
// within the window, and whether this event made the count reach the
// limit: true exactly once per crossing, not again until the count drops
// below and rises to the limit again. A Counter of a rule that is off
// returns (0, false).
func (c *Counter) Hit(key string, now time.Time) (n int, reached bool) {
	if c == nil || !c.rule.On() {
		return 0, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	r := c.keys[key]
	if r == nil {
		if len(c.keys) >= maxKeys {
			c.evict(now)
		}
		r = &ring{times: make([]time.Time, 0, min(c.rule.Limit, 64))}
		c.keys[key] = r
	}
	before := r.count(now, c.rule.Window)
	if len(r.times) < c.rule.Limit {
		r.times = append(r.times, now)
	} else {
		r.times[r.next] = now
		r.next = (r.next + 1) % c.rule.Limit
	}
	r.last = now
	n = r.count(now, c.rule.Window)
	return n, n >= c.rule.Limit && before < c.rule.Limit
}

// Reset forgets key's events, as after the key was contained.
func (c *Counter) Reset(key string) {
	if c == nil {
		return
	}
	c.mu.Lock()
	delete(c.keys, key)
	c.mu.Unlock()
}

func (r *ring) count(now time.Time, window time.Duration) int {
	n := 0
	for _, t := range r.times {
		if now.Sub(t) < window {
			n++
		}
	}
	return n
}

// evict forgets keys with no event in the window, or else the stalest one.
func (c *Counter) evict(now time.Time) {
	var stalest string
	var at time.Time
	for k, r := range c.keys {
		if now.Sub(r.last) >= c.rule.Window {
			delete(c.keys, k)
			continue
		}
		if stalest == "" || r.last.Before(at) {
			stalest, at = k, r.last
		}
	}
	if len(c.keys) >= maxKeys {
		delete(c.keys, stalest)
	}
}

// Sweep forgets keys with no event within the window.
func (c *Counter) Sweep(now time.Time) {
	if c == nil {
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for k, r := range c.keys {
		if now.Sub(r.last) >= c.rule.Window {
			delete(c.keys, k)
		}
	}
}

// Distinct counts the distinct values seen per key in a sliding window of
// the rule: See reports when a key has been seen with more than Limit. It
// is safe for concurrent use.
type Distinct[K, V comparable] struct {
	rule Rule
	mu   sync.Mutex
	keys map[K]*seen[V]
}

type seen[V comparable] struct {
	values  map[V]time.Time // value -> last seen
	flagged time.Time       // when it last crossed the limit
	last    time.Time
}

// NewDistinct returns a Distinct for rule.
func NewDistinct[K, V comparable](rule Rule) *Distinct[K, V] {
	return &Distinct[K, V]{rule: rule, keys: map[K]*seen[V]{}}
}

// See records value for key at now and reports how many distinct values
// key has within the window, whether this one took it past the limit (at
// most once per window per key), and whether value was new for key.
func (d *Distinct[K, V]) See(key K, value V, now time.Time) (n int, crossed, added bool) {
	if d == nil || !d.rule.On() {
		return 0, false, false
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	s := d.keys[key]
	if s == nil {
		if len(d.keys) >= maxKeys {
			d.sweep(now, true)
		}
		s = &seen[V]{values: map[V]time.Time{}}
		d.keys[key] = s
	}
	s.last = now
	if t, ok := s.values[value]; ok && now.Sub(t) < d.rule.Window {
		s.values[value] = now
		return len(s.values), false, false
	}
	for v, t := range s.values {
		if now.Sub(t) >= d.rule.Window {
			delete(s.values, v)
		}
	}
	s.values[value] = now
	n = len(s.values)
	if n > d.rule.Limit && (s.flagged.IsZero() || now.Sub(s.flagged) >= d.rule.Window) {
		s.flagged = now
		return n, true, true
	}
	if n > d.rule.Limit+1 {
		for v := range s.values { // bound the memory of a key seen from many addresses
			if v != value {
				delete(s.values, v)
				break
			}
		}
	}
	return n, false, true
}

// Sweep forgets keys not seen within the window.
func (d *Distinct[K, V]) Sweep(now time.Time) {
	if d == nil {
		return
	}
	d.mu.Lock()
	defer d.mu.Unlock()
	d.sweep(now, false)
}

func (d *Distinct[K, V]) sweep(now time.Time, full bool) {
	var stalest K
	var at time.Time
	found := false
	for k, s := range d.keys {
		if now.Sub(s.last) >= d.rule.Window {
			delete(d.keys, k)
		} else if !found || s.last.Before(at) {
			stalest, at, found = k, s.last, true
		}
	}
	if full && len(d.keys) >= maxKeys {
		delete(d.keys, stalest)
	}
}
