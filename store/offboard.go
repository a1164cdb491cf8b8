package store

import (
	"context"
	"time"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// TenantDeletions keep the offboarding of tenants with a grace period: a
// deleting tenant (Tenant.Status tenant.Deleting) is refused like a
// suspended one until Tenant.PurgeAt, when its keys are shredded and its
// data purged (Store.DeleteTenant), unless the deletion is cancelled
// before. Its row keeps the status it is stored with, "suspended", so
// that whatever reads the stored status alone refuses it too.
type TenantDeletions interface {
	// ScheduleTenantPurge marks the tenant p.ID deleting: suspended, to be
	// purged at p.PurgeAt. Scheduling a tenant that is deleting already
	// replaces its PurgeAt, DeletedAt and DeletedBy. It returns
	// ErrNotFound if no tenant has p.ID.
	ScheduleTenantPurge(ctx context.Context, p *ScheduleTenantPurgeParams) (*Tenant, error)
	// CancelTenantPurge ends the deletion of the tenant id, giving it
	// status (tenant.Active or tenant.Suspended), and sets UpdatedAt to
	// at. It returns ErrNotFound if no tenant has id, the tenant is not
	// deleting, or its PurgeAt is not after at: a purge that is due may
	// have begun shredding, and is not cancelled.
	CancelTenantPurge(ctx context.Context, id tenant.ID, status tenant.Status, at time.Time) (*Tenant, error)
	// ListTenantPurges returns up to limit deleting tenants, soonest
	// PurgeAt first.
	ListTenantPurges(ctx context.Context, limit int) ([]*Tenant, error)
}

// ScheduleTenantPurgeParams describe the deletion of a tenant.
type ScheduleTenantPurgeParams struct {
	ID tenant.ID
	// PurgeAt is when its keys are shredded and its data purged.
	PurgeAt time.Time
	// DeletedBy is the actor who asked, recorded with At.
	DeletedBy string
	At        time.Time
}
