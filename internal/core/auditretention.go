package core

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strconv"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// auditKeepPattern is an audit retention: whole days, 1 to 99999.
var auditKeepPattern = regexp.MustCompile(`^[1-9][0-9]{0,4}d$`)

// auditCutStep bounds the entries one cut removes, so that a long
// chain is cut in several transactions of bounded size.
const auditCutStep = 10000

// AuditRetention is how long a tenant keeps its audit entries.
type AuditRetention struct {
	// Keep is the age, in days ("365d"), past which entries are removed;
	// empty when the tenant keeps them for ever.
	Keep      string     `json:"keep,omitempty"`
	UpdatedBy string     `json:"updated_by,omitempty"`
	UpdatedAt *time.Time `json:"updated_at,omitempty"`
}

// PutAuditRetentionParams is the body of PUT …/audit/retention.
type PutAuditRetentionParams struct {
	// Keep is a whole number of days, such as "365d".
	Keep string `json:"keep"`
}

// GetAuditRetention returns the tenant's audit retention.
func (s *Scope) GetAuditRetention(ctx context.Context) (*AuditRetention, error) {
	if err := s.allow(access.ReadAuditRetention); err != nil {
		return nil, err
	}
	var r *store.AuditRetention
	err := s.read(ctx, func(tx store.Tx) (err error) {
		r, err = tx.GetAuditRetention(ctx)
		return err
	})
	if errors.Is(err, store.ErrNotFound) {
		return &AuditRetention{}, nil
	}
	if err != nil {
		return nil, err
	}
	return auditRetentionView(r), nil
}

// PutAuditRetention sets how long the tenant keeps its audit entries. Only
// the operator may: the audit log is the tenant's record of what its own
// admins did, so none of them can shorten it. The next retention job
// removes the entries older than that, at a signed cut that verification
// starts from.
func (s *Scope) PutAuditRetention(ctx context.Context, p PutAuditRetentionParams) (*AuditRetention, error) {
	if err := s.allow(access.ManageAuditRetention); err != nil {
		return nil, err
	}
	if !auditKeepPattern.MatchString(p.Keep) {
		return nil, invalid("keep", `keep is a whole number of days from 1 to 99999, such as "365d"`)
	}
	days, _ := strconv.Atoi(p.Keep[:len(p.Keep)-1])
	r := &store.AuditRetention{Keep: time.Duration(days) * 24 * time.Hour, UpdatedBy: s.principal.Actor(), UpdatedAt: s.core.now()}
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.PutAuditRetention(ctx, r); err != nil {
			return err
		}
		return s.append(ctx, tx, s.event("audit.retention.put", "audit:retention?keep="+p.Keep))
	})
	if err != nil {
		return nil, err
	}
	return auditRetentionView(r), nil
}

func auditRetentionView(r *store.AuditRetention) *AuditRetention {
	at := r.UpdatedAt
	return &AuditRetention{Keep: formatRetention(r.Keep), UpdatedBy: r.UpdatedBy, UpdatedAt: &at}
}

// cutAudit removes tid's audit entries older than its audit retention.
// It verifies the chain first and refuses to cut a broken one, which
// would remove the evidence; then it cuts at the last entry older than the
// retention (which is kept, as the chain's signed start), in steps of at
// most auditCutStep entries, each a transaction that makes that entry a
// checkpoint, records the signed cut, removes what lies below, and audits
// the cut.
func (c *Core) cutAudit(ctx context.Context, tid tenant.ID, requestID string, res *RetentionResult) error {
	var keep *store.AuditRetention
	var target *store.AuditEntry
	chain := audit.TenantChain(tid)
	err := c.store.ReadTenant(ctx, tid, func(tx store.Tx) error {
		var err error
		if keep, err = tx.GetAuditRetention(ctx); err != nil {
			return err
		}
		rep, err := c.audit.Verify(ctx, tx, chain)
		if err != nil {
			return err
		}
		if !rep.OK {
			c.brokenChain(chain)
			return jobs.Public(fmt.Errorf("audit chain broken at %d (%s); not cutting it: %w", rep.BrokenAt, rep.Reason, jobs.ErrPermanent))
		}
		before := c.now().Add(-keep.Keep)
		for after := max(rep.Start-1, 0); ; {
			page, err := tx.ListAudit(ctx, after, 1000)
			if err != nil {
				return err
			}
			for _, e := range page {
				if !e.Time.Before(before) {
					return nil
				}
				target = e
			}
			if len(page) < 1000 {
				return nil
			}
			after = page[len(page)-1].Seq
		}
	})
	if errors.Is(err, store.ErrNotFound) {
		return nil // no audit retention
	}
	if err != nil || target == nil {
		return err
	}
	for {
		var start int64 = 1
		var cut *store.AuditCut
		var removed int64
		err := c.store.InTenant(ctx, tid, func(tx store.Tx) error {
			if st, err := tx.AuditStart(ctx); err == nil {
				start = st.Seq
			} else if !errors.Is(err, store.ErrNotFound) {
				return err
			}
			if target.Seq <= start {
				return nil
			}
			seq := min(target.Seq, start+auditCutStep)
			es, err := tx.ListAudit(ctx, seq-1, 1)
			if err != nil {
				return err
			}
			if len(es) != 1 || es[0].Seq != seq || (seq == target.Seq && string(es[0].Hash) != string(target.Hash)) {
				return jobs.Public(fmt.Errorf("audit entry %d changed since it was verified; not cutting: %w", seq, jobs.ErrPermanent))
			}
			if err := c.audit.Checkpoint(ctx, tx, chain, es[0]); err != nil {
				return err
			}
			if cut, err = c.audit.Cut(chain, es[0]); err != nil {
				return err
			}
			if err := tx.CutAudit(ctx, cut); err != nil {
				return err
			}
			removed = seq - start
			_, err = c.audit.Append(ctx, tx, chain, audit.Event{Time: c.now(), Actor: systemActor, Action: "audit.cut",
				Resource: fmt.Sprintf("audit:%d?removed=%d&keep=%s", seq, removed, formatRetention(keep.Keep)), RequestID: requestID,
				Outcome: audit.Success})
			return err
		})
		if err != nil {
			return fmt.Errorf("cut audit log: %w", err)
		}
		if cut == nil {
			return nil
		}
		res.AuditCut, res.AuditRemoved = cut.Seq, res.AuditRemoved+removed
	}
}
