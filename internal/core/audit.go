package core

import (
	"context"
	"encoding/hex"
	"strconv"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/store"
)

// ListAudit returns the tenant's audit entries after seq after. The next
// cursor is the last entry's seq, to pass as after.
func (s *Scope) ListAudit(ctx context.Context, after int64, limit int) (*List[AuditEntry], error) {
	if err := s.allow(access.ReadAudit); err != nil {
		return nil, err
	}
	return listAudit(ctx, after, limit, func(fn func(store.AuditLog) error) error {
		return s.read(ctx, func(tx store.Tx) error { return fn(tx) })
	})
}

// ListPlatformAudit returns the platform chain's entries after seq after.
func (ct *Control) ListPlatformAudit(ctx context.Context, after int64, limit int) (*List[AuditEntry], error) {
	if err := ct.check(); err != nil {
		return nil, err
	}
	return listAudit(ctx, after, limit, func(fn func(store.AuditLog) error) error {
		return ct.core.store.ReadPlatform(ctx, func(tx store.PlatformTx) error { return fn(tx) })
	})
}

func listAudit(ctx context.Context, after int64, limit int, read func(func(store.AuditLog) error) error) (*List[AuditEntry], error) {
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return nil, invalid("limit", "limit must be between 1 and 1000")
	}
	if after < 0 {
		return nil, invalid("after", "after must be a sequence number >= 0")
	}
	var entries []*store.AuditEntry
	err := read(func(log store.AuditLog) (err error) {
		entries, err = log.ListAudit(ctx, after, limit+1)
		return err
	})
	if err != nil {
		return nil, err
	}
	page := &List[AuditEntry]{Items: make([]AuditEntry, 0, len(entries))}
	for i, e := range entries {
		if i == limit {
			page.NextCursor = strconv.FormatInt(entries[i-1].Seq, 10)
			break
		}
		page.Items = append(page.Items, auditView(e))
	}
	return page, nil
}

// VerifyAudit walks the tenant's whole chain and its signed checkpoints. A
// broken chain is a successful verification with OK false, not an error.
// The operator may verify (the result reveals no tenant data) but not read.
func (s *Scope) VerifyAudit(ctx context.Context) (*AuditVerification, error) {
	if err := s.allow(access.VerifyAudit); err != nil {
		return nil, err
	}
	var v *AuditVerification
	err := s.read(ctx, func(tx store.Tx) (err error) {
		v, err = s.core.verify(ctx, tx, audit.TenantChain(s.tenant.ID))
		return err
	})
	return v, err
}

// VerifyPlatformAudit verifies the platform chain.
func (ct *Control) VerifyPlatformAudit(ctx context.Context) (*AuditVerification, error) {
	if err := ct.check(); err != nil {
		return nil, err
	}
	var v *AuditVerification
	err := ct.core.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		v, err = ct.core.verify(ctx, tx, audit.PlatformChain)
		return err
	})
	return v, err
}

// brokenChain reports a chain a verification found broken, by its kind.
func (c *Core) brokenChain(chain audit.Chain) {
	if chain == audit.PlatformChain {
		c.auditVerifyFailed("platform")
	} else {
		c.auditVerifyFailed("tenant")
	}
}

func (c *Core) verify(ctx context.Context, log store.AuditLog, chain audit.Chain) (*AuditVerification, error) {
	r, err := c.audit.Verify(ctx, log, chain)
	if err != nil {
		return nil, err
	}
	if !r.OK {
		c.brokenChain(chain)
	}
	return &AuditVerification{OK: r.OK, Length: r.Length, Head: hex.EncodeToString(r.Head), Checkpoints: r.Checkpoints,
		BrokenAt: r.BrokenAt, Reason: r.Reason, Start: r.Start}, nil
}
