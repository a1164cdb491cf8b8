package store

import (
	"context"
	"time"
)

// Containments stores the containment actions of a tenant: credentials
// suspended, accounts locked, keys flagged. It is part of Tx.
type Containments interface {
	// CreateContainment stores c. It returns ErrConflict if c.ID is taken.
	CreateContainment(ctx context.Context, c *Containment) error
	// ListContainments returns the tenant's containments, newest first.
	// With a non-zero activeAt it returns only those in force then: not
	// lifted, and not expired (ExpiresAt nil or after activeAt).
	ListContainments(ctx context.Context, activeAt time.Time) ([]*Containment, error)
	// LiftContainment marks the containment lifted by by at at and returns
	// it. It returns ErrNotFound if no containment has id or it was
	// already lifted.
	LiftContainment(ctx context.Context, id ContainmentID, by string, at time.Time) (*Containment, error)
}

// MaxLookupContainments bounds the containments Store.LookupAPIKey reads.
const MaxLookupContainments = 1000

// ContainmentID identifies a containment action.
type ContainmentID string

// Kinds of containment.
const (
	// ContainSuspended refuses every request of the credential (an API key,
	// or a user's sessions and logins) until lifted.
	ContainSuspended = "credential_suspended"
	// ContainLocked refuses the account's logins until it expires or is
	// lifted.
	ContainLocked = "account_locked"
	// ContainFlagged refuses nothing: it records an alert for an
	// administrator to look at.
	ContainFlagged = "flagged"
)

// Containment is one containment action against a credential or account of
// the tenant.
type Containment struct {
	ID ContainmentID
	// Kind is ContainSuspended, ContainLocked or ContainFlagged.
	Kind string
	// Subject is what it applies to: "key:<id>" (an API key) or "user:<id>", as
	// tenant.Principal.Actor names them.
	Subject string
	// Reason says which rule decided, in words.
	Reason string
	// Count is how many events crossed the rule.
	Count     int64
	CreatedBy string
	CreatedAt time.Time
	// ExpiresAt, if set, ends it by itself.
	ExpiresAt *time.Time
	// LiftedAt and LiftedBy are set once it is lifted.
	LiftedAt *time.Time
	LiftedBy string
}

// Active reports whether c is in force at now.
func (c *Containment) Active(now time.Time) bool {
	return c.LiftedAt == nil && (c.ExpiresAt == nil || c.ExpiresAt.After(now))
}
