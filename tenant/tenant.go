// Package tenant defines who a request acts for: tenant identifiers, roles,
// plans and the authenticated Principal, and carries them through a context.
// It depends on nothing else in bulkhead.
package tenant

import (
	"context"
	"regexp"
)

// ID identifies a tenant. It is a UUID in canonical text form. The zero ID is
// never valid.
type ID string

// Slug is a tenant's public, URL-safe name. It matches SlugPattern.
type Slug string

// SlugPattern is the syntax of a tenant slug.
var SlugPattern = regexp.MustCompile(`^[a-z][a-z0-9-]{1,62}$`)

// Valid reports whether s matches SlugPattern.
func (s Slug) Valid() bool { return SlugPattern.MatchString(string(s)) }

// Isolation is how a tenant's data is stored.
type Isolation string

const (
	// Pooled tenants share tables with other tenants, separated by tenant_id
	// (and, on PostgreSQL, forced row-level security).
	Pooled Isolation = "pooled"
	// Silo tenants get their own database file (SQLite) or schema (PostgreSQL).
	Silo Isolation = "silo"
)

// Valid reports whether i is a known isolation mode.
func (i Isolation) Valid() bool { return i == Pooled || i == Silo }

// Status is a tenant's lifecycle state.
type Status string

const (
	// Active tenants are served.
	Active Status = "active"
	// Suspended tenants exist, but their credentials are refused on every data route.
	Suspended Status = "suspended"
	// Deleting tenants are suspended and scheduled for purging: their
	// keys are shredded and their data purged when the grace period ends,
	// unless the operator cancels the deletion first. Meanwhile only
	// their admins may export their data. DELETE /v1/tenants/{tenant}
	// sets it; it is not a status one sets with PATCH.
	Deleting Status = "deleting"
	// Deleted is the status DELETE answers with when the tenant was purged
	// at once (a grace period of 0): no tenant is stored with it.
	Deleted Status = "deleted"
)

// Valid reports whether s is a status a tenant may be set to: Active or
// Suspended.
func (s Status) Valid() bool { return s == Active || s == Suspended }

type ctxKey struct{}

// NewContext returns a copy of ctx carrying p.
func NewContext(ctx context.Context, p *Principal) context.Context {
	return context.WithValue(ctx, ctxKey{}, p)
}

// FromContext returns the principal carried by ctx, if any.
func FromContext(ctx context.Context) (*Principal, bool) {
	p, ok := ctx.Value(ctxKey{}).(*Principal)
	return p, ok && p != nil
}
