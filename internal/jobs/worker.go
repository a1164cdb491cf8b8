package jobs

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"runtime/debug"
	"sync"
	"time"

	"github.com/riverqueue/river"

	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

const (
	// capSnooze is how long a job whose tenant is at its cap waits before
	// River offers it again. Snoozing uses no attempt.
	capSnooze = 500 * time.Millisecond
	// missingRowGrace is how long a worker waits for the record of a job
	// River ran before Enqueue wrote it; after that, the job's Enqueue
	// failed and the job is dropped.
	missingRowGrace = time.Minute
	// ticketWait is how long each transaction of a job may wait for a
	// database slot before it is shed (and the attempt retried).
	ticketWait = time.Minute
	// maxErrorLen bounds the error a record keeps.
	maxErrorLen = 1000
)

// worker is River's worker of every job: it applies the tenant's cap,
// keeps the tenant's record and runs the kind's Work.
type worker struct {
	river.WorkerDefaults[riverArgs]
	r *Runner
}

func (w *worker) Timeout(job *river.Job[riverArgs]) time.Duration {
	if kc, ok := w.r.kind(job.Args.JobKind); ok {
		return kc.Timeout
	}
	return time.Hour
}

func (w *worker) NextRetry(job *river.Job[riverArgs]) time.Time {
	if w.r.cfg.RetryFunc == nil {
		return time.Time{} // River's back-off
	}
	return time.Now().Add(w.r.cfg.RetryFunc(job.Attempt))
}

func (w *worker) Work(ctx context.Context, job *river.Job[riverArgs]) error {
	r := w.r
	a := job.Args
	kc, ok := r.kind(a.JobKind)
	if !ok {
		// A newer node may know it; this one retries later.
		return fmt.Errorf("no worker for kind %q on this node", a.JobKind)
	}
	if a.Tenant == "" {
		t := &Task{Args: a.Args, Attempt: job.Attempt}
		_, err := r.runWork(ctx, kc.Work, t)
		if errors.Is(err, ErrPermanent) {
			return river.JobCancel(err)
		}
		return err
	}
	if !r.take(a.Tenant) {
		return river.JobSnooze(capSnooze)
	}
	defer r.give(a.Tenant)
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	if r.cfg.Scheduler != nil {
		ctx = fairq.WithTicket(ctx, fairq.Ticket{Scheduler: r.cfg.Scheduler, Weight: r.weight(ctx, a.Tenant), Class: fairq.Batch, Wait: ticketWait})
	}
	rec, err := r.begin(ctx, a.Tenant, a.Job, job.Attempt)
	switch {
	case errors.Is(err, store.ErrNotFound) && time.Since(job.CreatedAt) < r.missingRowGrace:
		return river.JobSnooze(capSnooze) // Enqueue is still writing it
	case errors.Is(err, store.ErrNotFound):
		r.log.Warn("jobs: dropped a job never acknowledged", "tenant", a.Tenant, "job", a.Job, "queue_id", job.ID)
		return river.JobCancel(err)
	case errors.Is(err, ErrFinished):
		return river.JobCancel(err) // cancelled before it ran
	case err != nil:
		return err
	}
	run := &running{cancel: cancel}
	r.mu.Lock()
	r.active[a.Job] = run
	r.mu.Unlock()
	defer func() {
		r.mu.Lock()
		delete(r.active, a.Job)
		r.mu.Unlock()
	}()

	prog := &progress{done: rec.Done, total: rec.Total}
	stopFlushing := r.flushProgress(ctx, a.Tenant, a.Job, prog)
	// The record's args are as enqueued; River's may be reformatted (jsonb).
	t := &Task{Tenant: a.Tenant, Job: rec, Args: rec.Args, Attempt: job.Attempt, progress: prog.set}
	result, werr := r.runWork(ctx, kc.Work, t)
	stopFlushing()

	r.mu.Lock()
	cancelled := run.cancelled
	r.mu.Unlock()
	// A node that stops cancels its running jobs: they run again, and the
	// attempt does not count.
	interrupted := werr != nil && !cancelled && ctx.Err() != nil && r.closing.Load()
	final := !interrupted && (werr == nil || cancelled || errors.Is(werr, ErrPermanent) || job.Attempt >= job.MaxAttempts)
	if err := r.finish(context.WithoutCancel(ctx), a.Tenant, a.Job, prog, result, werr, cancelled, final); err != nil {
		if errors.Is(err, ErrFinished) { // cancelled meanwhile
			return river.JobCancel(errors.Join(werr, err))
		}
		r.log.Error("jobs: job's record not updated", "tenant", a.Tenant, "job", a.Job, "err", err)
	}
	switch {
	case cancelled:
		return river.JobCancel(errors.Join(werr, errors.New("cancelled")))
	case interrupted:
		return river.JobSnooze(0)
	case werr == nil:
		return nil
	case errors.Is(werr, ErrPermanent):
		return river.JobCancel(werr)
	}
	return werr
}

// runWork runs work, turning a panic into an error so that the job's
// record is kept up to date.
func (r *Runner) runWork(ctx context.Context, work Work, t *Task) (result any, err error) {
	defer func() {
		if v := recover(); v != nil {
			// The record is the tenant's to read: the stack goes to the
			// operator's log only.
			r.log.Error("jobs: job panicked", "tenant", t.Tenant, "panic", fmt.Sprint(v), "stack", string(debug.Stack()))
			err = errPanicked
		}
	}()
	return work(ctx, t)
}

// errPanicked is the error a job that panicked records.
var errPanicked = Public(errors.New("the job failed unexpectedly; the server's log has the details"))

// take claims one of tenant tid's running slots on this node.
func (r *Runner) take(tid tenant.ID) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running[tid] >= r.cfg.PerTenant {
		return false
	}
	r.running[tid]++
	return true
}

func (r *Runner) give(tid tenant.ID) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.running[tid]--; r.running[tid] <= 0 {
		delete(r.running, tid)
	}
}

// begin marks the job's record running and returns it. It returns
// ErrFinished for a job cancelled before it ran.
func (r *Runner) begin(ctx context.Context, tid tenant.ID, id store.JobID, attempt int) (*store.Job, error) {
	var j *store.Job
	err := r.store.InTenant(ctx, tid, func(tx store.Tx) error {
		var err error
		if j, err = tx.GetJob(ctx, id); err != nil {
			return err
		}
		if j.State.Finished() {
			return ErrFinished
		}
		now := time.Now().UTC().Truncate(time.Microsecond)
		j.State, j.Attempts, j.UpdatedAt = store.JobRunning, attempt, now
		if j.StartedAt == nil {
			j.StartedAt = &now
		}
		return tx.UpdateJob(ctx, j)
	})
	if errors.Is(err, store.ErrConflict) {
		err = ErrFinished
	}
	return j, err
}

// finish writes how an attempt ended into the job's record: succeeded,
// failed for good (final), cancelled, or queued for a retry. A record
// already finished (cancelled meanwhile) is left as it is: it returns
// ErrFinished. It tries a few times, since the work is done either way.
func (r *Runner) finish(ctx context.Context, tid tenant.ID, id store.JobID, prog *progress, result any, werr error,
	cancelled, final bool) error {
	var resJSON json.RawMessage
	if werr == nil && result != nil {
		b, err := json.Marshal(result)
		if err != nil {
			werr, final = fmt.Errorf("%w: result does not marshal: %v", ErrPermanent, err), true
		} else {
			resJSON = b
		}
	}
	var pub *PublicError
	if werr != nil && !cancelled && !errors.As(werr, &pub) {
		// The record shows only the failure's kind: its text is the
		// operator's.
		r.log.Warn("jobs: attempt failed", "tenant", tid, "job", id, "final", final, "err", werr)
	}
	var err error
	for try := range 5 {
		if try > 0 {
			time.Sleep(time.Duration(try*try) * 100 * time.Millisecond)
		}
		err = r.store.InTenant(ctx, tid, func(tx store.Tx) error {
			j, err := tx.GetJob(ctx, id)
			if err != nil {
				return err
			}
			if j.State.Finished() {
				return ErrFinished
			}
			now := time.Now().UTC().Truncate(time.Microsecond)
			j.Done, j.Total = prog.get()
			j.UpdatedAt = now
			switch {
			case cancelled:
				j.State, j.FinishedAt = store.JobCancelled, &now
			case werr == nil:
				j.State, j.Result, j.Error, j.FinishedAt = store.JobSucceeded, resJSON, "", &now
			case final:
				j.State, j.Error, j.FinishedAt = store.JobFailed, errorText(werr), &now
			default:
				j.State, j.Error = store.JobQueued, errorText(werr)
			}
			return tx.UpdateJob(ctx, j)
		})
		if errors.Is(err, store.ErrConflict) {
			err = ErrFinished
		}
		if err == nil || errors.Is(err, ErrFinished) || errors.Is(err, store.ErrNotFound) {
			return err
		}
	}
	return err
}

// errorText is what a failed attempt's record says of err: the text of a
// PublicError in its chain, or else only the kind of failure, since an
// error's own text may hold what the tenant should not read (SQL, paths,
// addresses).
func errorText(err error) string {
	var pub *PublicError
	var s string
	switch {
	case errors.As(err, &pub):
		s = pub.Error()
	case errors.Is(err, store.ErrUnavailable):
		s = "the database was unavailable"
	case errors.Is(err, context.DeadlineExceeded):
		s = "the job ran out of time"
	default:
		s = "the job failed on an internal error; the server's log has the details"
	}
	if len(s) > maxErrorLen {
		s = s[:maxErrorLen]
	}
	return s
}

// progress is a running job's latest Progress.
type progress struct {
	mu          sync.Mutex
	done, total int64
	changed     bool
}

func (p *progress) set(done, total int64) {
	p.mu.Lock()
	p.done, p.total, p.changed = done, total, true
	p.mu.Unlock()
}

func (p *progress) get() (done, total int64) {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.done, p.total
}

// take returns the progress if it changed since the last take.
func (p *progress) take() (done, total int64, changed bool) {
	p.mu.Lock()
	defer p.mu.Unlock()
	changed, p.changed = p.changed, false
	return p.done, p.total, changed
}

// flushProgress writes the job's progress into its record every
// ProgressInterval while it changes, until stop is called. The writes run
// beside the work, never inside its transactions.
func (r *Runner) flushProgress(ctx context.Context, tid tenant.ID, id store.JobID, p *progress) (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(r.cfg.ProgressInterval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
			}
			d, tot, changed := p.take()
			if !changed {
				continue
			}
			err := r.store.InTenant(ctx, tid, func(tx store.Tx) error {
				j, err := tx.GetJob(ctx, id)
				if err != nil {
					return err
				}
				j.Done, j.Total, j.UpdatedAt = d, tot, time.Now().UTC().Truncate(time.Microsecond)
				return tx.UpdateJob(ctx, j)
			})
			if err != nil && !errors.Is(err, store.ErrConflict) && ctx.Err() == nil {
				r.log.Debug("jobs: progress not written", "tenant", tid, "job", id, "err", err)
			}
		}
	}()
	return func() { close(done); <-stopped }
}
