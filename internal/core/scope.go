package core

import (
	"context"
	"errors"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/otel/attribute"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/observe"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Scope is one principal bound to one tenant it may address, with that
// tenant's plan: the value every operation on a tenant's data is a method
// of. Only Core.Scope makes one, after checking that the principal belongs
// to the tenant (or is the operator), so an operation cannot be handed a
// principal of one tenant and the data of another. Its fields are fixed
// when it is made; a zero Scope refuses everything with ErrNoScope.
type Scope struct {
	core      *Core
	principal *tenant.Principal
	tenant    store.Tenant
	plan      tenant.Plan
	requestID string
	// breakGlass is the tenant's active break-glass grant when the
	// principal is the operator (see underBreakGlass), and breakGlassUsed
	// whether the scope has read under it.
	breakGlass     *store.BreakGlass
	breakGlassUsed atomic.Bool
}

// Scope resolves the tenant a request addresses by slug and binds p to it. A
// tenant principal addressing another tenant gets store.ErrNotFound — the
// same answer as for a tenant that does not exist — and one addressing its
// own suspended tenant gets ErrTenantSuspended, its own deleting tenant
// ErrTenantDeleting (see ScopeWhileDeleting). The operator may address
// any tenant; what it may do there is decided per operation. requestID is
// recorded in the audit entries of the scope's operations.
func (c *Core) Scope(ctx context.Context, p *tenant.Principal, slug tenant.Slug, requestID string) (*Scope, error) {
	return c.scope(ctx, p, slug, requestID, false)
}

// scope is Scope; whileDeleting says the operation is one a deleting
// tenant's admins may still use (see ScopeWhileDeleting).
func (c *Core) scope(ctx context.Context, p *tenant.Principal, slug tenant.Slug, requestID string, whileDeleting bool) (*Scope, error) {
	if p == nil {
		return nil, ErrUnauthorized
	}
	if !slug.Valid() {
		return nil, store.ErrNotFound
	}
	t, err := c.tenantBySlug(ctx, slug)
	if err != nil {
		return nil, err
	}
	if !p.IsOperator() {
		if p.Tenant != t.ID {
			return nil, store.ErrNotFound
		}
		if err := statusRefusal(t, p, whileDeleting); err != nil {
			return nil, err
		}
	}
	plan, err := c.plan(ctx, t.Plan)
	if err != nil {
		return nil, err
	}
	sc := &Scope{core: c, principal: p, tenant: *t, plan: *plan, requestID: requestID}
	if p.IsOperator() {
		// Without the grant known, the operator reads nothing, but its
		// control-plane work on the tenant goes on.
		if sc.breakGlass, err = c.activeBreakGlass(ctx, t.ID); err != nil {
			c.log.Warn("break-glass grants not read; none applies to this request", "tenant", string(t.ID), "request_id", requestID, "err", err)
		}
	}
	return sc, nil
}

// Tenant returns the scope's tenant as it was when the scope was made.
func (s *Scope) Tenant() store.Tenant { return s.tenant }

// Plan returns the tenant's plan as it was when the scope was made, for
// admission.
func (s *Scope) Plan() tenant.Plan { return s.plan }

// Principal returns who acts in the scope.
func (s *Scope) Principal() *tenant.Principal { return s.principal }

// allow returns ErrNoScope for a Scope not made by Core.Scope and a
// forbidden Error naming the rule unless the principal holds perm.
func (s *Scope) allow(perm access.Permission) error {
	if s == nil || s.core == nil || s.principal == nil {
		return ErrNoScope
	}
	if s.principal.Scope != "" {
		// A restricted token does only what it was issued for (see
		// mfa.go), nothing its role would otherwise allow.
		return ErrMFAEnrollmentRequired
	}
	if why := access.Refusal(s.principal, perm); why != "" && !s.underBreakGlass(perm) {
		return forbidden(why)
	}
	return nil
}

// canGrant returns a forbidden Error unless the principal may grant role.
func (s *Scope) canGrant(role tenant.Role) error {
	if why := access.GrantRefusal(s.principal, role); why != "" {
		return forbidden(why)
	}
	return nil
}

// event is an audit event of the scope's principal and request.
func (s *Scope) event(action, resource string) audit.Event {
	return audit.Event{Time: s.core.now(), Actor: s.principal.Actor(), Action: action, Resource: resource,
		RequestID: s.requestID, Outcome: audit.Success}
}

// append records ev in the tenant's chain, in tx.
func (s *Scope) append(ctx context.Context, tx store.Tx, ev audit.Event) error {
	ctx, span := observe.StartSpan(ctx, "bulkhead.audit")
	e, err := s.core.audit.Append(ctx, tx, audit.TenantChain(s.tenant.ID), ev)
	if err == nil && span.IsRecording() {
		span.SetAttributes(attribute.String("bulkhead.audit.action", ev.Action), attribute.Int64("bulkhead.audit.seq", e.Seq))
	}
	observe.EndSpan(span, err)
	return err
}

// write runs fn in a read-write transaction of the scope's tenant.
func (s *Scope) write(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.core.store.InTenant(ctx, s.tenant.ID, fn)
}

// read runs fn in a read-only transaction of the scope's tenant.
func (s *Scope) read(ctx context.Context, fn func(tx store.Tx) error) error {
	return s.core.store.ReadTenant(ctx, s.tenant.ID, fn)
}

// SlugKnown reports whether slug names a tenant, from the same cache as
// Scope: a slug that names none is answered as fast as one that does.
func (c *Core) SlugKnown(ctx context.Context, slug tenant.Slug) (bool, error) {
	t, err := c.loginTenant(ctx, slug)
	return t != nil, err
}

// tenantBySlug serves from a cache, so that the hot path does not read the
// control plane on every request. A slug that names no tenant is cached
// too (as nil), so that it is answered as fast as one that does: the time
// of a 404 does not tell whether the tenant exists.
func (c *Core) tenantBySlug(ctx context.Context, slug tenant.Slug) (*store.Tenant, error) {
	now := c.now()
	c.mu.RLock()
	cached, ok := c.tenants.fresh(slug, now, c.maxAge())
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		if cached == nil {
			return nil, store.ErrNotFound
		}
		return cached, nil
	}
	// t is declared after the cache lookup: the closure below moves it to
	// the heap, which a cache hit should not pay for.
	var t *store.Tenant
	err := c.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		t, err = tx.GetTenantBySlug(ctx, slug)
		return err
	})
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	c.mu.Lock()
	if c.gen == gen {
		// The key is cloned: slug may point into the request's URL.
		c.tenants.put(tenant.Slug(strings.Clone(string(slug))), t, now)
	}
	c.mu.Unlock()
	return t, err
}

// plan returns the plan called name, from a cache.
func (c *Core) plan(ctx context.Context, name string) (*tenant.Plan, error) {
	now := c.now()
	c.mu.RLock()
	cached, ok := c.plans.fresh(name, now, c.maxAge())
	gen := c.gen
	c.mu.RUnlock()
	if ok {
		return cached, nil
	}
	var p *tenant.Plan
	err := c.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		p, err = tx.GetPlan(ctx, name)
		return err
	})
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	if c.gen == gen {
		c.plans.put(p.Name, p, now)
	}
	c.mu.Unlock()
	return p, nil
}
