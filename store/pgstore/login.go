package pgstore

import (
	"context"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// The statements of store.LoginSecurity. A write that can find nothing to
// change says so in its result instead of failing, as the other writes do
// (see tx.go).
const (
	sqlGetMFA = `SELECT secret, confirmed_at, last_step, created_at FROM user_mfa WHERE tenant_id = $1 AND user_id = $2`
	// sqlPutMFA replaces the enrolment and removes the recovery codes.
	sqlPutMFA = `WITH d AS (DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2)
		INSERT INTO user_mfa (tenant_id, user_id, secret, confirmed_at, last_step, created_at)
		VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (tenant_id, user_id) DO UPDATE SET secret = excluded.secret,
		confirmed_at = excluded.confirmed_at, last_step = excluded.last_step, created_at = excluded.created_at`
	// sqlConfirmMFA confirms an unconfirmed enrolment and reports whether
	// there is an enrolment and whether it confirmed it.
	sqlConfirmMFA = `WITH m AS (SELECT confirmed_at FROM user_mfa WHERE tenant_id = $1 AND user_id = $2 FOR UPDATE),
		u AS (UPDATE user_mfa SET confirmed_at = $3, last_step = greatest(last_step, $4)
			WHERE tenant_id = $1 AND user_id = $2 AND confirmed_at IS NULL RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM m), EXISTS (SELECT 1 FROM u)`
	sqlDeleteCodes = `DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2`
	sqlInsertCode  = `INSERT INTO recovery_codes (tenant_id, user_id, id, hash, used_at) VALUES ($1, $2, $3, $4, $5)`
	// sqlUseTOTPStep reports whether the enrolment exists and whether the
	// step was later than the last one.
	sqlUseTOTPStep = `WITH m AS (SELECT 1 FROM user_mfa WHERE tenant_id = $1 AND user_id = $2),
		u AS (UPDATE user_mfa SET last_step = $3 WHERE tenant_id = $1 AND user_id = $2 AND last_step < $3 RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM m), EXISTS (SELECT 1 FROM u)`
	sqlDeleteMFA = `WITH m AS (DELETE FROM user_mfa WHERE tenant_id = $1 AND user_id = $2 RETURNING 1),
		c AS (DELETE FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2)
		SELECT count(*) FROM m`
	sqlListCodes = `SELECT id, hash, used_at FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2 ORDER BY id`
	sqlUseCode   = `WITH c AS (SELECT 1 FROM recovery_codes WHERE tenant_id = $1 AND user_id = $2 AND id = $3),
		u AS (UPDATE recovery_codes SET used_at = $4 WHERE tenant_id = $1 AND user_id = $2 AND id = $3 AND used_at IS NULL RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM c), EXISTS (SELECT 1 FROM u)`

	throttleColumns  = `failures, last_failure_at, locked_until, reason`
	sqlGetThrottle   = `SELECT ` + throttleColumns + ` FROM login_throttle WHERE tenant_id = $1 AND subject = $2`
	sqlPruneThrottle = `DELETE FROM login_throttle WHERE tenant_id = $1 AND last_failure_at < $2 AND locked_until < $3
		AND subject <> $4`
	sqlAddFailure = `INSERT INTO login_throttle AS l (tenant_id, subject, failures, last_failure_at, locked_until, reason)
		VALUES ($1, $2, 1, $3, 'epoch', '')
		ON CONFLICT (tenant_id, subject) DO UPDATE SET
		failures = CASE WHEN l.last_failure_at < $4 THEN 1 ELSE l.failures + 1 END, last_failure_at = $3
		RETURNING ` + throttleColumns
	sqlLockLogin = `INSERT INTO login_throttle AS l (tenant_id, subject, failures, last_failure_at, locked_until, reason)
		VALUES ($1, $2, 0, 'epoch', $3, $4)
		ON CONFLICT (tenant_id, subject) DO UPDATE SET
		reason = CASE WHEN $3 >= l.locked_until THEN $4 ELSE l.reason END, locked_until = greatest(l.locked_until, $3)`
	sqlClearThrottle = `DELETE FROM login_throttle WHERE tenant_id = $1 AND subject = $2`

	sqlLoginAddresses  = `SELECT addr FROM login_addresses WHERE tenant_id = $1 AND user_id = $2 ORDER BY last_seen DESC, addr`
	sqlRememberAddress = `INSERT INTO login_addresses AS a (tenant_id, user_id, addr, last_seen) VALUES ($1, $2, $3, $4)
		ON CONFLICT (tenant_id, user_id, addr) DO UPDATE SET last_seen = greatest(a.last_seen, excluded.last_seen)`
	sqlTrimAddresses = `DELETE FROM login_addresses WHERE tenant_id = $1 AND user_id = $2 AND addr NOT IN (
		SELECT addr FROM login_addresses WHERE tenant_id = $1 AND user_id = $2 ORDER BY last_seen DESC, addr LIMIT $3)`

	sqlGetPolicy = `SELECT mfa_required_role, updated_at FROM auth_policy WHERE tenant_id = $1`
	sqlPutPolicy = `INSERT INTO auth_policy (tenant_id, mfa_required_role, updated_at) VALUES ($1, $2, $3)
		ON CONFLICT (tenant_id) DO UPDATE SET mfa_required_role = excluded.mfa_required_role, updated_at = excluded.updated_at`
)

// epoch stands for the zero time in login_throttle's NOT NULL columns.
var epoch = time.Unix(0, 0).UTC()

func fromEpoch(at time.Time) time.Time {
	if at.Equal(epoch) {
		return time.Time{}
	}
	return at.UTC()
}

func toEpoch(at time.Time) time.Time {
	if at.IsZero() {
		return epoch
	}
	return at
}

func (t *tx) GetMFA(ctx context.Context, user store.UserID) (*store.MFA, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	m := store.MFA{UserID: user}
	err = t.q.queryRow(ctx, sqlGetMFA, t.tid.arg, string(user)).Scan(&m.Secret, &m.ConfirmedAt, &m.LastStep, &m.CreatedAt)
	if err != nil {
		return nil, wrap(err, "get totp of user %s", user)
	}
	return &m, nil
}

func (t *tx) PutMFA(ctx context.Context, m *store.MFA) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = t.q.exec(ctx, sqlPutMFA, t.tid.arg, string(m.UserID), m.Secret, m.ConfirmedAt, m.LastStep, m.CreatedAt)
	return wrap(err, "put totp of user %s", m.UserID)
}

// found reports an (exists, changed) pair as the LoginSecurity writes do.
func found(exists, changed bool, what string, args ...any) error {
	switch {
	case !exists:
		return fmt.Errorf(what+": %w", append(args, store.ErrNotFound)...)
	case !changed:
		return fmt.Errorf(what+": used or done already: %w", append(args, store.ErrConflict)...)
	}
	return nil
}

func (t *tx) ConfirmMFA(ctx context.Context, user store.UserID, at time.Time, step int64, codes []*store.RecoveryCode) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	var exists, changed bool
	if err := t.q.queryRow(ctx, sqlConfirmMFA, t.tid.arg, string(user), at, step).Scan(&exists, &changed); err != nil {
		return wrap(err, "confirm totp of user %s", user)
	}
	if err := found(exists, changed, "confirm totp of user %s", user); err != nil {
		return err
	}
	if _, err := t.q.exec(ctx, sqlDeleteCodes, t.tid.arg, string(user)); err != nil {
		return wrap(err, "delete recovery codes of user %s", user)
	}
	for _, c := range codes {
		if _, err := t.q.exec(ctx, sqlInsertCode, t.tid.arg, string(user), c.ID, c.Hash, c.UsedAt); err != nil {
			return wrap(err, "store recovery code of user %s", user)
		}
	}
	return nil
}

func (t *tx) UseTOTPStep(ctx context.Context, user store.UserID, step int64) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	var exists, changed bool
	if err := t.q.queryRow(ctx, sqlUseTOTPStep, t.tid.arg, string(user), step).Scan(&exists, &changed); err != nil {
		return wrap(err, "use totp step of user %s", user)
	}
	return found(exists, changed, "use totp step of user %s", user)
}

func (t *tx) DeleteMFA(ctx context.Context, user store.UserID) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	var n int
	if err := t.q.queryRow(ctx, sqlDeleteMFA, t.tid.arg, string(user)).Scan(&n); err != nil {
		return wrap(err, "delete totp of user %s", user)
	}
	if n == 0 {
		return fmt.Errorf("delete totp of user %s: %w", user, store.ErrNotFound)
	}
	return nil
}

func (t *tx) ListRecoveryCodes(ctx context.Context, user store.UserID) ([]*store.RecoveryCode, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rows, err := t.q.query(ctx, sqlListCodes, t.tid.arg, string(user))
	if err != nil {
		return nil, wrap(err, "list recovery codes of user %s", user)
	}
	defer rows.Close()
	var cs []*store.RecoveryCode
	for rows.Next() {
		var c store.RecoveryCode
		if err := rows.Scan(&c.ID, &c.Hash, &c.UsedAt); err != nil {
			return nil, wrap(err, "list recovery codes of user %s", user)
		}
		cs = append(cs, &c)
	}
	return cs, wrap(rows.Err(), "list recovery codes of user %s", user)
}

func (t *tx) UseRecoveryCode(ctx context.Context, user store.UserID, id string, at time.Time) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	var exists, changed bool
	if err := t.q.queryRow(ctx, sqlUseCode, t.tid.arg, string(user), id, at).Scan(&exists, &changed); err != nil {
		return wrap(err, "use recovery code of user %s", user)
	}
	return found(exists, changed, "use recovery code of user %s", user)
}

func scanThrottle(r pgx.Row, subject string) (*store.LoginThrottle, error) {
	th := store.LoginThrottle{Subject: subject}
	if err := r.Scan(&th.Failures, &th.LastFailureAt, &th.LockedUntil, &th.Reason); err != nil {
		return nil, err
	}
	th.LastFailureAt, th.LockedUntil = fromEpoch(th.LastFailureAt), fromEpoch(th.LockedUntil)
	return &th, nil
}

func (t *tx) GetLoginThrottle(ctx context.Context, subject string) (*store.LoginThrottle, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	th, err := scanThrottle(t.q.queryRow(ctx, sqlGetThrottle, t.tid.arg, subject), subject)
	return th, wrap(err, "get login throttle")
}

func (t *tx) AddLoginFailure(ctx context.Context, subject string, at, since time.Time) (*store.LoginThrottle, error) {
	unlock, err := t.begin(true)
	if err != nil {
		return nil, err
	}
	defer unlock()
	if _, err := t.q.exec(ctx, sqlPruneThrottle, t.tid.arg, since, at, subject); err != nil {
		return nil, wrap(err, "prune login throttles")
	}
	th, err := scanThrottle(t.q.queryRow(ctx, sqlAddFailure, t.tid.arg, subject, at, since), subject)
	return th, wrap(err, "add login failure")
}

func (t *tx) LockLogin(ctx context.Context, subject string, until time.Time, reason string) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = t.q.exec(ctx, sqlLockLogin, t.tid.arg, subject, toEpoch(until), reason)
	return wrap(err, "lock login")
}

func (t *tx) ClearLoginThrottle(ctx context.Context, subject string) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = t.q.exec(ctx, sqlClearThrottle, t.tid.arg, subject)
	return wrap(err, "clear login throttle")
}

func (t *tx) LoginAddresses(ctx context.Context, user store.UserID) ([]string, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rows, err := t.q.query(ctx, sqlLoginAddresses, t.tid.arg, string(user))
	if err != nil {
		return nil, wrap(err, "read login addresses of user %s", user)
	}
	defer rows.Close()
	var addrs []string
	for rows.Next() {
		var a string
		if err := rows.Scan(&a); err != nil {
			return nil, wrap(err, "read login addresses of user %s", user)
		}
		addrs = append(addrs, a)
	}
	return addrs, wrap(rows.Err(), "read login addresses of user %s", user)
}

func (t *tx) RememberLoginAddress(ctx context.Context, user store.UserID, addr string, at time.Time, keep int) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	if _, err := t.q.exec(ctx, sqlRememberAddress, t.tid.arg, string(user), addr, at); err != nil {
		return wrap(err, "remember login address of user %s", user)
	}
	_, err = t.q.exec(ctx, sqlTrimAddresses, t.tid.arg, string(user), max(keep, 1))
	return wrap(err, "trim login addresses of user %s", user)
}

func (t *tx) GetAuthPolicy(ctx context.Context) (*store.AuthPolicy, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	var p store.AuthPolicy
	var role string
	err = t.q.queryRow(ctx, sqlGetPolicy, t.tid.arg).Scan(&role, &p.UpdatedAt)
	if isNotFound(err) {
		return &store.AuthPolicy{}, nil
	}
	if err != nil {
		return nil, wrap(err, "get auth policy")
	}
	p.MFARequiredRole = tenant.Role(role)
	return &p, nil
}

func (t *tx) PutAuthPolicy(ctx context.Context, p *store.AuthPolicy) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	_, err = t.q.exec(ctx, sqlPutPolicy, t.tid.arg, string(p.MFARequiredRole), p.UpdatedAt)
	return wrap(err, "put auth policy")
}
