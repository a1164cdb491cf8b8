package core

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// KindRetention is the job that deletes a tenant's expired records and
// cuts its audit log to its audit retention.
const KindRetention jobs.Kind = "retention"

// RetentionBatch is how many records one transaction of the retention job
// deletes (or, on a data field, examines).
const RetentionBatch = 500

// retentionArgs are the retention job's arguments: none, it does what the
// tenant's settings say when it runs.
type retentionArgs struct{}

// RetentionResult is what a retention job did, its Result.
type RetentionResult struct {
	// Expired counts the records deleted, per collection.
	Expired map[store.CollectionName]int64 `json:"expired"`
	// AuditCut is the Seq the audit chain starts at after the job, if it
	// cut the chain; AuditRemoved counts the entries it removed.
	AuditCut     int64 `json:"audit_cut,omitempty"`
	AuditRemoved int64 `json:"audit_removed,omitempty"`
}

// registerRetentionJobs registers the kinds of job of this part.
func (c *Core) registerRetentionJobs() {
	c.register(KindRetention, jobs.KindConfig{Work: c.retentionWork, Timeout: time.Hour})
}

// retentionWork runs a retention job: first the records, collection by
// collection, RetentionBatch per transaction, each batch audited with one
// entry; then the audit log.
func (c *Core) retentionWork(ctx context.Context, t *jobs.Task) (any, error) {
	res := &RetentionResult{Expired: map[store.CollectionName]int64{}}
	var requestID string // the job, in the audit entries it writes
	if t.Job != nil {
		requestID = "job:" + string(t.Job.ID)
	}
	if err := c.expireRecords(ctx, t.Tenant, requestID, t.Progress, res); err != nil {
		return nil, err
	}
	if err := c.cutAudit(ctx, t.Tenant, requestID, res); err != nil {
		return nil, err
	}
	return res, nil
}

// expireRecords deletes tid's expired records. The cut of each collection
// is taken once, when the job starts on it.
func (c *Core) expireRecords(ctx context.Context, tid tenant.ID, requestID string, progress func(done, total int64), res *RetentionResult) error {
	var cols []*store.Collection
	var total int64
	now := c.now()
	err := c.store.ReadTenant(ctx, tid, func(tx store.Tx) error {
		all, err := tx.ListCollections(ctx)
		if err != nil {
			return err
		}
		for _, col := range all {
			if col.Retention <= 0 {
				continue
			}
			n, err := tx.CountExpiredRecords(ctx, col.Name, retentionField(col), now.Add(-col.Retention))
			if err != nil {
				return err
			}
			cols, total = append(cols, col), total+n
		}
		return nil
	})
	if err != nil {
		return err
	}
	var done int64
	progress(0, total)
	for _, col := range cols {
		p := &store.ExpireRecordsParams{Collection: col.Name, Field: retentionField(col), Before: now.Add(-col.Retention), Limit: RetentionBatch}
		for {
			var r *store.ExpireRecordsResult
			err := c.store.InTenant(ctx, tid, func(tx store.Tx) (err error) {
				if r, err = tx.ExpireRecords(ctx, p); err != nil || r.Deleted == 0 {
					return err
				}
				_, err = c.audit.Append(ctx, tx, audit.TenantChain(tid), audit.Event{Time: c.now(), Actor: systemActor,
					Action: "records.expire", Resource: fmt.Sprintf("collection:%s?count=%d", col.Name, r.Deleted), RequestID: requestID,
					Outcome: audit.Success})
				return err
			})
			if errors.Is(err, store.ErrNotFound) {
				break // the collection was deleted meanwhile
			}
			if err != nil {
				return fmt.Errorf("expire records of %s: %w", col.Name, err)
			}
			res.Expired[col.Name] += r.Deleted
			done += r.Deleted
			progress(done, max(total, done))
			if !r.More {
				break
			}
			p.After = r.NextAfter
		}
	}
	progress(done, done)
	return nil
}
