package jobs

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/google/uuid"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/rivertype"

	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// ErrFinished is returned by Cancel for a job that has finished already.
var ErrFinished = errors.New("job is finished")

// ErrUnknownKind is returned by Enqueue for a kind nobody registered.
var ErrUnknownKind = errors.New("unknown kind of job")

// Config configures a Runner. Store and DatabaseURL are required.
type Config struct {
	// Store holds the tenants' job records (store.Jobs) and their plans.
	Store store.Store
	// DatabaseURL is where River keeps its queue: "sqlite:PATH", a SQLite
	// file of River's own (never the store's file, whose single writer
	// River would contend with), or "postgres://…", the store's
	// PostgreSQL database as the application role, where River's tables
	// live in schema bulkhead_jobs.
	DatabaseURL string
	// MigrateURL, for PostgreSQL, connects as the owner role, which
	// creates schema bulkhead_jobs, migrates River's tables in it with
	// rivermigrate and grants the application role their use. Without it
	// Open migrates as the application role, which works only if that
	// role may (or the schema is up to date already).
	MigrateURL string
	// Scheduler, if set, grants each job's database work a slot as batch
	// work of its tenant, weighted by the tenant's plan: a fairq.Ticket
	// rides in the job's context. Defaults to none (no slots).
	Scheduler *fairq.Scheduler
	// Workers is how many jobs run at once on this node. Defaults to 6.
	Workers int
	// PerTenant is how many jobs of one tenant run at once on this node.
	// Defaults to 2.
	PerTenant int
	// RetryFunc, if set, says how long to wait before attempt+1 after
	// attempt failed. Defaults to River's back-off (attempt⁴ seconds,
	// with jitter).
	RetryFunc func(attempt int) time.Duration
	// PollInterval is how often an idle node looks for jobs to run. On
	// SQLite, which cannot notify, it is how soon a job starts; defaults
	// to 250ms. On PostgreSQL, inserted jobs are announced by
	// LISTEN/NOTIFY and polling backs it up; defaults to 1s.
	PollInterval time.Duration
	// ProgressInterval is how often a running job's progress is written
	// to its record at most. Defaults to 1s.
	ProgressInterval time.Duration
	// Logger receives what has no caller to return to. Defaults to
	// slog.Default().
	Logger *slog.Logger
}

// Defaults of Config.
const (
	DefaultWorkers   = 6
	DefaultPerTenant = 2
)

// Runner runs jobs on River, fairly across tenants: it implements Queue.
// Register every kind, then Start; Close stops it. It is safe for
// concurrent use.
type Runner struct {
	cfg   Config
	log   *slog.Logger
	store store.Store // wrapped by fairq.Store: a ticket in ctx schedules
	q     queue

	mu      sync.Mutex
	kinds   map[Kind]KindConfig
	started bool
	running map[tenant.ID]int        // jobs running per tenant, for the cap
	active  map[store.JobID]*running // jobs running on this node
	weights map[tenant.ID]cachedWeight

	missingRowGrace time.Duration // missingRowGrace, or less in tests
}

type cachedWeight struct {
	weight  int
	expires time.Time
}

// running is a job being worked on this node.
type running struct {
	cancel    context.CancelFunc
	cancelled bool // by Cancel: the job ends cancelled, not failed
}

// queue is what the Runner needs of River's client, whatever its driver.
type queue interface {
	insert(ctx context.Context, args riverArgs, opts *river.InsertOpts) (int64, error)
	cancel(ctx context.Context, id int64) (*rivertype.JobRow, error)
	get(ctx context.Context, id int64) (*rivertype.JobRow, error)
	start(ctx context.Context) error
	stop(ctx context.Context) error
	stopAndCancel(ctx context.Context) error
	close() error
}

// riverKind is the kind of every job in River's tables; the job's own
// Kind is in its args.
const riverKind = "bulkhead"

// riverArgs are a job's arguments as River stores them.
type riverArgs struct {
	Tenant  tenant.ID       `json:"tenant,omitempty"`
	Job     store.JobID     `json:"job,omitempty"`
	JobKind Kind            `json:"kind"`
	Args    json.RawMessage `json:"args"`
}

func (riverArgs) Kind() string { return riverKind }

// Open returns a Runner on the River database of cfg.DatabaseURL,
// migrating River's schema there first.
func Open(ctx context.Context, cfg Config) (*Runner, error) {
	if cfg.Store == nil {
		return nil, errors.New("jobs: Config.Store is required")
	}
	if cfg.Workers < 0 || cfg.PerTenant < 0 {
		return nil, fmt.Errorf("jobs: Workers and PerTenant must be >= 0, got %d and %d", cfg.Workers, cfg.PerTenant)
	}
	cfg.Workers = cmp.Or(cfg.Workers, DefaultWorkers)
	cfg.PerTenant = cmp.Or(cfg.PerTenant, DefaultPerTenant)
	if cfg.PollInterval == 0 {
		cfg.PollInterval = time.Second
		if hasPrefix(cfg.DatabaseURL, "sqlite:") {
			cfg.PollInterval = 250 * time.Millisecond
		}
	}
	cfg.ProgressInterval = cmp.Or(cfg.ProgressInterval, time.Second)
	if cfg.Logger == nil {
		cfg.Logger = slog.Default()
	}
	r := &Runner{
		cfg:     cfg,
		log:     cfg.Logger,
		store:   fairq.Store(cfg.Store),
		kinds:   map[Kind]KindConfig{},
		running: map[tenant.ID]int{},
		active:  map[store.JobID]*running{},
		weights: map[tenant.ID]cachedWeight{},

		missingRowGrace: missingRowGrace,
	}
	workers := river.NewWorkers()
	if err := river.AddWorkerSafely(workers, &worker{r: r}); err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	rc := &river.Config{
		Queues:  map[string]river.QueueConfig{river.QueueDefault: {MaxWorkers: cfg.Workers}},
		Workers: workers,
		Logger:  cfg.Logger.With("component", "river"),
		// A job's timeout is its kind's (worker.Timeout).
		JobTimeout: -1,
		// Finished jobs are kept by River for a day; the tenant's record
		// keeps them for the tenant.
		CompletedJobRetentionPeriod: 24 * time.Hour,
		CancelledJobRetentionPeriod: 24 * time.Hour,
		FetchPollInterval:           cfg.PollInterval,
		FetchCooldown:               min(cfg.PollInterval, 100*time.Millisecond),
		// The application role may not reindex River's tables.
		ReindexerSchedule: river.NeverSchedule(),
		ErrorHandler:      &errorHandler{log: cfg.Logger},
	}
	var err error
	switch {
	case hasPrefix(cfg.DatabaseURL, "sqlite:"):
		r.q, err = openSQLite(ctx, cfg.DatabaseURL[len("sqlite:"):], rc)
	case hasPrefix(cfg.DatabaseURL, "postgres:"), hasPrefix(cfg.DatabaseURL, "postgresql:"):
		r.q, err = openPostgres(ctx, cfg.DatabaseURL, cfg.MigrateURL, rc)
	default:
		return nil, fmt.Errorf("jobs: DatabaseURL must be sqlite:PATH or postgres://…")
	}
	if err != nil {
		return nil, fmt.Errorf("jobs: %w", err)
	}
	return r, nil
}

func hasPrefix(s, p string) bool { return len(s) >= len(p) && s[:len(p)] == p }

// Register says what jobs of kind do. It panics if called after Start or
// twice for a kind, as both are programming errors.
func (r *Runner) Register(kind Kind, kc KindConfig) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.started {
		panic("jobs: Register(" + string(kind) + ") after Start")
	}
	if _, ok := r.kinds[kind]; ok {
		panic("jobs: kind " + string(kind) + " registered twice")
	}
	if kc.Work == nil {
		panic("jobs: kind " + string(kind) + " has no Work")
	}
	kc.MaxAttempts = cmp.Or(kc.MaxAttempts, 5)
	kc.Timeout = cmp.Or(kc.Timeout, time.Hour)
	r.kinds[kind] = kc
}

func (r *Runner) kind(k Kind) (KindConfig, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	kc, ok := r.kinds[k]
	return kc, ok
}

// Start starts working jobs; ctx bounds the start only. Jobs enqueued
// before, or left queued by an earlier run, start running.
func (r *Runner) Start(ctx context.Context) error {
	r.mu.Lock()
	r.started = true
	r.mu.Unlock()
	// River's jobs inherit Start's context: they end with Close, not ctx.
	return r.q.start(context.WithoutCancel(ctx))
}

// Close stops the Runner: jobs running get until ctx ends to finish, then
// are cancelled (River runs them again later: an interrupted job is not
// lost). It then closes River's database connections.
func (r *Runner) Close(ctx context.Context) error {
	r.mu.Lock()
	started := r.started
	r.mu.Unlock()
	var errs []error
	if started {
		if err := r.q.stop(ctx); err != nil {
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			errs = append(errs, r.q.stopAndCancel(sctx))
			cancel()
		}
	}
	errs = append(errs, r.q.close())
	return errors.Join(errs...)
}

// priorityFor is the River priority (1, most urgent, to 4) of a tenant's
// new job given how many of its jobs are queued or running: a tenant's
// first jobs go ahead of a busy tenant's backlog, since River runs jobs by
// priority first.
func priorityFor(backlog, perTenant int) int {
	switch {
	case backlog < perTenant:
		return 1
	case backlog < 10*perTenant:
		return 2
	case backlog < 100*perTenant:
		return 3
	}
	return 4
}

// Enqueue records a job of tenant tid and schedules it: River's insert
// comes first, then the tenant's record, whose existence means the job is
// acknowledged (a worker that finds no record, because Enqueue failed in
// between, drops the job).
func (r *Runner) Enqueue(ctx context.Context, tid tenant.ID, kind Kind, args any, opts *EnqueueOptions) (*store.Job, error) {
	if tid == "" {
		return nil, store.ErrNoTenant
	}
	kc, ok := r.kind(kind)
	if !ok {
		return nil, fmt.Errorf("enqueue %s: %w", kind, ErrUnknownKind)
	}
	if opts == nil {
		opts = &EnqueueOptions{}
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return nil, fmt.Errorf("enqueue %s: %w", kind, err)
	}
	var backlog int
	err = r.store.ReadTenant(ctx, tid, func(tx store.Tx) (err error) {
		backlog, err = tx.CountActiveJobs(ctx, 100*r.cfg.PerTenant)
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("enqueue %s: %w", kind, err)
	}
	id := store.JobID(uuid.Must(uuid.NewV7()).String())
	qid, err := r.q.insert(ctx, riverArgs{Tenant: tid, Job: id, JobKind: kind, Args: raw}, &river.InsertOpts{
		Priority:    priorityFor(backlog, r.cfg.PerTenant),
		MaxAttempts: kc.MaxAttempts,
		ScheduledAt: opts.RunAt,
	})
	if err != nil {
		return nil, fmt.Errorf("enqueue %s: %w", kind, err)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	j := &store.Job{ID: id, Kind: string(kind), State: store.JobQueued, Args: raw, CreatedBy: opts.CreatedBy, QueueID: qid,
		CreatedAt: now, UpdatedAt: now}
	if err := r.store.InTenant(ctx, tid, func(tx store.Tx) error { return tx.CreateJob(ctx, j) }); err != nil {
		// Not acknowledged: take it back, or its worker will drop it.
		if _, cerr := r.q.cancel(context.WithoutCancel(ctx), qid); cerr != nil {
			r.log.Warn("jobs: an unacknowledged job is left to its worker to drop", "job", id, "err", cerr)
		}
		return nil, fmt.Errorf("enqueue %s: %w", kind, err)
	}
	return j, nil
}

// EnqueuePlatform schedules a job of no tenant's, recorded by River alone.
func (r *Runner) EnqueuePlatform(ctx context.Context, kind Kind, args any, opts *EnqueueOptions) error {
	kc, ok := r.kind(kind)
	if !ok {
		return fmt.Errorf("enqueue %s: %w", kind, ErrUnknownKind)
	}
	if opts == nil {
		opts = &EnqueueOptions{}
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", kind, err)
	}
	_, err = r.q.insert(ctx, riverArgs{JobKind: kind, Args: raw}, &river.InsertOpts{
		Priority: 1, MaxAttempts: kc.MaxAttempts, ScheduledAt: opts.RunAt})
	if err != nil {
		return fmt.Errorf("enqueue %s: %w", kind, err)
	}
	return nil
}

// Cancel cancels tenant tid's job id, queued or running, and returns its
// record. It returns store.ErrNotFound if the tenant has no such job and
// ErrFinished if the job has finished. A running job's context is
// cancelled (on another node, through River's notification); its record
// says cancelled at once.
func (r *Runner) Cancel(ctx context.Context, tid tenant.ID, id store.JobID) (*store.Job, error) {
	var j *store.Job
	err := r.store.ReadTenant(ctx, tid, func(tx store.Tx) (err error) {
		j, err = tx.GetJob(ctx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	if j.State.Finished() {
		return nil, fmt.Errorf("cancel job %s: %w", id, ErrFinished)
	}
	if j.QueueID != 0 {
		row, err := r.q.cancel(ctx, j.QueueID)
		switch {
		case errors.Is(err, river.ErrNotFound):
			// River has forgotten it (finished long ago): the record decides.
		case err != nil:
			return nil, fmt.Errorf("cancel job %s: %w", id, err)
		case row.State == rivertype.JobStateCompleted || row.State == rivertype.JobStateDiscarded:
			// It finished as we asked; its worker is writing the record.
			return nil, fmt.Errorf("cancel job %s: %w", id, ErrFinished)
		}
	}
	r.mu.Lock()
	if a := r.active[id]; a != nil {
		a.cancelled = true
		a.cancel()
	}
	r.mu.Unlock()
	err = r.store.InTenant(ctx, tid, func(tx store.Tx) error {
		var err error
		if j, err = tx.GetJob(ctx, id); err != nil {
			return err
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		j.State, j.UpdatedAt, j.FinishedAt = store.JobCancelled, now, &now
		return tx.UpdateJob(ctx, j)
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, fmt.Errorf("cancel job %s: %w", id, ErrFinished)
	}
	if err != nil {
		return nil, fmt.Errorf("cancel job %s: %w", id, err)
	}
	return j, nil
}

// weight returns tid's plan weight, cached for a minute.
func (r *Runner) weight(ctx context.Context, tid tenant.ID) int {
	now := time.Now()
	r.mu.Lock()
	w, ok := r.weights[tid]
	r.mu.Unlock()
	if ok && now.Before(w.expires) {
		return w.weight
	}
	weight := 1
	err := r.cfg.Store.ReadPlatform(ctx, func(tx store.PlatformTx) error {
		t, err := tx.GetTenant(ctx, tid)
		if err != nil {
			return err
		}
		p, err := tx.GetPlan(ctx, t.Plan)
		if err != nil {
			return err
		}
		weight = max(p.Weight, 1)
		return nil
	})
	if err != nil {
		r.log.Warn("jobs: tenant's plan weight unknown; its job runs with weight 1", "tenant", tid, "err", err)
	}
	r.mu.Lock()
	r.weights[tid] = cachedWeight{weight: weight, expires: now.Add(time.Minute)}
	r.mu.Unlock()
	return weight
}

// errorHandler logs what River reports of jobs that failed or panicked.
type errorHandler struct{ log *slog.Logger }

func (h *errorHandler) HandleError(ctx context.Context, job *rivertype.JobRow, err error) *river.ErrorHandlerResult {
	h.log.Debug("jobs: attempt failed", "queue_id", job.ID, "attempt", job.Attempt, "err", err)
	return nil
}

func (h *errorHandler) HandlePanic(ctx context.Context, job *rivertype.JobRow, v any, trace string) *river.ErrorHandlerResult {
	h.log.Error("jobs: job panicked", "queue_id", job.ID, "attempt", job.Attempt, "panic", fmt.Sprint(v), "trace", trace)
	return nil
}
