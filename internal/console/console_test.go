package console

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// fakeAPI stands in for the API handler: it records each request and
// answers with answer.
type fakeAPI struct {
	mu     sync.Mutex
	calls  []*http.Request
	bodies []string
	answer func(r *http.Request, body string) (int, any)
}

func (f *fakeAPI) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	b, _ := io.ReadAll(r.Body)
	f.mu.Lock()
	f.calls = append(f.calls, r)
	f.bodies = append(f.bodies, string(b))
	f.mu.Unlock()
	status, v := http.StatusOK, any(map[string]any{})
	if f.answer != nil {
		status, v = f.answer(r, string(b))
	}
	if status >= 400 {
		w.Header().Set("Content-Type", "application/problem+json")
	} else {
		w.Header().Set("Content-Type", "application/json")
	}
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// called returns the requests the API received for method and path.
func (f *fakeAPI) called(method, path string) []*http.Request {
	f.mu.Lock()
	defer f.mu.Unlock()
	var out []*http.Request
	for _, r := range f.calls {
		if r.Method == method && r.URL.Path == path {
			out = append(out, r)
		}
	}
	return out
}

var testKey = bytes.Repeat([]byte{7}, 32)

func newTestConsole(t *testing.T, api http.Handler) *Console {
	t.Helper()
	c, err := New(Config{API: api, CookieKey: testKey, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return c
}

// sessionCookieFor seals s as a session cookie of c.
func sessionCookieFor(t *testing.T, c *Console, s *session) *http.Cookie {
	t.Helper()
	v, err := c.sealer.seal(sessionCookie, s)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Cookie{Name: sessionCookie, Value: v}
}

func operatorSession() *session {
	return &session{Kind: kindOperator, Cred: credOperator, Credential: "operator-secret-token", CSRF: "csrf-token-1",
		Who: "operator", Expires: time.Now().Add(time.Hour).Unix()}
}

func TestSessionSealing(t *testing.T) {
	s, err := newSealer(testKey)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	good := operatorSession()
	sealed, err := s.seal(sessionCookie, good)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(sealed, "operator-secret-token") {
		t.Fatal("the sealed cookie shows the credential")
	}
	got, err := s.openSession(sealed, now)
	if err != nil || got.Credential != good.Credential || got.CSRF != good.CSRF {
		t.Fatalf("open: %+v, %v", got, err)
	}

	raw := []byte(sealed)
	for _, i := range []int{0, len(raw) / 2, len(raw) - 1} {
		tampered := bytes.Clone(raw)
		if tampered[i] == 'A' {
			tampered[i] = 'B'
		} else {
			tampered[i] = 'A'
		}
		if _, err := s.openSession(string(tampered), now); err == nil {
			t.Errorf("a cookie changed at byte %d opened", i)
		}
	}
	if _, err := s.openSession(sealed[:20], now); err == nil {
		t.Error("a truncated cookie opened")
	}

	expired := operatorSession()
	expired.Expires = now.Add(-time.Second).Unix()
	sealedExpired, _ := s.seal(sessionCookie, expired)
	if _, err := s.openSession(sealedExpired, now); err == nil {
		t.Error("an expired session opened")
	}

	other, _ := newSealer(bytes.Repeat([]byte{8}, 32))
	if _, err := other.openSession(sealed, now); err == nil {
		t.Error("a cookie opened under another key")
	}

	// A value sealed for the login cookie does not open as a session.
	asLogin, _ := s.seal(loginCookie, good)
	if _, err := s.openSession(asLogin, now); err == nil {
		t.Error("a login cookie's value opened as a session")
	}

	if _, err := newSealer(make([]byte, 16)); err == nil {
		t.Error("a 16-byte cookie key was accepted")
	}
}

// TestSessionCookieRefusedOverHTTP: a tampered cookie is not a session:
// the page sends the browser to the login page and clears the cookie.
func TestTamperedCookieRedirectsToLogin(t *testing.T) {
	api := &fakeAPI{}
	c := newTestConsole(t, api)
	ck := sessionCookieFor(t, c, operatorSession())
	ck.Value = ck.Value[:len(ck.Value)-2] + "AA"
	req := httptest.NewRequest("GET", "http://127.0.0.1:8080/ui/audit", nil)
	req.AddCookie(ck)
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	if rec.Code != http.StatusSeeOther || !strings.HasPrefix(rec.Header().Get("Location"), "/ui/login") {
		t.Fatalf("status %d, Location %q; want 303 to the login page", rec.Code, rec.Header().Get("Location"))
	}
	if len(api.calls) != 0 {
		t.Errorf("the API was called %d times with a tampered cookie", len(api.calls))
	}
}

func TestCSRF(t *testing.T) {
	api := &fakeAPI{answer: func(r *http.Request, body string) (int, any) {
		return http.StatusOK, map[string]any{"slug": "acme", "name": "Acme", "plan": "free", "status": "suspended"}
	}}
	c := newTestConsole(t, api)
	sess := operatorSession()
	post := func(form url.Values, header http.Header) *httptest.ResponseRecorder {
		req := httptest.NewRequest("POST", "http://127.0.0.1:8080/ui/tenants/acme/status", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		for k, v := range header {
			req.Header[k] = v
		}
		req.AddCookie(sessionCookieFor(t, c, sess))
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, req)
		return rec
	}
	patches := func() int { return len(api.called("PATCH", "/v1/tenants/acme")) }

	if rec := post(url.Values{"status": {"suspended"}}, nil); rec.Code != http.StatusForbidden ||
		!strings.Contains(rec.Body.String(), "csrf_token_invalid") {
		t.Errorf("without the token: status %d; want 403 csrf_token_invalid", rec.Code)
	}
	if rec := post(url.Values{"status": {"suspended"}, "csrf": {"another-token"}}, nil); rec.Code != http.StatusForbidden {
		t.Errorf("with a wrong token: status %d; want 403", rec.Code)
	}
	if n := patches(); n != 0 {
		t.Fatalf("refused forms reached the API %d times", n)
	}
	// From another site, even with the right token (a page there cannot
	// know it, but the check does not rest on that alone).
	if rec := post(url.Values{"status": {"suspended"}, "csrf": {sess.CSRF}},
		http.Header{"Sec-Fetch-Site": {"cross-site"}, "Origin": {"https://evil.example"}}); rec.Code != http.StatusForbidden ||
		!strings.Contains(rec.Body.String(), "cross_origin_refused") {
		t.Errorf("cross-site: status %d; want 403 cross_origin_refused", rec.Code)
	}
	if n := patches(); n != 0 {
		t.Fatalf("a cross-site form reached the API %d times", n)
	}
	if rec := post(url.Values{"status": {"suspended"}, "csrf": {sess.CSRF}}, http.Header{"Sec-Fetch-Site": {"same-origin"}}); rec.Code != http.StatusSeeOther {
		t.Errorf("with the token: status %d; want 303 back to the tenant page: %s", rec.Code, rec.Body)
	}
	// The header htmx sends works as the field does.
	if rec := post(url.Values{"status": {"active"}}, http.Header{"X-Csrf-Token": {sess.CSRF}}); rec.Code != http.StatusSeeOther {
		t.Errorf("with the token in X-CSRF-Token: status %d; want 303", rec.Code)
	}
	if n := patches(); n != 2 {
		t.Errorf("the API received %d PATCHes; want 2", n)
	}
}

func TestCallCarriesCredentialAndClient(t *testing.T) {
	api := &fakeAPI{}
	c := newTestConsole(t, api)
	req := httptest.NewRequest("GET", "http://console.example/ui/audit", nil)
	req.RemoteAddr = "203.0.113.9:51234"
	req.Header.Set("X-Forwarded-For", "198.51.100.7")
	req.Header.Set("Cookie", "bulkhead_console=should-not-travel")
	s := operatorSession()
	if err := c.call(req, s, "PATCH", "/v1/tenants/acme", map[string]string{"plan": "pro"}, nil); err != nil {
		t.Fatal(err)
	}
	got := api.calls[0]
	if h := got.Header.Get("Authorization"); h != "Bearer "+s.Credential {
		t.Errorf("Authorization %q; want the session's credential", h)
	}
	if got.RemoteAddr != req.RemoteAddr || got.Header.Get("X-Forwarded-For") != "198.51.100.7" || got.Host != "console.example" {
		t.Errorf("RemoteAddr %q, X-Forwarded-For %q, Host %q; want the browser's", got.RemoteAddr, got.Header.Get("X-Forwarded-For"), got.Host)
	}
	if got.Header.Get("Cookie") != "" {
		t.Error("the console's cookie was passed to the API")
	}
	if api.bodies[0] != `{"plan":"pro"}` || got.Header.Get("Content-Type") != "application/json" {
		t.Errorf("body %q, Content-Type %q", api.bodies[0], got.Header.Get("Content-Type"))
	}

	api.answer = func(*http.Request, string) (int, any) {
		return http.StatusForbidden, map[string]any{"code": "forbidden", "title": "Forbidden", "detail": "no", "status": 403}
	}
	err := c.call(req, s, "GET", "/v1/tenants", nil, nil)
	if e := asAPIError(err); e == nil || e.Status != 403 || e.Code != "forbidden" || e.Detail != "no" {
		t.Errorf("error %#v; want the API's problem", err)
	}
}

func TestSecurityHeaders(t *testing.T) {
	c := newTestConsole(t, &fakeAPI{})
	for _, path := range []string{"/ui/login", "/ui/static/console.css", "/ui/nothing-here"} {
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1/"+strings.TrimPrefix(path, "/"), nil))
		csp := rec.Header().Get("Content-Security-Policy")
		for _, want := range []string{"script-src 'self'", "style-src 'self'", "frame-ancestors 'none'", "default-src 'none'"} {
			if !strings.Contains(csp, want) {
				t.Errorf("%s: CSP %q lacks %q", path, csp, want)
			}
		}
		if strings.Contains(csp, "unsafe-inline") || strings.Contains(csp, "unsafe-eval") {
			t.Errorf("%s: CSP %q allows inline or eval", path, csp)
		}
		if rec.Header().Get("X-Frame-Options") != "DENY" || rec.Header().Get("X-Content-Type-Options") != "nosniff" {
			t.Errorf("%s: headers %v", path, rec.Header())
		}
	}
}

// TestTemplatesHaveNoInlineCode keeps the CSP's promise: no inline
// script, style attribute or event handler in any template.
func TestTemplatesHaveNoInlineCode(t *testing.T) {
	c := newTestConsole(t, &fakeAPI{})
	for name, p := range c.pages {
		for _, tmpl := range p.t.Templates() {
			if tmpl.Tree == nil {
				continue
			}
			src := tmpl.Tree.Root.String()
			for _, bad := range []string{"<script>", " style=", " onclick=", " onload=", " onsubmit=", "javascript:", "hx-on"} {
				if strings.Contains(strings.ToLower(src), bad) {
					t.Errorf("page %s, template %s: contains %q", name, tmpl.Name(), bad)
				}
			}
		}
	}
}

// loginFlow runs the login form: GET for the login cookie and token,
// then POST form; it returns the POST's answer.
func loginFlow(t *testing.T, c *Console, host string, form url.Values) *httptest.ResponseRecorder {
	t.Helper()
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest("GET", "http://"+host+"/ui/login", nil))
	var loginCk *http.Cookie
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == loginCookie {
			loginCk = ck
		}
	}
	if loginCk == nil {
		t.Fatal("the login page set no login cookie")
	}
	var st loginState
	if err := c.sealer.open(loginCookie, loginCk.Value, &st); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(rec.Body.String(), st.CSRF) {
		t.Fatal("the login form does not carry the login cookie's token")
	}
	form.Set("csrf", st.CSRF)
	req := httptest.NewRequest("POST", "http://"+host+"/ui/login", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(loginCk)
	rec = httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	return rec
}

func sessionFrom(t *testing.T, c *Console, rec *httptest.ResponseRecorder) (*http.Cookie, *session) {
	t.Helper()
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == sessionCookie && ck.MaxAge > 0 {
			s, err := c.sealer.openSession(ck.Value, time.Now())
			if err != nil {
				t.Fatal(err)
			}
			return ck, s
		}
	}
	return nil, nil
}

func TestLoginOperator(t *testing.T) {
	api := &fakeAPI{answer: func(r *http.Request, _ string) (int, any) {
		if r.Header.Get("Authorization") != "Bearer the-operator-token-123456" {
			return 401, map[string]any{"code": "unauthenticated", "detail": "bad token"}
		}
		return 200, map[string]any{"items": []any{}}
	}}
	c := newTestConsole(t, api)

	rec := loginFlow(t, c, "127.0.0.1:8080", url.Values{"kind": {"operator"}, "token": {"wrong-token-wrong-token"}})
	if rec.Code != 401 || !strings.Contains(rec.Body.String(), "unauthenticated") {
		t.Errorf("wrong token: status %d; want 401 showing unauthenticated", rec.Code)
	}
	if ck, _ := sessionFrom(t, c, rec); ck != nil {
		t.Error("a wrong token got a session")
	}

	rec = loginFlow(t, c, "127.0.0.1:8080", url.Values{"kind": {"operator"}, "token": {"the-operator-token-123456"}})
	ck, s := sessionFrom(t, c, rec)
	if rec.Code != http.StatusSeeOther || ck == nil {
		t.Fatalf("status %d, cookie %v; want 303 and a session", rec.Code, ck)
	}
	if !ck.HttpOnly || ck.SameSite != http.SameSiteStrictMode || ck.Path != "/ui" || !ck.Secure {
		t.Errorf("cookie %+v; want HttpOnly, SameSite=Strict, Path=/ui, Secure on loopback", ck)
	}
	if s.Kind != kindOperator || s.CSRF == "" {
		t.Errorf("session %+v", s)
	}

	// Over plain HTTP to another host the cookie cannot be Secure (the
	// browser would drop it), and the login page says so.
	rec = httptest.NewRecorder()
	c.ServeHTTP(rec, httptest.NewRequest("GET", "http://console.example/ui/login", nil))
	if !strings.Contains(rec.Body.String(), "not encrypted") {
		t.Error("the login page over plain HTTP to another host does not warn")
	}
	rec = loginFlow(t, c, "console.example", url.Values{"kind": {"operator"}, "token": {"the-operator-token-123456"}})
	if ck, _ := sessionFrom(t, c, rec); ck == nil || ck.Secure {
		t.Errorf("plain HTTP to another host: cookie %+v; want a session cookie without Secure", ck)
	}
	// Without the login cookie's token, the form is refused.
	req := httptest.NewRequest("POST", "http://127.0.0.1/ui/login",
		strings.NewReader(url.Values{"kind": {"operator"}, "token": {"the-operator-token-123456"}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	rec = httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	if ck, _ := sessionFrom(t, c, rec); rec.Code != http.StatusForbidden || ck != nil {
		t.Errorf("login without its token: status %d, cookie %v; want 403 and none", rec.Code, ck)
	}
}

func TestLoginPasswordAsksForTOTP(t *testing.T) {
	api := &fakeAPI{answer: func(r *http.Request, body string) (int, any) {
		var p map[string]string
		_ = json.Unmarshal([]byte(body), &p)
		switch {
		case p["password"] != "pw-right-one":
			return 401, map[string]any{"code": "invalid_credentials"}
		case p["totp"] == "":
			return 401, map[string]any{"code": "mfa_required", "detail": "give the code"}
		case p["totp"] != "123456":
			return 401, map[string]any{"code": "invalid_credentials"}
		}
		return 200, map[string]any{"access_token": "access-1", "refresh_token": "refresh-1", "expires_in": 900}
	}}
	c := newTestConsole(t, api)
	rec := loginFlow(t, c, "127.0.0.1", url.Values{"kind": {"password"}, "tenant": {"acme"}, "email": {"a@acme.io"}, "password": {"pw-right-one"}})
	if rec.Code != 200 || !strings.Contains(rec.Body.String(), `id="totp"`) {
		t.Fatalf("status %d; want the TOTP step: %s", rec.Code, rec.Body)
	}
	if strings.Contains(rec.Body.String(), "pw-right-one") {
		t.Fatal("the TOTP step shows the password")
	}
	var loginCk *http.Cookie
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == loginCookie && ck.MaxAge >= 0 {
			loginCk = ck
		}
	}
	if loginCk != nil && (loginCk.MaxAge != 0 || !loginCk.Expires.IsZero()) {
		t.Error("the cookie holding the pending password is a persistent cookie")
	}
	var st loginState
	if loginCk == nil || c.sealer.open(loginCookie, loginCk.Value, &st) != nil {
		t.Fatal("no pending login")
	}
	req := httptest.NewRequest("POST", "http://127.0.0.1/ui/login",
		strings.NewReader(url.Values{"kind": {"password"}, "totp": {"123456"}, "csrf": {st.CSRF}}.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.AddCookie(loginCk)
	rec = httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	ck, s := sessionFrom(t, c, rec)
	if ck == nil || s.Credential != "access-1" || s.Refresh != "refresh-1" || s.Tenant != "acme" {
		t.Fatalf("status %d, session %+v; want signed in with the tokens", rec.Code, s)
	}
	if logins := api.called("POST", "/v1/tenants/acme/auth/login"); len(logins) != 2 {
		t.Errorf("%d logins; want 2", len(logins))
	}
}

// TestRefreshOnce: a page and its polls arriving together with an expired
// access token refresh it once; the API would take a second use of the
// refresh token for theft and end the login.
func TestRefreshOnce(t *testing.T) {
	var refreshes atomic.Int32
	api := &fakeAPI{answer: func(r *http.Request, body string) (int, any) {
		if r.URL.Path == "/v1/tenants/acme/auth/refresh" {
			if !strings.Contains(body, `"refresh-old"`) || refreshes.Add(1) > 1 {
				return 401, map[string]any{"code": "invalid_credentials"}
			}
			time.Sleep(20 * time.Millisecond) // let the others arrive meanwhile
			return 200, map[string]any{"access_token": "access-new", "refresh_token": "refresh-new", "expires_in": 900}
		}
		if r.Header.Get("Authorization") != "Bearer access-new" {
			return 401, map[string]any{"code": "unauthenticated"}
		}
		return 200, map[string]any{}
	}}
	c := newTestConsole(t, api)
	s := &session{Kind: kindTenant, Tenant: "acme", Cred: credToken, Credential: "access-old", Refresh: "refresh-old",
		AccessExpires: time.Now().Add(-time.Minute).Unix(), CSRF: "x", Expires: time.Now().Add(time.Hour).Unix()}
	ck := sessionCookieFor(t, c, s)
	var wg sync.WaitGroup
	got := make([]*session, 8)
	for i := range got {
		wg.Go(func() {
			req := httptest.NewRequest("GET", "http://127.0.0.1/ui/", nil)
			req.AddCookie(ck)
			got[i] = c.session(httptest.NewRecorder(), req)
		})
	}
	wg.Wait()
	if n := refreshes.Load(); n != 1 {
		t.Errorf("%d refreshes; want 1", n)
	}
	for i, g := range got {
		if g == nil || g.Credential != "access-new" || g.Refresh != "refresh-new" {
			t.Errorf("request %d: session %+v; want the new tokens", i, g)
		}
	}
}

func TestSafeNext(t *testing.T) {
	for in, want := range map[string]string{
		"/ui/audit": "/ui/audit", "/ui/tenants/acme": "/ui/tenants/acme", "//evil.example/ui/": "", "https://evil.example": "",
		"/ui/login": "", "/v1/tenants": "", "/ui/\\evil": "",
	} {
		if got := safeNext(in); got != want {
			t.Errorf("safeNext(%q) = %q; want %q", in, got, want)
		}
	}
}

func TestTokenTenant(t *testing.T) {
	payload := base64.RawURLEncoding.EncodeToString([]byte(`{"tid":"01a2-tenant","sub":"u1"}`))
	if got := tokenTenant("eyJhbGciOiJFZERTQSJ9." + payload + ".c2ln"); got != "01a2-tenant" {
		t.Errorf("tokenTenant = %q", got)
	}
	for _, bad := range []string{"", "a.b", "a.!!!.c", "a." + base64.RawURLEncoding.EncodeToString([]byte("[]")) + ".c"} {
		if got := tokenTenant(bad); got != "" {
			t.Errorf("tokenTenant(%q) = %q; want empty", bad, got)
		}
	}
}

func TestStatic(t *testing.T) {
	c := newTestConsole(t, &fakeAPI{})
	for path, want := range map[string]int{
		"/ui/static/vendor/htmx.min.js": 200, "/ui/static/console.css": 200, "/ui/static/vendor/": 404, "/ui/static/": 404,
		"/ui/static/nothing.js": 404,
	} {
		rec := httptest.NewRecorder()
		c.ServeHTTP(rec, httptest.NewRequest("GET", "http://127.0.0.1"+path, nil))
		if rec.Code != want {
			t.Errorf("GET %s: %d; want %d", path, rec.Code, want)
		}
	}
}

// TestRefreshRefusedEndsSession: a refused refresh ends the session; a
// refresh the API cannot serve now (503) does not.
func TestRefreshRefusedEndsSession(t *testing.T) {
	status := 401
	api := &fakeAPI{answer: func(r *http.Request, _ string) (int, any) {
		return status, map[string]any{"code": "whatever"}
	}}
	c := newTestConsole(t, api)
	for _, tc := range []struct {
		status int
		ends   bool
	}{{401, true}, {503, false}, {429, false}} {
		status = tc.status
		s := &session{Kind: kindTenant, Tenant: "acme", Cred: credToken, Credential: "a", Refresh: fmt.Sprint("r", tc.status),
			AccessExpires: time.Now().Add(-time.Minute).Unix(), CSRF: "x", Expires: time.Now().Add(time.Hour).Unix()}
		req := httptest.NewRequest("GET", "http://127.0.0.1/ui/", nil)
		req.AddCookie(sessionCookieFor(t, c, s))
		rec := httptest.NewRecorder()
		got := c.session(rec, req)
		if (got == nil) != tc.ends {
			t.Errorf("refresh answered %d: session %v; want ended %v", tc.status, got, tc.ends)
		}
		cleared := strings.Contains(rec.Header().Get("Set-Cookie"), "Max-Age=0")
		if cleared != tc.ends {
			t.Errorf("refresh answered %d: cookie cleared %v; want %v", tc.status, cleared, tc.ends)
		}
	}
}
