package fairq

import "time"

// Clock is the scheduler's source of time: deadlines, hold times and breaker
// windows are all read from it. Implementations must be safe for concurrent
// use. Tests supply a fake to control time; the default is the system clock.
type Clock interface {
	// Now returns the current time.
	Now() time.Time
	// AfterFunc arranges for f to be called once, no earlier than d from now,
	// and returns a Timer that can cancel the call. It must not call f before
	// it returns: the scheduler calls AfterFunc with its lock held, and f
	// takes that lock.
	AfterFunc(d time.Duration, f func()) Timer
}

// Timer is a pending call made by Clock.AfterFunc. *time.Timer implements it.
type Timer interface {
	// Stop cancels the call. It reports whether it did so; false means the
	// call has already happened, is happening, or was stopped before.
	Stop() bool
}

// systemClock is the Clock of the time package.
type systemClock struct{}

func (systemClock) Now() time.Time { return time.Now() }

func (systemClock) AfterFunc(d time.Duration, f func()) Timer { return time.AfterFunc(d, f) }
