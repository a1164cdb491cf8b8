package core

import (
	"cmp"
	"context"
	"errors"
	"net/http"
	"strings"
	"unicode/utf8"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// PlatformChain names the platform's own audit chain, which records what the
// operator does to tenants and plans.
const PlatformChain = "platform"

// Scope resolves the tenant a request addresses by slug and checks that p may
// address it. A tenant principal addressing another tenant gets
// store.ErrNotFound — the same answer as for a tenant that does not exist —
// and one addressing its own suspended tenant gets ErrTenantSuspended. The
// operator may address any tenant; what it may do there is decided per
// operation.
func (c *Core) Scope(ctx context.Context, p *tenant.Principal, slug tenant.Slug) (*store.Tenant, error) {
	if !slug.Valid() {
		return nil, store.ErrNotFound
	}
	t, err := c.tenantBySlug(ctx, slug)
	if err != nil {
		return nil, err
	}
	if p.IsOperator() {
		return t, nil
	}
	if p.Tenant != t.ID {
		return nil, store.ErrNotFound
	}
	if t.Status != tenant.Active {
		return nil, ErrTenantSuspended
	}
	return t, nil
}

// SlugKnown reports whether slug names a tenant, from the same cache as
// Scope: a slug that names none is answered as fast as one that does.
func (c *Core) SlugKnown(ctx context.Context, slug tenant.Slug) (bool, error) {
	t, err := c.loginTenant(ctx, slug)
	return t != nil, err
}

// tenantBySlug serves from a cache that lives CacheTTL, so that the hot path
// does not read the control plane on every request. A slug that names no
// tenant is cached too (as nil), so that it is answered as fast as one that
// does: the time of a 404 does not tell whether the tenant exists. A tenant
// created through another node is therefore found here within CacheTTL.
func (c *Core) tenantBySlug(ctx context.Context, slug tenant.Slug) (*store.Tenant, error) {
	now := c.now()
	c.mu.RLock()
	cached, ok := c.tenants.get(slug, now)
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
	// The key is cloned: slug may point into the request's URL.
	c.tenants.put(tenant.Slug(strings.Clone(string(slug))), t, now)
	c.mu.Unlock()
	return t, err
}

// Plan returns the plan called name, from a cache that lives CacheTTL, so a
// plan changed on another node applies here within CacheTTL (at once when
// changed through this node).
func (c *Core) Plan(ctx context.Context, name string) (*tenant.Plan, error) {
	now := c.now()
	c.mu.RLock()
	cached, ok := c.plans.get(name, now)
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
	c.plans.put(p.Name, p, now)
	c.mu.Unlock()
	return p, nil
}

// Sweep lets the node's caches of tenants, API keys and plans forget what
// has expired. Lookups do it as they go; a periodic call (App does it every
// CacheTTL) frees the memory of a node that has gone quiet too.
func (c *Core) Sweep() {
	now := c.now()
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tenants.rotate(now)
	c.apiKeys.rotate(now)
	c.plans.rotate(now)
	c.sessions.rotate(now)
}

// forgetTenant drops what this node caches about t.
func (c *Core) forgetTenant(t *store.Tenant) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.tenants.delete(t.Slug)
	c.apiKeys.deleteFunc(func(k cachedKey) bool { return k.principal != nil && k.principal.Tenant == t.ID })
}

// errReplayed rolls back a creation that a concurrent retry with the same
// Idempotency-Key already made.
var errReplayed = errors.New("replayed")

// CreateTenantParams is the body of POST /v1/tenants.
type CreateTenantParams struct {
	Slug      tenant.Slug      `json:"slug"`
	Name      string           `json:"name"`
	Plan      string           `json:"plan,omitempty"`
	Isolation tenant.Isolation `json:"isolation,omitempty"`
}

// CreateTenant provisions a tenant. The platform chain and the new tenant's
// own chain both record it.
func (c *Core) CreateTenant(ctx context.Context, caller Caller, p CreateTenantParams, idem *Idempotency) (*Tenant, error) {
	if err := allow(caller, access.ManageTenants); err != nil {
		return nil, err
	}
	if !p.Slug.Valid() {
		return nil, invalid("slug", "slug must match ^[a-z][a-z0-9-]{1,62}$")
	}
	if err := validName(p.Name); err != nil {
		return nil, err
	}
	p.Plan = or(p.Plan, tenant.DefaultPlan)
	if p.Isolation == "" {
		p.Isolation = tenant.Pooled
	}
	if !p.Isolation.Valid() {
		return nil, invalid("isolation", `isolation must be "pooled" or "silo"`)
	}
	var replayed *Tenant
	err := c.store.ReadPlatform(ctx, func(tx store.PlatformTx) error {
		var err error
		if replayed, err = replay[*Tenant](ctx, tx, idem, c.now()); err != nil || replayed != nil {
			return err
		}
		return c.checkPlan(ctx, tx, p.Plan)
	})
	if err != nil || replayed != nil {
		return replayed, err
	}

	now := c.now()
	params := &store.CreateTenantParams{
		ID: tenant.ID(newID()), Slug: p.Slug, Name: p.Name, Plan: p.Plan, Isolation: p.Isolation, CreatedAt: now,
	}
	ev := audit.Event{Time: now, Actor: caller.Principal.Actor(), Action: "tenant.create",
		Resource: "tenant:" + string(params.ID), RequestID: caller.RequestID, Outcome: audit.Success}
	view := tenantView(&store.Tenant{ID: params.ID, Slug: params.Slug, Name: params.Name, Plan: params.Plan,
		Isolation: params.Isolation, Status: tenant.Active, CreatedAt: now, UpdatedAt: now})
	_, err = c.store.CreateTenant(ctx, params,
		func(tx store.PlatformTx) error {
			// Check again in the transaction that creates the tenant, so
			// that two concurrent retries cannot both create one.
			if replayed, err = replay[*Tenant](ctx, tx, idem, now); err != nil || replayed != nil {
				return cmp.Or(err, errReplayed)
			}
			if _, err := c.audit.Append(ctx, tx, PlatformChain, ev); err != nil {
				return err
			}
			return remember(ctx, tx, idem, now, view)
		},
		func(tx store.Tx) error {
			_, err := c.audit.Append(ctx, tx, string(tx.Tenant()), ev)
			return err
		})
	// The slug may be cached as naming no tenant.
	c.mu.Lock()
	c.tenants.delete(p.Slug)
	c.mu.Unlock()
	if errors.Is(err, errReplayed) {
		return replayed, nil
	}
	if errors.Is(err, store.ErrConflict) {
		return nil, problem.New(http.StatusConflict, problem.CodeConflict, "a tenant with this slug exists")
	}
	if err != nil {
		return nil, err
	}
	return view, nil
}

func (c *Core) checkPlan(ctx context.Context, tx store.PlatformTx, name string) error {
	_, err := tx.GetPlan(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return invalid("plan", "no plan has this name")
	}
	return err
}

func validName(name string) error {
	if name == "" || len(name) > 200 || !utf8.ValidString(name) {
		return invalid("name", "name must be 1 to 200 bytes of UTF-8")
	}
	return nil
}

// GetTenant returns the tenant the operator addressed.
func (c *Core) GetTenant(ctx context.Context, caller Caller, t *store.Tenant) (*Tenant, error) {
	if err := allow(caller, access.ManageTenants); err != nil {
		return nil, err
	}
	return tenantView(t), nil
}

// ListTenants returns a page of tenants, oldest first.
func (c *Core) ListTenants(ctx context.Context, caller Caller, cursor string, limit int) (*List[*Tenant], error) {
	if err := allow(caller, access.ManageTenants); err != nil {
		return nil, err
	}
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return nil, invalid("limit", "limit must be between 1 and 1000")
	}
	params := &store.ListTenantsParams{Limit: limit + 1}
	if cursor != "" {
		var key store.TenantKey
		if err := c.openCursor(cursor, PlatformChain, "tenants", &key); err != nil {
			return nil, err
		}
		params.After = &key
	}
	var ts []*store.Tenant
	err := c.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		ts, err = tx.ListTenants(ctx, params)
		return err
	})
	if err != nil {
		return nil, err
	}
	page := &List[*Tenant]{Items: []*Tenant{}}
	for i, t := range ts {
		if i == limit {
			last := ts[i-1]
			page.NextCursor = c.sealCursor(PlatformChain, "tenants", store.TenantKey{CreatedAt: last.CreatedAt, ID: last.ID})
			break
		}
		page.Items = append(page.Items, tenantView(t))
	}
	return page, nil
}

// UpdateTenantParams is the body of PATCH /v1/tenants/{tenant}.
type UpdateTenantParams struct {
	Name   *string        `json:"name,omitempty"`
	Plan   *string        `json:"plan,omitempty"`
	Status *tenant.Status `json:"status,omitempty"`
}

// UpdateTenant renames a tenant, changes its plan or suspends and resumes
// it. The change applies on this node at once.
func (c *Core) UpdateTenant(ctx context.Context, caller Caller, t *store.Tenant, p UpdateTenantParams) (*Tenant, error) {
	if err := allow(caller, access.ManageTenants); err != nil {
		return nil, err
	}
	if p.Name != nil {
		if err := validName(*p.Name); err != nil {
			return nil, err
		}
	}
	if p.Status != nil && !p.Status.Valid() {
		return nil, invalid("status", `status must be "active" or "suspended"`)
	}
	action := "tenant.update"
	if p.Status != nil && *p.Status != t.Status {
		action = map[tenant.Status]string{tenant.Active: "tenant.resume", tenant.Suspended: "tenant.suspend"}[*p.Status]
	}
	now := c.now()
	var updated *store.Tenant
	err := c.store.InPlatform(ctx, func(tx store.PlatformTx) error {
		if p.Plan != nil {
			if err := c.checkPlan(ctx, tx, *p.Plan); err != nil {
				return err
			}
		}
		var err error
		updated, err = tx.UpdateTenant(ctx, &store.UpdateTenantParams{ID: t.ID, Name: p.Name, Plan: p.Plan, Status: p.Status, UpdatedAt: now})
		if err != nil {
			return err
		}
		_, err = c.audit.Append(ctx, tx, PlatformChain, audit.Event{Time: now, Actor: caller.Principal.Actor(),
			Action: action, Resource: "tenant:" + string(t.ID), RequestID: caller.RequestID, Outcome: audit.Success})
		return err
	})
	c.forgetTenant(t)
	if err != nil {
		return nil, err
	}
	return tenantView(updated), nil
}

// DeleteTenant offboards a tenant: its data, credentials and audit chain are
// removed and the platform chain records the deletion.
func (c *Core) DeleteTenant(ctx context.Context, caller Caller, t *store.Tenant) error {
	if err := allow(caller, access.ManageTenants); err != nil {
		return err
	}
	now := c.now()
	err := c.store.DeleteTenant(ctx, t.ID, func(tx store.PlatformTx) error {
		_, err := c.audit.Append(ctx, tx, PlatformChain, audit.Event{Time: now, Actor: caller.Principal.Actor(),
			Action: "tenant.delete", Resource: "tenant:" + string(t.ID), RequestID: caller.RequestID, Outcome: audit.Success})
		return err
	})
	c.forgetTenant(t)
	return err
}

// ListPlans returns every plan.
func (c *Core) ListPlans(ctx context.Context, caller Caller) (*List[*tenant.Plan], error) {
	if err := allow(caller, access.ManagePlans); err != nil {
		return nil, err
	}
	var plans []*tenant.Plan
	err := c.store.ReadPlatform(ctx, func(tx store.PlatformTx) (err error) {
		plans, err = tx.ListPlans(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	if plans == nil {
		plans = []*tenant.Plan{}
	}
	return &List[*tenant.Plan]{Items: plans}, nil
}

// PutPlan creates or replaces the plan called name.
func (c *Core) PutPlan(ctx context.Context, caller Caller, name string, p tenant.Plan) (*tenant.Plan, error) {
	if err := allow(caller, access.ManagePlans); err != nil {
		return nil, err
	}
	if p.Name == "" {
		p.Name = name
	}
	switch {
	case !tenant.SlugPattern.MatchString(name):
		return nil, invalid("plan", "plan names match ^[a-z][a-z0-9-]{1,62}$")
	case p.Name != name:
		return nil, invalid("name", "name must match the plan in the path")
	case !(p.RatePerSec > 0) || p.RatePerSec > 1e9:
		return nil, invalid("rate_per_sec", "rate_per_sec must be > 0 and at most 1e9")
	case p.Burst < 1:
		return nil, invalid("burst", "burst must be at least 1")
	case p.MaxInflight < 1:
		return nil, invalid("max_inflight", "max_inflight must be at least 1")
	case p.Weight < 1 || p.Weight > 1000:
		return nil, invalid("weight", "weight must be between 1 and 1000")
	case p.MaxRecords < 0:
		return nil, invalid("max_records", "max_records must be >= 0")
	case p.MaxBytes < 0:
		return nil, invalid("max_bytes", "max_bytes must be >= 0")
	}
	now := c.now()
	err := c.store.InPlatform(ctx, func(tx store.PlatformTx) error {
		if err := tx.PutPlan(ctx, &p); err != nil {
			return err
		}
		_, err := c.audit.Append(ctx, tx, PlatformChain, audit.Event{Time: now, Actor: caller.Principal.Actor(),
			Action: "plan.put", Resource: "plan:" + name, RequestID: caller.RequestID, Outcome: audit.Success})
		return err
	})
	c.mu.Lock()
	c.plans.delete(name)
	c.mu.Unlock()
	if err != nil {
		return nil, err
	}
	return &p, nil
}
