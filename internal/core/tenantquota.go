package core

import (
	"context"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// TenantQuota is a tenant with its plan and what it stores now: the
// figures per-tenant health sets against the plan's limits.
type TenantQuota struct {
	Tenant *Tenant
	Plan   tenant.Plan
	// Records and Bytes are what the tenant stores now.
	Records, Bytes int64
}

// TenantQuota returns the tenant the operator's scope addresses, its plan
// and what it stores, for the operator's view of tenants' health: counts
// and sizes, as the usage history gives them for billing, and no tenant
// data. The plan comes from the cache the request path uses; the counts
// are one read of the tenant's usage.
func (ct *Control) TenantQuota(ctx context.Context, sc *Scope) (*TenantQuota, error) {
	if err := ct.target(sc); err != nil {
		return nil, err
	}
	t := &sc.tenant
	plan, err := ct.core.plan(ctx, t.Plan)
	if err != nil {
		return nil, err
	}
	var u *store.Usage
	err = ct.core.store.ReadTenant(ctx, t.ID, func(tx store.Tx) (err error) {
		u, err = tx.Usage(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return &TenantQuota{Tenant: tenantView(t), Plan: *plan, Records: u.Records, Bytes: u.Bytes}, nil
}
