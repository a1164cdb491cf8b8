package core

import (
	"context"
	"net/http"

	"github.com/google/uuid"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// ListUsers lists t's users, oldest first, without their password hashes.
func (c *Core) ListUsers(ctx context.Context, caller Caller, t *store.Tenant) (*List[*User], error) {
	if err := allow(caller, access.ListUsers); err != nil {
		return nil, err
	}
	var us []*store.User
	err := c.store.ReadTenant(ctx, t.ID, func(tx store.Tx) (err error) {
		us, err = tx.ListUsers(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	page := &List[*User]{Items: make([]*User, 0, len(us))}
	for _, u := range us {
		page.Items = append(page.Items, userView(u))
	}
	return page, nil
}

// UpdateUserParams is the body of PATCH /v1/tenants/{tenant}/users/{id}.
type UpdateUserParams struct {
	Role *tenant.Role `json:"role"`
}

// errLastOwner refuses to leave a tenant without an owner.
var errLastOwner = problem.New(http.StatusConflict, problem.CodeConflict, "the tenant's last owner cannot be removed or demoted")

// UpdateUser gives a user of t another role. Nobody changes the role of a
// user more powerful than themselves, nor grants more than they hold, and
// the tenant keeps at least one owner. A changed role ends the user's
// sessions: their refresh tokens are revoked and their access tokens stop
// working (on this node at once, on others within CacheTTL), so that no
// token goes on carrying the old role.
func (c *Core) UpdateUser(ctx context.Context, caller Caller, t *store.Tenant, id store.UserID, p UpdateUserParams) (*User, error) {
	if err := allow(caller, access.UpdateUser); err != nil {
		return nil, err
	}
	if !validUserID(id) {
		return nil, store.ErrNotFound
	}
	if p.Role == nil {
		return nil, invalid("role", "role is required")
	}
	if !p.Role.Valid() {
		return nil, invalid("role", "role must be owner, admin, member or viewer")
	}
	if !access.CanGrant(caller.Principal, *p.Role) {
		return nil, ErrForbidden
	}
	now := c.now()
	var view *User
	changed := false
	err := c.store.InTenant(ctx, t.ID, func(tx store.Tx) error {
		u, err := userToChange(ctx, tx, caller, id)
		if err != nil {
			return err
		}
		if u.Role == *p.Role {
			view = userView(u)
			return nil
		}
		if u.Role == tenant.Owner {
			if err := keepAnOwner(ctx, tx, u.ID); err != nil {
				return err
			}
		}
		if u, err = tx.SetUserRole(ctx, id, *p.Role, now); err != nil {
			return err
		}
		if err := tx.RevokeUserRefreshTokens(ctx, id, now); err != nil {
			return err
		}
		changed, view = true, userView(u)
		_, err = c.audit.Append(ctx, tx, string(t.ID), audit.Event{Time: now, Actor: caller.Principal.Actor(),
			Action: "user.update", Resource: "user:" + string(id), RequestID: caller.RequestID, Outcome: audit.Success})
		return err
	})
	if changed {
		c.endSessions(t.ID, id, "")
	}
	return view, err
}

// DeleteUser removes a user of t, with their refresh tokens: their access
// tokens stop working on this node at once, on others within CacheTTL.
// Nobody removes a user more powerful than themselves, and the tenant keeps
// at least one owner.
func (c *Core) DeleteUser(ctx context.Context, caller Caller, t *store.Tenant, id store.UserID) error {
	if err := allow(caller, access.DeleteUser); err != nil {
		return err
	}
	if !validUserID(id) {
		return store.ErrNotFound
	}
	now := c.now()
	err := c.store.InTenant(ctx, t.ID, func(tx store.Tx) error {
		u, err := userToChange(ctx, tx, caller, id)
		if err != nil {
			return err
		}
		if u.Role == tenant.Owner {
			if err := keepAnOwner(ctx, tx, u.ID); err != nil {
				return err
			}
		}
		if err := tx.DeleteUser(ctx, id); err != nil {
			return err
		}
		_, err = c.audit.Append(ctx, tx, string(t.ID), audit.Event{Time: now, Actor: caller.Principal.Actor(),
			Action: "user.delete", Resource: "user:" + string(id), RequestID: caller.RequestID, Outcome: audit.Success})
		return err
	})
	if err == nil {
		c.endSessions(t.ID, id, "")
	}
	return err
}

// userToChange returns the user id, whom caller means to change or remove:
// ErrForbidden if the user holds a role above the caller's own.
func userToChange(ctx context.Context, tx store.Tx, caller Caller, id store.UserID) (*store.User, error) {
	u, err := tx.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if !access.CanGrant(caller.Principal, u.Role) {
		return nil, ErrForbidden
	}
	return u, nil
}

// keepAnOwner returns errLastOwner unless the tenant has an owner besides
// user.
func keepAnOwner(ctx context.Context, tx store.Tx, user store.UserID) error {
	us, err := tx.ListUsers(ctx)
	if err != nil {
		return err
	}
	for _, u := range us {
		if u.Role == tenant.Owner && u.ID != user {
			return nil
		}
	}
	return errLastOwner
}

// validUserID reports whether id could name a user at all: user ids are
// canonical UUIDs.
func validUserID(id store.UserID) bool {
	u, err := uuid.Parse(string(id))
	return err == nil && u.String() == string(id)
}
