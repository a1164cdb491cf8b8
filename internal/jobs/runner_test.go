package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/pgstore"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
	"github.com/bulkheadhq/bulkhead/store/sqlitestore"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// testBundle is a store with two tenants and what a Runner on it needs.
type testBundle struct {
	t      *testing.T
	store  store.Store
	a, b   tenant.ID
	config Config // a Runner's configuration, for open
}

// backends runs fn on SQLite and, with BULKHEAD_TEST_POSTGRES_URL, on
// PostgreSQL (River's tables in the store's database, migrated by the
// owner role, used by the application role).
func backends(t *testing.T, fn func(t *testing.T, b *testBundle)) {
	t.Run("SQLite", func(t *testing.T) {
		t.Parallel()
		dir := t.TempDir()
		st, err := sqlitestore.Open(filepath.Join(dir, "bulkhead.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, newBundle(t, st, Config{DatabaseURL: "sqlite:" + filepath.Join(dir, "jobs.db")}))
	})
	t.Run("Postgres", func(t *testing.T) {
		t.Parallel()
		db := pgtest.New(t, t)
		if err := pgstore.Migrate(context.Background(), db.OwnerURL(t), db.App); err != nil {
			t.Fatal(err)
		}
		st, err := pgstore.Open(context.Background(), db.AppURL(t), &pgstore.Options{MaxConns: 8})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { st.Close() })
		fn(t, newBundle(t, st, Config{DatabaseURL: db.AppURL(t), MigrateURL: db.OwnerURL(t)}))
	})
}

func newBundle(t *testing.T, st store.Store, cfg Config) *testBundle {
	b := &testBundle{t: t, store: st}
	for _, id := range []*tenant.ID{&b.a, &b.b} {
		u := uuid.NewString()
		tn, err := st.CreateTenant(t.Context(), &store.CreateTenantParams{ID: tenant.ID(u), Slug: tenant.Slug("t-" + u[:8]),
			Name: "T", Plan: "pro", Isolation: tenant.Pooled, CreatedAt: time.Now().UTC()}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		*id = tn.ID
	}
	cfg.Store = st
	cfg.Logger = slog.New(slog.NewTextHandler(io.Discard, nil))
	cfg.RetryFunc = func(int) time.Duration { return 10 * time.Millisecond }
	cfg.PollInterval = 50 * time.Millisecond
	cfg.ProgressInterval = 10 * time.Millisecond
	b.config = cfg
	return b
}

// open returns a Runner on the bundle's River database, closed when the
// test ends; change, if not nil, adjusts its configuration first.
func (b *testBundle) open(change func(*Config)) *Runner {
	b.t.Helper()
	cfg := b.config
	if change != nil {
		change(&cfg)
	}
	r, err := Open(b.t.Context(), cfg)
	if err != nil {
		b.t.Fatalf("Open: %v", err)
	}
	b.t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		defer cancel()
		r.Close(ctx)
	})
	return r
}

func (b *testBundle) start(r *Runner) {
	b.t.Helper()
	if err := r.Start(b.t.Context()); err != nil {
		b.t.Fatalf("Start: %v", err)
	}
}

func (b *testBundle) job(tid tenant.ID, id store.JobID) *store.Job {
	b.t.Helper()
	var j *store.Job
	err := b.store.ReadTenant(context.Background(), tid, func(tx store.Tx) (err error) {
		j, err = tx.GetJob(context.Background(), id)
		return err
	})
	if err != nil {
		b.t.Fatalf("GetJob(%s) = %v", id, err)
	}
	return j
}

// wait polls the job's record until ok holds, failing the test if it does
// not within a minute (a bound on a hang, not a measurement).
func (b *testBundle) wait(tid tenant.ID, id store.JobID, what string, ok func(*store.Job) bool) *store.Job {
	b.t.Helper()
	for range 6000 {
		if j := b.job(tid, id); ok(j) {
			return j
		}
		time.Sleep(10 * time.Millisecond)
	}
	j := b.job(tid, id)
	b.t.Fatalf("job %s never %s: %+v", id, what, j)
	return nil
}

func (b *testBundle) waitState(tid tenant.ID, id store.JobID, s store.JobState) *store.Job {
	b.t.Helper()
	return b.wait(tid, id, "became "+string(s), func(j *store.Job) bool { return j.State == s })
}

func TestRunner(t *testing.T) {
	backends(t, func(t *testing.T, b *testBundle) {
		t.Run("RetryThenSuccess", func(t *testing.T) { testRetryThenSuccess(t, b) })
		t.Run("PermanentFailure", func(t *testing.T) { testPermanentFailure(t, b) })
		t.Run("AttemptsUsedUp", func(t *testing.T) { testAttemptsUsedUp(t, b) })
		t.Run("Panic", func(t *testing.T) { testPanic(t, b) })
		t.Run("Progress", func(t *testing.T) { testProgress(t, b) })
		t.Run("Cancel", func(t *testing.T) { testCancel(t, b) })
		t.Run("RestartResumes", func(t *testing.T) { testRestartResumes(t, b) })
		t.Run("InterruptedResumes", func(t *testing.T) { testInterruptedResumes(t, b) })
		t.Run("Platform", func(t *testing.T) { testPlatform(t, b) })
		t.Run("UnacknowledgedDropped", func(t *testing.T) { testUnacknowledgedDropped(t, b) })
	})
}

// sub gives a subtest its own bundle view: same store and tenants, its own
// River database, so that subtests' jobs never meet.
func sub(t *testing.T, b *testBundle) *testBundle {
	c := *b
	c.t = t
	if hasPrefix(c.config.DatabaseURL, "sqlite:") {
		c.config.DatabaseURL = "sqlite:" + filepath.Join(t.TempDir(), "jobs.db")
	}
	return &c
}

func testRetryThenSuccess(t *testing.T, b *testBundle) {
	b = sub(t, b)
	r := b.open(nil)
	var calls atomic.Int32
	r.Register("flaky", KindConfig{Work: func(ctx context.Context, task *Task) (any, error) {
		if task.Tenant != b.a || task.Job == nil || string(task.Args) != `{"n":7}` {
			return nil, fmt.Errorf("%w: task %+v", ErrPermanent, task)
		}
		if n := calls.Add(1); n < 3 {
			return nil, fmt.Errorf("attempt %d: transient", n)
		}
		return map[string]int{"attempts": task.Attempt}, nil
	}})
	j, err := r.Enqueue(t.Context(), b.a, "flaky", map[string]int{"n": 7}, &EnqueueOptions{CreatedBy: "user:u1"})
	if err != nil {
		t.Fatal(err)
	}
	if j.State != store.JobQueued || j.CreatedBy != "user:u1" || j.QueueID == 0 {
		t.Errorf("Enqueue = %+v, want queued, by user:u1, with a queue id", j)
	}
	b.start(r)
	got := b.waitState(b.a, j.ID, store.JobSucceeded)
	if got.Attempts != 3 || string(got.Result) != `{"attempts":3}` || got.Error != "" || got.FinishedAt == nil || got.StartedAt == nil {
		t.Errorf("succeeded job = %+v, want 3 attempts, result {\"attempts\":3}, no error, started and finished", got)
	}
}

func testPermanentFailure(t *testing.T, b *testBundle) {
	b = sub(t, b)
	r := b.open(nil)
	var calls atomic.Int32
	r.Register("doomed", KindConfig{Work: func(ctx context.Context, task *Task) (any, error) {
		calls.Add(1)
		return nil, Public(fmt.Errorf("archive does not verify: %w", ErrPermanent))
	}})
	j, err := r.Enqueue(t.Context(), b.a, "doomed", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.start(r)
	got := b.waitState(b.a, j.ID, store.JobFailed)
	if got.Attempts != 1 || got.Error != "archive does not verify: permanent failure" || got.FinishedAt == nil {
		t.Errorf("failed job = %+v, want 1 attempt and the error", got)
	}
	if n := calls.Load(); n != 1 {
		t.Errorf("a permanent failure was attempted %d times, want 1", n)
	}
}

func testAttemptsUsedUp(t *testing.T, b *testBundle) {
	b = sub(t, b)
	r := b.open(nil)
	var calls atomic.Int32
	r.Register("hopeless", KindConfig{MaxAttempts: 2, Work: func(ctx context.Context, task *Task) (any, error) {
		return nil, fmt.Errorf("attempt %d failed: SELECT secret FROM t_0123", calls.Add(1))
	}})
	j, err := r.Enqueue(t.Context(), b.a, "hopeless", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.start(r)
	got := b.waitState(b.a, j.ID, store.JobFailed)
	// An error not marked Public is the operator's: the tenant reads only
	// that the job failed.
	if got.Attempts != 2 || strings.Contains(got.Error, "SELECT") || !strings.Contains(got.Error, "internal error") {
		t.Errorf("failed job = %+v, want 2 attempts and an error that does not quote the failure", got)
	}
}

// testPanic: a Work that panics fails its attempts like an error, and
// its record, which the tenant reads, holds no stack trace.
func testPanic(t *testing.T, b *testBundle) {
	b = sub(t, b)
	r := b.open(nil)
	r.Register("broken", KindConfig{MaxAttempts: 1, Work: func(ctx context.Context, task *Task) (any, error) {
		panic(fmt.Sprintf("broken invariant in %s", task.Job.ID))
	}})
	j, err := r.Enqueue(t.Context(), b.a, "broken", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.start(r)
	got := b.waitState(b.a, j.ID, store.JobFailed)
	if got.Error != errPanicked.Error() || strings.Contains(got.Error, "goroutine") || strings.Contains(got.Error, ".go:") {
		t.Errorf("panicked job's error = %q, want %q and no stack trace", got.Error, errPanicked)
	}
}

func testProgress(t *testing.T, b *testBundle) {
	b = sub(t, b)
	r := b.open(nil)
	release := make(chan struct{})
	r.Register("long", KindConfig{Work: func(ctx context.Context, task *Task) (any, error) {
		task.Progress(5, 10)
		select {
		case <-release:
		case <-ctx.Done():
			return nil, ctx.Err()
		}
		task.Progress(10, 10)
		return nil, nil
	}})
	j, err := r.Enqueue(t.Context(), b.a, "long", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.start(r)
	// The record shows the progress while the job runs.
	got := b.wait(b.a, j.ID, "showed progress 5/10", func(j *store.Job) bool { return j.Done == 5 })
	if got.State != store.JobRunning || got.Total != 10 {
		t.Errorf("job in progress = %+v, want running, 5 of 10", got)
	}
	close(release)
	got = b.waitState(b.a, j.ID, store.JobSucceeded)
	if got.Done != 10 || got.Total != 10 || got.Result != nil {
		t.Errorf("finished job = %+v, want 10 of 10 and no result", got)
	}
}

func testCancel(t *testing.T, b *testBundle) {
	b = sub(t, b)
	r := b.open(nil)
	started := make(chan store.JobID, 1)
	var ended atomic.Int32
	var ranLater atomic.Int32
	r.Register("block", KindConfig{Work: func(ctx context.Context, task *Task) (any, error) {
		started <- task.Job.ID
		<-ctx.Done()
		ended.Add(1)
		return nil, ctx.Err()
	}})
	r.Register("later", KindConfig{Work: func(ctx context.Context, task *Task) (any, error) {
		ranLater.Add(1)
		return nil, nil
	}})
	// A queued job, due in an hour.
	queued, err := r.Enqueue(t.Context(), b.a, "later", nil, &EnqueueOptions{RunAt: time.Now().Add(time.Hour)})
	if err != nil {
		t.Fatal(err)
	}
	// Another tenant cannot cancel it.
	if _, err := r.Cancel(t.Context(), b.b, queued.ID, nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Cancel by another tenant = %v, want ErrNotFound", err)
	}
	if b.job(b.a, queued.ID).State != store.JobQueued {
		t.Errorf("another tenant's Cancel changed the job")
	}
	got, err := r.Cancel(t.Context(), b.a, queued.ID, nil)
	if err != nil || got.State != store.JobCancelled || got.FinishedAt == nil {
		t.Fatalf("Cancel(queued) = %+v, %v, want cancelled", got, err)
	}
	if _, err := r.Cancel(t.Context(), b.a, queued.ID, nil); !errors.Is(err, ErrFinished) {
		t.Errorf("Cancel(cancelled) = %v, want ErrFinished", err)
	}
	// A running job.
	b.start(r)
	running, err := r.Enqueue(t.Context(), b.a, "block", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if id := <-started; id != running.ID {
		t.Fatalf("started %s, want %s", id, running.ID)
	}
	b.waitState(b.a, running.ID, store.JobRunning)
	if got, err := r.Cancel(t.Context(), b.a, running.ID, nil); err != nil || got.State != store.JobCancelled {
		t.Fatalf("Cancel(running) = %+v, %v, want cancelled", got, err)
	}
	// Its work sees its context end, and the record stays cancelled.
	for ended.Load() == 0 {
		time.Sleep(5 * time.Millisecond)
	}
	// A job enqueued after proves the runner went past the cancelled one.
	after, err := r.Enqueue(t.Context(), b.a, "later", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.waitState(b.a, after.ID, store.JobSucceeded)
	if got := b.job(b.a, running.ID); got.State != store.JobCancelled {
		t.Errorf("cancelled running job ended %s, want cancelled", got.State)
	}
	if n := ranLater.Load(); n != 1 {
		t.Errorf("later ran %d times, want 1 (the cancelled one never)", n)
	}
	select {
	case id := <-started:
		t.Errorf("cancelled job %s ran again", id)
	default:
	}
	if _, err := r.Cancel(t.Context(), b.a, after.ID, nil); !errors.Is(err, ErrFinished) {
		t.Errorf("Cancel(succeeded) = %v, want ErrFinished", err)
	}
	if _, err := r.Cancel(t.Context(), b.a, "no-such-job", nil); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("Cancel(unknown) = %v, want ErrNotFound", err)
	}
}

func testRestartResumes(t *testing.T, b *testBundle) {
	b = sub(t, b)
	work := func(ctx context.Context, task *Task) (any, error) { return "done", nil }
	first := b.open(nil)
	first.Register("resume", KindConfig{Work: work})
	j, err := first.Enqueue(t.Context(), b.a, "resume", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	// The first node stops before working it.
	if err := first.Close(t.Context()); err != nil {
		t.Fatal(err)
	}
	second := b.open(nil)
	second.Register("resume", KindConfig{Work: work})
	b.start(second)
	if got := b.waitState(b.a, j.ID, store.JobSucceeded); string(got.Result) != `"done"` {
		t.Errorf("resumed job = %+v, want result \"done\"", got)
	}
}

// testInterruptedResumes: a node that stops while a job runs cancels it;
// another node runs it again, and the interrupted attempt does not count.
func testInterruptedResumes(t *testing.T, b *testBundle) {
	b = sub(t, b)
	started := make(chan struct{}, 2)
	var runs atomic.Int32
	work := func(ctx context.Context, task *Task) (any, error) {
		started <- struct{}{}
		if runs.Add(1) == 1 {
			<-ctx.Done() // the first run blocks until its node stops
			return nil, ctx.Err()
		}
		return "finished", nil
	}
	first := b.open(nil)
	first.Register("long", KindConfig{Work: work, MaxAttempts: 1})
	j, err := first.Enqueue(t.Context(), b.a, "long", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.start(first)
	<-started
	stopNow, cancel := context.WithCancel(context.Background())
	cancel() // no grace: running jobs are cancelled at once
	first.Close(stopNow)
	if got := b.job(b.a, j.ID); got.State != store.JobQueued {
		t.Fatalf("job interrupted by a stopping node is %s, want queued", got.State)
	}
	second := b.open(nil)
	second.Register("long", KindConfig{Work: work, MaxAttempts: 1})
	b.start(second)
	got := b.waitState(b.a, j.ID, store.JobSucceeded)
	if got.Attempts != 1 || string(got.Result) != `"finished"` {
		t.Errorf("resumed job = %+v, want attempt 1 (the interrupted one not counted), result \"finished\"", got)
	}
}

func testPlatform(t *testing.T, b *testBundle) {
	b = sub(t, b)
	r := b.open(nil)
	got := make(chan *Task, 1)
	r.Register("purge", KindConfig{Work: func(ctx context.Context, task *Task) (any, error) {
		got <- task
		return nil, nil
	}})
	if err := r.EnqueuePlatform(t.Context(), "purge", map[string]string{"tenant": "gone"}, nil); err != nil {
		t.Fatal(err)
	}
	b.start(r)
	task := <-got
	var args map[string]string
	if err := json.Unmarshal(task.Args, &args); err != nil || task.Tenant != "" || task.Job != nil || args["tenant"] != "gone" {
		t.Errorf("platform task = %+v, want no tenant, no record, the args", task)
	}
	if _, err := r.Enqueue(t.Context(), b.a, "nope", nil, nil); !errors.Is(err, ErrUnknownKind) {
		t.Errorf("Enqueue(unregistered kind) = %v, want ErrUnknownKind", err)
	}
}

// testUnacknowledgedDropped: a job River has but whose record Enqueue
// never wrote is dropped, not run.
func testUnacknowledgedDropped(t *testing.T, b *testBundle) {
	b = sub(t, b)
	r := b.open(nil)
	r.missingRowGrace = 0
	var ran atomic.Int32
	r.Register("ghost", KindConfig{Work: func(ctx context.Context, task *Task) (any, error) {
		ran.Add(1)
		return nil, nil
	}})
	qid, err := r.q.insert(t.Context(), riverArgs{Tenant: b.a, Job: "never-written", JobKind: "ghost", Args: []byte(`{}`)}, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.start(r)
	// A job enqueued after it proves the runner went past it.
	j, err := r.Enqueue(t.Context(), b.a, "ghost", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.waitState(b.a, j.ID, store.JobSucceeded)
	for range 6000 {
		row, err := r.q.get(t.Context(), qid)
		if err != nil {
			t.Fatal(err)
		}
		if row.State == "cancelled" {
			break
		}
		time.Sleep(10 * time.Millisecond)
	}
	if n := ran.Load(); n != 1 {
		t.Errorf("work ran %d times, want 1 (the acknowledged job only)", n)
	}
}

// TestFairness: tenant A enqueues 10,000 jobs, then tenant B one. B's job
// finishes before A's first few dozen do, A never has more than its cap
// running, and every job's database work carries a batch ticket of its
// tenant's weight. Under the race detector, which looks for races rather
// than for the ordering, A enqueues 1,000.
func TestFairness(t *testing.T) {
	backends(t, func(t *testing.T, b *testBundle) {
		backlog := 10_000
		if raceEnabled {
			backlog = 1_000
		}
		sched, err := fairq.New(fairq.Config{Slots: 4})
		if err != nil {
			t.Fatal(err)
		}
		r := b.open(func(c *Config) { c.Workers, c.PerTenant, c.Scheduler = 6, 2, sched })
		var (
			mu       sync.Mutex
			order    []tenant.ID
			runningA int
			maxA     int
			bad      []string
		)
		bDone := make(chan struct{})
		r.Register("unit", KindConfig{Work: func(ctx context.Context, task *Task) (any, error) {
			mu.Lock()
			if tk, ok := fairq.TicketFrom(ctx); !ok || tk.Class != fairq.Batch || tk.Weight != 4 {
				bad = append(bad, fmt.Sprintf("ticket %+v, %v", tk, ok))
			}
			if task.Tenant == b.a {
				runningA++
				maxA = max(maxA, runningA)
			}
			mu.Unlock()
			// Each job does some database work of its tenant's, as real ones do.
			err := b.store.ReadTenant(ctx, task.Tenant, func(tx store.Tx) error {
				_, err := tx.GetJob(ctx, task.Job.ID)
				return err
			})
			mu.Lock()
			defer mu.Unlock()
			if task.Tenant == b.a {
				runningA--
			}
			order = append(order, task.Tenant)
			if task.Tenant == b.b {
				close(bDone)
			}
			return nil, err
		}})
		var g errgroup.Group
		g.SetLimit(16)
		for range backlog {
			g.Go(func() error {
				_, err := r.Enqueue(t.Context(), b.a, "unit", nil, nil)
				return err
			})
		}
		if err := g.Wait(); err != nil {
			t.Fatal(err)
		}
		jb, err := r.Enqueue(t.Context(), b.b, "unit", nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		b.start(r)
		<-bDone
		b.waitState(b.b, jb.ID, store.JobSucceeded)
		mu.Lock()
		defer mu.Unlock()
		pos := slices.Index(order, b.b)
		t.Logf("B's job finished %d-th, after %d of A's %d", pos+1, pos, backlog)
		if pos < 0 || pos >= 24 {
			t.Errorf("B's job finished after %d of A's jobs, want fewer than 24", pos)
		}
		if maxA > 2 {
			t.Errorf("A had %d jobs running at once, want at most its cap of 2", maxA)
		}
		if len(bad) > 0 {
			t.Errorf("jobs ran without a batch ticket of weight 4: %v", bad[:min(3, len(bad))])
		}
	})
}

// TestPostgresMigrate: the application role cannot make River's schema
// itself, and says what to do; after MigratePostgres (what bulkhead
// migrate runs as the owner role) it opens without the owner's URL and
// runs jobs.
func TestPostgresMigrate(t *testing.T) {
	t.Parallel()
	db := pgtest.New(t, t)
	if err := pgstore.Migrate(context.Background(), db.OwnerURL(t), db.App); err != nil {
		t.Fatal(err)
	}
	st, err := pgstore.Open(context.Background(), db.AppURL(t), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { st.Close() })
	b := newBundle(t, st, Config{DatabaseURL: db.AppURL(t)})
	if _, err := Open(t.Context(), b.config); err == nil || !strings.Contains(err.Error(), "bulkhead migrate") {
		t.Fatalf("Open as the application role before migrating = %v, want an error naming bulkhead migrate", err)
	}
	if err := MigratePostgres(t.Context(), db.OwnerURL(t), db.App); err != nil {
		t.Fatal(err)
	}
	// Idempotent.
	if err := MigratePostgres(t.Context(), db.OwnerURL(t), db.App); err != nil {
		t.Fatal(err)
	}
	r := b.open(nil)
	r.Register("hello", KindConfig{Work: func(ctx context.Context, task *Task) (any, error) { return "hi", nil }})
	j, err := r.Enqueue(t.Context(), b.a, "hello", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b.start(r)
	b.waitState(b.a, j.ID, store.JobSucceeded)
}
