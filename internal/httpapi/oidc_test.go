package httpapi

import (
	"context"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/ratelimit"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// count returns how many events of action and outcome concern tenant tid.
func (l *eventLog) count(tid tenant.ID, action, outcome string) int {
	n := 0
	for _, ev := range l.all() {
		if ev.Tenant == tid && ev.Action == action && ev.Outcome == outcome {
			n++
		}
	}
	return n
}

// oidcBundle is a bulkhead server with tenants federated to real OpenID
// providers on loopback servers.
type oidcBundle struct {
	*testBundle
	events *eventLog
	skew   *atomic.Int64 // added to the server's clock, in nanoseconds
}

func setupOIDC(t *testing.T, opts ...func(*Config)) *oidcBundle {
	t.Helper()
	ev := &eventLog{}
	skew := &atomic.Int64{}
	b := setupCore(t, t.TempDir(), func(c *core.Config) {
		c.Events = ev
		c.OIDCAllowPrivateNetworks = true // the test providers listen on loopback
		c.NowFunc = func() time.Time { return time.Now().Add(time.Duration(skew.Load())) }
	}, opts...)
	return &oidcBundle{testBundle: b, events: ev, skew: skew}
}

// federate creates tenant slug, registers a client for it at idp and
// configures the tenant with it; it returns the tenant's admin key.
func (b *oidcBundle) federate(slug string, idp *testIdP, jit bool) (tenant.ID, string) {
	b.t.Helper()
	tid := b.tenant(slug, tenant.Pooled)
	key := b.apiKey(slug, tenant.Admin)
	idp.client("client-"+slug, "secret-"+slug, b.srv.URL+"/v1/tenants/"+slug+"/auth/oidc/callback")
	b.must(200, "PUT", "/v1/tenants/"+slug+"/auth/oidc", key, map[string]any{"issuer": idp.issuer,
		"client_id": "client-" + slug, "client_secret": "secret-" + slug, "default_role": "member", "jit": jit})
	return tid, key
}

// browser is a user agent with a cookie jar that follows redirects, but
// stops before bulkhead's callback so that tests can inspect, alter or
// replay it.
type browser struct {
	t *testing.T
	c *http.Client
}

func newBrowser(t *testing.T) *browser {
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &browser{t: t, c: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if strings.HasSuffix(req.URL.Path, "/auth/oidc/callback") {
				return http.ErrUseLastResponse
			}
			return nil
		}}}
}

// get fetches u with the browser's cookies, plus extra ones.
func (br *browser) get(u string, extra ...*http.Cookie) *response {
	br.t.Helper()
	req, err := http.NewRequestWithContext(context.Background(), "GET", u, nil)
	if err != nil {
		br.t.Fatal(err)
	}
	for _, c := range extra {
		req.AddCookie(c)
	}
	res, err := br.c.Do(req)
	if err != nil {
		br.t.Fatalf("GET %s: %v", u, err)
	}
	defer res.Body.Close()
	body := make([]byte, 0, 512)
	buf := make([]byte, 512)
	for {
		n, err := res.Body.Read(buf)
		body = append(body, buf[:n]...)
		if err != nil {
			break
		}
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: body}
}

// start begins a login at tenant slug and goes through the provider; it
// returns the callback URL the provider sent the browser to, not yet
// visited.
func (br *browser) start(b *oidcBundle, slug string) *url.URL {
	br.t.Helper()
	r := br.get(b.srv.URL + "/v1/tenants/" + slug + "/auth/oidc/start")
	if r.Status != http.StatusFound {
		br.t.Fatalf("login at %s ended with %d %s, want a redirect to the callback", slug, r.Status, r.Body)
	}
	u, err := url.Parse(r.Header.Get("Location"))
	if err != nil || !strings.HasSuffix(u.Path, "/auth/oidc/callback") {
		br.t.Fatalf("login at %s ended at %q, want the callback", slug, r.Header.Get("Location"))
	}
	if u.Query().Get("code") == "" || u.Query().Get("state") == "" {
		br.t.Fatalf("callback %s lacks code or state", u)
	}
	return u
}

// binding returns the browser's binding cookie for tenant slug's callback.
func (br *browser) binding(b *oidcBundle, slug string) *http.Cookie {
	br.t.Helper()
	u, _ := url.Parse(b.srv.URL + "/v1/tenants/" + slug + "/auth/oidc/callback")
	for _, c := range br.c.Jar.Cookies(u) {
		if c.Name == oidcCookie {
			return &http.Cookie{Name: c.Name, Value: c.Value}
		}
	}
	br.t.Fatalf("no binding cookie for %s", slug)
	return nil
}

// login runs a whole login at tenant slug.
func (br *browser) login(b *oidcBundle, slug string) *response {
	br.t.Helper()
	return br.get(br.start(b, slug).String())
}

// withQuery returns u with the query parameters changed.
func withQuery(u *url.URL, kv ...string) string {
	q := u.Query()
	for i := 0; i+1 < len(kv); i += 2 {
		q.Set(kv[i], kv[i+1])
	}
	v := *u
	v.RawQuery = q.Encode()
	return v.String()
}

// at returns u's path and query on tenant slug's callback.
func callbackOf(b *oidcBundle, slug string, u *url.URL) *url.URL {
	v, _ := url.Parse(b.srv.URL + "/v1/tenants/" + slug + "/auth/oidc/callback")
	v.RawQuery = u.RawQuery
	return v
}

var alice = idpUser{Subject: "alice-248289761001", Email: "alice@example.com", EmailVerified: true}

// TestOIDCLogin: a federated login through a real provider creates the user
// on first login (jit), with the default role and no usable password,
// links it, and logs the same user in next time.
func TestOIDCLogin(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t)
	idp := newTestIdP(t)
	tid, key := b.federate("fed", idp, true)
	idp.as(alice)

	first := newBrowser(t)
	first.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	r := first.get(b.srv.URL + "/v1/tenants/fed/auth/oidc/start")
	if r.Status != http.StatusFound {
		t.Fatalf("start = %d %s", r.Status, r.Body)
	}
	loc, _ := url.Parse(r.Header.Get("Location"))
	q := loc.Query()
	if !strings.HasPrefix(loc.String(), idp.issuer+"/") || q.Get("client_id") != "client-fed" ||
		q.Get("code_challenge_method") != "S256" || q.Get("code_challenge") == "" || q.Get("nonce") == "" ||
		q.Get("scope") != "openid email profile" || q.Get("redirect_uri") != b.srv.URL+"/v1/tenants/fed/auth/oidc/callback" {
		t.Errorf("start redirects to %s", loc)
	}
	var cookie *http.Cookie
	for _, c := range (&http.Response{Header: r.Header}).Cookies() {
		if c.Name == oidcCookie {
			cookie = c
		}
	}
	if cookie == nil || !cookie.HttpOnly || cookie.SameSite != http.SameSiteLaxMode || cookie.Path != "/v1/tenants/fed/auth/oidc/callback" {
		t.Errorf("binding cookie = %+v, want HttpOnly, SameSite=Lax, path of the callback", cookie)
	}
	for _, leak := range []string{q.Get("nonce"), "secret-fed"} {
		if strings.Contains(q.Get("state"), leak) {
			t.Errorf("state %q shows %q", q.Get("state"), leak)
		}
	}

	var pair core.TokenPair
	res := newBrowser(t).login(b, "fed")
	if res.Status != 200 {
		t.Fatalf("callback = %d %s", res.Status, res.Body)
	}
	res.JSON(t, &pair)
	if pair.AccessToken == "" || pair.RefreshToken == "" || pair.TokenType != "Bearer" || pair.ExpiresIn <= 0 {
		t.Fatalf("callback answered %s", res.Body)
	}
	// The token works, with the default role: a member lists collections
	// but may not list users.
	b.must(200, "GET", "/v1/tenants/fed/collections", pair.AccessToken, nil)
	assertProblem(t, b.do("GET", "/v1/tenants/fed/users", pair.AccessToken, nil), 403, problem.CodeForbidden)
	b.must(200, "POST", "/v1/tenants/fed/auth/refresh", "", map[string]any{"refresh_token": pair.RefreshToken})

	users := b.must(200, "GET", "/v1/tenants/fed/users", key, nil).Map(t)["items"].([]any)
	if len(users) != 1 || users[0].(map[string]any)["email"] != alice.Email || users[0].(map[string]any)["role"] != "member" {
		t.Fatalf("users after the first login = %v", users)
	}
	// The next login is the same user.
	newBrowser(t).login(b, "fed")
	if users := b.must(200, "GET", "/v1/tenants/fed/users", key, nil).Map(t)["items"].([]any); len(users) != 1 {
		t.Errorf("users after the second login = %v, want the one user", users)
	}
	// A federated user has no password: no password logs it in.
	for _, pw := range []string{"correct horse battery", "", "x"} {
		r := b.do("POST", "/v1/tenants/fed/auth/login", "", map[string]any{"email": alice.Email, "password": pw})
		if r.Status == 200 {
			t.Fatalf("password login of a federated user with %q succeeded", pw)
		}
	}
	// The settings show no secret.
	cfg := b.must(200, "GET", "/v1/tenants/fed/auth/oidc", key, nil)
	if strings.Contains(string(cfg.Body), "secret-fed") || strings.Contains(string(cfg.Body), "client_secret") {
		t.Errorf("GET auth/oidc shows the secret: %s", cfg.Body)
	}
	// Audit and security events.
	audit := string(b.must(200, "GET", "/v1/tenants/fed/audit", key, nil).Body)
	for _, action := range []string{`"oidc.put"`, `"auth.oidc_login"`, `"user.create"`} {
		if !strings.Contains(audit, action) {
			t.Errorf("audit lacks %s: %s", action, audit)
		}
	}
	if n := b.events.count(tid, "oidc-login", "success"); n != 2 {
		t.Errorf("%d oidc-login success events, want 2", n)
	}
	if n := b.events.count(tid, "oidc-config-changed", "success"); n != 1 {
		t.Errorf("%d oidc-config-changed events, want 1", n)
	}
}

// TestOIDCAttacks performs the attacks on federated login and checks that
// each fails: states and codes carried between tenants, states altered,
// replayed, stale or of another browser, ID tokens with a wrong nonce or
// for another audience, and one provider serving two tenants.
func TestOIDCAttacks(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t)
	idpA, idpB := newTestIdP(t), newTestIdP(t)
	tidA, keyA := b.federate("ta", idpA, true)
	tidB, keyB := b.federate("tb", idpB, true)
	idpA.as(alice)
	idpB.as(idpUser{Subject: "bob-1", Email: "bob@example.com", EmailVerified: true})
	users := func(key, slug string) int {
		return len(b.must(200, "GET", "/v1/tenants/"+slug+"/users", key, nil).Map(t)["items"].([]any))
	}
	refused := func(what string, r *response, status int, code problem.Code) {
		if r.Status != status || r.Code(t) != string(code) {
			t.Errorf("%s = %d %s, want %d %s", what, r.Status, r.Body, status, code)
		}
	}

	t.Run("StateOfAAtB", func(t *testing.T) {
		br := newBrowser(t)
		u := br.start(b, "ta")
		// A's callback, code and state, and A's binding cookie, at B.
		r := br.get(callbackOf(b, "tb", u).String(), br.binding(b, "ta"))
		refused("A's state at B", r, 401, problem.CodeOIDCStateInvalid)
		if users(keyB, "tb") != 0 {
			t.Error("B has a user after A's state was presented there")
		}
	})

	t.Run("CodeOfIdPAWithStateOfB", func(t *testing.T) {
		br := newBrowser(t)
		ub := br.start(b, "tb")
		ua := br.start(b, "ta")
		// B's state and binding, with the code A's provider issued.
		r := br.get(withQuery(ub, "code", ua.Query().Get("code")))
		refused("IdP A's code with B's state", r, 401, problem.CodeOIDCLoginFailed)
		if users(keyB, "tb") != 0 {
			t.Error("B has a user after IdP A's code was presented there")
		}
	})

	t.Run("TamperedState", func(t *testing.T) {
		br := newBrowser(t)
		u := br.start(b, "ta")
		st := []byte(u.Query().Get("state"))
		binding := br.binding(b, "ta")
		for _, i := range []int{0, len(st) / 2, len(st) - 1} {
			bad := append([]byte(nil), st...)
			if bad[i] == 'A' {
				bad[i] = 'B'
			} else {
				bad[i] = 'A'
			}
			refused("tampered state", br.get(withQuery(u, "state", string(bad)), binding), 401, problem.CodeOIDCStateInvalid)
		}
		refused("forged state", br.get(withQuery(u, "state", "AQAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"), binding), 401, problem.CodeOIDCStateInvalid)
		// The state untouched, with its binding: the control.
		if r := br.get(u.String(), binding); r.Status != 200 {
			t.Errorf("untampered state = %d %s, want 200", r.Status, r.Body)
		}
	})

	t.Run("OtherBrowser", func(t *testing.T) {
		victim, attacker := newBrowser(t), newBrowser(t)
		// Login CSRF: the attacker's callback URL opened in the victim's
		// browser, which holds no binding or another login's.
		u := attacker.start(b, "ta")
		refused("callback without the binding cookie", victim.get(u.String()), 401, problem.CodeOIDCStateInvalid)
		victim.start(b, "ta")
		refused("callback with another login's binding", victim.get(u.String(), victim.binding(b, "ta")), 401, problem.CodeOIDCStateInvalid)
	})

	t.Run("Replay", func(t *testing.T) {
		br := newBrowser(t)
		u := br.start(b, "ta")
		binding := br.binding(b, "ta")
		if r := br.get(u.String()); r.Status != 200 {
			t.Fatalf("login = %d %s", r.Status, r.Body)
		}
		// The callback cleared the binding cookie; replayed with it, the
		// state is refused as used.
		refused("replayed callback", br.get(u.String()), 401, problem.CodeOIDCStateInvalid)
		r := br.get(u.String(), binding)
		refused("replayed callback with its cookie", r, 401, problem.CodeOIDCStateInvalid)
		if !strings.Contains(string(r.Body), "used") {
			t.Errorf("replay refused for another reason: %s", r.Body)
		}
	})

	t.Run("StaleState", func(t *testing.T) {
		br := newBrowser(t)
		u := br.start(b, "ta")
		b.skew.Store(int64(11 * time.Minute))
		defer b.skew.Store(0)
		refused("stale state", br.get(u.String()), 401, problem.CodeOIDCStateInvalid)
	})

	t.Run("WrongNonce", func(t *testing.T) {
		before := users(keyB, "tb")
		idpB.as(idpUser{Subject: "nonce-victim", Email: "nonce@example.com", EmailVerified: true})
		idpB.rewriteIDTokens(t, func(c map[string]any) { c["nonce"] = "not-the-login-nonce" })
		r := newBrowser(t).login(b, "tb")
		refused("ID token with a wrong nonce", r, 401, problem.CodeOIDCLoginFailed)
		if !strings.Contains(string(r.Body), "nonce") {
			t.Errorf("refused for another reason: %s", r.Body)
		}
		if users(keyB, "tb") != before {
			t.Error("a user was created from an ID token with a wrong nonce")
		}
	})

	t.Run("ResignedTokenAccepted", func(t *testing.T) {
		// The control of the two above: an ID token re-signed with its
		// claims unchanged passes, so their refusals are the claims'.
		idpB.as(idpUser{Subject: "resigned", Email: "resigned@example.com", EmailVerified: true})
		idpB.rewriteIDTokens(t, func(map[string]any) {})
		if r := newBrowser(t).login(b, "tb"); r.Status != 200 {
			t.Errorf("re-signed, unchanged ID token = %d %s, want 200", r.Status, r.Body)
		}
	})

	t.Run("IssuedToAnotherClient", func(t *testing.T) {
		// The audience includes B's client, but the token was issued to
		// another one.
		before := users(keyB, "tb")
		idpB.as(idpUser{Subject: "azp-victim", Email: "azp@example.com", EmailVerified: true})
		idpB.rewriteIDTokens(t, func(c map[string]any) { c["aud"] = []string{"client-tb", "client-x"}; c["azp"] = "client-x" })
		refused("ID token issued to another client", newBrowser(t).login(b, "tb"), 401, problem.CodeOIDCLoginFailed)
		if users(keyB, "tb") != before {
			t.Error("a user was created from an ID token issued to another client")
		}
	})

	t.Run("OtherAudience", func(t *testing.T) {
		before := users(keyB, "tb")
		idpB.as(idpUser{Subject: "aud-victim", Email: "aud@example.com", EmailVerified: true})
		idpB.rewriteIDTokens(t, func(c map[string]any) { c["aud"] = []string{"client-someone-else"}; c["azp"] = "client-someone-else" })
		refused("ID token for another audience", newBrowser(t).login(b, "tb"), 401, problem.CodeOIDCLoginFailed)
		if users(keyB, "tb") != before {
			t.Error("a user was created from an ID token for another audience")
		}
	})

	t.Run("SameIssuerTwoTenants", func(t *testing.T) {
		// Tenant tc federates with A's provider too, without jit, and has a
		// password user with alice's email.
		tidC, keyC := b.federate("tc", idpA, false)
		b.must(201, "POST", "/v1/tenants/tc/users", b.admin, map[string]any{"email": alice.Email, "password": "correct horse battery", "role": "owner"})
		idpA.as(alice)
		if r := newBrowser(t).login(b, "ta"); r.Status != 200 {
			t.Fatalf("alice's login at ta = %d %s", r.Status, r.Body)
		}
		// Linked in ta, a stranger in tc: neither the link nor the email
		// lets her in.
		refused("alice at tc", newBrowser(t).login(b, "tc"), 403, problem.CodeOIDCNoAccount)
		// Not even when tc creates users on first login: the email is
		// taken, and never linked by email.
		b.must(200, "PUT", "/v1/tenants/tc/auth/oidc", keyC, map[string]any{"issuer": idpA.issuer,
			"client_id": "client-tc", "client_secret": "secret-tc", "default_role": "member", "jit": true})
		refused("alice at tc with jit", newBrowser(t).login(b, "tc"), 403, problem.CodeOIDCNoAccount)
		if n := users(keyC, "tc"); n != 1 {
			t.Errorf("tc has %d users, want its one", n)
		}
		if b.events.count(tidC, "oidc-login", "failure") < 2 {
			t.Error("tc's refusals published no security events")
		}
		// A user of ta linked to alice is still ta's only.
		if n := users(keyA, "ta"); n != 1 {
			t.Errorf("ta has %d users, want alice alone", n)
		}
	})

	if b.events.count(tidA, "oidc-login", "failure") == 0 || b.events.count(tidB, "oidc-login", "failure") == 0 {
		t.Error("failed logins published no security events")
	}
	audit := string(b.must(200, "GET", "/v1/tenants/tb/audit", keyB, nil).Body)
	if !strings.Contains(audit, `"failure"`) {
		t.Errorf("tb's audit records no failed login: %s", audit)
	}
}

// TestOIDCAccountRules: without jit only linked identities log in; with jit
// a new user needs a verified email.
func TestOIDCAccountRules(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t)
	idp := newTestIdP(t)
	_, key := b.federate("closed", idp, false)
	idp.as(alice)
	r := newBrowser(t).login(b, "closed")
	if r.Status != 403 || r.Code(t) != string(problem.CodeOIDCNoAccount) {
		t.Errorf("unlinked login without jit = %d %s, want 403 oidc_no_account", r.Status, r.Body)
	}
	b.must(200, "PUT", "/v1/tenants/closed/auth/oidc", key, map[string]any{"issuer": idp.issuer,
		"client_id": "client-closed", "client_secret": "secret-closed", "jit": true})
	idp.as(idpUser{Subject: "unverified", Email: "mallory@example.com", EmailVerified: false})
	r = newBrowser(t).login(b, "closed")
	if r.Status != 403 || r.Code(t) != string(problem.CodeOIDCNoAccount) {
		t.Errorf("jit login with an unverified email = %d %s, want 403 oidc_no_account", r.Status, r.Body)
	}
	if n := len(b.must(200, "GET", "/v1/tenants/closed/users", key, nil).Map(t)["items"].([]any)); n != 0 {
		t.Errorf("%d users, want none", n)
	}
	// The default role when none is given is viewer.
	idp.as(alice)
	if r := newBrowser(t).login(b, "closed"); r.Status != 200 {
		t.Fatalf("jit login = %d %s", r.Status, r.Body)
	}
	users := b.must(200, "GET", "/v1/tenants/closed/users", key, nil).Map(t)["items"].([]any)
	if len(users) != 1 || users[0].(map[string]any)["role"] != "viewer" {
		t.Errorf("users = %v, want alice as viewer", users)
	}
}

// TestOIDCSettings: who may configure federation, and what is refused.
func TestOIDCSettings(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t)
	idp := newTestIdP(t)
	b.tenant("cfg", tenant.Pooled)
	b.tenant("other", tenant.Pooled)
	admin := b.apiKey("cfg", tenant.Admin)
	member := b.apiKey("cfg", tenant.Member)
	otherAdmin := b.apiKey("other", tenant.Admin)
	body := func(kv ...any) map[string]any {
		m := map[string]any{"issuer": idp.issuer, "client_id": "c", "client_secret": "s"}
		for i := 0; i+1 < len(kv); i += 2 {
			m[kv[i].(string)] = kv[i+1]
		}
		return m
	}
	const path = "/v1/tenants/cfg/auth/oidc"
	assertProblem(t, b.do("PUT", path, member, body()), 403, problem.CodeForbidden)
	assertProblem(t, b.do("GET", path, member, nil), 403, problem.CodeForbidden)
	assertProblem(t, b.do("PUT", path, otherAdmin, body()), 404, problem.CodeNotFound)
	assertProblem(t, b.do("PUT", path, admin, body("default_role", "owner")), 403, problem.CodeForbidden)
	for _, bad := range []string{"http://idp.example.com", "ftp://127.0.0.1", "https://idp.example.com/?x=1", "https://u:p@idp.example.com", "idp.example.com"} {
		r := b.do("PUT", path, admin, body("issuer", bad))
		assertProblem(t, r, 400, problem.CodeInvalidRequest)
		if !strings.Contains(string(r.Body), `"issuer"`) {
			t.Errorf("issuer %q refused without naming the field: %s", bad, r.Body)
		}
	}
	// An issuer whose discovery fails is refused at once.
	r := b.do("PUT", path, admin, body("issuer", "http://127.0.0.1:1"))
	assertProblem(t, r, 422, problem.CodeOIDCProviderError)
	assertProblem(t, b.do("GET", path, admin, nil), 404, problem.CodeNotFound)
	assertProblem(t, b.do("GET", "/v1/tenants/cfg/auth/oidc/start", "", nil), 404, problem.CodeNotFound)

	var cfg core.OIDCConfig
	b.must(200, "PUT", path, admin, body()).JSON(t, &cfg)
	if cfg.Issuer != idp.issuer || cfg.ClientID != "c" || cfg.DefaultRole != tenant.Viewer || cfg.JIT {
		t.Errorf("defaults = %+v, want viewer and no jit", cfg)
	}
	b.must(204, "DELETE", path, admin, nil)
	assertProblem(t, b.do("DELETE", path, admin, nil), 404, problem.CodeNotFound)
	assertProblem(t, b.do("GET", "/v1/tenants/cfg/auth/oidc/start", "", nil), 404, problem.CodeNotFound)
	assertProblem(t, b.do("GET", "/v1/tenants/nobody/auth/oidc/start", "", nil), 404, problem.CodeNotFound)
}

// TestOIDCAuthLimit: start and callback are held to the login limits.
func TestOIDCAuthLimit(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t, withAdmission(Admission{Limiter: ratelimit.NewLocal(),
		AuthLimit:   ratelimit.Limit{Rate: 0.001, Burst: 2},
		refusalWait: func(context.Context, time.Duration) {}}))
	idp := newTestIdP(t)
	b.federate("lim", idp, true)
	assertProblem(t, b.do("GET", "/v1/tenants/lim/auth/oidc/callback?code=x&state=y", "", nil), 401, problem.CodeOIDCStateInvalid)
	br := newBrowser(t)
	br.c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	if r := br.get(b.srv.URL + "/v1/tenants/lim/auth/oidc/start"); r.Status != 302 {
		t.Fatalf("start = %d %s", r.Status, r.Body)
	}
	assertProblem(t, br.get(b.srv.URL+"/v1/tenants/lim/auth/oidc/start"), 429, problem.CodeRateLimited)
	assertProblem(t, b.do("GET", "/v1/tenants/lim/auth/oidc/callback?code=x&state=y", "", nil), 429, problem.CodeRateLimited)
}

// TestOIDCPrivateNetworks: by default a tenant admin cannot point the server
// at a provider on loopback or a private network: the connection is refused
// before anything is sent, so the server probes nothing.
func TestOIDCPrivateNetworks(t *testing.T) {
	t.Parallel()
	b := setup(t) // OIDCAllowPrivateNetworks off, as in production
	idp := newTestIdP(t)
	b.tenant("ssrf", tenant.Pooled)
	key := b.apiKey("ssrf", tenant.Admin)
	for _, issuer := range []string{idp.issuer, strings.Replace(idp.issuer, "127.0.0.1", "localhost", 1)} {
		r := b.do("PUT", "/v1/tenants/ssrf/auth/oidc", key, map[string]any{"issuer": issuer, "client_id": "c", "client_secret": "s"})
		assertProblem(t, r, 422, problem.CodeOIDCProviderError)
	}
	if n := idp.hits.Load(); n != 0 {
		t.Errorf("the provider on loopback received %d requests, want none", n)
	}
}

// TestOIDCSuspendedTenant: a suspended tenant's federated logins fail once
// the provider has authenticated the user, and only then say why.
func TestOIDCSuspendedTenant(t *testing.T) {
	t.Parallel()
	b := setupOIDC(t)
	idp := newTestIdP(t)
	b.federate("sus", idp, true)
	idp.as(alice)
	if r := newBrowser(t).login(b, "sus"); r.Status != 200 {
		t.Fatalf("login = %d %s", r.Status, r.Body)
	}
	b.must(200, "PATCH", "/v1/tenants/sus", b.admin, map[string]any{"status": "suspended"})
	assertProblem(t, newBrowser(t).login(b, "sus"), 403, problem.CodeTenantSuspended)
	// Without the provider's word, nothing tells.
	assertProblem(t, b.do("GET", "/v1/tenants/sus/auth/oidc/callback?code=x&state=y", "", nil), 401, problem.CodeOIDCStateInvalid)
}
