package sqlitestore

import (
	"context"
	"database/sql"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// testBundle is a store opened for a test, with a hook into its writers'
// queues.
type testBundle struct {
	s    *Store
	path string
	hook atomic.Pointer[func()]
	ctx  context.Context
}

func setup(t *testing.T, opts *Options) *testBundle {
	t.Helper()
	b := &testBundle{path: filepath.Join(t.TempDir(), "bulkhead.db"), ctx: t.Context()}
	b.open(t, opts)
	return b
}

// open (re)opens the store at b.path.
func (b *testBundle) open(t *testing.T, opts *Options) {
	t.Helper()
	var o Options
	if opts != nil {
		o = *opts
	}
	o.testEnqueued = func() {
		if f := b.hook.Load(); f != nil {
			(*f)()
		}
	}
	s, err := Open(b.path, &o)
	if err != nil {
		t.Fatalf("Open = %v", err)
	}
	b.s = s
	t.Cleanup(func() { s.Close() })
}

func (b *testBundle) tenant(t *testing.T, iso tenant.Isolation) tenant.ID {
	t.Helper()
	id := uuid.NewString()
	_, err := b.s.CreateTenant(b.ctx, &store.CreateTenantParams{ID: tenant.ID(id), Slug: tenant.Slug("t-" + id[:8]),
		Name: "T", Plan: tenant.DefaultPlan, Isolation: iso, CreatedAt: time.Now()}, nil, func(tx store.Tx) error {
		_, err := tx.PutCollection(b.ctx, &store.Collection{Name: "c", CreatedAt: time.Now(), UpdatedAt: time.Now()})
		return err
	})
	if err != nil {
		t.Fatalf("CreateTenant = %v", err)
	}
	return tenant.ID(id)
}

func rec(id string) *store.Record {
	now := time.Now()
	return &store.Record{Collection: "c", ID: store.RecordID(id), Version: 1, Data: json.RawMessage(`{"id":"` + id + `"}`), CreatedAt: now, UpdatedAt: now}
}

// blockWriter occupies tid's writer with a transaction that waits. It
// returns once that transaction runs, with a function that lets it finish.
func (b *testBundle) blockWriter(t *testing.T, tid tenant.ID) (release func()) {
	t.Helper()
	started, proceed, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
	go func() {
		done <- b.s.InTenant(b.ctx, tid, func(tx store.Tx) error {
			close(started)
			<-proceed
			return nil
		})
	}()
	<-started
	return func() {
		close(proceed)
		if err := <-done; err != nil {
			t.Errorf("blocking transaction = %v", err)
		}
	}
}

// enqueue starts n calls of call on their own goroutines and returns once
// all n have joined a writer's queue, with a function that waits for their
// results.
func (b *testBundle) enqueue(n int, call func(i int) error) (wait func() []error) {
	var queued sync.WaitGroup
	queued.Add(n)
	f := func() { queued.Done() }
	b.hook.Store(&f)
	errs := make([]error, n)
	var finished sync.WaitGroup
	for i := range n {
		finished.Go(func() { errs[i] = call(i) })
	}
	queued.Wait()
	b.hook.Store(nil)
	return func() []error {
		finished.Wait()
		return errs
	}
}

func (b *testBundle) writer(t *testing.T, tid tenant.ID) *writer {
	t.Helper()
	d, _, err := b.s.route(b.ctx, tid)
	if err != nil {
		t.Fatal(err)
	}
	return d.w
}

func TestGroupCommit(t *testing.T) {
	t.Parallel()
	for _, tc := range []struct {
		name     string
		maxBatch int
		calls    int
		batches  int64
	}{
		{"OneBatch", 0, 40, 1},
		{"CappedBatches", 8, 20, 3},
	} {
		for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
			t.Run(tc.name+string(iso), func(t *testing.T) {
				t.Parallel()
				b := setup(t, &Options{MaxBatch: tc.maxBatch})
				tid := b.tenant(t, iso)
				w := b.writer(t, tid)
				commits, batches := w.commits.Load(), w.batches.Load()
				release := b.blockWriter(t, tid)
				wait := b.enqueue(tc.calls, func(i int) error {
					return b.s.InTenant(b.ctx, tid, func(tx store.Tx) error {
						return tx.CreateRecord(b.ctx, rec(fmt.Sprint(i)))
					})
				})
				release()
				for i, err := range wait() {
					if err != nil {
						t.Errorf("InTenant %d = %v", i, err)
					}
				}
				// The blocked transaction's batch, then the queue in
				// batches of at most MaxBatch.
				if got := w.batches.Load() - batches; got != 1+tc.batches {
					t.Errorf("%d transactions ran in %d batches, want %d", 1+tc.calls, got, 1+tc.batches)
				}
				if got := w.commits.Load() - commits; got != 1+tc.batches {
					t.Errorf("%d transactions took %d commits, want %d", 1+tc.calls, got, 1+tc.batches)
				}
				err := b.s.ReadTenant(b.ctx, tid, func(tx store.Tx) error {
					u, err := tx.Usage(b.ctx)
					if err == nil && u.Records != int64(tc.calls) {
						t.Errorf("Usage.Records = %d, want %d", u.Records, tc.calls)
					}
					return err
				})
				if err != nil {
					t.Fatal(err)
				}
			})
		}
	}
}

// A request that fails, panics or is cancelled in a batch costs the other
// requests of the batch nothing.
func TestBatchMemberFailures(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tid := b.tenant(t, tenant.Pooled)
	w := b.writer(t, tid)
	if err := b.s.InTenant(b.ctx, tid, func(tx store.Tx) error { return tx.CreateRecord(b.ctx, rec("pre")) }); err != nil {
		t.Fatal(err)
	}
	batches := w.batches.Load()
	release := b.blockWriter(t, tid)

	cancelled, cancel := context.WithCancel(b.ctx)
	midway, cancelMidway := context.WithCancel(b.ctx)
	defer cancelMidway()
	errBoom := errors.New("boom")
	kinds := []string{"ok", "fail", "ok", "panic", "cancelled", "midway", "conflict", "ok"}
	var cancelledRan atomic.Bool
	wait := b.enqueue(len(kinds), func(i int) error {
		ctx := b.ctx
		switch kinds[i] {
		case "cancelled":
			ctx = cancelled
		case "midway":
			ctx = midway
		}
		return b.s.InTenant(ctx, tid, func(tx store.Tx) error {
			id := fmt.Sprint(i)
			switch kinds[i] {
			case "cancelled":
				cancelledRan.Store(true)
			case "midway":
				// Cancelling the request's context while its function
				// runs interrupts nothing: its statements run to the end
				// and it commits with the batch.
				if err := tx.CreateRecord(ctx, rec(id)); err != nil {
					return err
				}
				cancelMidway()
				return tx.CreateRecord(ctx, rec(id+"-after-cancel"))
			case "conflict":
				// A constraint error the function handles leaves the
				// transaction usable.
				if err := tx.CreateRecord(ctx, rec("pre")); !errors.Is(err, store.ErrConflict) {
					return fmt.Errorf("CreateRecord(duplicate) = %v, want ErrConflict", err)
				}
			}
			if err := tx.CreateRecord(ctx, rec(id)); err != nil {
				return err
			}
			switch kinds[i] {
			case "fail":
				return errBoom
			case "panic":
				panic("deliberate")
			}
			return nil
		})
	})
	cancel()
	release()
	errs := wait()

	want := map[string]func(error) bool{
		"ok":        func(err error) bool { return err == nil },
		"fail":      func(err error) bool { return errors.Is(err, errBoom) },
		"panic":     func(err error) bool { return err != nil && strings.Contains(err.Error(), "panic") },
		"cancelled": func(err error) bool { return errors.Is(err, context.Canceled) },
		"midway":    func(err error) bool { return err == nil },
		"conflict":  func(err error) bool { return err == nil },
	}
	for i, err := range errs {
		if !want[kinds[i]](err) {
			t.Errorf("request %d (%s) = %v", i, kinds[i], err)
		}
	}
	if cancelledRan.Load() {
		t.Error("the function of a request cancelled while queued ran")
	}
	if got := w.batches.Load() - batches; got != 2 {
		t.Errorf("requests ran in %d batches, want 2", got)
	}
	err := b.s.ReadTenant(b.ctx, tid, func(tx store.Tx) error {
		for i, kind := range kinds {
			_, err := tx.GetRecord(b.ctx, "c", store.RecordID(fmt.Sprint(i)))
			switch kind {
			case "ok", "midway", "conflict":
				if err != nil {
					t.Errorf("record of request %d (%s): %v", i, kind, err)
				}
			default:
				if !errors.Is(err, store.ErrNotFound) {
					t.Errorf("record of request %d (%s) = %v, want ErrNotFound", i, kind, err)
				}
			}
		}
		if _, err := tx.GetRecord(b.ctx, "c", "5-after-cancel"); err != nil {
			t.Errorf("record written after cancellation: %v", err)
		}
		u, err := tx.Usage(b.ctx)
		if err == nil && u.Records != 7 {
			t.Errorf("Usage.Records = %d, want 7", u.Records)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	// The writer survived the panic.
	if err := b.s.InTenant(b.ctx, tid, func(tx store.Tx) error { return tx.CreateRecord(b.ctx, rec("later")) }); err != nil {
		t.Errorf("InTenant after a panic = %v", err)
	}
}

// A read transaction sees one committed snapshot: neither a write in
// progress nor one committed after its first read.
func TestReaderSnapshot(t *testing.T) {
	t.Parallel()
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		t.Run(string(iso), func(t *testing.T) {
			t.Parallel()
			b := setup(t, nil)
			tid := b.tenant(t, iso)
			count := func(tx store.Tx) int {
				page, err := tx.ListRecords(b.ctx, &store.ListRecordsParams{Collection: "c", Limit: 100})
				if err != nil {
					t.Error(err)
					return -1
				}
				return len(page.Records)
			}

			written, proceed, done := make(chan struct{}), make(chan struct{}), make(chan error, 1)
			go func() {
				done <- b.s.InTenant(b.ctx, tid, func(tx store.Tx) error {
					if err := tx.CreateRecord(b.ctx, rec("1")); err != nil {
						return err
					}
					close(written)
					<-proceed
					return nil
				})
			}()
			<-written
			err := b.s.ReadTenant(b.ctx, tid, func(tx store.Tx) error {
				if n := count(tx); n != 0 {
					t.Errorf("reader sees %d records of an uncommitted write", n)
				}
				// Let the write commit while this snapshot is open.
				close(proceed)
				if err := <-done; err != nil {
					t.Errorf("InTenant = %v", err)
				}
				if n := count(tx); n != 0 {
					t.Errorf("open snapshot sees %d records committed after it began", n)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
			err = b.s.ReadTenant(b.ctx, tid, func(tx store.Tx) error {
				if n := count(tx); n != 1 {
					t.Errorf("new snapshot sees %d records, want 1", n)
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// A write acknowledged before Close is there after reopening, for pooled
// and silo tenants; Close lets the queue drain first.
func TestDurability(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	pooled, silo := b.tenant(t, tenant.Pooled), b.tenant(t, tenant.Silo)
	for _, tid := range []tenant.ID{pooled, silo} {
		if err := b.s.InTenant(b.ctx, tid, func(tx store.Tx) error { return tx.CreateRecord(b.ctx, rec("acked")) }); err != nil {
			t.Fatal(err)
		}
	}
	// Writes queued behind a running transaction when Close is called
	// still commit.
	release := b.blockWriter(t, silo)
	wait := b.enqueue(10, func(i int) error {
		return b.s.InTenant(b.ctx, silo, func(tx store.Tx) error { return tx.CreateRecord(b.ctx, rec(fmt.Sprint("queued", i))) })
	})
	closed := make(chan error, 1)
	go func() { closed <- b.s.Close() }()
	release()
	if err := <-closed; err != nil {
		t.Fatalf("Close = %v", err)
	}
	for i, err := range wait() {
		if err != nil {
			t.Errorf("queued write %d = %v", i, err)
		}
	}
	if err := b.s.InTenant(b.ctx, pooled, func(store.Tx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("InTenant after Close = %v, want ErrClosed", err)
	}
	if err := b.s.ReadPlatform(b.ctx, func(store.PlatformTx) error { return nil }); !errors.Is(err, ErrClosed) {
		t.Errorf("ReadPlatform after Close = %v, want ErrClosed", err)
	}

	b.open(t, nil)
	for tid, want := range map[tenant.ID]int64{pooled: 1, silo: 11} {
		err := b.s.ReadTenant(b.ctx, tid, func(tx store.Tx) error {
			if _, err := tx.GetRecord(b.ctx, "c", "acked"); err != nil {
				t.Errorf("acknowledged record after reopen: %v", err)
			}
			u, err := tx.Usage(b.ctx)
			if err == nil && u.Records != want {
				t.Errorf("Usage.Records after reopen = %d, want %d", u.Records, want)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// Open removes silo files no tenant row claims and keeps the rest.
func TestOrphanSiloFiles(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	silo := b.tenant(t, tenant.Silo)
	dir := filepath.Join(filepath.Dir(b.path), "tenants")
	// A crash between creating a silo file and inserting its row leaves
	// a migrated database without a row.
	orphan := filepath.Join(dir, uuid.NewString()+".db")
	db, err := sql.Open("sqlite", orphan)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`CREATE TABLE t (x); INSERT INTO t VALUES (1)`); err != nil {
		t.Fatal(err)
	}
	db.Close()
	for _, name := range []string{filepath.Base(orphan) + "-wal", filepath.Base(orphan) + "-shm", "README.txt"} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte("x"), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := b.s.Close(); err != nil {
		t.Fatal(err)
	}

	b.open(t, nil)
	for _, name := range []string{orphan, orphan + "-wal", orphan + "-shm"} {
		if _, err := os.Stat(name); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("orphan %s: Stat = %v, want it removed", filepath.Base(name), err)
		}
	}
	for _, name := range []string{string(silo) + ".db", "README.txt"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			t.Errorf("%s: %v, want it kept", name, err)
		}
	}
	if err := b.s.ReadTenant(b.ctx, silo, func(tx store.Tx) error {
		_, err := tx.GetCollection(b.ctx, "c")
		return err
	}); err != nil {
		t.Errorf("silo tenant after reopen: %v", err)
	}
}

// A silo tenant's file exists exactly while the tenant does.
func TestSiloFileLifecycle(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	dir := filepath.Join(filepath.Dir(b.path), "tenants")
	files := func() []string {
		t.Helper()
		entries, err := os.ReadDir(dir)
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, e := range entries {
			names = append(names, e.Name())
		}
		return names
	}

	id := uuid.NewString()
	params := &store.CreateTenantParams{ID: tenant.ID(id), Slug: "failing", Name: "F", Plan: "free", Isolation: tenant.Silo, CreatedAt: time.Now()}
	_, err := b.s.CreateTenant(b.ctx, params, nil, func(tx store.Tx) error { return errors.New("init fails") })
	if err == nil {
		t.Fatal("CreateTenant succeeded, want init's error")
	}
	if names := files(); len(names) != 0 {
		t.Errorf("files after failed CreateTenant: %v", names)
	}
	_, err = b.s.CreateTenant(b.ctx, params, nil, func(tx store.Tx) error { panic("init panics") })
	if err == nil || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("CreateTenant with panicking init = %v", err)
	}
	if names := files(); len(names) != 0 {
		t.Errorf("files after CreateTenant whose init panicked: %v", names)
	}

	tid := b.tenant(t, tenant.Silo)
	if err := b.s.InTenant(b.ctx, tid, func(tx store.Tx) error { return tx.CreateRecord(b.ctx, rec("x")) }); err != nil {
		t.Fatal(err)
	}
	if names := files(); len(names) == 0 {
		t.Error("no silo file after CreateTenant")
	}
	if err := b.s.DeleteTenant(b.ctx, tid, nil); err != nil {
		t.Fatal(err)
	}
	if names := files(); len(names) != 0 {
		t.Errorf("files after DeleteTenant: %v", names)
	}
	if err := b.s.ReadTenant(b.ctx, tid, func(store.Tx) error { return nil }); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("ReadTenant after DeleteTenant = %v, want ErrNotFound", err)
	}
	if names := files(); len(names) != 0 {
		t.Errorf("files after reading a deleted tenant: %v", names)
	}
}

// Tenant ids name silo files, so only canonical UUIDs are accepted.
func TestTenantIDValidation(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	for _, id := range []string{"../escape", "ABCDEF01-2345-6789-ABCD-EF0123456789", "", "x"} {
		for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
			_, err := b.s.CreateTenant(b.ctx, &store.CreateTenantParams{ID: tenant.ID(id), Slug: "valid-slug", Name: "N",
				Plan: "free", Isolation: iso, CreatedAt: time.Now()}, nil, nil)
			if err == nil {
				t.Errorf("CreateTenant(id %q, %s) succeeded", id, iso)
			}
		}
	}
	if _, err := os.Stat(filepath.Join(filepath.Dir(b.path), "escape.db")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("escape.db: Stat = %v", err)
	}
}

// A request whose context ends while it waits in the queue returns at
// once, and its function never runs.
func TestCancelWhileQueued(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tid := b.tenant(t, tenant.Pooled)
	release := b.blockWriter(t, tid)
	defer release()
	ctx, cancel := context.WithCancel(b.ctx)
	var ran atomic.Bool
	wait := b.enqueue(1, func(int) error {
		return b.s.InTenant(ctx, tid, func(store.Tx) error { ran.Store(true); return nil })
	})
	cancel()
	// The writer is still blocked, so the request cannot have been taken.
	if err := wait()[0]; !errors.Is(err, context.Canceled) {
		t.Errorf("InTenant = %v, want context.Canceled", err)
	}
	if ran.Load() {
		t.Error("fn of a cancelled request ran")
	}
}

// A Tx kept past its function refuses to run statements.
func TestTxAfterEnd(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	tid := b.tenant(t, tenant.Pooled)
	var leaked store.Tx
	if err := b.s.InTenant(b.ctx, tid, func(tx store.Tx) error { leaked = tx; return nil }); err != nil {
		t.Fatal(err)
	}
	if err := leaked.CreateRecord(b.ctx, rec("late")); !errors.Is(err, errTxDone) {
		t.Errorf("CreateRecord on an ended Tx = %v, want errTxDone", err)
	}
	var leakedP store.PlatformTx
	if err := b.s.ReadPlatform(b.ctx, func(tx store.PlatformTx) error { leakedP = tx; return nil }); err != nil {
		t.Fatal(err)
	}
	if _, err := leakedP.ListPlans(b.ctx); !errors.Is(err, errTxDone) {
		t.Errorf("ListPlans on an ended PlatformTx = %v, want errTxDone", err)
	}
}

func TestMigrateIsIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t, nil)
	if err := b.s.InPlatform(b.ctx, func(tx store.PlatformTx) error {
		return tx.PutPlan(b.ctx, &tenant.Plan{Name: "free", RatePerSec: 1, Burst: 1, MaxInflight: 1, Weight: 1})
	}); err != nil {
		t.Fatal(err)
	}
	if err := b.s.Close(); err != nil {
		t.Fatal(err)
	}
	b.open(t, nil)
	// Reopening neither fails nor seeds the plans again over the change.
	if err := b.s.ReadPlatform(b.ctx, func(tx store.PlatformTx) error {
		p, err := tx.GetPlan(b.ctx, "free")
		if err == nil && p.RatePerSec != 1 {
			t.Errorf("plan free reseeded: %+v", p)
		}
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var version int
	if err := b.s.main.read(b.ctx, func(c *conn) error {
		return c.queryRow(b.ctx, "PRAGMA user_version").Scan(&version)
	}); err != nil {
		t.Fatal(err)
	}
	if want := migrations[len(migrations)-1].version; version != want {
		t.Errorf("user_version = %d, want %d", version, want)
	}
}

// Every connection runs with the pragmas the package promises.
func TestPragmas(t *testing.T) {
	t.Parallel()
	b := setup(t, &Options{BusyTimeout: 1234 * time.Millisecond})
	check := func(name string, c *conn, readOnly bool) {
		for pragma, want := range map[string]string{
			"journal_mode": "wal", "synchronous": "2", "foreign_keys": "1", "busy_timeout": "1234",
			"query_only": map[bool]string{true: "1", false: "0"}[readOnly],
		} {
			var got string
			if err := c.queryRow(b.ctx, "PRAGMA "+pragma).Scan(&got); err != nil {
				t.Fatalf("%s: PRAGMA %s: %v", name, pragma, err)
			}
			if got != want {
				t.Errorf("%s: PRAGMA %s = %s, want %s", name, pragma, got, want)
			}
		}
	}
	if err := b.s.main.write(b.ctx, func(c *conn) error { check("writer", c, false); return nil }); err != nil {
		t.Fatal(err)
	}
	if err := b.s.main.read(b.ctx, func(c *conn) error { check("reader", c, true); return nil }); err != nil {
		t.Fatal(err)
	}
}

// TestBrokenReaderDiscarded: a reader connection given back broken — here
// left inside a transaction, as when a BEGIN's caller went away just as it
// succeeded — is closed for good, not handed to the next read as it is.
func TestBrokenReaderDiscarded(t *testing.T) {
	t.Parallel()
	b := setup(t, &Options{ReadConns: 1})
	ctx := b.ctx
	readers := b.s.main.readers
	c, err := readers.get(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.exec(ctx, "BEGIN"); err != nil {
		t.Fatal(err)
	}
	readers.put(c, true)
	for i := range 3 {
		if err := b.s.Ping(ctx); err != nil {
			t.Fatalf("read %d after a broken connection was given back: %v", i, err)
		}
	}
}
