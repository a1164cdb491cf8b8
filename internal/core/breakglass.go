package core

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/secevent"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Break-glass: the operator holds no permission on a tenant's data (see
// package access), except while the tenant has an active break-glass
// grant, which the operator gives itself with a reason and a duration.
// The grant is recorded in the tenant's own audit chain, so the tenant's
// admins see it and every request that read their data under it; it lets
// the operator read (collections, records, users, the audit log, usage),
// never write; it ends when it expires or when the operator ends it.

// Bounds of a break-glass grant.
const (
	MaxBreakGlassReason  = 500
	MinBreakGlassMinutes = 1
	MaxBreakGlassMinutes = 240
)

// BreakGlassParams is the body of POST /v1/tenants/{tenant}/break-glass.
type BreakGlassParams struct {
	// Reason says why, for the tenant's audit chain: 1 to 500 characters.
	Reason string `json:"reason"`
	// Minutes is how long the grant lasts: 1 to 240.
	Minutes int `json:"minutes"`
}

// BreakGlassGrant is a break-glass grant as the API shows it.
type BreakGlassGrant struct {
	ID        store.BreakGlassID `json:"id"`
	Reason    string             `json:"reason"`
	Actor     string             `json:"actor"`
	CreatedAt time.Time          `json:"created_at"`
	ExpiresAt time.Time          `json:"expires_at"`
	// EndedAt is set when the operator ended the grant before it expired.
	EndedAt *time.Time `json:"ended_at,omitempty"`
	EndedBy string     `json:"ended_by,omitempty"`
	// Active says whether the grant lets the operator read now.
	Active bool `json:"active"`
}

func breakGlassView(g *store.BreakGlass, now time.Time) *BreakGlassGrant {
	return &BreakGlassGrant{ID: g.ID, Reason: g.Reason, Actor: g.Actor, CreatedAt: g.CreatedAt, ExpiresAt: g.ExpiresAt,
		EndedAt: g.EndedAt, EndedBy: g.EndedBy, Active: g.ActiveAt(now)}
}

// GrantBreakGlass lets the operator read the tenant sc addresses for
// p.Minutes, recording the grant and its reason in the tenant's audit
// chain and as a security event. It applies on every node as soon as the
// change feed tells them.
func (ct *Control) GrantBreakGlass(ctx context.Context, sc *Scope, p BreakGlassParams) (*BreakGlassGrant, error) {
	if err := ct.target(sc); err != nil {
		return nil, err
	}
	if err := checkText("reason", p.Reason, 1, MaxBreakGlassReason); err != nil {
		return nil, err
	}
	if p.Minutes < MinBreakGlassMinutes || p.Minutes > MaxBreakGlassMinutes {
		return nil, invalid("minutes", fmt.Sprintf("minutes must be %d to %d", MinBreakGlassMinutes, MaxBreakGlassMinutes))
	}
	c := ct.core
	now := c.now()
	g := &store.BreakGlass{ID: store.BreakGlassID(newID()), Reason: p.Reason, Actor: ct.principal.Actor(),
		CreatedAt: now, ExpiresAt: now.Add(time.Duration(p.Minutes) * time.Minute)}
	tid := sc.tenant.ID
	err := sc.write(ctx, func(tx store.Tx) error {
		if err := tx.CreateBreakGlass(ctx, g); err != nil {
			return err
		}
		ev := ct.event("break_glass.grant", "break_glass:"+string(g.ID))
		_, err := c.audit.Append(ctx, tx, audit.TenantChain(tid), ev)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.forgetTenant(tid, "")
	c.emit(ctx, secevent.Event{Action: "break-glass-granted", Category: "iam", Outcome: "success", Severity: 3,
		Tenant: tid, TenantSlug: sc.tenant.Slug, Actor: g.Actor, Target: "break_glass:" + string(g.ID),
		RequestID: ct.requestID, Reason: fmt.Sprintf("%s (for %d minutes)", p.Reason, p.Minutes)})
	return breakGlassView(g, now), nil
}

// EndBreakGlass ends an active grant of the tenant sc addresses before it
// expires, on this node at once and on others as soon as the change feed
// tells them. It returns store.ErrNotFound if the tenant has no such
// grant or it has already ended or expired.
func (ct *Control) EndBreakGlass(ctx context.Context, sc *Scope, id store.BreakGlassID) (*BreakGlassGrant, error) {
	if err := ct.target(sc); err != nil {
		return nil, err
	}
	c := ct.core
	now := c.now()
	tid := sc.tenant.ID
	var g *store.BreakGlass
	err := sc.write(ctx, func(tx store.Tx) (err error) {
		if g, err = tx.EndBreakGlass(ctx, id, ct.principal.Actor(), now); err != nil {
			return err
		}
		_, err = c.audit.Append(ctx, tx, audit.TenantChain(tid), ct.event("break_glass.end", "break_glass:"+string(id)))
		return err
	})
	if err != nil {
		return nil, err
	}
	c.forgetTenant(tid, "")
	c.emit(ctx, secevent.Event{Action: "break-glass-ended", Category: "iam", Outcome: "success", Severity: 2,
		Tenant: tid, TenantSlug: sc.tenant.Slug, Actor: ct.principal.Actor(), Target: "break_glass:" + string(id),
		RequestID: ct.requestID})
	return breakGlassView(g, now), nil
}

// ListBreakGlass lists the tenant's break-glass grants, newest first, for
// its admins and the operator.
func (s *Scope) ListBreakGlass(ctx context.Context) (*List[*BreakGlassGrant], error) {
	if err := s.allow(access.ListBreakGlass); err != nil {
		return nil, err
	}
	var gs []*store.BreakGlass
	err := s.read(ctx, func(tx store.Tx) (err error) {
		gs, err = tx.ListBreakGlass(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	now := s.core.now()
	page := &List[*BreakGlassGrant]{Items: make([]*BreakGlassGrant, 0, len(gs))}
	for _, g := range gs {
		page.Items = append(page.Items, breakGlassView(g, now))
	}
	return page, nil
}

// underBreakGlass reports whether the scope's principal, refused perm by
// its role, may still use it: the operator reading under the tenant's
// active break-glass grant. The first such use of a scope — one request —
// is recorded in the tenant's audit chain, after the answer, and as a
// security event.
func (s *Scope) underBreakGlass(perm access.Permission) bool {
	g := s.breakGlass
	if g == nil || !s.principal.IsOperator() || !access.BreakGlassReadable(perm) || !g.ActiveAt(s.core.now()) {
		return false
	}
	if s.breakGlassUsed.CompareAndSwap(false, true) {
		c := s.core
		c.auditLater(s.tenant.ID, audit.Event{Time: c.now(), Actor: s.principal.Actor(), Action: "break_glass.read",
			Resource: string(perm) + " under break_glass:" + string(g.ID), RequestID: s.requestID, Outcome: audit.Success})
		c.events.Publish(secevent.Event{Time: c.now(), Action: "break-glass-read", Category: "database", Outcome: "success",
			Severity: 3, Tenant: s.tenant.ID, TenantSlug: s.tenant.Slug, Actor: s.principal.Actor(),
			Target: string(perm), RequestID: s.requestID, Reason: "under break_glass:" + string(g.ID)})
	}
	return true
}

// breakGlassCache holds, per tenant, the tenant's active break-glass grant
// that lasts longest (nil for none) as a node last read it. Grants and
// their ends are announced on the change feed like a tenant's change, and
// an entry is served for the cache's age limit only (see Core.maxAge);
// whether the grant is still active is decided on the clock at each use.
type breakGlassCache struct {
	mu      sync.Mutex
	gen     uint64
	entries map[tenant.ID]breakGlassEntry
}

type breakGlassEntry struct {
	grant *store.BreakGlass
	read  time.Time
}

// forget drops tid's entry, or every entry when tid is "".
func (bc *breakGlassCache) forget(tid tenant.ID) {
	bc.mu.Lock()
	defer bc.mu.Unlock()
	bc.gen++
	if tid == "" {
		bc.entries = nil
	} else {
		delete(bc.entries, tid)
	}
}

// maxBreakGlassEntries bounds the cache; it is cleared when full. Only
// operator requests fill it.
const maxBreakGlassEntries = 10000

// activeBreakGlass returns tenant tid's active break-glass grant that
// lasts longest, or nil, from the cache when it is fresh.
func (c *Core) activeBreakGlass(ctx context.Context, tid tenant.ID) (*store.BreakGlass, error) {
	now := c.now()
	bc := &c.breakGlass
	bc.mu.Lock()
	e, ok := bc.entries[tid]
	gen := bc.gen
	bc.mu.Unlock()
	if ok && now.Sub(e.read) < c.maxAge() && now.Sub(e.read) >= 0 {
		return e.grant, nil
	}
	var gs []*store.BreakGlass
	err := c.store.ReadTenant(ctx, tid, func(tx store.Tx) (err error) {
		gs, err = tx.ActiveBreakGlass(ctx, now)
		return err
	})
	if err != nil {
		return nil, err
	}
	var best *store.BreakGlass
	for _, g := range gs {
		if best == nil || g.ExpiresAt.After(best.ExpiresAt) {
			best = g
		}
	}
	bc.mu.Lock()
	if bc.gen == gen {
		if bc.entries == nil || len(bc.entries) >= maxBreakGlassEntries {
			bc.entries = map[tenant.ID]breakGlassEntry{}
		}
		bc.entries[tid] = breakGlassEntry{grant: best, read: now}
	}
	bc.mu.Unlock()
	return best, nil
}
