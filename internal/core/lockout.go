package core

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"math"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/access"
	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/secevent"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Account lock-out. Every failed login counts against its login subject —
// the tenant's email address, hashed, whether or not a user has it, so
// that a lock-out tells nothing about which accounts exist — and from
// LockoutThreshold failures on, each failure locks the subject for a
// back-off that doubles with every further failure, from LockoutBase up
// to LockoutMax: never for good, so that guessing at an account cannot
// lock its owner out for longer than LockoutMax. Failures are forgotten
// after a day without one. The state is in the tenant's store, so every
// node agrees.
const (
	LockoutThreshold = 5
	LockoutBase      = 30 * time.Second
	LockoutMax       = 15 * time.Minute
	failureMemory    = 24 * time.Hour
	// stepUpFailures recent failures make a login risky (see Login).
	stepUpFailures = 3
	// keepAddresses is how many recent login addresses are kept per user.
	keepAddresses = 10
)

// Reasons of a lock. Only a lock for failures is lifted by a login that
// gives the second factor too; a lock an administrator or containment set
// holds until it ends or is lifted.
const (
	LockReasonFailures = "failures"
)

// ThrottledError refuses a login while its account is locked.
type ThrottledError struct {
	// RetryAfter is how long until the lock ends.
	RetryAfter time.Duration
}

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("login throttled for %s", e.RetryAfter)
}

// RetryAfterSeconds is RetryAfter in whole seconds, rounded up, at least 1.
func (e *ThrottledError) RetryAfterSeconds() int {
	return max(1, int(math.Ceil(e.RetryAfter.Seconds())))
}

// loginSubject names the login throttle of email in a tenant. It is a
// hash: a bound length, and no address in the clear beside the users table.
func loginSubject(email string) string {
	sum := sha256.Sum256([]byte(normalizeEmail(email)))
	return "email:" + hex.EncodeToString(sum[:])
}

// backoff is the lock that the failures-th failure starts: none below
// LockoutThreshold.
func backoff(failures int) time.Duration {
	if failures < LockoutThreshold {
		return 0
	}
	n := failures - LockoutThreshold
	if n >= 16 {
		return LockoutMax
	}
	return min(LockoutBase<<n, LockoutMax)
}

// lockedFor returns how long th keeps its subject locked at now; 0 if not.
func lockedFor(th *store.LoginThrottle, now time.Time) time.Duration {
	if th == nil || !now.Before(th.LockedUntil) {
		return 0
	}
	return th.LockedUntil.Sub(now)
}

// loginFailure is a failed login to record after its answer.
type loginFailure struct {
	tenant  store.Tenant
	subject string
	ev      audit.Event // the failure's audit entry
	reason  string      // for the security event
	client  string
}

// recordFailureLater counts a failed login against its subject after the
// caller has answered, with its audit entry, in one transaction: the
// answer of a failure must not take longer when there is a tenant to
// write to than when there is none. Unlike audit entries, failures are
// never dropped when many are being written: the caller waits instead, so
// that a flood cannot guess without being counted.
func (c *Core) recordFailureLater(ctx context.Context, f loginFailure) {
	f.client = ""
	if a := ClientFrom(ctx); a.IsValid() {
		f.client = a.String()
	}
	l := &c.later
	select {
	case l.sem <- struct{}{}:
	default:
		select {
		case l.sem <- struct{}{}:
		case <-c.life.Done():
			return
		}
	}
	l.wg.Add(1)
	go func() {
		defer func() { <-l.sem; l.wg.Done() }()
		ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
		defer cancel()
		if err := c.recordFailure(ctx, f); err != nil {
			c.log.Warn("failed login not recorded", "tenant", string(f.tenant.ID), "request_id", f.ev.RequestID, "err", err)
		}
	}()
}

// recordFailure counts f and locks its subject when the count calls for
// it.
func (c *Core) recordFailure(ctx context.Context, f loginFailure) error {
	now := f.ev.Time
	var th *store.LoginThrottle
	var lock time.Duration
	err := c.store.InTenant(ctx, f.tenant.ID, func(tx store.Tx) (err error) {
		if th, err = tx.AddLoginFailure(ctx, f.subject, now, now.Add(-failureMemory)); err != nil {
			return err
		}
		if _, err := c.audit.Append(ctx, tx, audit.TenantChain(f.tenant.ID), f.ev); err != nil {
			return err
		}
		if lock = backoff(th.Failures); lock == 0 {
			return nil
		}
		if err := tx.LockLogin(ctx, f.subject, now.Add(lock), LockReasonFailures); err != nil {
			return err
		}
		ev := f.ev
		ev.Action, ev.Outcome = "auth.lockout", audit.Denied
		_, err = c.audit.Append(ctx, tx, audit.TenantChain(f.tenant.ID), ev)
		return err
	})
	if err != nil {
		return err
	}
	base := secevent.Event{Time: now, Category: "authentication", Outcome: "failure", Tenant: f.tenant.ID,
		TenantSlug: f.tenant.Slug, Actor: f.ev.Actor, Target: f.ev.Resource, ClientAddr: f.client, RequestID: f.ev.RequestID}
	ev := base
	ev.Action, ev.Severity, ev.Reason = "login-failed", 2, f.reason
	c.events.Publish(ev)
	if lock > 0 {
		ev := base
		ev.Action, ev.Severity = "account-locked", 3
		ev.Reason = fmt.Sprintf("%d failed logins; locked for %s", th.Failures, lock)
		c.events.Publish(ev)
	}
	return nil
}

// setLock runs change on user's login subject in tid, with an audit entry
// of action and a security event of eventAction.
func (c *Core) setLock(ctx context.Context, tid tenant.ID, user store.UserID, actor, requestID string,
	change func(tx store.Tx, subject string) error, action, eventAction, reason string) error {
	if !validUserID(user) {
		return store.ErrNotFound
	}
	now := c.now()
	err := c.store.InTenant(ctx, tid, func(tx store.Tx) error {
		u, err := tx.GetUser(ctx, user)
		if err != nil {
			return err
		}
		if err := change(tx, loginSubject(u.Email)); err != nil {
			return err
		}
		_, err = c.audit.Append(ctx, tx, audit.TenantChain(tid), audit.Event{Time: now, Actor: actor, Action: action,
			Resource: "user:" + string(user), RequestID: requestID, Outcome: audit.Success})
		return err
	})
	if err != nil {
		return err
	}
	c.emit(ctx, secevent.Event{Action: eventAction, Category: "iam", Outcome: "success", Severity: 3, Tenant: tid,
		Actor: actor, Target: "user:" + string(user), RequestID: requestID, Reason: reason})
	return nil
}

// LockUser locks user id out of password logins until until, for reason:
// what containment uses (through a scope of the operator, or of a tenant
// admin). Nobody locks a user more powerful than themselves; the operator
// may lock anyone. A second factor does not lift such a lock.
func (s *Scope) LockUser(ctx context.Context, id store.UserID, until time.Time, reason string) error {
	if err := s.allow(access.LockUsers); err != nil {
		return err
	}
	if !validUserID(id) {
		return store.ErrNotFound
	}
	if err := checkText("reason", reason, 1, 200); err != nil {
		return err
	}
	if reason == LockReasonFailures {
		return invalid("reason", "a lock needs a reason of its own")
	}
	return s.core.setLock(ctx, s.tenant.ID, id, s.principal.Actor(), s.requestID, func(tx store.Tx, subject string) error {
		if _, err := s.userToChange(ctx, tx, id); err != nil {
			return err
		}
		return tx.LockLogin(ctx, subject, until.UTC(), reason)
	}, "auth.lock", "account-locked", reason)
}

// UnlockUser lifts user id's login lock-out, whatever set it, and forgets
// their failed logins. Nobody unlocks a user more powerful than
// themselves.
func (s *Scope) UnlockUser(ctx context.Context, id store.UserID) error {
	if err := s.allow(access.LockUsers); err != nil {
		return err
	}
	if !validUserID(id) {
		return store.ErrNotFound
	}
	return s.core.setLock(ctx, s.tenant.ID, id, s.principal.Actor(), s.requestID, func(tx store.Tx, subject string) error {
		if _, err := s.userToChange(ctx, tx, id); err != nil {
			return err
		}
		return tx.ClearLoginThrottle(ctx, subject)
	}, "auth.unlock", "account-unlocked", "lifted by "+s.principal.Actor())
}
