// Package jobs runs tenants' background work — exports, restores,
// retention, purges, key rotations, index builds — on River, fairly: each
// tenant's jobs are capped and ordered so that one tenant's backlog never
// delays another tenant's job, and each job's database work is batch work
// of its tenant in the fair scheduler. A tenant's job is recorded in its
// own data (store.Job), which is what the API shows.
package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Kind names what a job does, such as "export".
type Kind string

// Task is a job being worked on, as its Work sees it.
type Task struct {
	// Tenant is the job's tenant; zero for a platform job.
	Tenant tenant.ID
	// Job is the tenant's record of the job; nil for a platform job.
	Job *store.Job
	// Args are the job's arguments as enqueued.
	Args json.RawMessage
	// Attempt counts from 1.
	Attempt int

	progress func(done, total int64)
}

// NewTask returns a Task for running a Work outside a Runner, as tests do;
// progress, if not nil, receives its Progress calls.
func NewTask(tid tenant.ID, job *store.Job, args json.RawMessage, progress func(done, total int64)) *Task {
	return &Task{Tenant: tid, Job: job, Args: args, Attempt: 1, progress: progress}
}

// Progress records how far the job has come; the Runner stores it in the
// job's record every so often, not at every call.
func (t *Task) Progress(done, total int64) {
	if t.progress != nil {
		t.progress(done, total)
	}
}

// Work does a job. Its result, if not nil, is marshalled into the job's
// Result. An error wrapping ErrPermanent fails the job without retrying
// it; other errors are retried with back-off until the kind's attempts are
// used up. The job's record, which the tenant's admins read, shows the
// text of an error only if it wraps a *PublicError; of any other error it
// shows what kind of failure it was, and the operator's log has its text.
type Work func(ctx context.Context, t *Task) (result any, err error)

// ErrPermanent marks an error that no retry would mend, such as an archive
// that does not verify.
var ErrPermanent = errors.New("permanent failure")

// PublicError is a job's failure whose text is meant for the tenant's
// admins, such as "the archive's chunk 3 does not verify": the job's
// record shows it. Write such texts for the tenant: never SQL, a path or
// another tenant's name.
type PublicError struct{ err error }

// Public marks err's text as fit for the tenant's admins to read in the
// job's record.
func Public(err error) error {
	if err == nil {
		return nil
	}
	return &PublicError{err: err}
}

// Error implements error.
func (e *PublicError) Error() string { return e.err.Error() }

// Unwrap returns the error Public marked.
func (e *PublicError) Unwrap() error { return e.err }

// KindConfig says how jobs of a kind run.
type KindConfig struct {
	Work Work
	// MaxAttempts defaults to 5.
	MaxAttempts int
	// Timeout bounds one attempt; it defaults to an hour and is at most
	// MaxTimeout (2h).
	Timeout time.Duration
}

// EnqueueOptions adjust one job.
type EnqueueOptions struct {
	// RunAt, if not zero, is the earliest time the job runs.
	RunAt time.Time
	// CreatedBy is the actor asking for it, recorded in the job.
	CreatedBy string
}

// Queue is what the rest of bulkhead needs of a Runner: registering what
// each kind of job does, and enqueueing jobs.
type Queue interface {
	// Register says what jobs of kind do. It must be called before the
	// Runner starts.
	Register(kind Kind, cfg KindConfig)
	// Enqueue records a job of tenant tid in the tenant's data, in state
	// queued, and schedules it. args is marshalled to JSON.
	Enqueue(ctx context.Context, tid tenant.ID, kind Kind, args any, opts *EnqueueOptions) (*store.Job, error)
	// EnqueuePlatform schedules a job of no tenant's (such as the purge
	// of a deleted tenant), recorded by River alone.
	EnqueuePlatform(ctx context.Context, kind Kind, args any, opts *EnqueueOptions) error
	// Cancel cancels tenant tid's job id, queued or running, and returns
	// its record, now cancelled. fn, if not nil, runs in the transaction
	// that records the cancellation (to audit it). It returns
	// store.ErrNotFound if the tenant has no such job and ErrFinished if
	// it has finished.
	Cancel(ctx context.Context, tid tenant.ID, id store.JobID, fn func(tx store.Tx) error) (*store.Job, error)
}

var _ Queue = (*Runner)(nil)
