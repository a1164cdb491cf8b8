package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/url"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
	"github.com/bulkheadhq/bulkhead/tenant"
)

func TestInterpretError(t *testing.T) {
	t.Parallel()
	// A real failed connect: nothing listens on a port just closed.
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ln.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	_, refused := pgconn.Connect(ctx, "postgres://x@"+ln.Addr().String()+"/x?sslmode=disable")
	var connectErr *pgconn.ConnectError
	if !errors.As(refused, &connectErr) {
		t.Fatalf("connect to a closed port = %v, want a *pgconn.ConnectError", refused)
	}
	pg := func(code string) error { return &pgconn.PgError{Severity: "ERROR", Code: code, Message: "m"} }
	for _, tc := range []struct {
		name string
		err  error
		want error // nil: returned unchanged
	}{
		{"NoRows", pgx.ErrNoRows, store.ErrNotFound},
		{"UniqueViolation", pg("23505"), store.ErrConflict},
		{"InvalidText", pg("22P02"), store.ErrNotFound},
		{"InsufficientPrivilege", pg("42501"), errRowSecurity},
		{"DiskFull", pg("53100"), store.ErrStorageFull},
		{"ConnectionException", pg("08000"), store.ErrUnavailable},
		{"ConnectionDoesNotExist", pg("08003"), store.ErrUnavailable},
		{"ConnectionFailure", pg("08006"), store.ErrUnavailable},
		{"CannotEstablish", pg("08001"), store.ErrUnavailable},
		{"RejectedConnection", pg("08004"), store.ErrUnavailable},
		{"AdminShutdown", pg("57P01"), store.ErrUnavailable},
		{"CrashShutdown", pg("57P02"), store.ErrUnavailable},
		{"CannotConnectNow", pg("57P03"), store.ErrUnavailable},
		{"OutOfMemory", pg("53200"), store.ErrUnavailable},
		{"TooManyConnections", pg("53300"), store.ErrUnavailable},
		{"ReadOnlyTransaction", pg("25006"), store.ErrUnavailable},
		{"SerializationFailure", pg("40001"), store.ErrUnavailable},
		{"Deadlock", pg("40P01"), store.ErrUnavailable},
		{"IOError", pg("58030"), store.ErrUnavailable},
		{"WrappedPgError", fmt.Errorf("pgstore: commit: %w", pg("57P01")), store.ErrUnavailable},
		{"Refused", refused, store.ErrUnavailable},
		{"Reset", &net.OpError{Op: "read", Net: "tcp", Err: syscall.ECONNRESET}, store.ErrUnavailable},
		{"BrokenPipe", fmt.Errorf("write failed: %w", &net.OpError{Op: "write", Net: "tcp", Err: syscall.EPIPE}), store.ErrUnavailable},
		{"UnexpectedEOF", fmt.Errorf("receive message failed: %w", io.ErrUnexpectedEOF), store.ErrUnavailable},
		{"EOF", io.EOF, store.ErrUnavailable},
		{"ConnClosed", fmt.Errorf("x: %w", pgconn.ErrConnClosed), store.ErrUnavailable},
		{"ProtocolViolation", pg("08P01"), nil},
		{"StatementTimeout", pg("57014"), nil},
		{"InvalidPassword", pg("28P01"), nil},
		{"InvalidCatalog", pg("3D000"), nil},
		{"UndefinedTable", pg("42P01"), nil},
		{"Canceled", context.Canceled, nil},
		{"DeadlineExceeded", fmt.Errorf("timeout: %w", context.DeadlineExceeded), nil},
		{"NetTimeoutOfContext", &net.OpError{Op: "read", Net: "tcp", Err: context.DeadlineExceeded}, nil},
		{"Closed", ErrClosed, nil},
		{"Other", errors.New("other"), nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := interpretError(tc.err)
			if tc.want == nil {
				if got != tc.err {
					t.Errorf("interpretError(%v) = %v, want it unchanged", tc.err, got)
				}
				return
			}
			if !errors.Is(got, tc.want) {
				t.Errorf("interpretError(%v) = %v, want %v", tc.err, got, tc.want)
			}
			if tc.want == store.ErrStorageFull || tc.want == store.ErrUnavailable {
				if !errors.Is(got, tc.err) {
					t.Errorf("interpretError(%v) = %v, which lost the original error", tc.err, got)
				}
				if again := interpretError(got); again != got {
					t.Errorf("interpretError twice = %v, want %v", again, got)
				}
			}
			for _, other := range []error{store.ErrNotFound, store.ErrConflict, store.ErrStorageFull, store.ErrUnavailable} {
				if other != tc.want && errors.Is(got, other) {
					t.Errorf("interpretError(%v) = %v, which also matches %v", tc.err, got, other)
				}
			}
		})
	}
}

// faultBundle is a store with a pooled and a silo tenant, each with a
// collection "c", and the operations the fault tests try on it.
type faultBundle struct {
	s             *Store
	pooled, silo  tenant.ID
	mu            sync.Mutex
	acked, failed []string // "tenant/record" of writes
}

func newFaultBundle(t *testing.T, s *Store) *faultBundle {
	t.Helper()
	b := &faultBundle{s: s, pooled: createTenant(t, s, tenant.Pooled), silo: createTenant(t, s, tenant.Silo)}
	for _, tid := range []tenant.ID{b.pooled, b.silo} {
		err := s.InTenant(context.Background(), tid, func(tx store.Tx) error {
			_, err := tx.PutCollection(context.Background(), &store.Collection{Name: "c", CreatedAt: base, UpdatedAt: base})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if err := b.write(context.Background(), tid); err != nil {
			t.Fatal(err)
		}
	}
	return b
}

// write creates a record in tid and remembers whether it was acknowledged.
func (b *faultBundle) write(ctx context.Context, tid tenant.ID) error {
	id := uuid.NewString()
	err := b.s.InTenant(ctx, tid, func(tx store.Tx) error {
		return tx.CreateRecord(ctx, &store.Record{Collection: "c", ID: store.RecordID(id), Version: 1,
			Data: json.RawMessage(`{}`), CreatedAt: base, UpdatedAt: base})
	})
	b.mu.Lock()
	if err == nil {
		b.acked = append(b.acked, string(tid)+"/"+id)
	} else {
		b.failed = append(b.failed, string(tid)+"/"+id)
	}
	b.mu.Unlock()
	return err
}

// ops are the store's operations, by name.
func (b *faultBundle) ops() map[string]func(ctx context.Context) error {
	return map[string]func(ctx context.Context) error{
		"InTenant/pooled": func(ctx context.Context) error { return b.write(ctx, b.pooled) },
		"InTenant/silo":   func(ctx context.Context) error { return b.write(ctx, b.silo) },
		"ReadTenant/pooled": func(ctx context.Context) error {
			return b.s.ReadTenant(ctx, b.pooled, func(tx store.Tx) error { _, err := tx.GetCollection(ctx, "c"); return err })
		},
		"ReadTenant/silo": func(ctx context.Context) error {
			return b.s.ReadTenant(ctx, b.silo, func(tx store.Tx) error { _, err := tx.GetCollection(ctx, "c"); return err })
		},
		// A tenant the store has not seen: route asks the database.
		"ReadTenant/unseen": func(ctx context.Context) error {
			err := b.s.ReadTenant(ctx, tenant.ID(uuid.NewString()), func(store.Tx) error { return nil })
			if errors.Is(err, store.ErrNotFound) {
				return nil
			}
			return err
		},
		"ReadPlatform": func(ctx context.Context) error {
			return b.s.ReadPlatform(ctx, func(tx store.PlatformTx) error { _, err := tx.ListPlans(ctx); return err })
		},
		"InPlatform": func(ctx context.Context) error {
			return b.s.InPlatform(ctx, func(tx store.PlatformTx) error { _, err := tx.GetTenant(ctx, b.pooled); return err })
		},
		"CreateTenant/pooled": func(ctx context.Context) error {
			id := uuid.NewString()
			_, err := b.s.CreateTenant(ctx, &store.CreateTenantParams{ID: tenant.ID(id), Slug: tenant.Slug("t-" + id[:8]),
				Name: "T", Plan: tenant.DefaultPlan, Isolation: tenant.Pooled, CreatedAt: base}, nil, nil)
			return err
		},
		"Ping": func(ctx context.Context) error { return b.s.Ping(ctx) },
	}
}

// checkWrites checks that every acknowledged write is there and no failed
// one is, through a store of its own.
func (b *faultBundle) checkWrites(t *testing.T, s *Store) {
	t.Helper()
	ctx := context.Background()
	for _, set := range []struct {
		ids  []string
		want bool
	}{{b.acked, true}, {b.failed, false}} {
		for _, tr := range set.ids {
			tid, id, _ := strings.Cut(tr, "/")
			err := s.ReadTenant(ctx, tenant.ID(tid), func(tx store.Tx) error {
				_, err := tx.GetRecord(ctx, "c", store.RecordID(id))
				return err
			})
			switch {
			case set.want && err != nil:
				t.Errorf("acknowledged write %s: %v", tr, err)
			case !set.want && !errors.Is(err, store.ErrNotFound):
				// A connection lost during COMMIT leaves the outcome
				// unknown, but the tests here lose none there.
				t.Errorf("failed write %s: GetRecord = %v, want ErrNotFound", tr, err)
			}
		}
	}
	t.Logf("%d writes acknowledged, %d failed", len(b.acked), len(b.failed))
}

// untilServed runs op until it succeeds, for at most 10 attempts or 20s,
// and fails t if any attempt fails with anything but ErrUnavailable.
func untilServed(t *testing.T, name string, op func(ctx context.Context) error) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for attempt := 1; ; attempt++ {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		err := op(ctx)
		cancel()
		if err == nil {
			return
		}
		t.Logf("%s, attempt %d: %v", name, attempt, err)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s = %v, want nil or ErrUnavailable", name, err)
			return
		}
		if attempt == 10 || time.Now().After(deadline) {
			t.Errorf("%s still fails after %d attempts: %v", name, attempt, err)
			return
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// When PostgreSQL cannot be reached (a proxy in between is cut: its
// connections closed, new ones reset, refused or left unanswered), every
// operation fails promptly with ErrUnavailable; once it can again, the same
// store serves, and nothing acknowledged is lost.
func TestPostgresUnreachable(t *testing.T) {
	superURL(t)
	t.Parallel()
	d := newTestDB(t, t, true)
	target, err := url.Parse(d.Super)
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		mode pgtest.CutMode
		// query is added to the URL. Without connect_timeout a connect
		// that is never answered waits for the caller's context, and
		// fails with the context's error.
		query string
	}{
		{"Reset", pgtest.Reset, ""},
		{"Refused", pgtest.Refuse, ""},
		{"Dropped", pgtest.Drop, "connect_timeout=1"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			p := pgtest.NewProxy(t, target.Host)
			u, err := url.Parse(p.URL(d.appURL(t)))
			if err != nil {
				t.Fatal(err)
			}
			if tc.query != "" {
				q := u.Query()
				k, v, _ := strings.Cut(tc.query, "=")
				q.Set(k, v)
				u.RawQuery = q.Encode()
			}
			appURL := u.String()
			s, err := Open(context.Background(), appURL, &Options{MaxConns: 4, ProvisionURL: d.ownerURL(t)})
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			b := newFaultBundle(t, s)
			ops := b.ops()

			p.Cut(tc.mode)
			for name, op := range ops {
				ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
				start := time.Now()
				err := op(ctx)
				elapsed := time.Since(start)
				cancel()
				t.Logf("%s while cut: %v (%v)", name, err, elapsed.Round(time.Millisecond))
				if !errors.Is(err, store.ErrUnavailable) {
					t.Errorf("%s while cut = %v, want ErrUnavailable", name, err)
				}
				if elapsed > 5*time.Second {
					t.Errorf("%s while cut took %v", name, elapsed)
				}
			}
			p.Restore()
			for name, op := range ops {
				untilServed(t, name+" after restore", op)
			}
			b.checkWrites(t, openStore(t, d, &Options{MaxConns: 1, ProvisionURL: "-"}))
		})
	}

	// Cut in the middle of a transaction: the next statement fails, and
	// so does InTenant, with ErrUnavailable; nothing of it commits.
	t.Run("MidTransaction", func(t *testing.T) {
		t.Parallel()
		p := pgtest.NewProxy(t, target.Host)
		s, err := Open(context.Background(), p.URL(d.appURL(t)), &Options{MaxConns: 4, ProvisionURL: d.ownerURL(t)})
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		b := newFaultBundle(t, s)
		ctx := context.Background()
		var stmtErr error
		err = s.InTenant(ctx, b.pooled, func(tx store.Tx) error {
			if err := tx.CreateRecord(ctx, &store.Record{Collection: "c", ID: "mid", Version: 1, Data: json.RawMessage(`{}`), CreatedAt: base, UpdatedAt: base}); err != nil {
				return err
			}
			p.Cut(pgtest.Reset)
			_, stmtErr = tx.GetRecord(ctx, "c", "mid")
			return stmtErr
		})
		t.Logf("statement after the cut: %v", stmtErr)
		if !errors.Is(stmtErr, store.ErrUnavailable) || !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("statement after the cut = %v, InTenant = %v; want ErrUnavailable for both", stmtErr, err)
		}
		p.Restore()
		untilServed(t, "ReadTenant after restore", b.ops()["ReadTenant/pooled"])
		b.failed = append(b.failed, string(b.pooled)+"/mid")
		b.checkWrites(t, s)
	})
}

// terminate ends the backends of role in database db, as a restart of the
// server or an administrator would (57P01), and waits for them to exit.
func terminate(t *testing.T, d *testDB, role string, pid int32) {
	t.Helper()
	q := fmt.Sprintf(`SELECT pg_terminate_backend(pid, 5000) FROM pg_stat_activity WHERE datname = '%s' AND usename = '%s'`, d.Name, role)
	if pid != 0 {
		q = fmt.Sprintf(`SELECT pg_terminate_backend(%d, 5000)`, pid)
	}
	superExec(t, d.Super, q)
}

// When the server ends the store's connections (a restart, or
// pg_terminate_backend), each operation either succeeds on a new
// connection or fails with ErrUnavailable, never with an unmapped error,
// and the store serves again without being reopened. A transaction whose
// connection ends, mid-way or at COMMIT, fails with ErrUnavailable and
// commits nothing.
func TestPostgresBackendsTerminated(t *testing.T) {
	superURL(t)
	t.Parallel()
	d := newTestDB(t, t, true)
	s := openStore(t, d, &Options{MaxConns: 4})
	b := newFaultBundle(t, s)
	ops := b.ops()
	// Fill the pool: four transactions at once.
	var wg sync.WaitGroup
	for range 4 {
		wg.Go(func() {
			s.ReadTenant(context.Background(), b.pooled, func(tx store.Tx) error {
				_, err := tx.GetCollection(context.Background(), "c")
				time.Sleep(50 * time.Millisecond)
				return err
			})
		})
	}
	wg.Wait()

	terminate(t, d, d.App, 0)
	var failures int
	for round := range 3 {
		for name, op := range ops {
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			err := op(ctx)
			cancel()
			if err != nil {
				failures++
				t.Logf("%s, round %d after pg_terminate_backend: %v", name, round, err)
				if !errors.Is(err, store.ErrUnavailable) {
					t.Errorf("%s after pg_terminate_backend = %v, want nil or ErrUnavailable", name, err)
				}
			}
		}
	}
	t.Logf("%d of %d operations failed after pg_terminate_backend", failures, 3*len(ops))
	for name, op := range ops {
		untilServed(t, name, op)
	}

	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// after runs in fn after its first write and the backend's
		// end; it returns fn's result.
		after func(tx store.Tx) error
	}{
		{"MidTransaction", func(tx store.Tx) error {
			_, err := tx.GetCollection(ctx, "c")
			if !errors.Is(err, store.ErrUnavailable) {
				t.Errorf("statement after the backend's end = %v, want ErrUnavailable", err)
			}
			return err
		}},
		{"AtCommit", func(store.Tx) error { return nil }},
	} {
		id := "terminated-" + tc.name
		err := s.InTenant(ctx, b.silo, func(stx store.Tx) error {
			err := stx.CreateRecord(ctx, &store.Record{Collection: "c", ID: store.RecordID(id), Version: 1, Data: json.RawMessage(`{}`), CreatedAt: base, UpdatedAt: base})
			if err != nil {
				return err
			}
			var pid int32
			if err := stx.(*tx).q.queryRow(ctx, "SELECT pg_backend_pid()").Scan(&pid); err != nil {
				return err
			}
			terminate(t, d, "", pid)
			return tc.after(stx)
		})
		t.Logf("%s: InTenant = %v", tc.name, err)
		if !errors.Is(err, store.ErrUnavailable) {
			t.Errorf("%s: InTenant = %v, want ErrUnavailable", tc.name, err)
		}
		b.failed = append(b.failed, string(b.silo)+"/"+id)
	}
	untilServed(t, "InTenant/silo", ops["InTenant/silo"])
	b.checkWrites(t, s)
}

// Errors that are not the database's fault are not ErrUnavailable: an
// ended context stays the context's error, a statement timeout stays
// 57014, and a connect to a database that does not exist stays a
// configuration error.
func TestPostgresNotUnavailable(t *testing.T) {
	superURL(t)
	t.Parallel()
	d := newTestDB(t, t, true)
	s := openStore(t, d, &Options{MaxConns: 2, StatementTimeout: 200 * time.Millisecond})
	b := newFaultBundle(t, s)
	sleep := func(ctx context.Context, secs float64) error {
		return s.ReadTenant(ctx, b.pooled, func(stx store.Tx) error {
			_, err := stx.(*tx).q.exec(ctx, "SELECT pg_sleep($1)", secs)
			return wrap(err, "sleep")
		})
	}

	ctx, cancel := context.WithCancel(context.Background())
	time.AfterFunc(100*time.Millisecond, cancel)
	err := sleep(ctx, 0.15) // the timeout would end it later
	t.Logf("cancelled: %v", err)
	if !errors.Is(err, context.Canceled) || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a statement whose context is cancelled = %v, want context.Canceled and not ErrUnavailable", err)
	}

	ctx, cancel = context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	err = sleep(ctx, 0.15)
	t.Logf("past the context's deadline: %v", err)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a statement past its context's deadline = %v, want context.DeadlineExceeded and not ErrUnavailable", err)
	}

	err = sleep(context.Background(), 2)
	t.Logf("past the statement timeout: %v", err)
	if sqlState(err) != "57014" || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("a statement past the statement timeout = %v, want 57014 and not ErrUnavailable", err)
	}
	untilServed(t, "ReadTenant after the timeouts", b.ops()["ReadTenant/pooled"])

	u, err := url.Parse(d.appURL(t))
	if err != nil {
		t.Fatal(err)
	}
	u.Path = "/" + d.Name + "_missing"
	_, err = Open(context.Background(), u.String(), nil)
	t.Logf("missing database: %v", err)
	if sqlState(err) != "3D000" || errors.Is(err, store.ErrUnavailable) {
		t.Errorf("Open of a database that does not exist = %v, want 3D000 and not ErrUnavailable", err)
	}
}
