package sqlitestore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// The statements of store.LoginSecurity.
const (
	sqlGetMFA = `SELECT secret, confirmed_at, last_step, created_at FROM user_mfa WHERE tenant_id = ? AND user_id = ?`
	sqlPutMFA = `INSERT INTO user_mfa (tenant_id, user_id, secret, confirmed_at, last_step, created_at)
		VALUES (?, ?, ?, ?, ?, ?)
		ON CONFLICT (tenant_id, user_id) DO UPDATE SET secret = excluded.secret,
		confirmed_at = excluded.confirmed_at, last_step = excluded.last_step, created_at = excluded.created_at`
	sqlConfirmMFA = `UPDATE user_mfa SET confirmed_at = ?, last_step = max(last_step, ?)
		WHERE tenant_id = ? AND user_id = ? AND confirmed_at IS NULL`
	sqlMFAExists   = `SELECT 1 FROM user_mfa WHERE tenant_id = ? AND user_id = ?`
	sqlUseTOTPStep = `UPDATE user_mfa SET last_step = ? WHERE tenant_id = ? AND user_id = ? AND last_step < ?`
	sqlDeleteMFA   = `DELETE FROM user_mfa WHERE tenant_id = ? AND user_id = ?`
	sqlDeleteCodes = `DELETE FROM recovery_codes WHERE tenant_id = ? AND user_id = ?`
	sqlInsertCode  = `INSERT INTO recovery_codes (tenant_id, user_id, id, hash, used_at) VALUES (?, ?, ?, ?, ?)`
	sqlListCodes   = `SELECT id, hash, used_at FROM recovery_codes WHERE tenant_id = ? AND user_id = ? ORDER BY id`
	sqlUseCode     = `UPDATE recovery_codes SET used_at = ? WHERE tenant_id = ? AND user_id = ? AND id = ? AND used_at IS NULL`
	sqlCodeExists  = `SELECT 1 FROM recovery_codes WHERE tenant_id = ? AND user_id = ? AND id = ?`

	sqlGetThrottle = `SELECT failures, last_failure_at, locked_until, reason FROM login_throttle
		WHERE tenant_id = ? AND subject = ?`
	sqlPruneThrottle = `DELETE FROM login_throttle WHERE tenant_id = ?1 AND last_failure_at < ?2 AND locked_until < ?3
		AND subject <> ?4`
	sqlAddFailure = `INSERT INTO login_throttle (tenant_id, subject, failures, last_failure_at, locked_until, reason)
		VALUES (?1, ?2, 1, ?3, 0, '')
		ON CONFLICT (tenant_id, subject) DO UPDATE SET
		failures = CASE WHEN last_failure_at < ?4 THEN 1 ELSE failures + 1 END, last_failure_at = ?3`
	sqlLockLogin = `INSERT INTO login_throttle (tenant_id, subject, failures, last_failure_at, locked_until, reason)
		VALUES (?1, ?2, 0, 0, ?3, ?4)
		ON CONFLICT (tenant_id, subject) DO UPDATE SET
		reason = CASE WHEN ?3 >= locked_until THEN ?4 ELSE reason END, locked_until = max(locked_until, ?3)`
	sqlClearThrottle = `DELETE FROM login_throttle WHERE tenant_id = ? AND subject = ?`

	sqlLoginAddresses  = `SELECT addr FROM login_addresses WHERE tenant_id = ? AND user_id = ? ORDER BY last_seen DESC, addr`
	sqlRememberAddress = `INSERT INTO login_addresses (tenant_id, user_id, addr, last_seen) VALUES (?, ?, ?, ?)
		ON CONFLICT (tenant_id, user_id, addr) DO UPDATE SET last_seen = max(last_seen, excluded.last_seen)`
	sqlTrimAddresses = `DELETE FROM login_addresses WHERE tenant_id = ?1 AND user_id = ?2 AND addr NOT IN (
		SELECT addr FROM login_addresses WHERE tenant_id = ?1 AND user_id = ?2 ORDER BY last_seen DESC, addr LIMIT ?3)`
	sqlDeleteAddresses = `DELETE FROM login_addresses WHERE tenant_id = ? AND user_id = ?`

	sqlGetPolicy = `SELECT mfa_required_role, updated_at FROM auth_policy WHERE tenant_id = ?`
	sqlPutPolicy = `INSERT INTO auth_policy (tenant_id, mfa_required_role, updated_at) VALUES (?, ?, ?)
		ON CONFLICT (tenant_id) DO UPDATE SET mfa_required_role = excluded.mfa_required_role, updated_at = excluded.updated_at`
)

func (t *tx) GetMFA(ctx context.Context, user store.UserID) (*store.MFA, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	m := store.MFA{UserID: user}
	var confirmed sql.NullInt64
	var created int64
	err = t.c.queryRow(ctx, sqlGetMFA, t.tid, string(user)).Scan(&m.Secret, &confirmed, &m.LastStep, &created)
	if err != nil {
		return nil, wrap(err, "get totp of user %s", user)
	}
	m.ConfirmedAt, m.CreatedAt = fromNullMicros(confirmed), fromMicros(created)
	return &m, nil
}

func (t *tx) PutMFA(ctx context.Context, m *store.MFA) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	if _, err := t.c.exec(ctx, sqlPutMFA, t.tid, string(m.UserID), m.Secret, nullMicros(m.ConfirmedAt), m.LastStep,
		m.CreatedAt.UnixMicro()); err != nil {
		return wrap(err, "put totp of user %s", m.UserID)
	}
	_, err = t.c.exec(ctx, sqlDeleteCodes, t.tid, string(m.UserID))
	return wrap(err, "delete recovery codes of user %s", m.UserID)
}

func (t *tx) ConfirmMFA(ctx context.Context, user store.UserID, at time.Time, step int64, codes []*store.RecoveryCode) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	res, err := t.c.exec(ctx, sqlConfirmMFA, at.UnixMicro(), step, t.tid, string(user))
	if err = mustAffect(res, err); errorsIsNotFound(err) {
		var one int
		if err := t.c.queryRow(ctx, sqlMFAExists, t.tid, string(user)).Scan(&one); err != nil {
			return wrap(err, "confirm totp of user %s", user)
		}
		return fmt.Errorf("confirm totp of user %s: confirmed already: %w", user, store.ErrConflict)
	}
	if err != nil {
		return wrap(err, "confirm totp of user %s", user)
	}
	if _, err := t.c.exec(ctx, sqlDeleteCodes, t.tid, string(user)); err != nil {
		return wrap(err, "delete recovery codes of user %s", user)
	}
	for _, c := range codes {
		if _, err := t.c.exec(ctx, sqlInsertCode, t.tid, string(user), c.ID, c.Hash, nullMicros(c.UsedAt)); err != nil {
			return wrap(err, "store recovery code of user %s", user)
		}
	}
	return nil
}

func (t *tx) UseTOTPStep(ctx context.Context, user store.UserID, step int64) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	res, err := t.c.exec(ctx, sqlUseTOTPStep, step, t.tid, string(user), step)
	if err = mustAffect(res, err); !errorsIsNotFound(err) {
		return wrap(err, "use totp step of user %s", user)
	}
	var one int
	if err := t.c.queryRow(ctx, sqlMFAExists, t.tid, string(user)).Scan(&one); err != nil {
		return wrap(err, "use totp step of user %s", user)
	}
	return fmt.Errorf("use totp step of user %s: step used already: %w", user, store.ErrConflict)
}

func (t *tx) DeleteMFA(ctx context.Context, user store.UserID) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	res, err := t.c.exec(ctx, sqlDeleteMFA, t.tid, string(user))
	if err := mustAffect(res, err); err != nil {
		return wrap(err, "delete totp of user %s", user)
	}
	_, err = t.c.exec(ctx, sqlDeleteCodes, t.tid, string(user))
	return wrap(err, "delete recovery codes of user %s", user)
}

func (t *tx) ListRecoveryCodes(ctx context.Context, user store.UserID) ([]*store.RecoveryCode, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	rows, err := t.c.query(ctx, sqlListCodes, t.tid, string(user))
	if err != nil {
		return nil, wrap(err, "list recovery codes of user %s", user)
	}
	defer rows.Close()
	var cs []*store.RecoveryCode
	for rows.Next() {
		var c store.RecoveryCode
		var used sql.NullInt64
		if err := rows.Scan(&c.ID, &c.Hash, &used); err != nil {
			return nil, wrap(err, "list recovery codes of user %s", user)
		}
		c.UsedAt = fromNullMicros(used)
		cs = append(cs, &c)
	}
	return cs, wrap(rows.Err(), "list recovery codes of user %s", user)
}

func (t *tx) UseRecoveryCode(ctx context.Context, user store.UserID, id string, at time.Time) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	res, err := t.c.exec(ctx, sqlUseCode, at.UnixMicro(), t.tid, string(user), id)
	if err = mustAffect(res, err); !errorsIsNotFound(err) {
		return wrap(err, "use recovery code of user %s", user)
	}
	var one int
	if err := t.c.queryRow(ctx, sqlCodeExists, t.tid, string(user), id).Scan(&one); err != nil {
		return wrap(err, "use recovery code of user %s", user)
	}
	return fmt.Errorf("use recovery code of user %s: used already: %w", user, store.ErrConflict)
}

func (t *tx) GetLoginThrottle(ctx context.Context, subject string) (*store.LoginThrottle, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	return t.getThrottle(ctx, subject)
}

func (t *tx) getThrottle(ctx context.Context, subject string) (*store.LoginThrottle, error) {
	th := store.LoginThrottle{Subject: subject}
	var last, until int64
	err := t.c.queryRow(ctx, sqlGetThrottle, t.tid, subject).Scan(&th.Failures, &last, &until, &th.Reason)
	if err != nil {
		return nil, wrap(err, "get login throttle")
	}
	th.LastFailureAt, th.LockedUntil = fromZeroMicros(last), fromZeroMicros(until)
	return &th, nil
}

// fromZeroMicros is fromMicros, with 0 standing for the zero time.
func fromZeroMicros(us int64) time.Time {
	if us == 0 {
		return time.Time{}
	}
	return fromMicros(us)
}

// zeroMicros is the stored form of a time whose zero value means none.
func zeroMicros(at time.Time) int64 {
	if at.IsZero() {
		return 0
	}
	return at.UnixMicro()
}

func (t *tx) AddLoginFailure(ctx context.Context, subject string, at, since time.Time) (*store.LoginThrottle, error) {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return nil, err
	}
	if _, err := t.c.exec(ctx, sqlPruneThrottle, t.tid, since.UnixMicro(), at.UnixMicro(), subject); err != nil {
		return nil, wrap(err, "prune login throttles")
	}
	if _, err := t.c.exec(ctx, sqlAddFailure, t.tid, subject, at.UnixMicro(), since.UnixMicro()); err != nil {
		return nil, wrap(err, "add login failure")
	}
	return t.getThrottle(ctx, subject)
}

func (t *tx) LockLogin(ctx context.Context, subject string, until time.Time, reason string) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlLockLogin, t.tid, subject, zeroMicros(until), reason)
	return wrap(err, "lock login")
}

func (t *tx) ClearLoginThrottle(ctx context.Context, subject string) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlClearThrottle, t.tid, subject)
	return wrap(err, "clear login throttle")
}

func (t *tx) LoginAddresses(ctx context.Context, user store.UserID) ([]string, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	rows, err := t.c.query(ctx, sqlLoginAddresses, t.tid, string(user))
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
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	if _, err := t.c.exec(ctx, sqlRememberAddress, t.tid, string(user), addr, at.UnixMicro()); err != nil {
		return wrap(err, "remember login address of user %s", user)
	}
	_, err = t.c.exec(ctx, sqlTrimAddresses, t.tid, string(user), max(keep, 1))
	return wrap(err, "trim login addresses of user %s", user)
}

func (t *tx) GetAuthPolicy(ctx context.Context) (*store.AuthPolicy, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	var p store.AuthPolicy
	var role string
	var updated int64
	err = t.c.queryRow(ctx, sqlGetPolicy, t.tid).Scan(&role, &updated)
	if errorsIsNotFound(err) {
		return &p, nil
	}
	if err != nil {
		return nil, wrap(err, "get auth policy")
	}
	p.MFARequiredRole, p.UpdatedAt = tenant.Role(role), fromMicros(updated)
	return &p, nil
}

func (t *tx) PutAuthPolicy(ctx context.Context, p *store.AuthPolicy) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	_, err = t.c.exec(ctx, sqlPutPolicy, t.tid, string(p.MFARequiredRole), p.UpdatedAt.UnixMicro())
	return wrap(err, "put auth policy")
}

// deleteUserSecurity removes what LoginSecurity keeps of a deleted user.
func (t *tx) deleteUserSecurity(ctx context.Context, user store.UserID) error {
	for _, q := range []string{sqlDeleteMFA, sqlDeleteCodes, sqlDeleteAddresses} {
		if _, err := t.c.exec(ctx, q, t.tid, string(user)); err != nil {
			return wrap(err, "delete login security of user %s", user)
		}
	}
	return nil
}
