package fairq

import (
	"strconv"
	"time"
)

// BreakerState is the state of a tenant's breaker.
type BreakerState uint8

const (
	// BreakerClosed is the normal state: the tenant is held only to its share.
	BreakerClosed BreakerState = iota
	// BreakerOpen caps the tenant at Config.BreakerSlots until its cool-down
	// ends; outcomes do not change it.
	BreakerOpen
	// BreakerHalfOpen follows the cool-down: the tenant is still capped, the
	// next OutcomeOK closes the breaker and the next OutcomeTimeout opens it
	// again.
	BreakerHalfOpen
)

// String returns "closed", "open" or "half_open", suitable as a metric label.
func (b BreakerState) String() string {
	switch b {
	case BreakerClosed:
		return "closed"
	case BreakerOpen:
		return "open"
	case BreakerHalfOpen:
		return "half_open"
	default:
		return "BreakerState(" + strconv.Itoa(int(b)) + ")"
	}
}

// breaker is one tenant's breaker. Its zero value is closed with no history.
type breaker struct {
	state BreakerState
	until time.Time // while open: end of the cool-down

	// While closed: the times of the last timeouts, a ring of
	// Config.BreakerThreshold entries allocated at the first timeout.
	times []time.Time
	n     int // entries used
	next  int // index the next timeout is written to; the oldest when n is full
	last  time.Time
}

// current returns the state at now, moving an open breaker whose cool-down
// has ended to half-open.
func (b *breaker) current(now time.Time) BreakerState {
	if b.state == BreakerOpen && !now.Before(b.until) {
		b.state = BreakerHalfOpen
	}
	return b.state
}

// record applies the outcome of one released slot and reports whether it
// opened the breaker.
func (b *breaker) record(o Outcome, now time.Time, c *breakerConfig) (opened bool) {
	if c.threshold < 0 {
		return false
	}
	switch b.current(now) {
	case BreakerClosed:
		if o != OutcomeTimeout {
			return false
		}
		if len(b.times) != c.threshold {
			b.times = make([]time.Time, c.threshold)
			b.n, b.next = 0, 0
		}
		b.times[b.next] = now
		b.next = (b.next + 1) % len(b.times)
		b.n = min(b.n+1, len(b.times))
		b.last = now
		if b.n == len(b.times) && now.Sub(b.times[b.next]) < c.window {
			b.open(now, c)
			return true
		}
	case BreakerHalfOpen:
		switch o {
		case OutcomeOK:
			b.reset()
		case OutcomeTimeout:
			b.open(now, c)
			return true
		}
	}
	return false
}

func (b *breaker) open(now time.Time, c *breakerConfig) {
	b.state = BreakerOpen
	b.until = now.Add(c.cooldown)
	b.n, b.next = 0, 0
}

// reset closes the breaker and forgets its history, keeping the ring's
// memory for reuse.
func (b *breaker) reset() {
	b.state = BreakerClosed
	b.until = time.Time{}
	b.n, b.next = 0, 0
	b.last = time.Time{}
}

// forgetAt is when an idle tenant's breaker has nothing left to remember: a
// closed breaker once its last timeout has left the window; an open or
// half-open one a cool-down after its cool-down ended (a tenant idle that long
// starts afresh).
func (b *breaker) forgetAt(c *breakerConfig) time.Time {
	if b.state != BreakerClosed {
		return b.until.Add(c.cooldown)
	}
	if b.n == 0 {
		return time.Time{}
	}
	return b.last.Add(c.window)
}
