package store

import (
	"context"
	"time"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// LoginSecurity is what a tenant keeps to protect its users' logins: their
// TOTP enrolments and recovery codes, the failed-login state of each login
// subject, the addresses each user logged in from lately, and the tenant's
// authentication policy. It is part of Tx, confined to the transaction's
// tenant like every other method.
type LoginSecurity interface {
	// GetMFA returns user's TOTP enrolment, confirmed or not, or
	// ErrNotFound.
	GetMFA(ctx context.Context, user UserID) (*MFA, error)
	// PutMFA creates or replaces m.UserID's enrolment with m (ConfirmedAt
	// and LastStep as given) and removes the user's recovery codes: a new
	// seed starts over.
	PutMFA(ctx context.Context, m *MFA) error
	// ConfirmMFA marks user's enrolment confirmed at at, records step as
	// its last used time step and replaces the user's recovery codes with
	// codes. It returns ErrNotFound if the user has no enrolment, and
	// ErrConflict if it is confirmed already.
	ConfirmMFA(ctx context.Context, user UserID, at time.Time, step int64, codes []*RecoveryCode) error
	// UseTOTPStep records step as the last time step whose code user gave,
	// if it is later than the one recorded; else it returns ErrConflict (a
	// code used once is not accepted again). It returns ErrNotFound if the
	// user has no enrolment.
	UseTOTPStep(ctx context.Context, user UserID, step int64) error
	// DeleteMFA removes user's enrolment and recovery codes. It returns
	// ErrNotFound if the user has none.
	DeleteMFA(ctx context.Context, user UserID) error
	// ListRecoveryCodes returns user's recovery codes, used ones included,
	// by ID.
	ListRecoveryCodes(ctx context.Context, user UserID) ([]*RecoveryCode, error)
	// UseRecoveryCode marks user's unused recovery code id used at at. It
	// returns ErrConflict if it was used already and ErrNotFound if it does
	// not exist.
	UseRecoveryCode(ctx context.Context, user UserID, id string, at time.Time) error

	// GetLoginThrottle returns the failed-login state of subject, or
	// ErrNotFound if it has none.
	GetLoginThrottle(ctx context.Context, subject string) (*LoginThrottle, error)
	// AddLoginFailure counts one failed login of subject at at and returns
	// its new state. Failures counted before since are forgotten first
	// (the count starts again at 1), and so are the states of other
	// subjects whose last failure was before since and whose lock has
	// ended: the table does not grow with every address ever tried.
	AddLoginFailure(ctx context.Context, subject string, at, since time.Time) (*LoginThrottle, error)
	// LockLogin locks subject until until, for reason, creating its state
	// if needed. A lock that already ends later is kept.
	LockLogin(ctx context.Context, subject string, until time.Time, reason string) error
	// ClearLoginThrottle forgets subject's failures and lifts its lock. It
	// is not an error if there is nothing to clear.
	ClearLoginThrottle(ctx context.Context, subject string) error

	// LoginAddresses returns the addresses user logged in from lately, the
	// most recent first.
	LoginAddresses(ctx context.Context, user UserID) ([]string, error)
	// RememberLoginAddress records that user logged in from addr at at,
	// and keeps only the user's keep most recent addresses.
	RememberLoginAddress(ctx context.Context, user UserID, addr string, at time.Time, keep int) error

	// GetAuthPolicy returns the tenant's authentication policy; the zero
	// AuthPolicy if none was set.
	GetAuthPolicy(ctx context.Context) (*AuthPolicy, error)
	// PutAuthPolicy sets the tenant's authentication policy.
	PutAuthPolicy(ctx context.Context, p *AuthPolicy) error
}

// MFA is a user's TOTP enrolment.
type MFA struct {
	UserID UserID
	// Secret is the TOTP seed, sealed under the tenant's data key; the
	// store never sees it in the clear.
	Secret []byte
	// ConfirmedAt is nil until the user proved, with a code, that they
	// hold the seed; only a confirmed enrolment is asked for at login.
	ConfirmedAt *time.Time
	// LastStep is the last TOTP time step whose code was accepted; a code
	// of that step or an earlier one is refused.
	LastStep  int64
	CreatedAt time.Time
}

// RecoveryCode is one single-use code that stands in for a TOTP code.
type RecoveryCode struct {
	ID string
	// Hash is a hash of the code; the code itself is shown once and never
	// stored.
	Hash   []byte
	UsedAt *time.Time
}

// LoginThrottle is the failed-login state of one login subject (an
// account, named so that accounts that do not exist have one too).
type LoginThrottle struct {
	Subject string
	// Failures counts the failures since the count last started again.
	Failures      int
	LastFailureAt time.Time
	// LockedUntil is when the subject's lock ends; zero if it never was
	// locked.
	LockedUntil time.Time
	// Reason says why it was last locked.
	Reason string
}

// AuthPolicy is a tenant's authentication policy.
type AuthPolicy struct {
	// MFARequiredRole is the least role whose users must use TOTP; empty
	// requires it of nobody.
	MFARequiredRole tenant.Role
	UpdatedAt       time.Time
}
