package pgstore

import (
	"context"
	"sync"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// writers queues the write transactions of each tenant in this process, so
// that they reach the database one at a time. Every write of a tenant takes
// the row lock of its audit-chain head, so they run one at a time in the
// database anyway; queued there, each waiter holds a connection and a
// server process, and the lock's hand-offs between processes cost more
// than the writes (on two cores, 32 concurrent writers of one tenant ran at
// a quarter of the serial rate). Queued here, a waiter holds neither, and
// concurrent writes run at the serial rate.
type writers struct {
	mu sync.Mutex
	m  map[tenant.ID]*writerTurn
}

type writerTurn struct {
	ch chan struct{} // holds a token while a writer of the tenant runs
	n  int           // writers running or waiting
}

// acquire waits for tid's turn, or until ctx ends (returning its error).
// The caller calls release when its transaction has ended.
func (w *writers) acquire(ctx context.Context, tid tenant.ID) (release func(), err error) {
	w.mu.Lock()
	if w.m == nil {
		w.m = make(map[tenant.ID]*writerTurn)
	}
	t := w.m[tid]
	if t == nil {
		t = &writerTurn{ch: make(chan struct{}, 1)}
		w.m[tid] = t
	}
	t.n++
	w.mu.Unlock()
	select {
	case t.ch <- struct{}{}:
		return func() {
			<-t.ch
			w.leave(tid, t)
		}, nil
	case <-ctx.Done():
		w.leave(tid, t)
		return nil, ctx.Err()
	}
}

func (w *writers) leave(tid tenant.ID, t *writerTurn) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if t.n--; t.n == 0 {
		delete(w.m, tid)
	}
}
