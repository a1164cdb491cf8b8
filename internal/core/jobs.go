package core

import (
	"context"
	"encoding/json"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/store"
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

// registerJobs tells the job runner what each kind of job Core runs does.
// Each part registers its own kinds.
func (c *Core) registerJobs() {
	if c.jobs == nil {
		return
	}
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
