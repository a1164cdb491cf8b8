package core

import (
	"context"
	"errors"
	"slices"
	"sync"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/auth"
	"github.com/bulkheadhq/bulkhead/internal/secevent"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// LoginParams is the body of POST /v1/tenants/{tenant}/auth/login.
type LoginParams struct {
	Email    string `json:"email"`
	Password string `json:"password"`
	// TOTP is the code the user's authenticator shows, or one of their
	// recovery codes (which is then used up). Users enrolled in TOTP must
	// give it; others may leave it out.
	TOTP string `json:"totp,omitempty"`
}

// MaxTOTPField is the longest LoginParams.TOTP (and code field), in
// characters: a recovery code with room for the spaces people type.
const MaxTOTPField = 64

// maxBypassFailures is how many failures a lock for failures may have
// counted and still be lifted by a login giving both factors. Beyond, the
// lock holds until it ends (at most LockoutMax) or an admin lifts it: a
// thief who has the password cannot go on guessing TOTP codes at the
// per-address rate just because each guess also carries the password.
const maxBypassFailures = 4 * LockoutThreshold

// Login checks a user's password, and their second factor if they enrolled
// in TOTP, and returns a token pair.
//
// What each answer tells: unknown tenants, unknown emails and wrong
// passwords all get ErrInvalidCredentials after the same work — one read
// of two rows, one password hash in the tenant's turn (the turn of the
// zero tenant for a slug that names no tenant), and, in a tenant, the
// failure counted against the email's login throttle with an audit entry,
// written after the answer — so that neither the answer nor its timing
// tells whether the tenant or the account exists. The throttle is kept by
// email, so an address no user has is locked out exactly like one a user
// has (*ThrottledError).
//
// Only a right password says more: ErrMFARequired when the user is
// enrolled and gave no code (the client must ask for it; it confirms the
// password to whoever sent it, which is why the guessing that could find
// it is throttled and the answer recorded), ErrTenantSuspended, or a token
// restricted to enrolling in TOTP (TokenPair.Scope) when the tenant's
// policy requires TOTP of the user's role and they have not enrolled.
//
// While the email is locked out, a login without a code is refused before
// any hashing; a login with the password and a valid second factor lifts a
// lock for failures (unless it counted more than maxBypassFailures), so
// that guessing cannot keep the owner out; every other attempt is refused
// with the same *ThrottledError, whichever factor was wrong. A hash whose
// turn does not come in time fails with a *fairq.ShedError.
func (c *Core) Login(ctx context.Context, slug tenant.Slug, p LoginParams, requestID string) (*TokenPair, error) {
	if err := CheckText("email", p.Email); err != nil {
		return nil, err // says nothing of the tenant or the account
	}
	if err := checkText("totp", p.TOTP, 0, MaxTOTPField); err != nil {
		return nil, err
	}
	t, err := c.loginTenant(ctx, slug)
	if err != nil {
		return nil, err
	}
	flow := tenant.ID("")
	if t != nil {
		flow = t.ID
	}
	// The turn comes first: a login that cannot have one is shed before
	// it reads anything more.
	turn, err := c.passwords.Turn(ctx, flow)
	if err != nil {
		return nil, err
	}
	defer turn.End()
	email := normalizeEmail(p.Email)
	subject := loginSubject(email)
	u, th, err := c.loginRead(ctx, t, slug, email, subject)
	if err != nil {
		return nil, err
	}
	now := c.now()
	locked := lockedFor(th, now)
	if locked > 0 && (p.TOTP == "" || th.Reason != LockReasonFailures || th.Failures > maxBypassFailures) {
		c.emitLogin(ctx, t, slug, "login-throttled", "failure", 2, "", "the account is locked out")
		return nil, &ThrottledError{RetryAfter: locked}
	}
	hash := c.dummyHash
	if u != nil {
		hash = u.PasswordHash
	}
	ok, err := turn.Verify(p.Password, hash)
	if err != nil {
		return nil, err
	}
	ev := audit.Event{Time: now, Actor: "anonymous", Action: "auth.login", Resource: "user:unknown",
		RequestID: requestID, Outcome: audit.Failure}
	if u != nil {
		ev.Actor, ev.Resource = "user:"+string(u.ID), "user:"+string(u.ID)
	}
	if !ok || u == nil {
		c.loginFailed(ctx, t, slug, subject, ev, "wrong password or no such account")
		if u != nil {
			c.containLoginFailure(ctx, t.ID, u.ID, requestID) // containment (contain.go)
		}
		if locked > 0 {
			return nil, &ThrottledError{RetryAfter: locked}
		}
		return nil, ErrInvalidCredentials
	}
	// Containment (contain.go): a suspended or locked account is refused
	// as a wrong password is.
	if refused, err := c.loginContained(ctx, t.ID, u.ID, requestID); err != nil || refused {
		if refused {
			err = ErrInvalidCredentials
		}
		return nil, err
	}
	if err := signInRefusal(t, u.Role); err != nil { // a deleting tenant's admins may still sign in (offboard.go)
		return nil, err
	}
	return c.secondStep(ctx, t, u, th, p.TOTP, locked, ev)
}

// loginRead reads, in one transaction, t's user with email (nil if none)
// and the login throttle of subject (nil if none). For a slug that names
// no tenant (t nil) it reads the control plane as often as a tenant's
// reads take, and the throttle from memory (see phantomThrottles).
func (c *Core) loginRead(ctx context.Context, t *store.Tenant, slug tenant.Slug, email, subject string) (*store.User, *store.LoginThrottle, error) {
	if t == nil {
		err := c.store.ReadPlatform(ctx, func(tx store.PlatformTx) error {
			for range 2 {
				if _, err := tx.GetTenantBySlug(ctx, slug); err != nil && !errors.Is(err, store.ErrNotFound) {
					return err
				}
			}
			return nil
		})
		if err != nil {
			return nil, nil, err
		}
		return nil, c.phantoms.get(slug, subject), nil
	}
	var u *store.User
	var th *store.LoginThrottle
	err := c.store.ReadTenant(ctx, t.ID, func(tx store.Tx) (err error) {
		if u, err = tx.GetUserByEmail(ctx, email); errors.Is(err, store.ErrNotFound) {
			u, err = nil, nil
		}
		if err != nil {
			return err
		}
		if th, err = tx.GetLoginThrottle(ctx, subject); errors.Is(err, store.ErrNotFound) {
			th, err = nil, nil
		}
		return err
	})
	return u, th, err
}

// loginFailed counts a failed login: in t's store after the answer, or in
// memory for a slug that names no tenant.
func (c *Core) loginFailed(ctx context.Context, t *store.Tenant, slug tenant.Slug, subject string, ev audit.Event, reason string) {
	if t == nil {
		c.phantoms.fail(slug, subject, ev.Time)
		return
	}
	c.recordFailureLater(ctx, loginFailure{tenant: *t, subject: subject, ev: ev, reason: reason})
}

// errLoginRefused aborts secondStep's transaction; outcome says why.
var errLoginRefused = errors.New("login refused")

// secondStep finishes the login of u, whose password was right: it asks
// for, or checks, the second factor, applies the tenant's policy and
// issues the tokens, in one transaction.
func (c *Core) secondStep(ctx context.Context, t *store.Tenant, u *store.User, th *store.LoginThrottle, code string, locked time.Duration, ev audit.Event) (*TokenPair, error) {
	keys, err := c.tenantKeys(ctx, t.ID)
	if err != nil {
		return nil, err
	}
	now := ev.Time
	addr := ClientFrom(ctx)
	recentFailures := th != nil && th.Failures >= stepUpFailures && th.LastFailureAt.After(now.Add(-failureMemory))
	var (
		pair     *TokenPair
		refusal  error  // what to answer when the transaction was aborted
		risk     string // why the login is risky, if it is
		enrolled bool
		factor   string // "totp" or "recovery", when one was given and good
	)
	err = c.store.InTenant(ctx, t.ID, func(tx store.Tx) error {
		m, err := tx.GetMFA(ctx, u.ID)
		if errors.Is(err, store.ErrNotFound) {
			m, err = nil, nil
		}
		if err != nil {
			return err
		}
		enrolled = m != nil && m.ConfirmedAt != nil
		// An address is new when the user has logged in before, from
		// others only: a first login has nothing to compare with.
		addrs, err := tx.LoginAddresses(ctx, u.ID)
		if err != nil {
			return err
		}
		switch {
		case len(addrs) > 0 && !slices.Contains(addrs, addr.String()):
			risk = "a client address this account has not logged in from lately"
		case recentFailures:
			risk = "recent failed logins"
		}
		scope := ""
		switch {
		case enrolled && code == "":
			refusal = ErrMFARequired
			return errLoginRefused
		case enrolled:
			if factor, err = c.checkSecondFactor(ctx, tx, keys, t.ID, u.ID, m, code, now); err != nil {
				return err
			}
			if factor == "" {
				refusal = ErrInvalidCredentials
				return errLoginRefused
			}
		case locked > 0:
			// No second factor to lift the lock with.
			refusal = &ThrottledError{RetryAfter: locked}
			return errLoginRefused
		default:
			policy, err := tx.GetAuthPolicy(ctx)
			if err != nil {
				return err
			}
			if policy.MFARequiredRole != "" && u.Role.AtLeast(policy.MFARequiredRole) {
				scope = auth.ScopeMFAEnrollment
			}
		}
		if th != nil {
			// A full login forgets the failures, and lifts a lock for
			// them (only a login with the second factor gets here
			// while locked).
			if err := tx.ClearLoginThrottle(ctx, th.Subject); err != nil {
				return err
			}
		}
		if pair, err = c.issueScopedTokens(ctx, tx, u, newID(), scope); err != nil {
			return err
		}
		if addr.IsValid() && scope == "" {
			if err := tx.RememberLoginAddress(ctx, u.ID, addr.String(), now, keepAddresses); err != nil {
				return err
			}
		}
		ev.Outcome = audit.Success
		if scope != "" {
			ev.Action = "auth.login_mfa_enrollment"
		}
		if err := c.appendTo(ctx, tx, t.ID, ev); err != nil {
			return err
		}
		if factor == "recovery" {
			if err := c.appendTo(ctx, tx, t.ID, withAction(ev, "auth.recovery_code_use")); err != nil {
				return err
			}
		}
		if th != nil && locked > 0 {
			if err := c.appendTo(ctx, tx, t.ID, withAction(ev, "auth.unlock")); err != nil {
				return err
			}
		}
		if !enrolled && risk != "" {
			return c.appendTo(ctx, tx, t.ID, withAction(ev, "auth.step_up_unavailable"))
		}
		return nil
	})
	if errors.Is(err, errLoginRefused) {
		return nil, c.refuseSecondStep(ctx, t, u, th, refusal, risk, locked, ev)
	}
	if err != nil {
		return nil, err
	}
	target := "user:" + string(u.ID)
	if factor == "recovery" {
		c.emitLogin(ctx, t, t.Slug, "recovery-code-used", "success", 3, target, "a recovery code stood in for TOTP and is used up")
	}
	if th != nil && locked > 0 {
		c.emitLogin(ctx, t, t.Slug, "account-unlocked", "success", 3, target, "lifted by a login with the second factor")
	}
	if !enrolled && risk != "" {
		c.emitLogin(ctx, t, t.Slug, "step-up-unavailable", "success", 3, target,
			"risky login ("+risk+") let through on the password: the user has no second factor")
	}
	if pair.Scope != "" {
		c.emitLogin(ctx, t, t.Slug, "mfa-enrollment-required", "success", 2, target, "the tenant's policy requires TOTP of the user's role")
	}
	return pair, nil
}

// refuseSecondStep records a login refused after a right password and
// returns the answer.
func (c *Core) refuseSecondStep(ctx context.Context, t *store.Tenant, u *store.User, th *store.LoginThrottle, refusal error, risk string, locked time.Duration, ev audit.Event) error {
	target := "user:" + string(u.ID)
	switch {
	case errors.Is(refusal, ErrMFARequired):
		ev.Action, ev.Outcome = "auth.mfa_required", audit.Denied
		reason := "the user is enrolled in TOTP"
		action := "mfa-required"
		if risk != "" {
			ev.Action, action, reason = "auth.step_up", "step-up-required", "risky login: "+risk
		}
		c.auditLater(t.ID, ev)
		c.emitLogin(ctx, t, t.Slug, action, "failure", 2, target, reason)
	case errors.Is(refusal, ErrInvalidCredentials):
		// A wrong second factor counts like a wrong password.
		c.loginFailed(ctx, t, t.Slug, loginSubject(u.Email), ev, "wrong second factor")
		if locked > 0 {
			return &ThrottledError{RetryAfter: locked}
		}
	default:
		c.emitLogin(ctx, t, t.Slug, "login-throttled", "failure", 2, target, "the account is locked out")
	}
	return refusal
}

// emitLogin publishes a security event of a login to t (nil for a slug
// that names no tenant).
func (c *Core) emitLogin(ctx context.Context, t *store.Tenant, slug tenant.Slug, action, outcome string, severity int, target, reason string) {
	ev := secevent.Event{Action: action, Category: "authentication", Outcome: outcome, Severity: severity,
		TenantSlug: slug, Target: target, Reason: reason}
	if t != nil {
		ev.Tenant = t.ID
	}
	c.emit(ctx, ev)
}

func (c *Core) appendTo(ctx context.Context, tx store.Tx, tid tenant.ID, ev audit.Event) error {
	_, err := c.audit.Append(ctx, tx, audit.TenantChain(tid), ev)
	return err
}

func withAction(ev audit.Event, action string) audit.Event {
	ev.Action = action
	return ev
}

// issueScopedTokens is issueTokens for a token restricted to scope, if
// scope is not empty: the restricted answer carries no refresh token (its
// family is stored, unreturned, so that the token's session is alive).
func (c *Core) issueScopedTokens(ctx context.Context, tx store.Tx, u *store.User, family, scope string) (*TokenPair, error) {
	pair, err := c.issueTokens(ctx, tx, u, family)
	if err != nil || scope == "" {
		return pair, err
	}
	access, ttl, err := c.tokens.Issue(auth.AccessClaims{Tenant: tx.Tenant(), User: u.ID, Role: u.Role, Session: family, Scope: scope})
	if err != nil {
		return nil, err
	}
	return &TokenPair{AccessToken: access, TokenType: "Bearer", ExpiresIn: int64(ttl.Seconds()), Scope: scope}, nil
}

// phantomThrottles are the login throttles of slugs that name no tenant,
// kept in memory, so that a slug that names none locks out after as many
// failures as one that does and the lock-out tells nothing about which
// tenants exist. They are per node and bounded: when full, they are
// forgotten all at once.
type phantomThrottles struct {
	mu sync.Mutex
	m  map[phantomKey]*store.LoginThrottle
}

type phantomKey struct {
	slug    tenant.Slug
	subject string
}

const maxPhantoms = 10000

func (p *phantomThrottles) get(slug tenant.Slug, subject string) *store.LoginThrottle {
	p.mu.Lock()
	defer p.mu.Unlock()
	th, ok := p.m[phantomKey{slug, subject}]
	if !ok {
		return nil
	}
	cp := *th
	return &cp
}

func (p *phantomThrottles) fail(slug tenant.Slug, subject string, now time.Time) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if p.m == nil || len(p.m) >= maxPhantoms {
		p.m = map[phantomKey]*store.LoginThrottle{}
	}
	k := phantomKey{slug, subject}
	th := p.m[k]
	if th == nil || th.LastFailureAt.Before(now.Add(-failureMemory)) {
		th = &store.LoginThrottle{Subject: subject}
		p.m[k] = th
	}
	th.Failures++
	th.LastFailureAt = now
	if d := backoff(th.Failures); d > 0 {
		th.LockedUntil, th.Reason = now.Add(d), LockReasonFailures
	}
}
