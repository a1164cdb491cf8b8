package core

import (
	"context"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// ListUsers lists the tenant's users, oldest first, without their password
// hashes.
func (s *Scope) ListUsers(ctx context.Context) (*List[*User], error) {
	if err := s.allow(access.ListUsers); err != nil {
		return nil, err
	}
	var us []*store.User
	err := s.read(ctx, func(tx store.Tx) (err error) {
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
var errLastOwner = refuse(KindConflict, "the tenant's last owner cannot be removed or demoted")

// UpdateUser gives a user of t another role. Nobody changes the role of a
// user more powerful than themselves, nor grants more than they hold, and
// the tenant keeps at least one owner. A changed role ends the user's
// sessions: their refresh tokens are revoked and their access tokens stop
// working (on this node at once, on others within CacheTTL), so that no
// token goes on carrying the old role.
func (s *Scope) UpdateUser(ctx context.Context, id store.UserID, p UpdateUserParams) (*User, error) {
	if err := s.allow(access.UpdateUser); err != nil {
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
	if err := s.canGrant(*p.Role); err != nil {
		return nil, err
	}
	now := s.core.now()
	var view *User
	changed := false
	err := s.write(ctx, func(tx store.Tx) error {
		u, err := s.userToChange(ctx, tx, id)
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
		return s.append(ctx, tx, s.event("user.update", "user:"+string(id)))
	})
	if changed {
		s.core.endSessions(s.tenant.ID, id, "")
		if err == nil {
			s.emitEvent(ctx, "user.role_change", "iam", "user:"+string(id), "role set to "+string(*p.Role))
		}
	}
	return view, err
}

// DeleteUser removes a user of t, with their refresh tokens: their access
// tokens stop working on this node at once, on others within CacheTTL.
// Nobody removes a user more powerful than themselves, and the tenant keeps
// at least one owner.
func (s *Scope) DeleteUser(ctx context.Context, id store.UserID) error {
	if err := s.allow(access.DeleteUser); err != nil {
		return err
	}
	if !validUserID(id) {
		return store.ErrNotFound
	}
	err := s.write(ctx, func(tx store.Tx) error {
		u, err := s.userToChange(ctx, tx, id)
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
		return s.append(ctx, tx, s.event("user.delete", "user:"+string(id)))
	})
	if err == nil {
		s.core.endSessions(s.tenant.ID, id, "")
		s.emitEvent(ctx, "user.delete", "iam", "user:"+string(id), "")
	}
	return err
}

// userToChange returns the user id, whom the principal means to change or
// remove: a forbidden Error if the user holds a role above its own.
func (s *Scope) userToChange(ctx context.Context, tx store.Tx, id store.UserID) (*store.User, error) {
	u, err := tx.GetUser(ctx, id)
	if err != nil {
		return nil, err
	}
	if err := s.canGrant(u.Role); err != nil {
		return nil, err
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
	return canonicalUUID(string(id))
}
