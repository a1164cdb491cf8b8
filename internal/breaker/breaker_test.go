package breaker

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bulkheadhq/bulkhead/store"
)

// states records what a breaker reports.
type states struct {
	mu  sync.Mutex
	got map[string][]string
}

func (s *states) Set(name, state string) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.got == nil {
		s.got = map[string][]string{}
	}
	s.got[name] = append(s.got[name], state)
}

func (s *states) of(name string) []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]string(nil), s.got[name]...)
}

type syncBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (w *syncBuffer) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.Write(p)
}

func (w *syncBuffer) String() string {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.b.String()
}

var errDown = errors.New("down")

// waitFor polls cond with a generous bound; it asserts behaviour, never
// speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for give := time.Now().Add(30 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(give) {
			t.Fatalf("gave up waiting for %s", what)
		}
	}
}

func TestBreakerOpensRefusesProbesAndCloses(t *testing.T) {
	var rep states
	var logs syncBuffer
	b := New(Settings{Name: "dep", Failures: 3, Timeout: 20 * time.Millisecond, Report: &rep,
		IsFailure: func(err error) bool { return errors.Is(err, errDown) },
		Logger:    slog.New(slog.NewJSONHandler(&logs, nil))})
	if got := rep.of("dep"); len(got) != 1 || got[0] != Closed {
		t.Fatalf("reported %v at start, want [closed]", got)
	}
	// Errors that are not the dependency's count as successes.
	for range 10 {
		b.Do(func() error { return errors.New("client mistake") })
		b.Do(func() error { return context.Canceled })
	}
	for range 2 {
		b.Do(func() error { return errDown })
	}
	if st := b.State(); st != Closed {
		t.Fatalf("state after 2 failures = %s, want closed", st)
	}
	b.Do(func() error { return errDown })
	if st := b.State(); st != Open {
		t.Fatalf("state after 3 failures in a row = %s, want open", st)
	}
	ran := false
	err := b.Do(func() error { ran = true; return nil })
	var open *OpenError
	if !errors.As(err, &open) || ran {
		t.Fatalf("open breaker: Do = %v (ran %v), want an *OpenError without running", err, ran)
	}
	if !strings.Contains(logs.String(), `"level":"WARN","msg":"circuit breaker opened`) {
		t.Errorf("no warning about the opening in the log:\n%s", logs.String())
	}
	waitFor(t, "half-open", func() bool { return b.State() == HalfOpen })
	// A failed probe opens it again.
	b.Do(func() error { return errDown })
	if st := b.State(); st != Open {
		t.Fatalf("state after a failed probe = %s, want open", st)
	}
	waitFor(t, "half-open again", func() bool { return b.State() == HalfOpen })
	if err := b.Do(func() error { return nil }); err != nil {
		t.Fatalf("probe: %v", err)
	}
	if st := b.State(); st != Closed {
		t.Fatalf("state after a successful probe = %s, want closed", st)
	}
	want := []string{Closed, Open, HalfOpen, Open, HalfOpen, Closed}
	if got := rep.of("dep"); fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("reported %v, want %v", got, want)
	}
	if !strings.Contains(logs.String(), `"level":"INFO","msg":"circuit breaker closed`) {
		t.Errorf("no information about the closing in the log:\n%s", logs.String())
	}
}

func TestDatabaseOutage(t *testing.T) {
	for _, c := range []struct {
		name string
		err  error
		want bool
	}{
		{"Nil", nil, false},
		{"Unavailable", fmt.Errorf("x: %w: %w", store.ErrUnavailable, errors.New("connection refused")), true},
		{"ConnectionException", fmt.Errorf("%w: %w", store.ErrUnavailable, &pgconn.PgError{Code: "08006"}), true},
		{"SerializationFailure", fmt.Errorf("%w: %w", store.ErrUnavailable, &pgconn.PgError{Code: "40001"}), false},
		{"Deadlock", fmt.Errorf("%w: %w", store.ErrUnavailable, &pgconn.PgError{Code: "40P01"}), false},
		{"SQLiteBusy", fmt.Errorf("%w: %w", store.ErrUnavailable, sqliteErr(5|2<<8)), false},
		{"SQLiteIOErr", fmt.Errorf("%w: %w", store.ErrUnavailable, sqliteErr(10|13<<8)), true},
		{"Conflict", fmt.Errorf("%w: %s", store.ErrConflict, "idx"), false},
		{"NotFound", store.ErrNotFound, false},
		{"StatementTimeout", &pgconn.PgError{Code: "57014"}, false},
		{"Canceled", context.Canceled, false},
		{"DeadlineExceeded", context.DeadlineExceeded, false},
		{"StorageFull", store.ErrStorageFull, false},
	} {
		if got := DatabaseOutage(c.err); got != c.want {
			t.Errorf("%s: DatabaseOutage(%v) = %v, want %v", c.name, c.err, got, c.want)
		}
	}
}

type sqliteErr int

func (e sqliteErr) Error() string { return fmt.Sprintf("sqlite error %d", int(e)) }
func (e sqliteErr) Code() int     { return int(e) }
