package core

import (
	"context"
	"errors"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/auth"
	"github.com/bulkheadhq/bulkhead/internal/secevent"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// TOTP second factor. A user enrols with their access token (POST
// …/auth/totp gives the seed), confirms with a code (POST
// …/auth/totp/verify gives ten recovery codes, once), and from then on
// gives a code at every login. The seed is stored sealed under the
// tenant's data key, bound to tenant, user and purpose; recovery codes
// are stored hashed and are single use; each accepted TOTP time step is
// recorded, so that no code is accepted twice.

var (
	// ErrMFARequired refuses a login whose password was right, of a user
	// enrolled in TOTP, that gave no code.
	ErrMFARequired = errors.New("second factor required")
	// ErrMFAEnrollmentRequired refuses what a token restricted to
	// enrolling in TOTP was not issued for.
	ErrMFAEnrollmentRequired = errors.New("the token may only enrol its user in TOTP")
)

// RecoveryCodeCount is how many recovery codes a confirmed enrolment gets.
const RecoveryCodeCount = 10

// totpAAD binds a sealed seed to its tenant, user and purpose.
func totpAAD(tid tenant.ID, user store.UserID) []byte {
	return []byte("bulkhead totp seed\x00" + string(tid) + "\x00" + string(user))
}

// TOTPEnrollment is the answer of POST /v1/tenants/{tenant}/auth/totp: the
// seed for the user's authenticator app, shown once.
type TOTPEnrollment struct {
	// Secret is the seed in base32, to type in.
	Secret string `json:"secret"`
	// OTPAuthURI is the otpauth:// URI, to show as a QR code.
	OTPAuthURI string `json:"otpauth_uri"`
}

// TOTPCodeParams is the body of POST …/auth/totp/verify and POST
// …/auth/totp/disable.
type TOTPCodeParams struct {
	// Code is the authenticator's current code; to disable, a recovery
	// code also does.
	Code string `json:"code"`
}

// RecoveryCodes is the answer of POST …/auth/totp/verify: codes that
// stand in for a TOTP code once each, shown once.
type RecoveryCodes struct {
	RecoveryCodes []string `json:"recovery_codes"`
}

// self returns the user the scope's principal is: only a user's access
// token enrols, verifies or disables TOTP, for that user alone. A token
// restricted to enrolling may do the first two (enrolment true).
func (s *Scope) self(enrolment bool) (store.UserID, error) {
	if s == nil || s.core == nil || s.principal == nil {
		return "", ErrNoScope
	}
	p := s.principal
	if p.Scope != "" && !(enrolment && p.Scope == auth.ScopeMFAEnrollment) {
		return "", ErrMFAEnrollmentRequired
	}
	if p.Kind != tenant.ActorUser {
		return "", forbidden("only a user, with the access token of their login, manages their TOTP")
	}
	return store.UserID(p.ActorID), nil
}

// EnrollTOTP starts the principal's TOTP enrolment with a new seed, which
// it returns once. Until confirmed (VerifyTOTP) the enrolment is not asked
// for at login, and starting again replaces it; a confirmed one must be
// disabled first (conflict), so that a stolen access token cannot swap the
// owner's authenticator for the thief's.
func (s *Scope) EnrollTOTP(ctx context.Context) (*TOTPEnrollment, error) {
	uid, err := s.self(true)
	if err != nil {
		return nil, err
	}
	keys, err := s.core.tenantKeys(ctx, s.tenant.ID)
	if err != nil {
		return nil, err
	}
	seed, err := auth.NewTOTPSeed()
	if err != nil {
		return nil, err
	}
	sealed, err := keys.Seal(totpAAD(s.tenant.ID, uid), seed)
	if err != nil {
		return nil, err
	}
	now := s.core.now()
	var out *TOTPEnrollment
	err = s.write(ctx, func(tx store.Tx) error {
		u, err := tx.GetUser(ctx, uid)
		if err != nil {
			return err
		}
		m, err := tx.GetMFA(ctx, uid)
		if err == nil && m.ConfirmedAt != nil {
			return refuse(KindConflict, "TOTP is enrolled already; disable it (POST …/auth/totp/disable) before enrolling again")
		}
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if err := tx.PutMFA(ctx, &store.MFA{UserID: uid, Secret: sealed, CreatedAt: now}); err != nil {
			return err
		}
		secret, uri, err := auth.TOTPKey("bulkhead "+string(s.tenant.Slug), u.Email, seed)
		if err != nil {
			return err
		}
		out = &TOTPEnrollment{Secret: secret, OTPAuthURI: uri}
		return s.append(ctx, tx, s.event("auth.totp_enroll", "user:"+string(uid)))
	})
	if err != nil {
		return nil, err
	}
	s.emitIAM(ctx, "mfa-enrollment-started", 1, uid, "")
	return out, nil
}

// VerifyTOTP confirms the principal's enrolment with a code of its seed
// and returns RecoveryCodeCount recovery codes, once (only their hashes
// are kept). A wrong code is refused with ErrInvalidCredentials and
// changes nothing.
func (s *Scope) VerifyTOTP(ctx context.Context, p TOTPCodeParams) (*RecoveryCodes, error) {
	uid, err := s.self(true)
	if err != nil {
		return nil, err
	}
	if err := checkText("code", p.Code, 1, MaxTOTPField); err != nil {
		return nil, err
	}
	keys, err := s.core.tenantKeys(ctx, s.tenant.ID)
	if err != nil {
		return nil, err
	}
	codes, err := auth.NewRecoveryCodes(RecoveryCodeCount)
	if err != nil {
		return nil, err
	}
	stored := make([]*store.RecoveryCode, len(codes))
	for i, c := range codes {
		stored[i] = &store.RecoveryCode{ID: string(rune('a' + i)), Hash: auth.HashRecoveryCode(string(s.tenant.ID), string(uid), c)}
	}
	now := s.core.now()
	err = s.write(ctx, func(tx store.Tx) error {
		m, err := tx.GetMFA(ctx, uid)
		if errors.Is(err, store.ErrNotFound) {
			return refuse(KindConflict, "no TOTP enrolment to confirm; start one with POST …/auth/totp")
		}
		if err != nil {
			return err
		}
		if m.ConfirmedAt != nil {
			return refuse(KindConflict, "TOTP is confirmed already")
		}
		seed, err := keys.Open(totpAAD(s.tenant.ID, uid), m.Secret)
		if err != nil {
			return err
		}
		step, ok := auth.CheckTOTP(seed, p.Code, now, m.LastStep)
		if !ok {
			return ErrInvalidCredentials
		}
		if err := tx.ConfirmMFA(ctx, uid, now, step, stored); err != nil {
			return err
		}
		return s.append(ctx, tx, s.event("auth.totp_confirm", "user:"+string(uid)))
	})
	if err != nil {
		return nil, err
	}
	s.emitIAM(ctx, "mfa-enrolled", 2, uid, "")
	return &RecoveryCodes{RecoveryCodes: codes}, nil
}

// DisableTOTP removes the principal's TOTP enrolment, which takes a valid
// second factor (a TOTP code, or a recovery code) when it is confirmed. A
// wrong code is refused with ErrInvalidCredentials and counts as a failed
// login of the user, so the lock-out bounds guessing through here as at
// login; a locked account gets *ThrottledError.
func (s *Scope) DisableTOTP(ctx context.Context, p TOTPCodeParams) error {
	uid, err := s.self(false)
	if err != nil {
		return err
	}
	if err := checkText("code", p.Code, 1, MaxTOTPField); err != nil {
		return err
	}
	keys, err := s.core.tenantKeys(ctx, s.tenant.ID)
	if err != nil {
		return err
	}
	now := s.core.now()
	var u *store.User
	wrong := false
	err = s.write(ctx, func(tx store.Tx) error {
		if u, err = tx.GetUser(ctx, uid); err != nil {
			return err
		}
		th, err := tx.GetLoginThrottle(ctx, loginSubject(u.Email))
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		if d := lockedFor(th, now); d > 0 {
			return &ThrottledError{RetryAfter: d}
		}
		m, err := tx.GetMFA(ctx, uid)
		if err != nil {
			return err
		}
		if m.ConfirmedAt != nil {
			factor, err := s.core.checkSecondFactor(ctx, tx, keys, s.tenant.ID, uid, m, p.Code, now)
			if err != nil {
				return err
			}
			if factor == "" {
				wrong = true
				return errLoginRefused
			}
		}
		if err := tx.DeleteMFA(ctx, uid); err != nil {
			return err
		}
		return s.append(ctx, tx, s.event("auth.totp_disable", "user:"+string(uid)))
	})
	if wrong {
		ev := s.event("auth.totp_disable", "user:"+string(uid))
		ev.Outcome = audit.Failure
		s.core.recordFailureLater(ctx, loginFailure{tenant: s.tenant, subject: loginSubject(u.Email), ev: ev, reason: "wrong second factor to disable TOTP"})
		return ErrInvalidCredentials
	}
	if err != nil {
		return err
	}
	s.emitIAM(ctx, "mfa-disabled", 3, uid, "disabled by the user with their second factor")
	return nil
}

// ResetUserTOTP removes the TOTP enrolment of another user of the tenant,
// who can then log in with their password alone (or must enrol again,
// under the policy). Nobody resets a user more powerful than themselves,
// nor their own enrolment this way (DisableTOTP asks for the second
// factor). It returns store.ErrNotFound if the user has no enrolment.
func (s *Scope) ResetUserTOTP(ctx context.Context, id store.UserID) error {
	if err := s.allow(access.ResetUserMFA); err != nil {
		return err
	}
	if !validUserID(id) {
		return store.ErrNotFound
	}
	if s.principal.Kind == tenant.ActorUser && store.UserID(s.principal.ActorID) == id {
		return forbidden("remove your own TOTP with POST …/auth/totp/disable and a code")
	}
	err := s.write(ctx, func(tx store.Tx) error {
		if _, err := s.userToChange(ctx, tx, id); err != nil {
			return err
		}
		if err := tx.DeleteMFA(ctx, id); err != nil {
			return err
		}
		return s.append(ctx, tx, s.event("auth.totp_reset", "user:"+string(id)))
	})
	if err != nil {
		return err
	}
	s.emitIAM(ctx, "mfa-disabled", 3, id, "reset by "+s.principal.Actor())
	return nil
}

// checkSecondFactor checks code against u's confirmed enrolment m: a TOTP
// code (six digits) of a step not used yet, which it then records, or one
// of the user's unused recovery codes, which it then uses up. It returns
// "totp" or "recovery", or "" if code is neither. Secrets are compared in
// constant time: TOTP codes by the library, recovery code hashes by
// auth.MatchRecoveryCode, over all of the user's codes.
func (c *Core) checkSecondFactor(ctx context.Context, tx store.Tx, keys dataKeys, tid tenant.ID, uid store.UserID, m *store.MFA, code string, now time.Time) (string, error) {
	if auth.IsTOTPCode(code) {
		seed, err := keys.Open(totpAAD(tid, uid), m.Secret)
		if err != nil {
			return "", err
		}
		step, ok := auth.CheckTOTP(seed, code, now, m.LastStep)
		if !ok {
			return "", nil
		}
		if err := tx.UseTOTPStep(ctx, uid, step); errors.Is(err, store.ErrConflict) {
			return "", nil // a concurrent login used it first
		} else if err != nil {
			return "", err
		}
		return "totp", nil
	}
	codes, err := tx.ListRecoveryCodes(ctx, uid)
	if err != nil {
		return "", err
	}
	hashes := make([][]byte, len(codes))
	for i, rc := range codes {
		hashes[i] = rc.Hash
	}
	i := auth.MatchRecoveryCode(hashes, auth.HashRecoveryCode(string(tid), string(uid), code))
	if i < 0 || codes[i].UsedAt != nil {
		return "", nil
	}
	if err := tx.UseRecoveryCode(ctx, uid, codes[i].ID, now); errors.Is(err, store.ErrConflict) {
		return "", nil
	} else if err != nil {
		return "", err
	}
	return "recovery", nil
}

// emitIAM publishes a security event of a change to user's credentials.
func (s *Scope) emitIAM(ctx context.Context, action string, severity int, user store.UserID, reason string) {
	s.core.emit(ctx, secevent.Event{Action: action, Category: "iam", Outcome: "success", Severity: severity,
		Tenant: s.tenant.ID, TenantSlug: s.tenant.Slug, Actor: s.principal.Actor(), Target: "user:" + string(user),
		RequestID: s.requestID, Reason: reason})
}

// AuthPolicy is the tenant's authentication policy, the body and answer of
// PUT and GET /v1/tenants/{tenant}/auth/policy.
type AuthPolicy struct {
	// MFARequiredRole is the least role whose users must log in with
	// TOTP: "owner", "admin", "member" or "viewer"; "none" requires it of
	// nobody. A covered user who has not enrolled gets, at login, a token
	// that may only enrol (TokenPair.Scope "mfa_enrollment").
	MFARequiredRole string `json:"mfa_required_role"`
}

// PutAuthPolicyParams is the body of PUT /v1/tenants/{tenant}/auth/policy.
type PutAuthPolicyParams struct {
	// MFARequiredRole: see AuthPolicy; left out means "none".
	MFARequiredRole *string `json:"mfa_required_role"`
}

func policyView(p *store.AuthPolicy) *AuthPolicy {
	if p.MFARequiredRole == "" {
		return &AuthPolicy{MFARequiredRole: "none"}
	}
	return &AuthPolicy{MFARequiredRole: string(p.MFARequiredRole)}
}

// GetAuthPolicy returns the tenant's authentication policy.
func (s *Scope) GetAuthPolicy(ctx context.Context) (*AuthPolicy, error) {
	if err := s.allow(access.ReadAuthPolicy); err != nil {
		return nil, err
	}
	var p *store.AuthPolicy
	err := s.read(ctx, func(tx store.Tx) (err error) {
		p, err = tx.GetAuthPolicy(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	return policyView(p), nil
}

// PutAuthPolicy sets the tenant's authentication policy.
func (s *Scope) PutAuthPolicy(ctx context.Context, p PutAuthPolicyParams) (*AuthPolicy, error) {
	if err := s.allow(access.ManageAuthPolicy); err != nil {
		return nil, err
	}
	role := tenant.Role("")
	if p.MFARequiredRole != nil && *p.MFARequiredRole != "none" {
		role = tenant.Role(*p.MFARequiredRole)
		if !role.Valid() {
			return nil, invalid("mfa_required_role", "mfa_required_role must be owner, admin, member, viewer or none")
		}
	}
	sp := &store.AuthPolicy{MFARequiredRole: role, UpdatedAt: s.core.now()}
	err := s.write(ctx, func(tx store.Tx) error {
		if err := tx.PutAuthPolicy(ctx, sp); err != nil {
			return err
		}
		return s.append(ctx, tx, s.event("auth.policy_update", "auth_policy"))
	})
	if err != nil {
		return nil, err
	}
	view := policyView(sp)
	s.core.emit(ctx, secevent.Event{Action: "auth-policy-changed", Category: "configuration", Outcome: "success", Severity: 2,
		Tenant: s.tenant.ID, TenantSlug: s.tenant.Slug, Actor: s.principal.Actor(), Target: "auth_policy",
		RequestID: s.requestID, Reason: "mfa_required_role=" + view.MFARequiredRole})
	return view, nil
}
