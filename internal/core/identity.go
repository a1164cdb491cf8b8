package core

import (
	"context"
	"crypto/hmac"
	"errors"
	"net/mail"
	"strings"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/auth"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Authenticate resolves a bearer token — the operator token, an API key or
// an access token — to its principal. The tenant comes from the credential
// alone. Anything unknown, malformed, expired or revoked is ErrUnauthorized.
func (c *Core) Authenticate(ctx context.Context, token string) (*tenant.Principal, error) {
	switch {
	case token == "":
		return nil, ErrUnauthorized
	case c.isOperatorToken(token):
		return &tenant.Principal{Kind: tenant.ActorOperator}, nil
	case auth.IsAPIKey(token):
		p, err := c.authenticateKey(ctx, token)
		if err != nil {
			return nil, err
		}
		return p, c.admitCredential(ctx, p) // containment hook (contain.go)
	case auth.LooksLikeJWT(token):
		claims, err := c.tokens.Verify(token)
		if err != nil || claims.Scope != "" && claims.Scope != auth.ScopeMFAEnrollment {
			return nil, ErrUnauthorized
		}
		if err := c.checkSession(ctx, claims); err != nil {
			return nil, err
		}
		p := &tenant.Principal{Kind: tenant.ActorUser, Tenant: claims.Tenant, ActorID: string(claims.User), Role: claims.Role, Scope: claims.Scope}
		return p, c.admitCredential(ctx, p) // containment hook (contain.go)
	}
	return nil, ErrUnauthorized
}

// checkSession returns ErrUnauthorized unless the access token's session
// goes on: its user still exists in its tenant with the role it claims, and
// its family of refresh tokens has not ended (revoked on reuse, on a change
// of role, or gone with its user). The answer is cached for CacheTTL; ending
// a session through this node removes it at once.
func (c *Core) checkSession(ctx context.Context, claims *auth.AccessClaims) error {
	key := sessionKey{tenant: claims.Tenant, user: claims.User, role: claims.Role, session: claims.Session}
	now := c.now()
	c.mu.RLock()
	live, hit := c.sessions.fresh(key, now, c.maxAge())
	gen := c.gen
	c.mu.RUnlock()
	if !hit {
		err := c.store.ReadTenant(ctx, claims.Tenant, func(tx store.Tx) error {
			u, err := tx.GetUser(ctx, claims.User)
			if err != nil {
				return err
			}
			ended, err := tx.RefreshFamilyEnded(ctx, claims.Session)
			live = err == nil && !ended && u.Role == claims.Role
			return err
		})
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		c.mu.Lock()
		if c.gen == gen {
			c.sessions.put(key, live, now)
		}
		c.mu.Unlock()
	}
	if !live {
		return ErrUnauthorized
	}
	return nil
}

// authenticateKey checks an API key against its stored keyed hash. Resolved
// keys are cached for CacheTTL; a revocation through this node removes the
// entry at once, and the generation counter keeps a lookup that raced with
// the revocation from caching the key again.
func (c *Core) authenticateKey(ctx context.Context, key string) (*tenant.Principal, error) {
	env, tid, id, ok := auth.ParseAPIKey(key)
	if !ok || env != c.keyEnv {
		return nil, ErrUnauthorized
	}
	hash := c.keyHasher.Hash(key)
	now := c.now()
	c.mu.RLock()
	ck, hit := c.apiKeys.fresh(id, now, c.maxAge())
	gen := c.gen
	c.mu.RUnlock()
	if hit {
		if ck.principal == nil || !hmac.Equal(ck.hash, hash) {
			return nil, ErrUnauthorized
		}
		return ck.principal, nil
	}
	// One transaction reads the key with its tenant and plan, which the
	// request's scope needs next: they are cached together.
	kl, err := c.store.LookupAPIKey(ctx, tid, id)
	if err != nil && !errors.Is(err, store.ErrNotFound) {
		return nil, err
	}
	// The ID is cloned: it points into the request's Authorization header,
	// which the cache would otherwise keep alive.
	owned := store.APIKeyID(strings.Clone(string(id)))
	ck = cachedKey{} // a key that does not exist (or of no tenant) is cached as such
	if err == nil && kl.Key.RevokedAt == nil {
		ck = cachedKey{hash: kl.Key.Hash, principal: &tenant.Principal{Kind: tenant.ActorAPIKey, Tenant: tid, ActorID: string(owned), Role: kl.Key.Role}}
	}
	c.mu.Lock()
	if c.gen == gen {
		c.apiKeys.put(owned, ck, now)
		if err == nil {
			if _, ok := c.tenants.fresh(kl.Tenant.Slug, now, c.maxAge()); !ok {
				c.tenants.put(kl.Tenant.Slug, kl.Tenant, now)
			}
			if _, ok := c.plans.fresh(kl.Plan.Name, now, c.maxAge()); !ok {
				c.plans.put(kl.Plan.Name, kl.Plan, now)
			}
			if _, ok := c.contained.fresh(tid, now, c.maxAge()); !ok { // containment hook (contain.go)
				c.contained.put(tid, kl.Containments, now)
			}
		}
	}
	c.mu.Unlock()
	if ck.principal == nil || !hmac.Equal(ck.hash, hash) {
		return nil, ErrUnauthorized
	}
	return ck.principal, nil
}

// loginTenant returns the tenant of slug, or nil if it names none.
func (c *Core) loginTenant(ctx context.Context, slug tenant.Slug) (*store.Tenant, error) {
	if !slug.Valid() {
		return nil, nil
	}
	t, err := c.tenantBySlug(ctx, slug)
	if errors.Is(err, store.ErrNotFound) {
		return nil, nil
	}
	return t, err
}

// issueTokens stores a new refresh token of family for u and signs an
// access token carrying u's current role.
func (c *Core) issueTokens(ctx context.Context, tx store.Tx, u *store.User, family string) (*TokenPair, error) {
	id, refresh, hash, err := auth.NewRefreshToken()
	if err != nil {
		return nil, err
	}
	now := c.now()
	if err := tx.CreateRefreshToken(ctx, &store.RefreshToken{ID: id, UserID: u.ID, Family: family, Hash: hash,
		ExpiresAt: now.Add(c.refreshTTL), CreatedAt: now}); err != nil {
		return nil, err
	}
	access, ttl, err := c.tokens.Issue(auth.AccessClaims{Tenant: tx.Tenant(), User: u.ID, Role: u.Role, Session: family})
	if err != nil {
		return nil, err
	}
	return &TokenPair{AccessToken: access, RefreshToken: refresh, TokenType: "Bearer", ExpiresIn: int64(ttl.Seconds())}, nil
}

// RefreshParams is the body of POST /v1/tenants/{tenant}/auth/refresh.
type RefreshParams struct {
	RefreshToken string `json:"refresh_token"`
}

// Refresh exchanges a refresh token for a new pair; the old token stops
// working. Presenting a token that was already used revokes every token
// descended from the same login, since one of the two holders is a thief.
func (c *Core) Refresh(ctx context.Context, slug tenant.Slug, p RefreshParams, requestID string) (*TokenPair, error) {
	id, ok := auth.ParseRefreshToken(p.RefreshToken)
	if !ok || !slug.Valid() {
		return nil, ErrInvalidCredentials
	}
	t, err := c.tenantBySlug(ctx, slug)
	if errors.Is(err, store.ErrNotFound) {
		return nil, ErrInvalidCredentials
	}
	if err != nil {
		return nil, err
	}
	hash := auth.HashRefreshToken(p.RefreshToken)
	now := c.now()
	var pair *TokenPair
	reused := false
	var reusedBy store.UserID
	var reusedFamily string
	err = c.store.InTenant(ctx, t.ID, func(tx store.Tx) error {
		rt, err := tx.GetRefreshToken(ctx, id)
		if errors.Is(err, store.ErrNotFound) || err == nil && !hmac.Equal(rt.Hash, hash) {
			return ErrInvalidCredentials
		}
		if err != nil {
			return err
		}
		ev := audit.Event{Time: now, Actor: "user:" + string(rt.UserID), Action: "auth.refresh",
			Resource: "user:" + string(rt.UserID), RequestID: requestID, Outcome: audit.Success}
		if rt.UsedAt != nil || rt.RevokedAt != nil {
			// Commit the revocation, then refuse.
			reused, reusedBy, reusedFamily = true, rt.UserID, rt.Family
			if err := tx.RevokeRefreshFamily(ctx, rt.Family, now); err != nil {
				return err
			}
			ev.Action, ev.Outcome = "auth.refresh_reuse", audit.Denied
			_, err := c.audit.Append(ctx, tx, audit.TenantChain(t.ID), ev)
			return err
		}
		// Only a holder of a real token learns that the tenant is suspended.
		if t.Status != tenant.Active && t.Status != tenant.Deleting {
			return ErrTenantSuspended
		}
		if !now.Before(rt.ExpiresAt) {
			return ErrInvalidCredentials
		}
		u, err := tx.GetUser(ctx, rt.UserID)
		if errors.Is(err, store.ErrNotFound) {
			return ErrInvalidCredentials
		}
		if err != nil {
			return err
		}
		if err := signInRefusal(t, u.Role); err != nil { // a deleting tenant's admins may still sign in (offboard.go)
			return err
		}
		if err := tx.UseRefreshToken(ctx, id, now); err != nil {
			if errors.Is(err, store.ErrConflict) {
				return ErrInvalidCredentials
			}
			return err
		}
		if pair, err = c.issueTokens(ctx, tx, u, rt.Family); err != nil {
			return err
		}
		_, err = c.audit.Append(ctx, tx, audit.TenantChain(t.ID), ev)
		return err
	})
	if err == nil && reused {
		c.endSessions(t.ID, reusedBy, reusedFamily)
		err = ErrInvalidCredentials
	}
	return pair, err
}

// CreateUserParams is the body of POST /v1/tenants/{tenant}/users.
type CreateUserParams struct {
	Email    string      `json:"email"`
	Password string      `json:"password"`
	Role     tenant.Role `json:"role"`
}

// CreateUser adds a user to the tenant. Nobody can create a user with more
// power than they hold.
func (s *Scope) CreateUser(ctx context.Context, p CreateUserParams, idem *Idempotency) (*User, error) {
	if err := s.allow(access.CreateUser); err != nil {
		return nil, err
	}
	if !p.Role.Valid() {
		return nil, invalid("role", "role must be owner, admin, member or viewer")
	}
	if err := s.canGrant(p.Role); err != nil {
		return nil, err
	}
	email := normalizeEmail(p.Email)
	if err := CheckText("email", email); err != nil {
		return nil, err
	}
	if a, err := mail.ParseAddress(email); err != nil || a.Address != email || TextLen(email) > MaxEmail {
		return nil, invalid("email", "email must be a plain address such as ada@example.com, at most 254 characters long")
	}
	if err := auth.ValidatePassword(p.Password); err != nil {
		return nil, invalid("password", err.Error())
	}
	hash, err := s.core.passwords.Hash(ctx, s.tenant.ID, p.Password)
	if err != nil {
		return nil, err
	}
	now := s.core.now()
	var view *User
	err = s.write(ctx, func(tx store.Tx) error {
		var err error
		if view, err = replay[*User](ctx, tx, idem, now); err != nil || view != nil {
			return err
		}
		u := &store.User{ID: store.UserID(newID()), Email: email, PasswordHash: hash, Role: p.Role, CreatedAt: now, UpdatedAt: now}
		if err := tx.CreateUser(ctx, u); err != nil {
			return err
		}
		view = userView(u)
		if err := s.append(ctx, tx, s.event("user.create", "user:"+string(u.ID))); err != nil {
			return err
		}
		return remember(ctx, tx, idem, now, view)
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, &Error{Kind: KindConflict, Field: "email", Detail: "a user with this email exists", Pos: -1}
	}
	if err == nil {
		s.emitEvent(ctx, "user.create", "iam", "user:"+string(view.ID), "role "+string(view.Role))
	}
	return view, err
}

// MaxEmail is the longest email address, in characters.
const MaxEmail = 254

func normalizeEmail(s string) string { return strings.ToLower(strings.TrimSpace(s)) }

// NormalizeEmail returns email as users are looked up by it: trimmed and
// lower-cased.
func NormalizeEmail(email string) string { return normalizeEmail(email) }

// MaxAPIKeyName is the longest API-key name, in characters.
const MaxAPIKeyName = 100

// CreateAPIKeyParams is the body of POST /v1/tenants/{tenant}/api-keys.
type CreateAPIKeyParams struct {
	Name string      `json:"name"`
	Role tenant.Role `json:"role"`
}

// CreateAPIKey issues a key for the tenant. The key is returned once and
// only its keyed hash is stored.
func (s *Scope) CreateAPIKey(ctx context.Context, p CreateAPIKeyParams) (*NewAPIKey, error) {
	if err := s.allow(access.CreateAPIKey); err != nil {
		return nil, err
	}
	if !p.Role.Valid() {
		return nil, invalid("role", "role must be owner, admin, member or viewer")
	}
	if err := s.canGrant(p.Role); err != nil {
		return nil, err
	}
	if err := checkText("name", p.Name, 1, MaxAPIKeyName); err != nil {
		return nil, err
	}
	id, key, err := auth.NewAPIKey(s.core.keyEnv, s.tenant.ID)
	if err != nil {
		return nil, err
	}
	now := s.core.now()
	k := &store.APIKey{ID: id, Name: p.Name, Role: p.Role, Hash: s.core.keyHasher.Hash(key), CreatedBy: s.principal.Actor(), CreatedAt: now}
	err = s.write(ctx, func(tx store.Tx) error {
		if err := tx.CreateAPIKey(ctx, k); err != nil {
			return err
		}
		return s.append(ctx, tx, s.event("api_key.create", "api_key:"+string(id)))
	})
	if err != nil {
		return nil, err
	}
	s.emitEvent(ctx, "api_key.create", "iam", "key:"+string(id), "role "+string(p.Role))
	return &NewAPIKey{APIKey: *apiKeyView(k), Key: key}, nil
}

// ListAPIKeys lists the tenant's keys, revoked ones included, without
// secrets.
func (s *Scope) ListAPIKeys(ctx context.Context) (*List[*APIKey], error) {
	if err := s.allow(access.ListAPIKeys); err != nil {
		return nil, err
	}
	var keys []*store.APIKey
	err := s.read(ctx, func(tx store.Tx) (err error) {
		keys, err = tx.ListAPIKeys(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	page := &List[*APIKey]{Items: make([]*APIKey, 0, len(keys))}
	for _, k := range keys {
		page.Items = append(page.Items, apiKeyView(k))
	}
	return page, nil
}

// RevokeAPIKey revokes a key of the tenant. It stops working on this node
// before RevokeAPIKey returns, and on other nodes as soon as the change feed
// tells them.
func (s *Scope) RevokeAPIKey(ctx context.Context, id store.APIKeyID) error {
	if err := s.allow(access.RevokeAPIKey); err != nil {
		return err
	}
	if owner, ok := auth.TenantOfAPIKeyID(id); !ok || owner != s.tenant.ID {
		return store.ErrNotFound
	}
	now := s.core.now()
	err := s.write(ctx, func(tx store.Tx) error {
		// Nobody revokes a credential more powerful than their own.
		k, err := tx.GetAPIKey(ctx, id)
		if err != nil {
			return err
		}
		if err := s.canGrant(k.Role); err != nil {
			return err
		}
		if err := tx.RevokeAPIKey(ctx, id, now); err != nil {
			return err
		}
		return s.append(ctx, tx, s.event("api_key.revoke", "api_key:"+string(id)))
	})
	if err == nil {
		s.core.forgetKey(s.tenant.ID, id)
		s.emitEvent(ctx, "api_key.revoke", "iam", "key:"+string(id), "")
	}
	return err
}
