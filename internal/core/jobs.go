package core

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"strconv"
	"sync"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Job is a tenant's background job as the API shows it.
type Job struct {
	ID         store.JobID     `json:"id"`
	Kind       string          `json:"kind"`
	State      store.JobState  `json:"state"`
	Progress   JobProgress     `json:"progress"`
	Error      string          `json:"error,omitempty"`
	Result     json.RawMessage `json:"result,omitempty"`
	CreatedAt  time.Time       `json:"created_at"`
	UpdatedAt  time.Time       `json:"updated_at"`
	StartedAt  *time.Time      `json:"started_at,omitempty"`
	FinishedAt *time.Time      `json:"finished_at,omitempty"`
}

// JobProgress is how far a job has come, in units of its kind.
type JobProgress struct {
	Done  int64 `json:"done"`
	Total int64 `json:"total"`
}

func jobView(j *store.Job) *Job {
	return &Job{ID: j.ID, Kind: j.Kind, State: j.State, Progress: JobProgress{Done: j.Done, Total: j.Total},
		Error: j.Error, Result: j.Result, CreatedAt: j.CreatedAt, UpdatedAt: j.UpdatedAt,
		StartedAt: j.StartedAt, FinishedAt: j.FinishedAt}
}

var (
	// ErrJobFinished is returned by CancelJob for a job that has finished.
	ErrJobFinished = errors.New("the job has finished")
	// ErrJobsUnavailable is returned by operations that run as jobs when
	// the Core has no job runner (Config.Jobs).
	ErrJobsUnavailable = errors.New("background jobs are unavailable")
)

// Kinds of job Core itself runs.
const (
	// KindRotateKeys re-encrypts a tenant's records under its active data
	// key and retires the old versions (RotateKeys starts it).
	KindRotateKeys jobs.Kind = "rotate_keys"
	// KindBuildIndexes builds (or drops) the physical indexes of one of a
	// tenant's collections (PutCollection and DeleteCollection start it).
	KindBuildIndexes jobs.Kind = "build_indexes"
)

// registerJobs tells the job runner what each kind of job Core runs does.
// Each part registers its own kinds.
func (c *Core) registerJobs() {
	if c.jobs == nil {
		return
	}
	c.register(KindRotateKeys, jobs.KindConfig{Work: c.rotateKeysWork})
	c.register(KindBuildIndexes, jobs.KindConfig{Work: c.buildIndexesWork})
	c.registerExportJobs()
	c.registerRetentionJobs()
	c.registerOffboardJobs()
	c.registerUsageJobs()
}

// register registers a kind of job whose working time counts in its
// tenant's usage.
func (c *Core) register(kind jobs.Kind, kc jobs.KindConfig) {
	work := kc.Work
	kc.Work = func(ctx context.Context, t *jobs.Task) (any, error) {
		start := time.Now()
		defer func() { c.addJobTime(t.Tenant, time.Since(start)) }()
		return work(ctx, t)
	}
	c.jobs.Register(kind, kc)
}

// ListJobs lists the tenant's jobs, newest first, of kind if it is not
// empty, limit at a time (DefaultLimit if 0); cursor continues a listing.
func (s *Scope) ListJobs(ctx context.Context, kind string, limit int, cursor string) (*List[*Job], error) {
	if err := s.allow(access.ReadJobs); err != nil {
		return nil, err
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return nil, invalid("limit", "limit must be from 1 to "+strconv.Itoa(MaxLimit))
	}
	if len(kind) > 64 {
		return nil, invalid("kind", "kind is at most 64 characters")
	}
	binding := "jobs\x00" + kind
	var before *store.JobKey
	if cursor != "" {
		var key store.JobKey
		if err := s.core.openCursor(cursor, string(s.tenant.ID), binding, &key); err != nil {
			return nil, err
		}
		before = &key
	}
	var js []*store.Job
	err := s.read(ctx, func(tx store.Tx) (err error) {
		js, err = tx.ListJobs(ctx, &store.ListJobsParams{Before: before, Kind: kind, Limit: limit + 1})
		return err
	})
	if err != nil {
		return nil, err
	}
	page := &List[*Job]{Items: make([]*Job, 0, min(len(js), limit))}
	for i, j := range js {
		if i == limit {
			last := js[i-1]
			page.NextCursor = s.core.sealCursor(string(s.tenant.ID), binding, store.JobKey{CreatedAt: last.CreatedAt, ID: last.ID})
			break
		}
		page.Items = append(page.Items, jobView(j))
	}
	return page, nil
}

// GetJob returns the tenant's job id. It returns store.ErrNotFound if the
// tenant has no such job, whoever else may have one by that id.
func (s *Scope) GetJob(ctx context.Context, id store.JobID) (*Job, error) {
	if err := s.allow(access.ReadJobs); err != nil {
		return nil, err
	}
	var j *store.Job
	err := s.read(ctx, func(tx store.Tx) (err error) {
		j, err = tx.GetJob(ctx, id)
		return err
	})
	if err != nil {
		return nil, err
	}
	return jobView(j), nil
}

// CancelJob cancels the tenant's job id, queued or running, and records it
// in the tenant's chain. It returns store.ErrNotFound if the tenant has no
// such job and ErrJobFinished if the job has finished.
func (s *Scope) CancelJob(ctx context.Context, id store.JobID) (*Job, error) {
	if err := s.allow(access.CancelJobs); err != nil {
		return nil, err
	}
	if s.core.jobs == nil {
		return nil, ErrJobsUnavailable
	}
	j, err := s.core.jobs.Cancel(ctx, s.tenant.ID, id, func(tx store.Tx) error {
		return s.append(ctx, tx, s.event("job.cancel", "job:"+string(id)))
	})
	if errors.Is(err, jobs.ErrFinished) {
		return nil, ErrJobFinished
	}
	if err != nil {
		return nil, err
	}
	return jobView(j), nil
}

// background tracks the jobs this Core enqueued for its own background
// work (rotations, index builds), so that WaitBackground can wait for them
// whichever node runs them.
type background struct {
	mu      sync.Mutex
	pending map[store.JobID]tenant.ID
}

// enqueue enqueues a job of Core's own for tenant tid, unless an equal one
// (same kind and args) is queued already, or, with orRunning, running: a
// queued one will do the work when it runs. It returns the job it
// enqueued or found.
func (c *Core) enqueue(ctx context.Context, tid tenant.ID, kind jobs.Kind, args any, actor string, orRunning bool) (*store.Job, error) {
	if c.jobs == nil {
		return nil, ErrJobsUnavailable
	}
	raw, err := json.Marshal(args)
	if err != nil {
		return nil, err
	}
	var same *store.Job
	err = c.store.ReadTenant(ctx, tid, func(tx store.Tx) error {
		js, err := tx.ListJobs(ctx, &store.ListJobsParams{Kind: string(kind), Limit: 20})
		for _, j := range js {
			if (j.State == store.JobQueued || orRunning && j.State == store.JobRunning) && bytes.Equal(j.Args, raw) {
				same = j
				break
			}
		}
		return err
	})
	if err != nil {
		return nil, err
	}
	j := same
	if j == nil {
		if j, err = c.jobs.Enqueue(ctx, tid, kind, json.RawMessage(raw), &jobs.EnqueueOptions{CreatedBy: actor}); err != nil {
			return nil, err
		}
	}
	c.bg.mu.Lock()
	c.bg.pending[j.ID] = tid
	c.bg.mu.Unlock()
	return j, nil
}

// WaitBackground waits until the background work this node started —
// index builds and re-encryptions (jobs, wherever they run), retried
// announcements — has finished, or ctx ends. Tests, benchmarks and
// bulkhead keys rotate use it.
func (c *Core) WaitBackground(ctx context.Context) error {
	done := make(chan struct{})
	go func() { c.builds.Wait(); close(done) }()
	select {
	case <-done:
	case <-ctx.Done():
		return ctx.Err()
	}
	for {
		c.bg.mu.Lock()
		pending := make(map[store.JobID]tenant.ID, len(c.bg.pending))
		for id, tid := range c.bg.pending {
			pending[id] = tid
		}
		c.bg.mu.Unlock()
		if len(pending) == 0 {
			return nil
		}
		for id, tid := range pending {
			var j *store.Job
			err := c.store.ReadTenant(ctx, tid, func(tx store.Tx) (err error) {
				j, err = tx.GetJob(ctx, id)
				return err
			})
			if err != nil && !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if err != nil || j.State.Finished() {
				c.bg.mu.Lock()
				delete(c.bg.pending, id)
				c.bg.mu.Unlock()
			}
		}
		select {
		case <-time.After(20 * time.Millisecond):
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// withLife returns ctx, ended also when the Core closes.
func (c *Core) withLife(ctx context.Context) (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(ctx)
	stop := context.AfterFunc(c.life, cancel)
	return ctx, func() { stop(); cancel() }
}
