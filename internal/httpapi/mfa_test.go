package httpapi

import (
	"context"
	"encoding/base32"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/auth"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/ratelimit"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// The attacks on logins and second factors, performed for real: guessing
// from one address and from many, replayed TOTP codes, recovery codes used
// twice, one user's codes for another, other tenants' tokens, and the
// answers an attacker could compare.

// fakeClock is the Core's clock in these tests: time passes when a test
// says so, never by sleeping.
type fakeClock struct {
	mu  sync.Mutex
	now time.Time
}

func (c *fakeClock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.now
}

func (c *fakeClock) Advance(d time.Duration) {
	c.mu.Lock()
	c.now = c.now.Add(d)
	c.mu.Unlock()
}

// actions returns the actions published so far.
func (l *eventLog) actions() []string {
	var out []string
	for _, ev := range l.all() {
		out = append(out, ev.Action)
	}
	return out
}

// mfaBundle is a server whose Core runs on a fake clock, publishes its
// events to a log, and trusts X-Forwarded-For from loopback, so that a test
// can speak from any address.
type mfaBundle struct {
	*testBundle
	clock  *fakeClock
	events *eventLog
}

const password = "correct horse battery"

func setupMFA(t *testing.T, opts ...func(*Config)) *mfaBundle {
	t.Helper()
	// Ten seconds into a TOTP step: a test's codes stay in their step
	// until it advances the clock.
	clk := &fakeClock{now: time.Date(2030, 1, 1, 0, 0, 10, 0, time.UTC)}
	events := &eventLog{}
	opts = append([]func(*Config){func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	}}, opts...)
	b := setupCore(t, t.TempDir(), func(c *core.Config) {
		c.NowFunc = clk.Now
		c.Events = events
	}, opts...)
	return &mfaBundle{testBundle: b, clock: clk, events: events}
}

// user creates a user with the test password and returns its id.
func (b *mfaBundle) user(slug, email string, role tenant.Role) string {
	b.t.Helper()
	var u struct{ ID string }
	b.must(201, "POST", tpath(slug, "users"), b.admin, map[string]any{"email": email, "password": password, "role": role}).JSON(b.t, &u)
	return u.ID
}

// login logs in from addr (X-Forwarded-For), with totp if not empty.
func (b *mfaBundle) login(slug, email, pw, totp, addr string) *response {
	b.t.Helper()
	body := map[string]any{"email": email, "password": pw}
	if totp != "" {
		body["totp"] = totp
	}
	r := b.do("POST", tpath(slug, "auth", "login"), "", body, "X-Forwarded-For", addr)
	// Failures are counted after their answer: wait for them, so that
	// the next attempt sees them.
	b.core.Flush()
	return r
}

// token logs in with the password alone and returns the access token.
func (b *mfaBundle) token(slug, email string) string {
	b.t.Helper()
	var pair core.TokenPair
	r := b.login(slug, email, password, "", "192.0.2.1")
	if r.Status != 200 {
		b.t.Fatalf("login %s = %d %s", email, r.Status, r.Body)
	}
	r.JSON(b.t, &pair)
	return pair.AccessToken
}

// enrol enrols the token's user in TOTP and returns the seed and the
// recovery codes.
func (b *mfaBundle) enrol(slug, token string) ([]byte, []string) {
	b.t.Helper()
	var e core.TOTPEnrollment
	b.must(201, "POST", tpath(slug, "auth", "totp"), token, nil).JSON(b.t, &e)
	if !strings.HasPrefix(e.OTPAuthURI, "otpauth://totp/") || !strings.Contains(e.OTPAuthURI, "secret="+e.Secret) {
		b.t.Fatalf("otpauth_uri %q does not carry the secret %q", e.OTPAuthURI, e.Secret)
	}
	seed, err := base32.StdEncoding.WithPadding(base32.NoPadding).DecodeString(e.Secret)
	if err != nil {
		b.t.Fatalf("secret %q: %v", e.Secret, err)
	}
	var rc core.RecoveryCodes
	b.must(200, "POST", tpath(slug, "auth", "totp", "verify"), token, map[string]any{"code": b.code(seed)}).JSON(b.t, &rc)
	if len(rc.RecoveryCodes) != core.RecoveryCodeCount {
		b.t.Fatalf("%d recovery codes, want %d", len(rc.RecoveryCodes), core.RecoveryCodeCount)
	}
	return seed, rc.RecoveryCodes
}

// code is seed's TOTP code now, by the fake clock.
func (b *mfaBundle) code(seed []byte) string {
	b.t.Helper()
	c, err := auth.TOTPCode(seed, b.clock.Now())
	if err != nil {
		b.t.Fatal(err)
	}
	return c
}

// nextStep moves the clock to the next TOTP step.
func (b *mfaBundle) nextStep() { b.clock.Advance(auth.TOTPPeriod * time.Second) }

// TestTOTPLogin: an enrolled user's login needs the password and a code;
// a code is good once, a recovery code is good once, and only a right
// password learns that a code is missing.
func TestTOTPLogin(t *testing.T) {
	t.Parallel()
	b := setupMFA(t)
	b.tenant("acme", tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	b.user("acme", "ann@acme.test", tenant.Member)
	seed, recovery := b.enrol("acme", b.token("acme", "ann@acme.test"))

	const addr = "192.0.2.1"
	// No code: the right password learns it needs one, a wrong one does not.
	assertProblem(t, b.login("acme", "ann@acme.test", password, "", addr), 401, problem.CodeMFARequired)
	assertProblem(t, b.login("acme", "ann@acme.test", "wrong password", "", addr), 401, problem.CodeInvalidCredentials)
	// A wrong code, and a right code with a wrong password.
	wrong := "000000"
	if wrong == b.code(seed) {
		wrong = "111111"
	}
	assertProblem(t, b.login("acme", "ann@acme.test", password, wrong, addr), 401, problem.CodeInvalidCredentials)
	assertProblem(t, b.login("acme", "ann@acme.test", "wrong password", b.code(seed), addr), 401, problem.CodeInvalidCredentials)

	// The right code logs in, once: replayed, the same code is refused.
	// (The confirming code was of this step already: move on first.)
	b.nextStep()
	code := b.code(seed)
	b.must(200, "POST", tpath("acme", "auth", "login"), "", map[string]any{"email": "ann@acme.test", "password": password, "totp": code})
	assertProblem(t, b.login("acme", "ann@acme.test", password, code, addr), 401, problem.CodeInvalidCredentials)
	// A step later the replayed code is still in the skew window, and
	// still refused; the new step's code works.
	b.nextStep()
	assertProblem(t, b.login("acme", "ann@acme.test", password, code, addr), 401, problem.CodeInvalidCredentials)
	if r := b.login("acme", "ann@acme.test", password, b.code(seed), addr); r.Status != 200 {
		t.Fatalf("login with the next code = %d %s", r.Status, r.Body)
	}

	// A recovery code stands in for a code, once; as typed by a person
	// too (upper case, without dashes).
	typed := strings.ToUpper(strings.ReplaceAll(recovery[0], "-", ""))
	if r := b.login("acme", "ann@acme.test", password, typed, addr); r.Status != 200 {
		t.Fatalf("login with a recovery code = %d %s", r.Status, r.Body)
	}
	assertProblem(t, b.login("acme", "ann@acme.test", password, recovery[0], addr), 401, problem.CodeInvalidCredentials)
	if r := b.login("acme", "ann@acme.test", password, recovery[1], addr); r.Status != 200 {
		t.Fatalf("login with another recovery code = %d %s", r.Status, r.Body)
	}

	// Audited and published.
	var actions []string
	for _, e := range b.auditLog("acme", admin) {
		actions = append(actions, e.Action)
	}
	for _, want := range []string{"auth.totp_enroll", "auth.totp_confirm", "auth.mfa_required", "auth.recovery_code_use"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit log lacks %s: %q", want, actions)
		}
	}
	for _, want := range []string{"mfa-enrollment-started", "mfa-enrolled", "mfa-required", "recovery-code-used", "login-failed"} {
		if !slices.Contains(b.events.actions(), want) {
			t.Errorf("no %s security event: %q", want, b.events.actions())
		}
	}
	if v := b.verify("acme", ""); !v.OK {
		t.Errorf("audit chain does not verify: %+v", v)
	}
}

// TestTOTPOfAnotherUser: user A's TOTP and recovery codes do nothing for
// user B, who knows only B's password.
func TestTOTPOfAnotherUser(t *testing.T) {
	t.Parallel()
	b := setupMFA(t)
	b.tenant("acme", tenant.Pooled)
	b.user("acme", "ann@acme.test", tenant.Member)
	b.user("acme", "bob@acme.test", tenant.Member)
	seedA, recoveryA := b.enrol("acme", b.token("acme", "ann@acme.test"))
	seedB, _ := b.enrol("acme", b.token("acme", "bob@acme.test"))
	b.nextStep()
	for b.code(seedA) == b.code(seedB) { // one in a million
		b.nextStep()
	}
	assertProblem(t, b.login("acme", "bob@acme.test", password, b.code(seedA), "192.0.2.1"), 401, problem.CodeInvalidCredentials)
	assertProblem(t, b.login("acme", "bob@acme.test", password, recoveryA[0], "192.0.2.1"), 401, problem.CodeInvalidCredentials)
	// A's code is still good for A: B's attempt used nothing of A's.
	if r := b.login("acme", "ann@acme.test", password, b.code(seedA), "192.0.2.1"); r.Status != 200 {
		t.Errorf("A's own login after B's attempt = %d %s", r.Status, r.Body)
	}
	if r := b.login("acme", "ann@acme.test", password, recoveryA[0], "192.0.2.1"); r.Status != 200 {
		t.Errorf("A's recovery code after B's attempt = %d %s", r.Status, r.Body)
	}
}

// TestTOTPCrossTenant: a user of another tenant cannot enrol, verify or
// disable in this one, with a full or an enrolment-only token: 404, as for
// a tenant that does not exist.
func TestTOTPCrossTenant(t *testing.T) {
	t.Parallel()
	b := setupMFA(t)
	b.tenant("acme", tenant.Pooled)
	b.tenant("globex", tenant.Silo)
	b.user("globex", "eve@globex.test", tenant.Admin)
	eve := b.token("globex", "eve@globex.test")
	for _, path := range []string{tpath("acme", "auth", "totp"), tpath("acme", "auth", "totp", "verify"), tpath("acme", "auth", "totp", "disable")} {
		var body any
		if !strings.HasSuffix(path, "/totp") {
			body = map[string]any{"code": "123456"}
		}
		assertProblem(t, b.do("POST", path, eve, body), 404, problem.CodeNotFound)
	}
	// An enrolment-only token of globex is no better.
	gkey := b.apiKey("globex", tenant.Admin)
	b.must(200, "PUT", tpath("globex", "auth", "policy"), gkey, map[string]any{"mfa_required_role": "admin"})
	var restricted core.TokenPair
	b.must(200, "POST", tpath("globex", "auth", "login"), "", map[string]any{"email": "eve@globex.test", "password": password}).JSON(t, &restricted)
	if restricted.Scope != "mfa_enrollment" {
		t.Fatalf("globex login under the policy: scope %q, want mfa_enrollment", restricted.Scope)
	}
	assertProblem(t, b.do("POST", tpath("acme", "auth", "totp"), restricted.AccessToken, nil), 404, problem.CodeNotFound)
}

// TestMFAPolicy: under "MFA required for admin", an admin who has not
// enrolled gets a token that can only enrol; once enrolled, their logins
// need the code. Members are not covered.
func TestMFAPolicy(t *testing.T) {
	t.Parallel()
	b := setupMFA(t)
	b.tenant("acme", tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	member := b.apiKey("acme", tenant.Member)
	b.user("acme", "ada@acme.test", tenant.Admin)
	b.user("acme", "max@acme.test", tenant.Member)

	var p core.AuthPolicy
	b.must(200, "GET", tpath("acme", "auth", "policy"), admin, nil).JSON(t, &p)
	if p.MFARequiredRole != "none" {
		t.Errorf("default policy = %q, want none", p.MFARequiredRole)
	}
	assertProblem(t, b.do("PUT", tpath("acme", "auth", "policy"), member, map[string]any{"mfa_required_role": "admin"}), 403, problem.CodeForbidden)
	assertProblem(t, b.do("PUT", tpath("acme", "auth", "policy"), admin, map[string]any{"mfa_required_role": "root"}), 400, problem.CodeInvalidRequest)
	b.must(200, "PUT", tpath("acme", "auth", "policy"), admin, map[string]any{"mfa_required_role": "admin"}).JSON(t, &p)
	if p.MFARequiredRole != "admin" {
		t.Errorf("policy = %q, want admin", p.MFARequiredRole)
	}

	// The member logs in as before.
	var pair core.TokenPair
	b.login("acme", "max@acme.test", password, "", "192.0.2.1").JSON(t, &pair)
	if pair.Scope != "" || pair.RefreshToken == "" {
		t.Errorf("member's login = %+v, want a full pair", pair)
	}

	// The admin gets an enrolment-only token, without a refresh token.
	r := b.login("acme", "ada@acme.test", password, "", "192.0.2.1")
	if r.Status != 200 {
		t.Fatalf("admin login under the policy = %d %s", r.Status, r.Body)
	}
	var restricted core.TokenPair
	r.JSON(t, &restricted)
	if restricted.Scope != "mfa_enrollment" || restricted.RefreshToken != "" || restricted.AccessToken == "" {
		t.Fatalf("admin login under the policy = %s, want an access token of scope mfa_enrollment and no refresh token", r.Body)
	}
	// It does nothing its role would otherwise allow.
	assertProblem(t, b.do("GET", tpath("acme", "users"), restricted.AccessToken, nil), 403, problem.CodeMFAEnrollmentRequired)
	assertProblem(t, b.do("PUT", tpath("acme", "auth", "policy"), restricted.AccessToken, map[string]any{"mfa_required_role": "none"}), 403, problem.CodeMFAEnrollmentRequired)
	assertProblem(t, b.do("POST", tpath("acme", "auth", "totp", "disable"), restricted.AccessToken, map[string]any{"code": "123456"}), 403, problem.CodeMFAEnrollmentRequired)
	// But it enrols.
	seed, _ := b.enrol("acme", restricted.AccessToken)
	b.nextStep()
	assertProblem(t, b.login("acme", "ada@acme.test", password, "", "192.0.2.1"), 401, problem.CodeMFARequired)
	b.login("acme", "ada@acme.test", password, b.code(seed), "192.0.2.1").JSON(t, &pair)
	if pair.Scope != "" || pair.RefreshToken == "" {
		t.Errorf("enrolled admin's login = %+v, want a full pair", pair)
	}
	b.must(200, "GET", tpath("acme", "users"), pair.AccessToken, nil)
	if !slices.Contains(b.events.actions(), "mfa-enrollment-required") {
		t.Errorf("no mfa-enrollment-required event: %q", b.events.actions())
	}
}

// TestLoginLockout: guessing at one account locks it out with a back-off
// that grows with each further failure, from any number of addresses,
// never for good; an account that does not exist locks out alike.
func TestLoginLockout(t *testing.T) {
	t.Parallel()
	b := setupMFA(t)
	b.tenant("acme", tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	b.user("acme", "ann@acme.test", tenant.Member)

	for _, email := range []string{"ann@acme.test", "nobody@acme.test"} {
		t.Run(email, func(t *testing.T) {
			bt := &mfaBundle{testBundle: b.withT(t), clock: b.clock, events: b.events}
			// Five failures, each from another address: the account's
			// count does not care where they come from.
			for i := range core.LockoutThreshold - 1 {
				assertProblem(t, bt.login("acme", email, "guess", "", "198.51.100."+strconv.Itoa(i+1)), 401, problem.CodeInvalidCredentials)
			}
			// The fifth failure locks it out for 30 s.
			assertProblem(t, bt.login("acme", email, "guess", "", "198.51.100.99"), 401, problem.CodeInvalidCredentials)
			r := bt.login("acme", email, password, "", "203.0.113.7")
			assertProblem(t, r, 429, problem.CodeLoginThrottled)
			if got := r.Header.Get("Retry-After"); got != "30" {
				t.Errorf("Retry-After = %q, want 30", got)
			}
			// Each failure after a lock ends doubles the next lock.
			prev := 30
			for _, want := range []int{60, 120, 240, 480, 900, 900} {
				bt.clock.Advance(time.Duration(prev) * time.Second)
				assertProblem(t, bt.login("acme", email, "guess", "", "198.51.100.1"), 401, problem.CodeInvalidCredentials)
				r := bt.login("acme", email, password, "", "198.51.100.1")
				assertProblem(t, r, 429, problem.CodeLoginThrottled)
				if got := r.Header.Get("Retry-After"); got != strconv.Itoa(want) {
					t.Errorf("Retry-After = %q, want %d", got, want)
				}
				prev = want
			}
			// The lock ends: never for good.
			bt.clock.Advance(time.Duration(prev) * time.Second)
			r = bt.login("acme", email, password, "", "198.51.100.1")
			if email == "ann@acme.test" {
				if r.Status != 200 {
					t.Errorf("login after the lock ended = %d %s, want 200", r.Status, r.Body)
				}
			} else {
				assertProblem(t, r, 401, problem.CodeInvalidCredentials)
			}
		})
	}
	var locks int
	for _, e := range b.auditLog("acme", admin) {
		if e.Action == "auth.lockout" {
			locks++
		}
	}
	if locks < 2*7 {
		t.Errorf("%d auth.lockout audit entries, want at least 14", locks)
	}
	if !slices.Contains(b.events.actions(), "account-locked") {
		t.Errorf("no account-locked event: %q", b.events.actions())
	}
}

// TestLockoutAnswersIdentical: an attacker comparing answers learns
// nothing of whether an account exists: a wrong password and an unknown
// email get the same status, headers and body (but for the request id),
// before and after their lock-outs, and so does a slug that names no
// tenant.
func TestLockoutAnswersIdentical(t *testing.T) {
	t.Parallel()
	b := setupMFA(t)
	b.tenant("acme", tenant.Pooled)
	b.user("acme", "ann@acme.test", tenant.Member)
	normalize := func(r *response) string {
		h := r.Header.Clone()
		for _, k := range []string{"X-Request-Id", "Date"} {
			h.Del(k)
		}
		id := r.Header.Get("X-Request-Id")
		body := strings.ReplaceAll(string(r.Body), id, "ID")
		var hs []string
		for k, v := range h {
			hs = append(hs, k+": "+strings.Join(v, ","))
		}
		slices.Sort(hs)
		return strconv.Itoa(r.Status) + "\n" + strings.Join(hs, "\n") + "\n" + body
	}
	for i := range core.LockoutThreshold + 2 {
		known := b.login("acme", "ann@acme.test", "guess", "", "192.0.2.1")
		unknown := b.login("acme", "nobody@acme.test", "guess", "", "192.0.2.1")
		nowhere := b.login("nope", "ann@acme.test", "guess", "", "192.0.2.1")
		k, u, n := normalize(known), normalize(unknown), normalize(nowhere)
		if k != u {
			t.Errorf("attempt %d: a wrong password and an unknown email are answered differently:\n%s\n---\n%s", i, k, u)
		}
		// The slug is in the problem's instance (of the same length); the
		// rest must agree.
		if n = strings.ReplaceAll(n, "/nope/", "/acme/"); k != n {
			t.Errorf("attempt %d: a real tenant and a slug naming none are answered differently:\n%s\n---\n%s", i, k, n)
		}
		if i >= core.LockoutThreshold && known.Status != 429 {
			t.Errorf("attempt %d = %d, want 429 after %d failures", i, known.Status, core.LockoutThreshold)
		}
	}
}

// TestLockoutLiftedBySecondFactor: a locked-out, enrolled user logs in
// with the password and a valid code; a locked-out attempt with any wrong
// factor is answered like every other locked-out attempt; and past
// maxBypassFailures the lock holds even against both factors, so that a
// thief with the password cannot go on guessing codes through the lock.
func TestLockoutLiftedBySecondFactor(t *testing.T) {
	t.Parallel()
	b := setupMFA(t)
	b.tenant("acme", tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	b.user("acme", "ann@acme.test", tenant.Member)
	seed, _ := b.enrol("acme", b.token("acme", "ann@acme.test"))
	b.nextStep()
	for range core.LockoutThreshold {
		assertProblem(t, b.login("acme", "ann@acme.test", "guess", "", "198.51.100.1"), 401, problem.CodeInvalidCredentials)
	}
	assertProblem(t, b.login("acme", "ann@acme.test", password, "", "192.0.2.1"), 429, problem.CodeLoginThrottled)
	wrong := "000000"
	if wrong == b.code(seed) {
		wrong = "111111"
	}
	assertProblem(t, b.login("acme", "ann@acme.test", password, wrong, "192.0.2.1"), 429, problem.CodeLoginThrottled)
	assertProblem(t, b.login("acme", "ann@acme.test", "guess", b.code(seed), "192.0.2.1"), 429, problem.CodeLoginThrottled)
	if r := b.login("acme", "ann@acme.test", password, b.code(seed), "192.0.2.1"); r.Status != 200 {
		t.Fatalf("login with both factors while locked = %d %s, want 200", r.Status, r.Body)
	}
	// The lock is lifted and the failures forgotten.
	b.nextStep()
	if r := b.login("acme", "ann@acme.test", password, b.code(seed), "192.0.2.1"); r.Status != 200 {
		t.Fatalf("next login = %d %s, want 200", r.Status, r.Body)
	}
	if !slices.Contains(b.events.actions(), "account-unlocked") {
		t.Errorf("no account-unlocked event: %q", b.events.actions())
	}

	// A thief with the password guesses codes: each wrong one counts, and
	// past the bypass limit the right pair is refused too until the lock
	// ends or an admin lifts it.
	b.nextStep()
	for range 25 {
		b.login("acme", "ann@acme.test", password, wrong, "198.51.100.2")
	}
	b.nextStep()
	assertProblem(t, b.login("acme", "ann@acme.test", password, b.code(seed), "192.0.2.1"), 429, problem.CodeLoginThrottled)
	id := b.userID("acme", admin, "ann@acme.test")
	b.must(204, "DELETE", tpath("acme", "users", id, "lockout"), admin, nil)
	if r := b.login("acme", "ann@acme.test", password, b.code(seed), "192.0.2.1"); r.Status != 200 {
		t.Errorf("login after the admin lifted the lock = %d %s, want 200", r.Status, r.Body)
	}
}

// userID returns the id of the user with email.
func (b *mfaBundle) userID(slug, token, email string) string {
	b.t.Helper()
	var users struct {
		Items []struct{ ID, Email string }
	}
	b.must(200, "GET", tpath(slug, "users"), token, nil).JSON(b.t, &users)
	for _, u := range users.Items {
		if u.Email == email {
			return u.ID
		}
	}
	b.t.Fatalf("no user %s", email)
	return ""
}

// TestUnlockAndResetByAdmin: a tenant admin lifts a lock-out and removes a
// user's TOTP; a member may do neither, an admin cannot reset an owner or
// their own enrolment without a code, and another tenant's admin gets 404.
func TestUnlockAndResetByAdmin(t *testing.T) {
	t.Parallel()
	b := setupMFA(t)
	b.tenant("acme", tenant.Pooled)
	b.tenant("globex", tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	member := b.apiKey("acme", tenant.Member)
	other := b.apiKey("globex", tenant.Admin)
	ann := b.user("acme", "ann@acme.test", tenant.Member)
	owner := b.user("acme", "olga@acme.test", tenant.Owner)
	b.user("acme", "adam@acme.test", tenant.Admin)
	b.enrol("acme", b.token("acme", "ann@acme.test"))
	b.enrol("acme", b.token("acme", "olga@acme.test"))
	adam := b.token("acme", "adam@acme.test")
	b.enrol("acme", adam)
	for range core.LockoutThreshold {
		b.login("acme", "ann@acme.test", "guess", "", "198.51.100.1")
	}
	assertProblem(t, b.login("acme", "ann@acme.test", password, "", "192.0.2.1"), 429, problem.CodeLoginThrottled)

	for _, path := range []string{tpath("acme", "users", ann, "lockout"), tpath("acme", "users", ann, "totp")} {
		assertProblem(t, b.do("DELETE", path, member, nil), 403, problem.CodeForbidden)
		assertProblem(t, b.do("DELETE", path, other, nil), 404, problem.CodeNotFound)
	}
	assertProblem(t, b.do("DELETE", tpath("acme", "users", owner, "totp"), admin, nil), 403, problem.CodeForbidden)
	// adam's own access token may not reset adam's own TOTP.
	assertProblem(t, b.do("DELETE", tpath("acme", "users", b.userID("acme", admin, "adam@acme.test"), "totp"), adam, nil), 403, problem.CodeForbidden)

	b.must(204, "DELETE", tpath("acme", "users", ann, "lockout"), admin, nil)
	assertProblem(t, b.login("acme", "ann@acme.test", password, "", "192.0.2.1"), 401, problem.CodeMFARequired)
	b.must(204, "DELETE", tpath("acme", "users", ann, "totp"), admin, nil)
	assertProblem(t, b.do("DELETE", tpath("acme", "users", ann, "totp"), admin, nil), 404, problem.CodeNotFound)
	if r := b.login("acme", "ann@acme.test", password, "", "192.0.2.1"); r.Status != 200 {
		t.Errorf("login after the reset = %d %s, want 200", r.Status, r.Body)
	}
	var actions []string
	for _, e := range b.auditLog("acme", admin) {
		actions = append(actions, e.Action)
	}
	for _, want := range []string{"auth.unlock", "auth.totp_reset"} {
		if !slices.Contains(actions, want) {
			t.Errorf("audit log lacks %s", want)
		}
	}
}

// TestDisableTOTP: a user disables their own TOTP with a code; a wrong
// code is refused and counts toward the lock-out.
func TestDisableTOTP(t *testing.T) {
	t.Parallel()
	b := setupMFA(t)
	b.tenant("acme", tenant.Pooled)
	b.user("acme", "ann@acme.test", tenant.Member)
	tok := b.token("acme", "ann@acme.test")
	seed, _ := b.enrol("acme", tok)
	b.nextStep()
	wrong := "000000"
	if wrong == b.code(seed) {
		wrong = "111111"
	}
	// Enrolling again over a confirmed enrolment is refused: a stolen
	// token cannot swap the authenticator.
	assertProblem(t, b.do("POST", tpath("acme", "auth", "totp"), tok, nil), 409, problem.CodeConflict)
	for range core.LockoutThreshold {
		r := b.do("POST", tpath("acme", "auth", "totp", "disable"), tok, map[string]any{"code": wrong})
		b.core.Flush()
		assertProblem(t, r, 401, problem.CodeInvalidCredentials)
	}
	// Five wrong codes: locked out here and at login.
	assertProblem(t, b.do("POST", tpath("acme", "auth", "totp", "disable"), tok, map[string]any{"code": b.code(seed)}), 429, problem.CodeLoginThrottled)
	b.clock.Advance(time.Minute)
	b.must(204, "POST", tpath("acme", "auth", "totp", "disable"), tok, map[string]any{"code": b.code(seed)})
	if r := b.login("acme", "ann@acme.test", password, "", "192.0.2.1"); r.Status != 200 {
		t.Errorf("login after disabling = %d %s, want 200", r.Status, r.Body)
	}
	if !slices.Contains(b.events.actions(), "mfa-disabled") {
		t.Errorf("no mfa-disabled event: %q", b.events.actions())
	}
}

// TestStepUp: an enrolled user's login from an address never seen, without
// a code, is a step-up demanded; a user without a second factor is let in
// from a new address and the risk is published.
func TestStepUp(t *testing.T) {
	t.Parallel()
	b := setupMFA(t)
	b.tenant("acme", tenant.Pooled)
	b.user("acme", "ann@acme.test", tenant.Member)
	b.user("acme", "bob@acme.test", tenant.Member)
	seed, _ := b.enrol("acme", b.token("acme", "ann@acme.test"))
	b.nextStep()
	if r := b.login("acme", "ann@acme.test", password, b.code(seed), "192.0.2.1"); r.Status != 200 {
		t.Fatalf("login = %d %s", r.Status, r.Body)
	}
	assertProblem(t, b.login("acme", "ann@acme.test", password, "", "203.0.113.50"), 401, problem.CodeMFARequired)
	if !slices.Contains(b.events.actions(), "step-up-required") {
		t.Errorf("no step-up-required event: %q", b.events.actions())
	}
	b.token("acme", "bob@acme.test") // from 192.0.2.1
	if r := b.login("acme", "bob@acme.test", password, "", "203.0.113.50"); r.Status != 200 {
		t.Fatalf("bob from a new address = %d %s, want 200", r.Status, r.Body)
	}
	if !slices.Contains(b.events.actions(), "step-up-unavailable") {
		t.Errorf("no step-up-unavailable event: %q", b.events.actions())
	}
}

// TestLoginAddressLimit: one address flooding a slug's logins is held to
// its own limit, and does not spend the slug's: a real user from another
// address still logs in.
func TestLoginAddressLimit(t *testing.T) {
	t.Parallel()
	var waits int
	b := setupMFA(t, withAdmission(Admission{Limiter: ratelimit.NewLocal(),
		AddressLimit: ratelimit.Limit{Rate: 0.001, Burst: 5},
		AuthLimit:    ratelimit.Limit{Rate: 0.001, Burst: 10},
		LoginLimit:   ratelimit.Limit{Rate: 1e6, Burst: 1e6},
		refusalWait:  func(context.Context, time.Duration) { waits++ }}))
	b.tenant("acme", tenant.Pooled)
	b.user("acme", "ann@acme.test", tenant.Member)
	limited := 0
	for i := range 50 {
		r := b.login("acme", "user"+strconv.Itoa(i)+"@acme.test", "guess", "", "198.51.100.66")
		switch r.Status {
		case 401:
		case 429:
			assertProblem(t, r, 429, problem.CodeRateLimited)
			limited++
		default:
			t.Fatalf("flood login %d = %d %s", i, r.Status, r.Body)
		}
	}
	if limited != 45 {
		t.Errorf("%d of the flood's 50 logins refused, want 45 (its burst of 5 let through)", limited)
	}
	// The slug's ceiling of 10 was not spent by the flood's refusals.
	if r := b.login("acme", "ann@acme.test", password, "", "192.0.2.10"); r.Status != 200 {
		t.Errorf("a real user's login from another address during the flood = %d %s, want 200", r.Status, r.Body)
	}
	// IPv6 clients are limited by /64: walking the addresses of one's
	// prefix does not escape the limit.
	for i := range 6 {
		r := b.login("acme", "ann@acme.test", "guess", "", "2001:db8:1:2::"+strconv.Itoa(i+1))
		if i == 5 {
			assertProblem(t, r, 429, problem.CodeRateLimited)
		}
	}
}

// TestLockUser: a lock set through Scope.LockUser (what containment uses)
// refuses the password, and the password with a valid code too, until it
// ends or is lifted; a lock-out for failures never shortens it.
func TestLockUser(t *testing.T) {
	t.Parallel()
	b := setupMFA(t)
	b.tenant("acme", tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	ann := b.user("acme", "ann@acme.test", tenant.Member)
	seed, _ := b.enrol("acme", b.token("acme", "ann@acme.test"))
	b.nextStep()

	sc, err := b.core.Scope(context.Background(), &tenant.Principal{Kind: tenant.ActorOperator}, "acme", "req-containment")
	if err != nil {
		t.Fatal(err)
	}
	if err := sc.LockUser(context.Background(), "0192e7a0-0000-7000-8000-000000000000", b.clock.Now().Add(time.Hour), "containment: test"); err == nil {
		t.Error("LockUser of a user that does not exist = nil, want an error")
	}
	if err := sc.LockUser(context.Background(), store.UserID(ann), b.clock.Now().Add(time.Hour), "containment: suspicious session"); err != nil {
		t.Fatalf("LockUser = %v", err)
	}
	r := b.login("acme", "ann@acme.test", password, b.code(seed), "192.0.2.1")
	assertProblem(t, r, 429, problem.CodeLoginThrottled)
	if got := r.Header.Get("Retry-After"); got != "3600" {
		t.Errorf("Retry-After = %q, want 3600", got)
	}
	b.clock.Advance(59 * time.Minute)
	assertProblem(t, b.login("acme", "ann@acme.test", password, b.code(seed), "192.0.2.1"), 429, problem.CodeLoginThrottled)
	b.must(204, "DELETE", tpath("acme", "users", ann, "lockout"), admin, nil)
	if r := b.login("acme", "ann@acme.test", password, b.code(seed), "192.0.2.1"); r.Status != 200 {
		t.Errorf("login after the lock was lifted = %d %s, want 200", r.Status, r.Body)
	}
	var actions []string
	for _, e := range b.auditLog("acme", admin) {
		if e.Action == "auth.lock" && e.RequestID == "req-containment" && e.Actor == "operator" {
			actions = append(actions, e.Action)
		}
	}
	if len(actions) != 1 {
		t.Errorf("audit log has %d auth.lock entries of the containment request, want 1", len(actions))
	}
}
