package storetest

import (
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// testLoginSecurity covers store.LoginSecurity for tenants of isolation
// iso: TOTP enrolments, single-use steps and recovery codes, throttles,
// remembered addresses and the policy, and that another tenant sees none
// of it.
func (h *harness) testLoginSecurity(t *testing.T, iso tenant.Isolation) {
	setup := func(t *testing.T) (*env, *store.Tenant, *store.Tenant) {
		t.Parallel()
		e := h.setup(t)
		a, b := e.tenant(iso), e.tenant(iso)
		for _, tn := range []*store.Tenant{a, b} {
			e.in(tn.ID, func(tx store.Tx) error {
				return tx.CreateUser(e.ctx, &store.User{ID: "u1", Email: "u1@example.com", PasswordHash: "h", Role: tenant.Admin, CreatedAt: base, UpdatedAt: base})
			})
		}
		return e, a, b
	}

	t.Run("TOTP", func(t *testing.T) {
		e, a, b := setup(t)
		e.read(a.ID, func(tx store.Tx) error {
			_, err := tx.GetMFA(e.ctx, "u1")
			errIs(t, "GetMFA before enrolment", err, store.ErrNotFound)
			errIs(t, "PutMFA in a read-only transaction", tx.PutMFA(e.ctx, &store.MFA{UserID: "u1", Secret: []byte("s"), CreatedAt: base}), store.ErrReadOnly)
			return nil
		})
		e.in(a.ID, func(tx store.Tx) error {
			errIs(t, "ConfirmMFA without enrolment", tx.ConfirmMFA(e.ctx, "u1", base, 1, nil), store.ErrNotFound)
			errIs(t, "UseTOTPStep without enrolment", tx.UseTOTPStep(e.ctx, "u1", 1), store.ErrNotFound)
			errIs(t, "PutMFA", tx.PutMFA(e.ctx, &store.MFA{UserID: "u1", Secret: []byte("sealed"), CreatedAt: base}), nil)
			return nil
		})
		codes := []*store.RecoveryCode{{ID: "01", Hash: []byte("h1")}, {ID: "02", Hash: []byte("h2")}}
		e.in(a.ID, func(tx store.Tx) error {
			errIs(t, "ConfirmMFA", tx.ConfirmMFA(e.ctx, "u1", at(time.Minute), 100, codes), nil)
			errIs(t, "ConfirmMFA again", tx.ConfirmMFA(e.ctx, "u1", at(time.Minute), 100, codes), store.ErrConflict)
			return nil
		})
		e.in(a.ID, func(tx store.Tx) error {
			m, err := tx.GetMFA(e.ctx, "u1")
			if errIs(t, "GetMFA", err, nil) {
				diff(t, "GetMFA", &store.MFA{UserID: "u1", Secret: []byte("sealed"), ConfirmedAt: ptr(at(time.Minute)), LastStep: 100, CreatedAt: base}, m)
			}
			errIs(t, "UseTOTPStep of the confirming step", tx.UseTOTPStep(e.ctx, "u1", 100), store.ErrConflict)
			errIs(t, "UseTOTPStep 101", tx.UseTOTPStep(e.ctx, "u1", 101), nil)
			errIs(t, "UseTOTPStep 101 again", tx.UseTOTPStep(e.ctx, "u1", 101), store.ErrConflict)
			errIs(t, "UseTOTPStep 99", tx.UseTOTPStep(e.ctx, "u1", 99), store.ErrConflict)
			errIs(t, "UseRecoveryCode 02", tx.UseRecoveryCode(e.ctx, "u1", "02", at(time.Hour)), nil)
			errIs(t, "UseRecoveryCode 02 again", tx.UseRecoveryCode(e.ctx, "u1", "02", at(2*time.Hour)), store.ErrConflict)
			errIs(t, "UseRecoveryCode 03", tx.UseRecoveryCode(e.ctx, "u1", "03", at(time.Hour)), store.ErrNotFound)
			cs, err := tx.ListRecoveryCodes(e.ctx, "u1")
			if errIs(t, "ListRecoveryCodes", err, nil) {
				diff(t, "ListRecoveryCodes", []*store.RecoveryCode{{ID: "01", Hash: []byte("h1")}, {ID: "02", Hash: []byte("h2"), UsedAt: ptr(at(time.Hour))}}, cs)
			}
			return nil
		})
		// Another tenant's user of the same id sees nothing of it.
		e.in(b.ID, func(tx store.Tx) error {
			_, err := tx.GetMFA(e.ctx, "u1")
			errIs(t, "GetMFA in another tenant", err, store.ErrNotFound)
			errIs(t, "UseTOTPStep in another tenant", tx.UseTOTPStep(e.ctx, "u1", 500), store.ErrNotFound)
			errIs(t, "UseRecoveryCode in another tenant", tx.UseRecoveryCode(e.ctx, "u1", "01", base), store.ErrNotFound)
			errIs(t, "DeleteMFA in another tenant", tx.DeleteMFA(e.ctx, "u1"), store.ErrNotFound)
			cs, err := tx.ListRecoveryCodes(e.ctx, "u1")
			if errIs(t, "ListRecoveryCodes in another tenant", err, nil) && len(cs) != 0 {
				t.Errorf("ListRecoveryCodes in another tenant = %d codes, want none", len(cs))
			}
			return nil
		})
		// A new seed starts over: unconfirmed, without recovery codes.
		e.in(a.ID, func(tx store.Tx) error {
			errIs(t, "PutMFA again", tx.PutMFA(e.ctx, &store.MFA{UserID: "u1", Secret: []byte("new"), CreatedAt: at(time.Hour)}), nil)
			cs, err := tx.ListRecoveryCodes(e.ctx, "u1")
			if errIs(t, "ListRecoveryCodes after PutMFA", err, nil) && len(cs) != 0 {
				t.Errorf("ListRecoveryCodes after PutMFA = %d codes, want none", len(cs))
			}
			m, err := tx.GetMFA(e.ctx, "u1")
			if errIs(t, "GetMFA after PutMFA", err, nil) && m.ConfirmedAt != nil {
				t.Errorf("GetMFA after PutMFA: confirmed at %v, want unconfirmed", m.ConfirmedAt)
			}
			errIs(t, "ConfirmMFA", tx.ConfirmMFA(e.ctx, "u1", at(time.Hour), 7, codes), nil)
			errIs(t, "DeleteMFA", tx.DeleteMFA(e.ctx, "u1"), nil)
			errIs(t, "DeleteMFA again", tx.DeleteMFA(e.ctx, "u1"), store.ErrNotFound)
			cs, err = tx.ListRecoveryCodes(e.ctx, "u1")
			if errIs(t, "ListRecoveryCodes after DeleteMFA", err, nil) && len(cs) != 0 {
				t.Errorf("ListRecoveryCodes after DeleteMFA = %d codes, want none", len(cs))
			}
			return nil
		})
	})

	t.Run("DeleteUserRemovesTOTP", func(t *testing.T) {
		e, a, _ := setup(t)
		e.in(a.ID, func(tx store.Tx) error {
			errIs(t, "PutMFA", tx.PutMFA(e.ctx, &store.MFA{UserID: "u1", Secret: []byte("s"), CreatedAt: base}), nil)
			errIs(t, "ConfirmMFA", tx.ConfirmMFA(e.ctx, "u1", base, 1, []*store.RecoveryCode{{ID: "1", Hash: []byte("h")}}), nil)
			errIs(t, "RememberLoginAddress", tx.RememberLoginAddress(e.ctx, "u1", "192.0.2.1", base, 5), nil)
			errIs(t, "DeleteUser", tx.DeleteUser(e.ctx, "u1"), nil)
			return nil
		})
		e.read(a.ID, func(tx store.Tx) error {
			_, err := tx.GetMFA(e.ctx, "u1")
			errIs(t, "GetMFA after DeleteUser", err, store.ErrNotFound)
			cs, err := tx.ListRecoveryCodes(e.ctx, "u1")
			if errIs(t, "ListRecoveryCodes after DeleteUser", err, nil) && len(cs) != 0 {
				t.Errorf("ListRecoveryCodes after DeleteUser = %d codes, want none", len(cs))
			}
			addrs, err := tx.LoginAddresses(e.ctx, "u1")
			if errIs(t, "LoginAddresses after DeleteUser", err, nil) && len(addrs) != 0 {
				t.Errorf("LoginAddresses after DeleteUser = %q, want none", addrs)
			}
			return nil
		})
	})

	t.Run("Throttle", func(t *testing.T) {
		e, a, b := setup(t)
		e.in(a.ID, func(tx store.Tx) error {
			_, err := tx.GetLoginThrottle(e.ctx, "s1")
			errIs(t, "GetLoginThrottle before any failure", err, store.ErrNotFound)
			for i := 1; i <= 3; i++ {
				th, err := tx.AddLoginFailure(e.ctx, "s1", at(time.Duration(i)*time.Minute), base)
				if errIs(t, "AddLoginFailure", err, nil) {
					diff(t, "AddLoginFailure", &store.LoginThrottle{Subject: "s1", Failures: i, LastFailureAt: at(time.Duration(i) * time.Minute)}, th)
				}
			}
			errIs(t, "LockLogin", tx.LockLogin(e.ctx, "s1", at(time.Hour), "failures"), nil)
			// A lock that ends sooner does not shorten it.
			errIs(t, "LockLogin shorter", tx.LockLogin(e.ctx, "s1", at(30*time.Minute), "other"), nil)
			th, err := tx.GetLoginThrottle(e.ctx, "s1")
			if errIs(t, "GetLoginThrottle", err, nil) {
				diff(t, "GetLoginThrottle", &store.LoginThrottle{Subject: "s1", Failures: 3, LastFailureAt: at(3 * time.Minute), LockedUntil: at(time.Hour), Reason: "failures"}, th)
			}
			// A lock of a subject without failures.
			errIs(t, "LockLogin s2", tx.LockLogin(e.ctx, "s2", at(2*time.Hour), "containment"), nil)
			th, err = tx.GetLoginThrottle(e.ctx, "s2")
			if errIs(t, "GetLoginThrottle s2", err, nil) {
				diff(t, "GetLoginThrottle s2", &store.LoginThrottle{Subject: "s2", LockedUntil: at(2 * time.Hour), Reason: "containment"}, th)
			}
			return nil
		})
		e.read(b.ID, func(tx store.Tx) error {
			_, err := tx.GetLoginThrottle(e.ctx, "s1")
			errIs(t, "GetLoginThrottle in another tenant", err, store.ErrNotFound)
			return nil
		})
		e.in(a.ID, func(tx store.Tx) error {
			// Failures before since are forgotten: the count starts again.
			th, err := tx.AddLoginFailure(e.ctx, "s1", at(48*time.Hour), at(24*time.Hour))
			if errIs(t, "AddLoginFailure after a quiet day", err, nil) {
				diff(t, "AddLoginFailure after a quiet day", &store.LoginThrottle{Subject: "s1", Failures: 1, LastFailureAt: at(48 * time.Hour), LockedUntil: at(time.Hour), Reason: "failures"}, th)
			}
			return nil
		})
		e.in(a.ID, func(tx store.Tx) error {
			// s2's lock has ended and it had no failure since: pruned.
			_, err := tx.AddLoginFailure(e.ctx, "s3", at(50*time.Hour), at(26*time.Hour))
			errIs(t, "AddLoginFailure s3", err, nil)
			_, err = tx.GetLoginThrottle(e.ctx, "s2")
			errIs(t, "GetLoginThrottle s2 after pruning", err, store.ErrNotFound)
			errIs(t, "ClearLoginThrottle", tx.ClearLoginThrottle(e.ctx, "s1"), nil)
			errIs(t, "ClearLoginThrottle again", tx.ClearLoginThrottle(e.ctx, "s1"), nil)
			_, err = tx.GetLoginThrottle(e.ctx, "s1")
			errIs(t, "GetLoginThrottle after ClearLoginThrottle", err, store.ErrNotFound)
			return nil
		})
	})

	t.Run("Addresses", func(t *testing.T) {
		e, a, b := setup(t)
		e.in(a.ID, func(tx store.Tx) error {
			for i, addr := range []string{"192.0.2.1", "192.0.2.2", "192.0.2.3", "192.0.2.1"} {
				errIs(t, "RememberLoginAddress", tx.RememberLoginAddress(e.ctx, "u1", addr, at(time.Duration(i)*time.Minute), 2), nil)
			}
			// The two most recent are kept, the latest first.
			addrs, err := tx.LoginAddresses(e.ctx, "u1")
			if errIs(t, "LoginAddresses", err, nil) {
				diff(t, "LoginAddresses", []string{"192.0.2.1", "192.0.2.3"}, addrs)
			}
			return nil
		})
		e.read(b.ID, func(tx store.Tx) error {
			addrs, err := tx.LoginAddresses(e.ctx, "u1")
			if errIs(t, "LoginAddresses in another tenant", err, nil) && len(addrs) != 0 {
				t.Errorf("LoginAddresses in another tenant = %q, want none", addrs)
			}
			return nil
		})
	})

	t.Run("Policy", func(t *testing.T) {
		e, a, b := setup(t)
		e.in(a.ID, func(tx store.Tx) error {
			p, err := tx.GetAuthPolicy(e.ctx)
			if errIs(t, "GetAuthPolicy before any", err, nil) {
				diff(t, "GetAuthPolicy before any", &store.AuthPolicy{}, p)
			}
			errIs(t, "PutAuthPolicy", tx.PutAuthPolicy(e.ctx, &store.AuthPolicy{MFARequiredRole: tenant.Admin, UpdatedAt: base}), nil)
			errIs(t, "PutAuthPolicy again", tx.PutAuthPolicy(e.ctx, &store.AuthPolicy{MFARequiredRole: tenant.Owner, UpdatedAt: at(time.Second)}), nil)
			p, err = tx.GetAuthPolicy(e.ctx)
			if errIs(t, "GetAuthPolicy", err, nil) {
				diff(t, "GetAuthPolicy", &store.AuthPolicy{MFARequiredRole: tenant.Owner, UpdatedAt: at(time.Second)}, p)
			}
			return nil
		})
		e.read(b.ID, func(tx store.Tx) error {
			p, err := tx.GetAuthPolicy(e.ctx)
			if errIs(t, "GetAuthPolicy in another tenant", err, nil) {
				diff(t, "GetAuthPolicy in another tenant", &store.AuthPolicy{}, p)
			}
			return nil
		})
	})
}
