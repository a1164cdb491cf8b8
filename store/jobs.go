package store

import (
	"context"
	"encoding/json"
	"time"
)

// JobID identifies a tenant's background job. It is server generated.
type JobID string

// JobState is where a job is in its life.
type JobState string

const (
	// JobQueued jobs wait for a worker, for their scheduled time or for a
	// retry after a failed attempt.
	JobQueued JobState = "queued"
	// JobRunning jobs are being worked on.
	JobRunning JobState = "running"
	// JobSucceeded jobs finished; Result holds what they made.
	JobSucceeded JobState = "succeeded"
	// JobFailed jobs used up their attempts or failed for good; Error
	// says why.
	JobFailed JobState = "failed"
	// JobCancelled jobs were cancelled before they finished.
	JobCancelled JobState = "cancelled"
)

// Finished reports whether s is a final state.
func (s JobState) Finished() bool {
	return s == JobSucceeded || s == JobFailed || s == JobCancelled
}

// Job is a tenant's background job as the tenant sees it: package jobs runs
// it and keeps this record, in the tenant's own data, up to date.
type Job struct {
	ID    JobID
	Kind  string
	State JobState
	// Args are the job's arguments, JSON, opaque to the store.
	Args json.RawMessage
	// Done and Total measure its progress in units of its kind (records,
	// collections); Total is 0 while unknown.
	Done  int64
	Total int64
	// Attempts counts the attempts begun.
	Attempts int
	// Error says why the last attempt failed; empty otherwise.
	Error string
	// Result is what a succeeded job made, JSON; nil otherwise.
	Result json.RawMessage
	// CreatedBy is the actor that asked for the job.
	CreatedBy string
	// QueueID is the job's id in the queue that runs it (River's job id),
	// by which it is cancelled; 0 for none.
	QueueID    int64
	CreatedAt  time.Time
	UpdatedAt  time.Time
	StartedAt  *time.Time
	FinishedAt *time.Time
}

// ListJobsParams selects a page of a tenant's jobs, newest first.
type ListJobsParams struct {
	// Before continues a listing: only jobs created before it (by
	// CreatedAt, then ID) are returned. nil starts with the newest.
	Before *JobKey
	// Kind, if not empty, selects jobs of that kind.
	Kind  string
	Limit int
}

// JobKey is a position in a job listing.
type JobKey struct {
	CreatedAt time.Time
	ID        JobID
}

// Jobs keeps a tenant's job records.
type Jobs interface {
	// CreateJob stores j. It returns ErrConflict if j.ID is taken.
	CreateJob(ctx context.Context, j *Job) error
	// GetJob returns ErrNotFound if no job has id.
	GetJob(ctx context.Context, id JobID) (*Job, error)
	// UpdateJob replaces the State, Done, Total, Attempts, Error, Result,
	// UpdatedAt, StartedAt and FinishedAt of the job j.ID. It returns
	// ErrNotFound if there is none, and ErrConflict if the stored job is
	// finished (its state is final: a job cancelled while it ran stays
	// cancelled, whatever its worker writes after).
	UpdateJob(ctx context.Context, j *Job) error
	// ListJobs returns a page of jobs, newest first.
	ListJobs(ctx context.Context, params *ListJobsParams) ([]*Job, error)
	// CountActiveJobs counts the jobs queued or running, stopping at
	// limit: it returns min(count, limit), so that its cost is bounded
	// by limit, not by the tenant's backlog.
	CountActiveJobs(ctx context.Context, limit int) (int, error)
}
