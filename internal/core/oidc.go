package core

import (
	"context"
	"crypto/subtle"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/netip"
	"sync"
	"syscall"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/auth"
	"github.com/bulkheadhq/bulkhead/internal/observe"
	"github.com/bulkheadhq/bulkhead/internal/secevent"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// OpenID Connect federation: each tenant may name one OpenID provider, whose
// users then log in to the tenant through the authorization code flow with
// PKCE (S256), a nonce, and a state sealed to the tenant and the browser
// (see auth.StateSealer). An identity is the provider's (issuer, subject)
// pair, linked to a user of that tenant only: the same person at the same
// provider is a stranger to every tenant that has not linked them.
//
// A first login with no link creates the user when the tenant allows it
// (jit), with the tenant's default role, from a verified email. Nothing
// ever links an identity to an existing user by email: a tenant admin
// chooses the provider, and a provider that vouches for any email would
// otherwise let that admin (or whoever runs the provider) log in as any
// user of the tenant, owners included, past the cap default_role puts on
// what federation grants.

// Errors of federated login. Callers map them, with the store's and
// ErrTenantSuspended, to their answers.
var (
	// ErrOIDCState means the callback's state is missing, forged,
	// altered, expired, already used, made for another tenant, or bound to
	// another browser.
	ErrOIDCState = errors.New("the login's state is not valid")
	// ErrOIDCLogin means the provider did not authenticate the user: it
	// answered with an error, refused the code, or sent an ID token that
	// fails verification (signature, issuer, audience, expiry, nonce).
	ErrOIDCLogin = errors.New("the identity provider did not authenticate the user")
	// ErrOIDCNoAccount means the identity is linked to no user of the
	// tenant and the tenant does not create users on first login, or the
	// user cannot be created (see OIDCError).
	ErrOIDCNoAccount = errors.New("no account of the tenant is linked to this identity")
	// ErrOIDCProvider means the issuer's discovery document could not be
	// fetched or does not name the issuer.
	ErrOIDCProvider = errors.New("the identity provider's configuration could not be fetched")
)

// OIDCError is a federated login refusal with a detail safe to show the
// client. It matches its Err with errors.Is.
type OIDCError struct {
	Err    error
	Detail string
}

func (e *OIDCError) Error() string { return e.Err.Error() + ": " + e.Detail }
func (e *OIDCError) Unwrap() error { return e.Err }

func oidcErr(err error, detail string) *OIDCError { return &OIDCError{Err: err, Detail: detail} }

// Bounds of the federation's settings, in characters.
const (
	MaxOIDCClientID     = 255
	MaxOIDCClientSecret = 1024
)

// oidcScopes are the scopes every authorization request asks for.
var oidcScopes = []string{oidc.ScopeOpenID, "email", "profile"}

// oidcProviderTTL is how long a tenant's provider (its discovery document)
// is used before it is fetched again. Its signing keys are refetched by
// go-oidc whenever a token names a key it does not know.
const oidcProviderTTL = 10 * time.Minute

// oidcRP is the relying party's state in a Core. Its zero value is ready.
type oidcRP struct {
	once   sync.Once
	sealer *auth.StateSealer
	err    error
	client *http.Client

	mu        sync.Mutex
	providers map[tenant.ID]*cachedProvider
	used      map[string]time.Time // state IDs used, until they expire
}

type cachedProvider struct {
	issuer  string
	p       *oidc.Provider
	fetched time.Time
}

func (c *Core) rp() (*oidcRP, error) {
	r := &c.oidc
	r.once.Do(func() {
		// The state key is derived from the cursor MAC key under a label
		// of its own (HKDF), so no new key file is needed.
		r.sealer, r.err = auth.NewStateSealer(c.keys.CursorMAC)
		var rt http.RoundTripper = oidcTransport(c.oidcLAN)
		if c.oidcWrap != nil {
			rt = c.oidcWrap(rt)
		}
		r.client = &http.Client{
			Timeout:   10 * time.Second,
			Transport: observe.Transport(rt), // a traced login's trace goes on to the provider
			// A provider's endpoints are what its discovery document
			// says; following redirects would only widen what a tenant
			// admin can make the server fetch.
			CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
		}
		r.providers = map[tenant.ID]*cachedProvider{}
		r.used = map[string]time.Time{}
	})
	return r, r.err
}

// errPrivateAddress refuses to dial a provider on a private network.
var errPrivateAddress = errors.New("the identity provider's address is loopback, private or link-local")

// oidcTransport is the transport of every request to a provider:
// discovery, the code exchange and the signing keys. Unless lan is set it
// refuses to connect to addresses that are not public, checked on the
// address actually dialed, so that neither a crafted issuer nor DNS
// rebinding reaches the server's own networks. It uses no proxy.
func oidcTransport(lan bool) *http.Transport {
	d := &net.Dialer{Timeout: 5 * time.Second}
	if !lan {
		d.Control = func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return err
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return err
			}
			ip = ip.Unmap()
			if !ip.IsGlobalUnicast() || ip.IsPrivate() || ip.IsLoopback() || ip.IsLinkLocalUnicast() || cgnat.Contains(ip) {
				return errPrivateAddress
			}
			return nil
		}
	}
	t := http.DefaultTransport.(*http.Transport).Clone()
	t.Proxy = nil
	t.DialContext = d.DialContext
	return t
}

// cgnat is the shared address space of RFC 6598, private in effect.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// provider returns tid's provider for issuer, fetching its discovery
// document if it is not cached or is older than oidcProviderTTL (or fresh
// is set).
func (c *Core) provider(ctx context.Context, tid tenant.ID, issuer string, fresh bool) (*oidc.Provider, error) {
	r, err := c.rp()
	if err != nil {
		return nil, err
	}
	now := c.now()
	r.mu.Lock()
	cp := r.providers[tid]
	r.mu.Unlock()
	if !fresh && cp != nil && cp.issuer == issuer && now.Sub(cp.fetched) < oidcProviderTTL {
		return cp.p, nil
	}
	// The provider keeps the context to fetch signing keys later, with
	// its cancellation dropped: it carries the client, and the Core's
	// life rather than the request's values.
	fetch, cancel := context.WithTimeout(oidc.ClientContext(c.life, r.client), r.client.Timeout)
	defer cancel()
	stop := context.AfterFunc(ctx, cancel) // the request going away ends the fetch
	defer stop()
	p, err := oidc.NewProvider(fetch, issuer)
	if err != nil {
		c.log.Warn("oidc discovery failed", "tenant", string(tid), "issuer", issuer, "err", err)
		return nil, oidcErr(ErrOIDCProvider, "could not fetch "+issuer+"/.well-known/openid-configuration, or it names another issuer")
	}
	r.mu.Lock()
	r.providers[tid] = &cachedProvider{issuer: issuer, p: p, fetched: now}
	r.mu.Unlock()
	return p, nil
}

// forgetProvider drops tid's cached provider.
func (c *Core) forgetProvider(tid tenant.ID) {
	if r, err := c.rp(); err == nil {
		r.mu.Lock()
		delete(r.providers, tid)
		r.mu.Unlock()
	}
}

// useState records that the state id was used, and reports false if it
// had been already. Entries are dropped once their state has expired.
func (c *Core) useState(id string, expires time.Time) bool {
	r, err := c.rp()
	if err != nil {
		return false
	}
	now := c.now()
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, seen := r.used[id]; seen {
		return false
	}
	if len(r.used) >= 1024 {
		for k, exp := range r.used {
			if !now.Before(exp) {
				delete(r.used, k)
			}
		}
	}
	r.used[id] = expires
	return true
}

// oidcSecretAAD binds a sealed client secret to its tenant and purpose.
func oidcSecretAAD(tid tenant.ID) []byte {
	return []byte("bulkhead/oidc-client-secret/" + string(tid))
}

// PutOIDCParams is the body of PUT /v1/tenants/{tenant}/auth/oidc.
type PutOIDCParams struct {
	Issuer       string `json:"issuer"`
	ClientID     string `json:"client_id"`
	ClientSecret string `json:"client_secret"`
	// DefaultRole is the role of users created on their first login.
	// Defaults to viewer.
	DefaultRole *tenant.Role `json:"default_role,omitempty"`
	// JIT says whether a first login creates the user. Defaults to false:
	// only identities already linked log in.
	JIT *bool `json:"jit,omitempty"`
}

// OIDCConfig is a tenant's federation as shown to its admins: never with
// the client secret.
type OIDCConfig struct {
	Issuer      string      `json:"issuer"`
	ClientID    string      `json:"client_id"`
	DefaultRole tenant.Role `json:"default_role"`
	JIT         bool        `json:"jit"`
	CreatedAt   time.Time   `json:"created_at"`
	UpdatedAt   time.Time   `json:"updated_at"`
}

func oidcView(c *store.OIDCConfig) *OIDCConfig {
	return &OIDCConfig{Issuer: c.Issuer, ClientID: c.ClientID, DefaultRole: c.DefaultRole, JIT: c.JIT,
		CreatedAt: c.CreatedAt, UpdatedAt: c.UpdatedAt}
}

// PutOIDC sets the tenant's OpenID provider. The issuer's discovery
// document is fetched first, so that a wrong issuer fails here (with
// ErrOIDCProvider) rather than at every login. default_role may not exceed
// what the principal may grant. The client secret is sealed under the
// tenant's data key.
func (s *Scope) PutOIDC(ctx context.Context, p PutOIDCParams) (*OIDCConfig, error) {
	if err := s.allow(access.ManageOIDC); err != nil {
		return nil, err
	}
	if err := checkText("issuer", p.Issuer, 1, auth.MaxIssuer); err != nil {
		return nil, err
	}
	if err := auth.ValidateIssuer(p.Issuer); err != nil {
		return nil, invalid("issuer", err.Error())
	}
	if err := checkText("client_id", p.ClientID, 1, MaxOIDCClientID); err != nil {
		return nil, err
	}
	if err := checkText("client_secret", p.ClientSecret, 1, MaxOIDCClientSecret); err != nil {
		return nil, err
	}
	role := tenant.Viewer
	if p.DefaultRole != nil {
		if role = *p.DefaultRole; !role.Valid() {
			return nil, invalid("default_role", "default_role must be owner, admin, member or viewer")
		}
	}
	if err := s.canGrant(role); err != nil {
		return nil, err
	}
	tid := s.tenant.ID
	if _, err := s.core.provider(ctx, tid, p.Issuer, true); err != nil {
		s.core.emit(ctx, secevent.Event{Action: "oidc-config-changed", Category: "configuration", Outcome: "failure",
			Severity: 2, Tenant: tid, TenantSlug: s.tenant.Slug, Actor: s.principal.Actor(), Target: "oidc:" + p.Issuer,
			RequestID: s.requestID, Reason: "the issuer's discovery document could not be fetched"})
		return nil, err
	}
	keys, err := s.core.tenantKeys(ctx, tid)
	if err != nil {
		return nil, err
	}
	sealed, err := keys.Seal(oidcSecretAAD(tid), []byte(p.ClientSecret))
	if err != nil {
		return nil, err
	}
	now := s.core.now()
	cfg := &store.OIDCConfig{Issuer: p.Issuer, ClientID: p.ClientID, SealedSecret: sealed, DefaultRole: role,
		JIT: p.JIT != nil && *p.JIT, CreatedAt: now, UpdatedAt: now}
	err = s.write(ctx, func(tx store.Tx) error {
		if old, err := tx.GetOIDCConfig(ctx); err == nil {
			cfg.CreatedAt = old.CreatedAt
		} else if !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := tx.PutOIDCConfig(ctx, cfg); err != nil {
			return err
		}
		return s.append(ctx, tx, s.event("oidc.put", "oidc:"+p.Issuer))
	})
	if err != nil {
		return nil, err
	}
	s.core.emit(ctx, secevent.Event{Action: "oidc-config-changed", Category: "configuration", Outcome: "success",
		Severity: 3, Tenant: tid, TenantSlug: s.tenant.Slug, Actor: s.principal.Actor(), Target: "oidc:" + p.Issuer,
		RequestID: s.requestID, Reason: fmt.Sprintf("identity provider set (default role %s, jit %t)", role, cfg.JIT)})
	return oidcView(cfg), nil
}

// GetOIDC returns the tenant's federation, without its secret, or
// store.ErrNotFound.
func (s *Scope) GetOIDC(ctx context.Context) (*OIDCConfig, error) {
	if err := s.allow(access.ManageOIDC); err != nil {
		return nil, err
	}
	var cfg *store.OIDCConfig
	err := s.read(ctx, func(tx store.Tx) (err error) {
		cfg, err = tx.GetOIDCConfig(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return oidcView(cfg), nil
}

// DeleteOIDC ends the tenant's federation: federated logins stop at once.
// Users and their identity links stay (the links serve again if the same
// issuer is configured again); sessions already issued go on.
func (s *Scope) DeleteOIDC(ctx context.Context) error {
	if err := s.allow(access.ManageOIDC); err != nil {
		return err
	}
	var issuer string
	err := s.write(ctx, func(tx store.Tx) error {
		cfg, err := tx.GetOIDCConfig(ctx)
		if err != nil {
			return err
		}
		issuer = cfg.Issuer
		if err := tx.DeleteOIDCConfig(ctx); err != nil {
			return err
		}
		return s.append(ctx, tx, s.event("oidc.delete", "oidc:"+cfg.Issuer))
	})
	if err != nil {
		return err
	}
	s.core.forgetProvider(s.tenant.ID)
	s.core.emit(ctx, secevent.Event{Action: "oidc-config-changed", Category: "configuration", Outcome: "success",
		Severity: 3, Tenant: s.tenant.ID, TenantSlug: s.tenant.Slug, Actor: s.principal.Actor(), Target: "oidc:" + issuer,
		RequestID: s.requestID, Reason: "identity provider removed"})
	return nil
}

// OIDCStart is where a login's browser goes next.
type OIDCStart struct {
	// URL is the provider's authorization endpoint with the request.
	URL string
	// Binding is the value of the cookie that binds the login to the
	// browser; the callback must present it.
	Binding string
	// Expires is when the login's state expires.
	Expires time.Time
}

// StartOIDC begins a federated login to the tenant of slug: it returns the
// provider's authorization URL, with the state, nonce and PKCE challenge,
// for the callback at redirectURI. A slug that names no tenant, and a
// tenant without federation, are store.ErrNotFound. A suspended tenant's
// login starts too: FinishOIDC refuses it once the provider has
// authenticated the user.
func (c *Core) StartOIDC(ctx context.Context, slug tenant.Slug, redirectURI string) (*OIDCStart, error) {
	t, cfg, err := c.oidcTenant(ctx, slug)
	if err != nil {
		return nil, err
	}
	r, err := c.rp()
	if err != nil {
		return nil, err
	}
	p, err := c.provider(ctx, t.ID, cfg.Issuer, false)
	if err != nil {
		return nil, err
	}
	binding, hash := auth.NewOIDCBinding()
	st := &auth.OIDCState{ID: auth.RandomToken(), Tenant: t.ID, Nonce: auth.RandomToken(), Verifier: oauth2.GenerateVerifier(),
		Binding: hash, RedirectURI: redirectURI, Expires: c.now().Add(auth.OIDCStateTTL)}
	state, err := r.sealer.Seal(st)
	if err != nil {
		return nil, err
	}
	oc := oauth2.Config{ClientID: cfg.ClientID, Endpoint: p.Endpoint(), RedirectURL: redirectURI, Scopes: oidcScopes}
	return &OIDCStart{URL: oc.AuthCodeURL(state, oidc.Nonce(st.Nonce), oauth2.S256ChallengeOption(st.Verifier)),
		Binding: binding, Expires: st.Expires}, nil
}

// oidcTenant returns the active or suspended tenant of slug and its
// federation, or store.ErrNotFound.
func (c *Core) oidcTenant(ctx context.Context, slug tenant.Slug) (*store.Tenant, *store.OIDCConfig, error) {
	t, err := c.loginTenant(ctx, slug)
	if err != nil {
		return nil, nil, err
	}
	if t == nil {
		return nil, nil, store.ErrNotFound
	}
	var cfg *store.OIDCConfig
	err = c.store.ReadTenant(ctx, t.ID, func(tx store.Tx) (err error) {
		cfg, err = tx.GetOIDCConfig(ctx)
		return err
	})
	return t, cfg, err
}

// OIDCCallbackParams is what the provider's redirect brings back to
// GET /v1/tenants/{tenant}/auth/oidc/callback, with the binding cookie.
type OIDCCallbackParams struct {
	Code  string
	State string
	// Error and ErrorDescription are the provider's refusal, if it
	// refused (RFC 6749 §4.1.2.1).
	Error            string
	ErrorDescription string
	// Binding is the value of the login's binding cookie.
	Binding string
}

// FinishOIDC completes a federated login to the tenant of slug and returns
// a token pair, issued as Login issues them. In order, it checks that the
// state was sealed for this tenant, is fresh, is bound to this browser
// and was not used before (ErrOIDCState); exchanges the code with the PKCE
// verifier and the client secret; verifies the ID token against the
// tenant's issuer and client ID (signature, issuer, audience, expiry) and
// its nonce (ErrOIDCLogin); then finds the user linked to (issuer,
// subject) in this tenant, or creates it if the tenant allows (else
// ErrOIDCNoAccount). Every outcome is audited in the tenant's chain and
// published as a security event.
func (c *Core) FinishOIDC(ctx context.Context, slug tenant.Slug, p OIDCCallbackParams, requestID string) (*TokenPair, error) {
	t, cfg, err := c.oidcTenant(ctx, slug)
	if err != nil {
		return nil, err
	}
	ev := audit.Event{Time: c.now(), Actor: "anonymous", Action: "auth.oidc_login", Resource: "user:unknown",
		RequestID: requestID, Outcome: audit.Failure}
	sev := secevent.Event{Action: "oidc-login", Category: "authentication", Outcome: "failure", Severity: 3,
		Tenant: t.ID, TenantSlug: t.Slug, Actor: "anonymous", Target: "oidc:" + cfg.Issuer, RequestID: requestID}
	fail := func(err error, reason string) (*TokenPair, error) {
		c.auditLater(t.ID, ev)
		sev.Reason = reason
		c.emit(ctx, sev)
		return nil, err
	}
	r, err := c.rp()
	if err != nil {
		return nil, err
	}
	st, err := r.sealer.Open(t.ID, p.State, p.Binding, c.now())
	if err != nil {
		sev.Severity = 4 // a forged, stale, misdirected or stolen state
		return fail(oidcErr(ErrOIDCState, "the state is not valid here: it was altered, has expired, is for another tenant, or belongs to another browser; start the login again"),
			"invalid state")
	}
	if !c.useState(st.ID, st.Expires) {
		sev.Severity = 4
		return fail(oidcErr(ErrOIDCState, "the state was used already; start the login again"), "state replayed")
	}
	if p.Error != "" {
		return fail(oidcErr(ErrOIDCLogin, "the identity provider answered "+p.Error), "provider refused: "+p.Error)
	}
	if p.Code == "" {
		return fail(oidcErr(ErrOIDCLogin, "the callback carries no code"), "no code")
	}
	keys, err := c.tenantKeys(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	secret, err := keys.Open(oidcSecretAAD(t.ID), cfg.SealedSecret)
	if err != nil {
		return nil, fmt.Errorf("open the oidc client secret of %s: %w", t.ID, err)
	}
	prov, err := c.provider(ctx, t.ID, cfg.Issuer, false)
	if err != nil {
		return fail(err, "discovery failed")
	}
	oc := oauth2.Config{ClientID: cfg.ClientID, ClientSecret: string(secret), Endpoint: prov.Endpoint(),
		RedirectURL: st.RedirectURI, Scopes: oidcScopes}
	xctx, cancel := context.WithTimeout(oidc.ClientContext(ctx, r.client), r.client.Timeout)
	defer cancel()
	tok, err := oc.Exchange(xctx, p.Code, oauth2.VerifierOption(st.Verifier))
	if err != nil {
		c.log.Info("oidc code exchange failed", "tenant", string(t.ID), "request_id", requestID, "err", err)
		return fail(oidcErr(ErrOIDCLogin, "the identity provider did not accept the code"), "code exchange failed")
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		return fail(oidcErr(ErrOIDCLogin, "the identity provider sent no ID token"), "no id_token")
	}
	idt, err := prov.Verifier(&oidc.Config{ClientID: cfg.ClientID, Now: c.now}).Verify(xctx, raw)
	if err != nil {
		c.log.Info("oidc id token refused", "tenant", string(t.ID), "request_id", requestID, "err", err)
		sev.Severity = 4
		return fail(oidcErr(ErrOIDCLogin, "the ID token is not valid for this tenant's client"), "id token refused")
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(st.Nonce)) != 1 {
		sev.Severity = 4
		return fail(oidcErr(ErrOIDCLogin, "the ID token's nonce does not match the login"), "nonce mismatch")
	}
	var claims struct {
		Email         string `json:"email"`
		EmailVerified any    `json:"email_verified"`
		AZP           string `json:"azp"`
	}
	if err := idt.Claims(&claims); err != nil {
		return fail(oidcErr(ErrOIDCLogin, "the ID token's claims do not parse"), "bad claims")
	}
	// A token for several audiences must name this client as the party it
	// was issued to (OpenID Connect Core 3.1.3.7); go-oidc checks only
	// that the audience includes it.
	if (len(idt.Audience) > 1 || claims.AZP != "") && claims.AZP != cfg.ClientID {
		sev.Severity = 4
		return fail(oidcErr(ErrOIDCLogin, "the ID token was issued to another client"), "azp mismatch")
	}
	ident := "oidc:" + idt.Issuer + "#" + idt.Subject
	sev.Actor = ident
	// Only a user the provider authenticated learns that the tenant is
	// suspended, as only a right password does at Login.
	if t.Status != tenant.Active {
		return fail(ErrTenantSuspended, "tenant suspended")
	}
	// Some providers send email_verified as the string "true".
	verified := claims.EmailVerified == true || claims.EmailVerified == "true"
	email := normalizeEmail(claims.Email)

	var pair *TokenPair
	var created *store.User
	now := c.now()
	err = c.store.InTenant(ctx, t.ID, func(tx store.Tx) error {
		var u *store.User
		link, err := tx.GetIdentityLink(ctx, idt.Issuer, idt.Subject)
		switch {
		case err == nil:
			if u, err = tx.GetUser(ctx, link.UserID); err != nil {
				return err
			}
		case !errors.Is(err, store.ErrNotFound):
			return err
		case !cfg.JIT:
			return oidcErr(ErrOIDCNoAccount, "no user of this tenant is linked to this identity, and the tenant does not create users on first login")
		case !verified || email == "":
			return oidcErr(ErrOIDCNoAccount, "the identity provider did not vouch for an email address (email_verified), which a new user needs")
		case CheckText("email", email) != nil || TextLen(email) > MaxEmail:
			return oidcErr(ErrOIDCNoAccount, "the email address the identity provider sent cannot be a user's")
		default:
			u = &store.User{ID: store.UserID(newID()), Email: email, PasswordHash: auth.UnusablePasswordHash(c.passwords.Params()),
				Role: cfg.DefaultRole, CreatedAt: now, UpdatedAt: now}
			if err := tx.CreateUser(ctx, u); err != nil {
				if errors.Is(err, store.ErrConflict) {
					return oidcErr(ErrOIDCNoAccount, "a user with this email exists and is not linked to this identity; it is never linked by email")
				}
				return err
			}
			if err := tx.CreateIdentityLink(ctx, &store.IdentityLink{Issuer: idt.Issuer, Subject: idt.Subject, UserID: u.ID, CreatedAt: now}); err != nil {
				return err
			}
			created = u
			if _, err := c.audit.Append(ctx, tx, audit.TenantChain(t.ID), audit.Event{Time: now, Actor: ident,
				Action: "user.create", Resource: "user:" + string(u.ID), RequestID: requestID, Outcome: audit.Success}); err != nil {
				return err
			}
		}
		if pair, err = c.issueTokens(ctx, tx, u, newID()); err != nil {
			return err
		}
		ev.Actor, ev.Resource, ev.Outcome, ev.Time = "user:"+string(u.ID), "user:"+string(u.ID), audit.Success, now
		_, err = c.audit.Append(ctx, tx, audit.TenantChain(t.ID), ev)
		return err
	})
	var oe *OIDCError
	if errors.As(err, &oe) {
		ev.Actor = ident
		return fail(err, oe.Detail)
	}
	if err != nil {
		return nil, err
	}
	if created != nil {
		c.emit(ctx, secevent.Event{Action: "user-created", Category: "iam", Outcome: "success", Severity: 2,
			Tenant: t.ID, TenantSlug: t.Slug, Actor: ident, Target: "user:" + string(created.ID), RequestID: requestID,
			Reason: "created on first federated login with role " + string(created.Role)})
	}
	sev.Outcome, sev.Severity, sev.Actor, sev.Reason = "success", 1, ev.Actor, "federated login as "+ident
	c.emit(ctx, sev)
	return pair, nil
}
