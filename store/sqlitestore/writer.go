package sqlitestore

import (
	"context"
	"fmt"
	"log/slog"
	"runtime/debug"
	"sync"
	"sync/atomic"
)

// A request is one write transaction waiting for the writer: fn runs inside
// its own savepoint of the batch's transaction.
type request struct {
	ctx  context.Context
	fn   func(c *conn) error
	done chan error // buffered; receives the request's result once
	// checkpoint asks for the WAL to be checkpointed and truncated after
	// the batch commits, before results are delivered, so that the old page
	// images of what fn deleted leave the disk.
	checkpoint bool

	// Guarded by writer.mu.
	taken     bool // the writer has it; its result will arrive on done
	abandoned bool // its caller gave up before the writer took it
}

// writer owns a database file's only write connection and serves a queue of
// requests from one goroutine. It commits them in groups: it takes every
// request waiting (up to maxBatch), runs them in one transaction, one
// savepoint each, and pays for one COMMIT (and with synchronous=FULL, one
// fsync) for all of them. A request's result is delivered only after the
// COMMIT returns, so a nil result means its writes are durable.
type writer struct {
	c        *conn
	maxBatch int
	log      *slog.Logger
	// enqueued, if not nil, is called after each request joins the queue.
	// Tests use it to fill a batch deterministically.
	enqueued func()

	mu       sync.Mutex
	cond     sync.Cond
	queue    []*request
	closed   bool
	closeErr error

	done    chan struct{} // closed when the goroutine exits
	commits atomic.Int64  // COMMITs that succeeded, for tests
	batches atomic.Int64  // batches run, for tests
}

func newWriter(c *conn, maxBatch int, log *slog.Logger, enqueued func()) *writer {
	w := &writer{c: c, maxBatch: maxBatch, log: log, enqueued: enqueued, done: make(chan struct{})}
	w.cond.L = &w.mu
	go w.run()
	return w
}

// do queues fn and waits for its batch to commit. It returns fn's error (and
// then none of fn's writes persist), the batch's error if the batch failed,
// or ctx.Err() if ctx ended before fn started. Once fn has started, do waits
// for the outcome even if ctx ends, so that its result says truthfully
// whether the writes were committed; fn's statements run on a context that
// ctx's cancellation does not reach (see runBatch).
func (w *writer) do(ctx context.Context, fn func(c *conn) error) error {
	return w.enqueue(&request{ctx: ctx, fn: fn, done: make(chan error, 1)})
}

// doPurge is do for a write that deletes data which must not linger on
// disk: after its batch commits, the WAL is checkpointed and truncated.
// Together with secure_delete this leaves no copy of the deleted rows in the
// database file or its WAL. The checkpoint is best-effort: a reader holding
// an old snapshot keeps it from truncating, which is logged.
func (w *writer) doPurge(ctx context.Context, fn func(c *conn) error) error {
	return w.enqueue(&request{ctx: ctx, fn: fn, done: make(chan error, 1), checkpoint: true})
}

func (w *writer) enqueue(r *request) error {
	ctx := r.ctx
	if err := ctx.Err(); err != nil {
		return err
	}
	w.mu.Lock()
	if w.closed {
		w.mu.Unlock()
		return w.closeErr
	}
	w.queue = append(w.queue, r)
	w.cond.Signal()
	w.mu.Unlock()
	if w.enqueued != nil {
		w.enqueued()
	}
	select {
	case err := <-r.done:
		return err
	case <-ctx.Done():
		w.mu.Lock()
		if !r.taken {
			r.abandoned = true
			w.mu.Unlock()
			return ctx.Err()
		}
		w.mu.Unlock()
		return <-r.done
	}
}

// close stops accepting requests, lets the writer finish every request
// already queued and waits for it to exit. Later calls to do return err.
func (w *writer) close(err error) {
	w.mu.Lock()
	if !w.closed {
		w.closed = true
		w.closeErr = err
		w.cond.Broadcast()
	}
	w.mu.Unlock()
	<-w.done
}

func (w *writer) run() {
	defer close(w.done)
	batch := make([]*request, 0, w.maxBatch)
	for {
		w.mu.Lock()
		for len(w.queue) == 0 && !w.closed {
			w.cond.Wait()
		}
		if len(w.queue) == 0 { // closed and drained
			w.mu.Unlock()
			return
		}
		n := min(len(w.queue), w.maxBatch)
		for _, r := range w.queue[:n] {
			if !r.abandoned {
				r.taken = true
				batch = append(batch, r)
			}
		}
		rest := copy(w.queue, w.queue[n:])
		clear(w.queue[rest:])
		w.queue = w.queue[:rest]
		w.mu.Unlock()

		if len(batch) > 0 {
			w.runBatch(batch)
		}
		clear(batch)
		batch = batch[:0]
	}
}

// Statements of the batch protocol. There is one savepoint name: requests
// run one after another, each releasing its savepoint before the next opens.
const (
	sqlBeginImmediate = "BEGIN IMMEDIATE"
	sqlCommit         = "COMMIT"
	sqlRollback       = "ROLLBACK"
	sqlSavepoint      = "SAVEPOINT request"
	sqlRelease        = "RELEASE request"
	sqlRollbackTo     = "ROLLBACK TO request"
)

// runBatch runs the requests in one transaction and delivers their results
// after it commits.
//
// The batch's own statements run on context.Background() and each fn is
// handed a connection whose statements its Tx runs on a context without
// cancellation: a statement interrupted by a cancelled context inside an
// explicit transaction can roll the whole transaction back, which would undo
// the other requests of the batch.
func (w *writer) runBatch(batch []*request) {
	w.batches.Add(1)
	ctx := context.Background()
	errs := make([]error, len(batch))
	fail := func(err error) {
		for i, r := range batch {
			if errs[i] == nil {
				errs[i] = err
			}
			r.done <- errs[i]
		}
	}
	if _, err := w.c.exec(ctx, sqlBeginImmediate); err != nil {
		fail(wrap(err, "sqlitestore: begin batch"))
		return
	}
	for i, r := range batch {
		if err := r.ctx.Err(); err != nil {
			errs[i] = err
			continue
		}
		if _, err := w.c.exec(ctx, sqlSavepoint); err != nil {
			w.abort(wrap(err, "sqlitestore: open savepoint"), fail)
			return
		}
		if errs[i] = w.call(r); errs[i] != nil {
			if _, err := w.c.exec(ctx, sqlRollbackTo); err != nil {
				// The transaction itself is gone (SQLite rolls back the
				// whole transaction on some errors, such as a full disk):
				// the requests before this one lost their writes too, for
				// the same reason, which their error says (the ROLLBACK
				// TO's own error, "no such savepoint", would not).
				err = fmt.Errorf("sqlitestore: roll back request: %w (after %v)", interpretError(err), errs[i])
				if f := fault(errs[i]); f != nil && fault(err) == nil {
					err = fmt.Errorf("%w: %w", f, err)
				}
				w.abort(err, fail)
				return
			}
		}
		if _, err := w.c.exec(ctx, sqlRelease); err != nil {
			w.abort(wrap(err, "sqlitestore: release savepoint"), fail)
			return
		}
	}
	if _, err := w.c.exec(ctx, sqlCommit); err != nil {
		w.abort(wrap(err, "sqlitestore: commit batch"), fail)
		return
	}
	w.commits.Add(1)
	for i, r := range batch {
		if r.checkpoint && errs[i] == nil {
			w.checkpoint()
			break
		}
	}
	for i, r := range batch {
		r.done <- errs[i]
	}
}

// checkpoint copies the WAL into the database file and truncates it.
func (w *writer) checkpoint() {
	var busy, logFrames, done int
	err := w.c.queryRow(context.Background(), "PRAGMA wal_checkpoint(TRUNCATE)").Scan(&busy, &logFrames, &done)
	if err != nil || busy != 0 {
		w.log.Warn("sqlitestore: WAL checkpoint after purge incomplete; deleted data may stay in the WAL until the next checkpoint",
			"busy", busy, "err", err)
	}
}

// abort rolls the batch's transaction back and fails every request in it
// that has not failed on its own.
func (w *writer) abort(err error, fail func(error)) {
	// ROLLBACK fails harmlessly if SQLite already rolled back.
	w.c.exec(context.Background(), sqlRollback)
	w.log.Error("sqlitestore: write batch failed", "err", err)
	fail(err)
}

// call runs r.fn, turning a panic into an error for r alone so that one
// request cannot take the writer, and with it every other request, down.
func (w *writer) call(r *request) (err error) {
	defer func() {
		if p := recover(); p != nil {
			w.log.Error("sqlitestore: panic in write transaction", "panic", p, "stack", string(debug.Stack()))
			err = fmt.Errorf("sqlitestore: panic in transaction: %v", p)
		}
	}()
	return r.fn(w.c)
}
