package store

import (
	"context"
	"time"
)

// BreakGlassID identifies a break-glass grant.
type BreakGlassID string

// BreakGlass is a time-bound grant that lets the platform operator read a
// tenant's data, for an emergency the tenant cannot handle itself. It is
// kept in the tenant's own storage, beside the audit chain that records
// its use.
type BreakGlass struct {
	ID BreakGlassID
	// Reason says why it was granted, as the operator wrote it.
	Reason string
	// Actor is who granted it.
	Actor     string
	CreatedAt time.Time
	// ExpiresAt is when it stops, unless ended earlier.
	ExpiresAt time.Time
	// EndedAt is set when it was ended before it expired, by EndedBy.
	EndedAt *time.Time
	EndedBy string
}

// ActiveAt reports whether the grant lets the operator read at t.
func (g *BreakGlass) ActiveAt(t time.Time) bool {
	return g.EndedAt == nil && t.Before(g.ExpiresAt)
}

// BreakGlassTx is the part of a tenant transaction that keeps break-glass
// grants.
type BreakGlassTx interface {
	// CreateBreakGlass stores g. It returns ErrConflict if g.ID is taken.
	CreateBreakGlass(ctx context.Context, g *BreakGlass) error
	// ListBreakGlass returns every grant, ended and expired ones included,
	// newest first.
	ListBreakGlass(ctx context.Context) ([]*BreakGlass, error)
	// ActiveBreakGlass returns the grants not ended that expire after at,
	// newest first.
	ActiveBreakGlass(ctx context.Context, at time.Time) ([]*BreakGlass, error)
	// EndBreakGlass marks the grant ended at at by by, and returns it. It
	// returns ErrNotFound if no grant has id, or it has already ended or
	// expired (as of at).
	EndBreakGlass(ctx context.Context, id BreakGlassID, by string, at time.Time) (*BreakGlass, error)
}
