// Package breaker puts circuit breakers (sony/gobreaker) around what a node
// depends on — its database and the hosts it calls — and reports each state
// change to the node's breaker states and its log.
package breaker

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/sony/gobreaker/v2"
)

// States of a breaker, as gobreaker names them and observe.Breakers records
// them.
const (
	Closed   = "closed"
	HalfOpen = "half-open"
	Open     = "open"
)

// Reporter receives a breaker's state after each change, and its first
// state when the breaker is made; *observe.Breakers is one.
type Reporter interface {
	Set(name, state string)
}

// Settings configure a Breaker. Name and IsFailure are required.
type Settings struct {
	// Name names the breaker in the log and to Report.
	Name string
	// Attrs are added to each log line about the breaker (such as the
	// host it guards).
	Attrs []slog.Attr
	// IsFailure says which errors are failures of the dependency itself.
	// Any other error counts as a success: the dependency answered, and
	// the caller's mistake is no reason to stop calling it.
	IsFailure func(error) bool
	// Failures is how many failures in a row open the breaker. Defaults
	// to 5.
	Failures uint32
	// Timeout is how long an open breaker refuses calls before it lets a
	// probe through (half-open). Defaults to 3s.
	Timeout time.Duration
	// Report, if set, receives each state change.
	Report Reporter
	// Logger receives a line per state change: a warning when the breaker
	// opens, information when it goes half-open or closes. Defaults to
	// slog.Default().
	Logger *slog.Logger
	// OnChange, if set, is called after each state change with the new
	// state, outside any lock of the breaker's.
	OnChange func(state string)
}

// Breaker is one circuit breaker: closed, it lets every call through and
// counts its dependency's failures; Failures of them in a row open it, and
// open it refuses every call at once with an *OpenError for Timeout; then,
// half-open, it lets one call through as a probe, whose success closes it
// and whose failure opens it again. It is safe for concurrent use.
type Breaker struct {
	cb      *gobreaker.TwoStepCircuitBreaker[struct{}]
	name    string
	timeout time.Duration
}

// OpenError is the error of a call an open or half-open breaker refused.
type OpenError struct {
	// Name is the breaker's.
	Name string
	// State is "open", or "half-open" while a probe is under way.
	State string
	// RetryAfter is about when the breaker lets calls through again.
	RetryAfter time.Duration
	err        error // gobreaker's
}

func (e *OpenError) Error() string {
	return fmt.Sprintf("circuit breaker %s is %s: %v", e.Name, e.State, e.err)
}

// Unwrap returns gobreaker's error (ErrOpenState or ErrTooManyRequests).
func (e *OpenError) Unwrap() error { return e.err }

// New returns a closed Breaker; it reports its state to s.Report at once.
func New(s Settings) *Breaker {
	if s.Name == "" || s.IsFailure == nil {
		panic("breaker: Settings.Name and Settings.IsFailure are required")
	}
	log := cmp.Or(s.Logger, slog.Default())
	failures := cmp.Or(s.Failures, 5)
	b := &Breaker{name: s.Name, timeout: cmp.Or(s.Timeout, 3*time.Second)}
	isFailure := s.IsFailure
	b.cb = gobreaker.NewTwoStepCircuitBreaker[struct{}](gobreaker.Settings{
		Name:        s.Name,
		MaxRequests: 1,
		Timeout:     b.timeout,
		ReadyToTrip: func(c gobreaker.Counts) bool { return c.ConsecutiveFailures >= failures },
		// An ended context is the caller's, never the dependency's.
		IsExcluded: func(err error) bool {
			return errors.Is(err, context.Canceled) || errors.Is(err, context.DeadlineExceeded) && !isFailure(err)
		},
		IsSuccessful: func(err error) bool { return err == nil || !isFailure(err) },
		// Called with gobreaker's lock held: it must not call the breaker.
		OnStateChange: func(name string, from, to gobreaker.State) {
			attrs := append([]slog.Attr{slog.String("breaker", name), slog.String("from", from.String()),
				slog.String("to", to.String())}, s.Attrs...)
			switch to {
			case gobreaker.StateOpen:
				attrs = append(attrs, slog.Float64("open_ms", float64(b.timeout)/float64(time.Millisecond)))
				log.LogAttrs(context.Background(), slog.LevelWarn, "circuit breaker opened: calls are refused at once until a probe succeeds", attrs...)
			case gobreaker.StateHalfOpen:
				log.LogAttrs(context.Background(), slog.LevelInfo, "circuit breaker half-open: one call probes", attrs...)
			default:
				log.LogAttrs(context.Background(), slog.LevelInfo, "circuit breaker closed: calls go through again", attrs...)
			}
			if s.Report != nil {
				s.Report.Set(name, to.String())
			}
			if s.OnChange != nil {
				s.OnChange(to.String())
			}
		},
	})
	if s.Report != nil {
		s.Report.Set(s.Name, Closed)
	}
	return b
}

// Name returns the breaker's name.
func (b *Breaker) Name() string { return b.name }

// State returns "closed", "half-open" or "open". An open breaker whose
// Timeout has passed turns half-open when asked.
func (b *Breaker) State() string { return b.cb.State().String() }

// Allow asks to make one call: if the breaker lets it through, done must be
// called with the call's error; if not, err is an *OpenError.
func (b *Breaker) Allow() (done func(error), err error) {
	done, err = b.cb.Allow()
	if err != nil {
		st := Open
		if errors.Is(err, gobreaker.ErrTooManyRequests) {
			st = HalfOpen
		}
		return nil, &OpenError{Name: b.name, State: st, RetryAfter: b.timeout, err: err}
	}
	return done, nil
}

// Do runs fn if the breaker lets it through and counts its error; if not,
// it returns an *OpenError without running fn. A panic of fn counts as a
// success (a bug, not the dependency's failure) and goes on.
func (b *Breaker) Do(fn func() error) (err error) {
	done, err := b.Allow()
	if err != nil {
		return err
	}
	finished := false
	defer func() {
		if !finished {
			done(nil)
		}
	}()
	err = fn()
	finished = true
	done(err)
	return err
}

// ProbeWhileOpen calls probe every interval while b is not closed, until
// ctx ends: an open breaker turns half-open once its timeout has passed,
// and probe's call through it is the trial, so the breaker closes by
// itself soon after what it guards answers again, with or without
// traffic.
func (b *Breaker) ProbeWhileOpen(ctx context.Context, interval time.Duration, probe func()) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if b.State() != Closed {
				probe()
			}
		}
	}
}
