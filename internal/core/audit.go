package core

import (
	"context"
	"encoding/hex"
	"strconv"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/store"
)

// ListAudit returns t's audit entries after seq after. The next cursor is
// the last entry's seq, to pass as after.
func (c *Core) ListAudit(ctx context.Context, caller Caller, t *store.Tenant, after int64, limit int) (*List[AuditEntry], error) {
	if err := allow(caller, access.ReadAudit); err != nil {
		return nil, err
	}
	return c.listAudit(ctx, after, limit, func(fn func(store.AuditLog) error) error {
		return c.store.ReadTenant(ctx, t.ID, func(tx store.Tx) error { return fn(tx) })
	})
}

// ListPlatformAudit returns the platform chain's entries after seq after.
func (c *Core) ListPlatformAudit(ctx context.Context, caller Caller, after int64, limit int) (*List[AuditEntry], error) {
	if err := allow(caller, access.ManageTenants); err != nil {
		return nil, err
	}
	return c.listAudit(ctx, after, limit, func(fn func(store.AuditLog) error) error {
		return c.store.ReadPlatform(ctx, func(tx store.PlatformTx) error { return fn(tx) })
	})
}

func (c *Core) listAudit(ctx context.Context, after int64, limit int, read func(func(store.AuditLog) error) error) (*List[AuditEntry], error) {
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

// VerifyAudit walks t's whole chain and its signed checkpoints. A broken
// chain is a successful verification with OK false, not an error. The
// operator may verify (the result reveals no tenant data) but not read.
func (c *Core) VerifyAudit(ctx context.Context, caller Caller, t *store.Tenant) (*AuditVerification, error) {
	if err := allow(caller, access.VerifyAudit); err != nil {
		return nil, err
	}
	var v *AuditVerification
	err := c.store.ReadTenant(ctx, t.ID, func(tx store.Tx) (err error) {
		v, err = c.verify(ctx, tx, string(t.ID))
		return err
	})
	return v, err
}

// VerifyPlatformAudit verifies the platform chain.
func (c *Core) VerifyPlatformAudit(ctx context.Context, caller Caller) (*AuditVerification, error) {
	if err := allow(caller, access.ManageTenants); err != nil {
		return nil, err
	}
	var v *AuditVerification
	err := c.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		v, err = c.verify(ctx, tx, PlatformChain)
		return err
	})
	return v, err
}

func (c *Core) verify(ctx context.Context, log store.AuditLog, chain string) (*AuditVerification, error) {
	r, err := c.audit.Verify(ctx, log, chain)
	if err != nil {
		return nil, err
	}
	return &AuditVerification{OK: r.OK, Length: r.Length, Head: hex.EncodeToString(r.Head), Checkpoints: r.Checkpoints,
		BrokenAt: r.BrokenAt, Reason: r.Reason}, nil
}
