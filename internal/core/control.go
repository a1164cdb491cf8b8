package core

import (
	"cmp"
	"context"
	"errors"
	"math"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/secevent"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Control is the control plane — tenants, plans and the platform's audit
// chain — for the platform operator. Only Core.Control makes one, and only
// for the operator; a zero Control refuses everything with ErrNoScope.
type Control struct {
	core      *Core
	principal *tenant.Principal
	requestID string
}

// Control returns the control plane for p, or a forbidden Error unless p is
// the platform operator. requestID is recorded in its audit entries.
func (c *Core) Control(p *tenant.Principal, requestID string) (*Control, error) {
	if p == nil {
		return nil, ErrUnauthorized
	}
	if !p.IsOperator() {
		return nil, forbidden(access.Refusal(p, access.ManageTenants))
	}
	return &Control{core: c, principal: p, requestID: requestID}, nil
}

// Operator is the principal of the platform operator, for callers that act
// as the operator without a token, such as the command line on the
// database directly.
func Operator() *tenant.Principal { return &tenant.Principal{Kind: tenant.ActorOperator} }

func (ct *Control) check() error {
	if ct == nil || ct.core == nil {
		return ErrNoScope
	}
	return nil
}

// target checks that sc is a scope of this control's operator on the
// tenant to change.
func (ct *Control) target(sc *Scope) error {
	if err := ct.check(); err != nil {
		return err
	}
	if sc == nil || sc.core != ct.core || !sc.principal.IsOperator() {
		return ErrNoScope
	}
	return nil
}

func (ct *Control) event(action, resource string) audit.Event {
	return audit.Event{Time: ct.core.now(), Actor: ct.principal.Actor(), Action: action, Resource: resource,
		RequestID: ct.requestID, Outcome: audit.Success}
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
func (ct *Control) CreateTenant(ctx context.Context, p CreateTenantParams, idem *Idempotency) (*Tenant, error) {
	if err := ct.check(); err != nil {
		return nil, err
	}
	c := ct.core
	if !p.Slug.Valid() {
		return nil, invalid("slug", "slug must match ^[a-z][a-z0-9-]{1,62}$")
	}
	if err := validName(p.Name); err != nil {
		return nil, err
	}
	p.Plan = or(p.Plan, c.defaultPlan)
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
		ID: tenant.NewID(), Slug: p.Slug, Name: p.Name, Plan: p.Plan, Isolation: p.Isolation, CreatedAt: now,
	}
	ev := ct.event("tenant.create", "tenant:"+string(params.ID))
	view := tenantView(&store.Tenant{ID: params.ID, Slug: params.Slug, Name: params.Name, Plan: params.Plan,
		Isolation: params.Isolation, Status: tenant.Active, CreatedAt: now, UpdatedAt: now})
	_, err = c.store.CreateTenant(ctx, params,
		func(tx store.PlatformTx) error {
			// Check again in the transaction that creates the tenant, so
			// that two concurrent retries cannot both create one.
			if replayed, err = replay[*Tenant](ctx, tx, idem, now); err != nil || replayed != nil {
				return cmp.Or(err, errReplayed)
			}
			if _, err := c.audit.Append(ctx, tx, audit.PlatformChain, ev); err != nil {
				return err
			}
			return remember(ctx, tx, idem, now, view)
		},
		func(tx store.Tx) error {
			_, err := c.audit.Append(ctx, tx, audit.TenantChain(tx.Tenant()), ev)
			return err
		})
	// The slug may be cached as naming no tenant.
	c.forgetTenant(params.ID, p.Slug)
	if errors.Is(err, errReplayed) {
		return replayed, nil
	}
	if errors.Is(err, store.ErrConflict) {
		return nil, &Error{Kind: KindConflict, Field: "slug", Detail: "a tenant with this slug exists", Pos: -1}
	}
	if err != nil {
		return nil, err
	}
	return view, nil
}

// checkPlan refuses a plan reference that names no plan. A name that no
// plan can have is refused before the database is asked.
func (c *Core) checkPlan(ctx context.Context, tx store.PlatformTx, name string) error {
	errNoPlan := invalid("plan", "no plan has this name")
	if !tenant.SlugPattern.MatchString(name) {
		return errNoPlan
	}
	_, err := tx.GetPlan(ctx, name)
	if errors.Is(err, store.ErrNotFound) {
		return errNoPlan
	}
	return err
}

// MaxTenantName is the longest tenant name, in characters.
const MaxTenantName = 200

func validName(name string) error {
	return checkText("name", name, 1, MaxTenantName)
}

// GetTenant returns the tenant the operator's scope addresses.
func (ct *Control) GetTenant(ctx context.Context, sc *Scope) (*Tenant, error) {
	if err := ct.target(sc); err != nil {
		return nil, err
	}
	return tenantView(&sc.tenant), nil
}

// ListTenants returns a page of tenants, oldest first.
func (ct *Control) ListTenants(ctx context.Context, cursor string, limit int) (*List[*Tenant], error) {
	if err := ct.check(); err != nil {
		return nil, err
	}
	c := ct.core
	if limit == 0 {
		limit = DefaultLimit
	}
	if limit < 1 || limit > MaxLimit {
		return nil, invalid("limit", "limit must be between 1 and 1000")
	}
	params := &store.ListTenantsParams{Limit: limit + 1}
	if cursor != "" {
		var key store.TenantKey
		if err := c.openCursor(cursor, platformCursor, "tenants", &key); err != nil {
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
			page.NextCursor = c.sealCursor(platformCursor, "tenants", store.TenantKey{CreatedAt: last.CreatedAt, ID: last.ID})
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
// it. Setting the status of a deleting tenant cancels its deletion, unless
// its purge is due (a conflict). The change applies on this node at once.
func (ct *Control) UpdateTenant(ctx context.Context, sc *Scope, p UpdateTenantParams) (*Tenant, error) {
	if err := ct.target(sc); err != nil {
		return nil, err
	}
	c, t := ct.core, &sc.tenant
	if p.Name != nil {
		if err := validName(*p.Name); err != nil {
			return nil, err
		}
	}
	if p.Status != nil && !p.Status.Valid() {
		return nil, invalid("status", `status must be "active" or "suspended"`)
	}
	if p.Status != nil && t.Status == tenant.Deleting {
		return ct.undelete(ctx, sc, p) // offboard.go
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
		_, err = c.audit.Append(ctx, tx, audit.PlatformChain, ct.event(action, "tenant:"+string(t.ID)))
		return err
	})
	c.forgetTenant(t.ID, t.Slug)
	if err != nil {
		return nil, err
	}
	if action == "tenant.suspend" || action == "tenant.resume" {
		c.emit(ctx, secevent.Event{Action: action, Category: "configuration", Outcome: "success", Severity: 3,
			Tenant: t.ID, TenantSlug: t.Slug, Actor: ct.principal.Actor(), Target: "tenant:" + string(t.ID), RequestID: ct.requestID})
	}
	return tenantView(updated), nil
}

// DeleteTenant offboards a tenant: first its keys are destroyed (its key in
// the KMS, then its wrapped data keys: crypto-shredding, which no copy of
// the database survives), then its data, credentials and audit chain are
// removed. The platform chain records both. If the KMS cannot destroy the
// key of a tenant that has data keys, nothing is deleted
// (ErrKeysUnavailable).
func (ct *Control) DeleteTenant(ctx context.Context, sc *Scope) error {
	if err := ct.target(sc); err != nil {
		return err
	}
	c, t := ct.core, &sc.tenant
	if err := c.shred(ctx, ct, t); err != nil {
		return err
	}
	err := c.store.DeleteTenant(ctx, t.ID, func(tx store.PlatformTx) error {
		_, err := c.audit.Append(ctx, tx, audit.PlatformChain, ct.event("tenant.delete", "tenant:"+string(t.ID)))
		return err
	})
	c.forgetTenant(t.ID, t.Slug)
	return err
}

// ListPlans returns every plan.
func (ct *Control) ListPlans(ctx context.Context) (*List[*tenant.Plan], error) {
	if err := ct.check(); err != nil {
		return nil, err
	}
	c := ct.core
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

// Bounds of a plan's fields, beyond which PutPlan refuses it. 0 means no
// limit for rate_per_sec, max_inflight, max_records and max_bytes.
const (
	// MaxPlanRate is the highest rate_per_sec.
	MaxPlanRate = 1e9
	// MaxPlanCount is the highest burst and max_inflight: what an int holds
	// on every platform.
	MaxPlanCount = math.MaxInt32
	// MaxPlanWeight is the highest weight.
	MaxPlanWeight = 1000
)

// PutPlan creates or replaces the plan called name.
func (ct *Control) PutPlan(ctx context.Context, name string, p tenant.Plan) (*tenant.Plan, error) {
	if err := ct.check(); err != nil {
		return nil, err
	}
	c := ct.core
	if p.Name == "" {
		p.Name = name
	}
	switch {
	case !tenant.SlugPattern.MatchString(name):
		return nil, invalid("plan", "plan names match ^[a-z][a-z0-9-]{1,62}$")
	case p.Name != name:
		return nil, invalid("name", "name must match the plan in the path")
	case !(p.RatePerSec >= 0 && p.RatePerSec <= MaxPlanRate): // NaN too
		return nil, invalid("rate_per_sec", "rate_per_sec must be from 0 (no rate limit) to 1e9")
	case p.Burst < 1 || p.Burst > MaxPlanCount:
		return nil, invalid("burst", "burst must be from 1 to 2147483647")
	case p.MaxInflight < 0 || p.MaxInflight > MaxPlanCount:
		return nil, invalid("max_inflight", "max_inflight must be from 0 (no cap) to 2147483647")
	case p.Weight < 1 || p.Weight > MaxPlanWeight:
		return nil, invalid("weight", "weight must be from 1 to 1000")
	case p.MaxRecords < 0:
		return nil, invalid("max_records", "max_records must be from 0 (no cap) to 9223372036854775807")
	case p.MaxBytes < 0:
		return nil, invalid("max_bytes", "max_bytes must be from 0 (no cap) to 9223372036854775807")
	}
	err := c.store.InPlatform(ctx, func(tx store.PlatformTx) error {
		if err := tx.PutPlan(ctx, &p); err != nil {
			return err
		}
		_, err := c.audit.Append(ctx, tx, audit.PlatformChain, ct.event("plan.put", "plan:"+name))
		return err
	})
	c.forgetPlan(name)
	if err != nil {
		return nil, err
	}
	return &p, nil
}
