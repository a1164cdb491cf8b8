package core

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// maxLaterAudits bounds the audit entries being written after their
// answers. Failed logins are held to a few dozen a second per node by the
// login limits and the hashing turns, so the bound is only reached when the
// database stalls; entries past it are counted and logged, not queued.
const maxLaterAudits = 64

// laterAudits writes audit entries that no answer waits for: the failures of
// logins, whose answer must not take longer when there is a chain to write
// to (a tenant that exists) than when there is none.
type laterAudits struct {
	wg      sync.WaitGroup
	sem     chan struct{} // made by New
	dropped atomic.Uint64
}

// auditLater appends ev to tid's chain in a transaction of its own, after
// the caller has returned.
func (c *Core) auditLater(tid tenant.ID, ev audit.Event) {
	l := &c.later
	select {
	case l.sem <- struct{}{}:
	default:
		n := l.dropped.Add(1)
		c.log.Warn("audit entry not written: too many being written", "tenant", string(tid), "action", ev.Action, "dropped_total", n)
		return
	}
	l.wg.Add(1)
	go func() {
		defer func() { <-l.sem; l.wg.Done() }()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		err := c.store.InTenant(ctx, tid, func(tx store.Tx) error {
			_, err := c.audit.Append(ctx, tx, audit.TenantChain(tid), ev)
			return err
		})
		if err != nil {
			c.log.Warn("audit entry not written", "tenant", string(tid), "action", ev.Action, "request_id", ev.RequestID, "err", err)
		}
	}()
}

// Flush waits until the audit entries written after their answers (of
// failed logins and denied requests, the latter aggregated per minute and
// written out now) and the containment actions taken so far are written.
func (c *Core) Flush() {
	c.sweepDenied(c.now(), true)
	c.guard.wg.Wait()
	c.later.wg.Wait()
}

// Close stops the Core's background work — index builds stop and are
// resumed by the next start — and waits for it and for Flush. Call it
// before closing the store.
func (c *Core) Close() {
	c.unsubscribe()
	if c.closeFeed != nil {
		c.closeFeed()
	}
	c.stop()
	c.builds.Wait()
	c.Flush()
	if err := c.FlushUsage(context.Background()); err != nil {
		c.log.Warn("usage counts not flushed at close; they are lost", "err", err)
	}
}
