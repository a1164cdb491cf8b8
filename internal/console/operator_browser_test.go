package console_test

import (
	"encoding/hex"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/bulkheadhq/bulkhead/internal/console"
)

// tenantStatus reads a tenant's status and plan through the API.
func (s *testServer) tenant(t *testing.T, slug string) (status, plan string) {
	t.Helper()
	var v struct{ Status, Plan string }
	s.api(t, "GET", "/v1/tenants/"+slug, operatorToken, nil, http.StatusOK, &v)
	return v.Status, v.Plan
}

// noProblems fails the test if the page logged a CSP violation, a
// JavaScript error or an uncaught exception.
func noProblems(t *testing.T, problems func() []string) {
	t.Helper()
	for _, p := range problems() {
		t.Errorf("the page logged: %s", p)
	}
}

// TestBrowserOperatorDashboard signs in with the operator token and finds
// the tenants listed with their plan and status, the session cookie
// HttpOnly and SameSite=Strict, the skip link first in keyboard order, and
// no CSP violation or script error.
func TestBrowserOperatorDashboard(t *testing.T) {
	ctx := newBrowser(t)
	srv := startServer(t)
	srv.createTenant(t, "acme", "")
	srv.createTenant(t, "globex", "")
	problems := watchPage(t, ctx)

	open(t, ctx, srv, "/ui/login", "login")
	accessible(t, ctx, "login")
	shot(t, ctx, "login")
	loginOperator(t, ctx, srv)
	logTiming(t, ctx, "dashboard")
	accessible(t, ctx, "dashboard")
	shot(t, ctx, "dashboard-fresh")
	if got := text(t, ctx, `#tenants tr[data-tenant="acme"] .plan`); got != "free" {
		t.Errorf("acme's plan shows %q, want free", got)
	}
	if got := text(t, ctx, `#tenants tr[data-tenant="globex"] .status-active`); got != "active" {
		t.Errorf("globex's status shows %q, want active", got)
	}
	var found bool
	for _, c := range cookies(t, ctx, srv) {
		if c.Name != "bulkhead_console" {
			continue
		}
		found = true
		if !c.HTTPOnly || c.SameSite != "Strict" || c.Path != "/ui" || !c.Secure {
			t.Errorf("session cookie: HttpOnly %v, SameSite %q, Path %q, Secure %v; want HttpOnly, Strict, /ui, Secure on loopback",
				c.HTTPOnly, c.SameSite, c.Path, c.Secure)
		}
	}
	if !found {
		t.Fatal("no session cookie after signing in")
	}
	// Scripts cannot read the session cookie.
	if got := get(t, ctx, "document.cookie", chromedp.Evaluate[string](`document.cookie`)); strings.Contains(got, "bulkhead_console") {
		t.Errorf("document.cookie shows the session cookie: %q", got)
	}
	// The first Tab reaches the skip link, which leads to <main>.
	run(t, ctx, "tab", chromedp.KeyEvent("\t"))
	if got := get(t, ctx, "focus", chromedp.Evaluate[string](`document.activeElement.className + ' ' + document.activeElement.getAttribute('href')`)); got != "skip #main" {
		t.Errorf("the first Tab focuses %q; want the skip link", got)
	}
	// The live part reloads itself (htmx) without breaking.
	waitJS(t, ctx, `performance.getEntriesByType('resource').some(e => e.initiatorType === 'xmlhttprequest' && new URL(e.name).pathname === '/ui/')`)
	waitFor(t, ctx, `#tenants tr[data-tenant="acme"]`)
	noProblems(t, problems)
}

// TestBrowserOperatorTenant suspends and resumes a tenant and changes its
// plan from its page, checking each change through the API too.
func TestBrowserOperatorTenant(t *testing.T) {
	ctx := newBrowser(t)
	srv := startServer(t)
	srv.putPlan(t, "pro", nil)
	srv.createTenant(t, "acme", "")
	problems := watchPage(t, ctx)
	loginOperator(t, ctx, srv)

	run(t, ctx, "follow the tenant link", chromedp.Click(css(`#tenants a[href="/ui/tenants/acme"]`)), chromedp.WaitVisible(css("#status-form")))
	logTiming(t, ctx, "tenant")
	accessible(t, ctx, "tenant")
	if got := text(t, ctx, "#tenant-status"); got != "active" {
		t.Fatalf("status shows %q; want active", got)
	}

	submit(t, ctx, nil, "#suspend")
	waitText(t, ctx, "#tenant-status", "suspended")
	if got := text(t, ctx, ".notice"); got != "Tenant suspended." {
		t.Errorf("notice %q", got)
	}
	if loc := get(t, ctx, "location", chromedp.Location()); !strings.HasSuffix(loc, "/ui/tenants/acme?done=suspended") {
		t.Errorf("after the form the browser is at %s; want back on the tenant page", loc)
	}
	if st, _ := srv.tenant(t, "acme"); st != "suspended" {
		t.Errorf("the API says %q after suspending; want suspended", st)
	}

	submit(t, ctx, nil, "#resume")
	waitText(t, ctx, "#tenant-status", "active")
	if st, _ := srv.tenant(t, "acme"); st != "active" {
		t.Errorf("the API says %q after resuming; want active", st)
	}

	submit(t, ctx, map[string]string{"#plan": "pro"}, "#change-plan")
	waitText(t, ctx, "#tenant-plan", "pro")
	if _, plan := srv.tenant(t, "acme"); plan != "pro" {
		t.Errorf("the API says plan %q; want pro", plan)
	}
	// The charts are drawn (uPlot makes a canvas per chart) from the series.
	run(t, ctx, "charts", chromedp.WaitVisible(css(".chart canvas")))
	shot(t, ctx, "tenant-forms")
	noProblems(t, problems)

	// Another tenant's slug is the not-found page, as in the API.
	open(t, ctx, srv, "/ui/tenants/nosuch", "tenant-notfound")
	if got := text(t, ctx, "h1"); got != "Not found" {
		t.Errorf("an unknown tenant shows %q", got)
	}
}

// TestBrowserOperatorAudit finds the platform audit's entries and the
// chain verified.
func TestBrowserOperatorAudit(t *testing.T) {
	ctx := newBrowser(t)
	srv := startServer(t)
	srv.createTenant(t, "acme", "")
	srv.createTenant(t, "globex", "")
	srv.api(t, "PATCH", "/v1/tenants/globex", operatorToken, map[string]string{"status": "suspended"}, http.StatusOK, nil)
	srv.api(t, "PATCH", "/v1/tenants/globex", operatorToken, map[string]string{"status": "active"}, http.StatusOK, nil)
	loginOperator(t, ctx, srv)
	run(t, ctx, "audit link", chromedp.Click(css(`nav a[href="/ui/audit"]`)), chromedp.WaitVisible(css("#audit")))
	logTiming(t, ctx, "audit")
	accessible(t, ctx, "audit")
	shot(t, ctx, "audit")
	if got := text(t, ctx, "#verification"); !strings.HasPrefix(got, "verified") {
		t.Errorf("verification shows %q; want verified", got)
	}
	body := text(t, ctx, "#audit tbody")
	if n := strings.Count(body, "tenant.create"); n != 2 {
		t.Errorf("the audit shows %d tenant.create entries; want 2:\n%s", n, body)
	}
}

// TestBrowserOperatorNoisy makes one tenant exceed its rate limit and
// finds it at the top of the noisy-neighbour view, as throttled.
func TestBrowserOperatorNoisy(t *testing.T) {
	ctx := newBrowser(t)
	srv := startServer(t)
	if !srv.serves(t, "/v1/health/tenants") {
		t.Skip("GET /v1/health/tenants is not served by this build; skipping")
	}
	srv.putPlan(t, "tight", map[string]any{"rate_per_sec": 1, "burst": 2})
	srv.createTenant(t, "quiet", "")
	srv.createTenant(t, "noisy", "tight")
	key := srv.createAPIKey(t, "noisy", "admin")
	quietKey := srv.createAPIKey(t, "quiet", "admin")
	srv.traffic(t, "quiet", quietKey, 1)
	throttled := srv.traffic(t, "noisy", key, 30)
	if throttled == 0 {
		t.Fatal("30 requests at once on 1/s with a burst of 2 were never throttled")
	}
	problems := watchPage(t, ctx)
	loginOperator(t, ctx, srv)
	open(t, ctx, srv, "/ui/noisy?sort=throttled", "noisy")
	waitFor(t, ctx, `#pressured li[data-tenant="noisy"]`)
	if got := text(t, ctx, "#noisy tbody tr:first-child th"); got != "noisy" {
		t.Errorf("the top consumer by throttled is %q; want noisy", got)
	}
	shot(t, ctx, "noisy")
	noProblems(t, problems)
}

// serves says whether the API has a route at path (any answer but 404).
func (s *testServer) serves(t *testing.T, path string) bool {
	t.Helper()
	req, _ := http.NewRequest("GET", s.URL+path, nil)
	req.Header.Set("Authorization", "Bearer "+operatorToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode != http.StatusNotFound
}

// traffic makes n requests as a tenant's API key and returns how many
// were throttled (429).
func (s *testServer) traffic(t *testing.T, slug, key string, n int) (throttled int) {
	t.Helper()
	for range n {
		req, _ := http.NewRequest("GET", s.URL+"/v1/tenants/"+slug+"/collections", nil)
		req.Header.Set("Authorization", "Bearer "+key)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode == http.StatusTooManyRequests {
			throttled++
		}
	}
	return throttled
}

// TestBrowserCSRFRefused posts the suspend form without the CSRF token
// from the console's own page, and with the real token from another
// origin: both are refused and the tenant stays active.
func TestBrowserCSRFRefused(t *testing.T) {
	ctx := newBrowser(t)
	srv := startServer(t)
	srv.createTenant(t, "acme", "")
	loginOperator(t, ctx, srv)
	open(t, ctx, srv, "/ui/tenants/acme", "tenant")
	token := get(t, ctx, "read the token", chromedp.Evaluate[string](`document.querySelector('#status-form input[name=csrf]').value`))

	// Same origin, no token: the form's field removed before submitting.
	run(t, ctx, "drop the token and submit",
		chromedp.Evaluate[chromedp.Void](`document.querySelector('#status-form input[name=csrf]').remove()`),
		chromedp.Click(css("#suspend")), chromedp.Sleep(100*time.Millisecond), chromedp.WaitReady(css("main")))
	if got := text(t, ctx, ".problem code"); got != "csrf_token_invalid" {
		t.Errorf("without the token the page shows %q; want csrf_token_invalid", got)
	}
	if st, _ := srv.tenant(t, "acme"); st != "active" {
		t.Fatalf("the tenant is %q after a form without the token", st)
	}

	// Another origin (localhost is another site than 127.0.0.1), with the
	// right token: the browser sends no cookie (SameSite=Strict) and
	// CrossOriginProtection refuses the request anyway.
	evil := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "text/html")
		fmt.Fprintf(w, `<!doctype html><form id="f" method="post" action="%s/ui/tenants/acme/status">
			<input type="hidden" name="status" value="suspended"><input type="hidden" name="csrf" value="%s"></form>
			<script>document.getElementById('f').submit()</script>`, srv.URL, token)
	}))
	defer evil.Close()
	evilURL := strings.Replace(evil.URL, "127.0.0.1", "localhost", 1)
	run(t, ctx, "visit the other site", chromedp.Navigate(evilURL), chromedp.Sleep(500*time.Millisecond), chromedp.WaitReady(css("body")))
	if st, _ := srv.tenant(t, "acme"); st != "active" {
		t.Fatalf("the tenant is %q after a cross-origin form", st)
	}
	loc := get(t, ctx, "location", chromedp.Location())
	page := get(t, ctx, "body", chromedp.Text(css("body")))
	if strings.HasPrefix(loc, srv.URL) && !strings.Contains(page, "cross_origin_refused") {
		t.Errorf("the cross-origin form landed on %s showing %q; want the refusal", loc, page)
	}

	// An htmx request from the console's own page sends the token as the
	// X-CSRF-Token header (hx-headers on <body>), and is accepted.
	open(t, ctx, srv, "/ui/tenants/acme", "tenant")
	run(t, ctx, "htmx post", chromedp.Evaluate[chromedp.Void](
		`htmx.ajax('POST', '/ui/tenants/acme/status', {source: '#main', values: {status: 'suspended'}, swap: 'none'})`))
	for st := ""; st != "suspended"; {
		if ctx.Err() != nil {
			t.Fatalf("the tenant is %q after the htmx request; want suspended", st)
		}
		time.Sleep(100 * time.Millisecond)
		st, _ = srv.tenant(t, "acme")
	}
}

// TestBrowserLoginKinds signs in as a tenant user and with a tenant API
// key, and signs out.
func TestBrowserLoginKinds(t *testing.T) {
	ctx := newBrowser(t)
	srv := startServer(t)
	srv.createTenant(t, "acme", "")
	srv.createUser(t, "acme", "ada@acme.io", "correct horse battery staple", "admin")
	key := srv.createAPIKey(t, "acme", "admin")

	loginPassword(t, ctx, srv, "acme", "ada@acme.io", "wrong password entirely")
	if got := text(t, ctx, ".problem code"); got != "invalid_credentials" {
		t.Errorf("a wrong password shows %q; want invalid_credentials", got)
	}
	loginPassword(t, ctx, srv, "acme", "ada@acme.io", "correct horse battery staple")
	waitText(t, ctx, ".who", "ada@acme.io")
	if loc := get(t, ctx, "location", chromedp.Location()); !strings.HasSuffix(loc, "/ui/t/acme/") {
		t.Errorf("a tenant user lands on %s; want /ui/t/acme/", loc)
	}
	// The operator's pages are not a tenant user's.
	open(t, ctx, srv, "/ui/audit", "audit-as-tenant")
	if got := text(t, ctx, "h1"); got != "Not found" {
		t.Errorf("a tenant user's /ui/audit shows %q; want Not found", got)
	}
	run(t, ctx, "sign out", chromedp.Click(css(".who button")), chromedp.Sleep(100*time.Millisecond), chromedp.WaitVisible(css("#login-operator")))
	for _, c := range cookies(t, ctx, srv) {
		if c.Name == "bulkhead_console" {
			t.Error("the session cookie outlived signing out")
		}
	}

	loginAPIKey(t, ctx, srv, "acme", key)
	waitText(t, ctx, ".who", "API key")
}

// TestBrowserAPIReference shows the API reference without signing in.
func TestBrowserAPIReference(t *testing.T) {
	ctx := newBrowser(t)
	srv := startServer(t)
	problems := watchPage(t, ctx)
	open(t, ctx, srv, "/ui/api", "api")
	waitFor(t, ctx, "#op-createTenant")
	accessible(t, ctx, "api")
	if got := text(t, ctx, "#op-createTenant summary"); !strings.Contains(got, "POST") || !strings.Contains(got, "/v1/tenants") {
		t.Errorf("createTenant's summary %q", got)
	}
	run(t, ctx, "open createTenant", chromedp.Click(css("#op-createTenant summary")), chromedp.WaitVisible(css(`#op-createTenant a[href="#schema-CreateTenant"]`)))
	shot(t, ctx, "api")
	noProblems(t, problems)
}

// TestBrowserOperatorPagesRender serves the console in front of an API
// that answers with figures shaped as the health contract's (DemoAPI) and
// checks what the browser shows: the open breaker highlighted, the noisy
// tenant ranked first and listed as throttled, the charts drawn from the
// series, the quota bars, the polls. Its screenshots are the docs'.
func TestBrowserOperatorPagesRender(t *testing.T) {
	ctx := newBrowser(t)
	ui, err := console.New(console.Config{API: console.DemoAPI(), CookieKey: []byte(strings.Repeat("k", 32)),
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ts := httptest.NewServer(ui)
	defer ts.Close()
	srv := &testServer{URL: ts.URL}
	problems := watchPage(t, ctx)
	loginOperator(t, ctx, srv)
	waitFor(t, ctx, `.breaker.open[data-breaker="redis"]`)
	if got := text(t, ctx, `#tenants tr[data-tenant="globex"] td.hot`); got == "" {
		t.Error("globex's throttles are not highlighted")
	}
	shot(t, ctx, "dashboard")

	open(t, ctx, srv, "/ui/noisy", "noisy")
	waitFor(t, ctx, `#pressured li[data-tenant="globex"]`)
	accessible(t, ctx, "noisy")
	if got := text(t, ctx, "#noisy tbody tr:first-child th"); got != "globex" {
		t.Errorf("the top consumer is %q; want globex", got)
	}
	run(t, ctx, "sort by p99", chromedp.Click(css(`a[href="/ui/noisy?sort=p99"]`)), chromedp.WaitVisible(css(`#live[hx-get="/ui/noisy?sort=p99"]`)))
	if got := text(t, ctx, "#noisy tbody tr:first-child th"); got != "acme" {
		t.Errorf("the top consumer by p99 is %q; want acme", got)
	}
	open(t, ctx, srv, "/ui/noisy", "noisy")
	shot(t, ctx, "noisy")

	open(t, ctx, srv, "/ui/tenants/globex", "tenant")
	waitJS(t, ctx, `document.querySelector('.charts').getAttribute('data-points') === '60'`)
	if n := get(t, ctx, "canvases", chromedp.Evaluate[int](`document.querySelectorAll('.chart canvas').length`)); n != 3 {
		t.Errorf("%d charts drawn; want 3", n)
	}
	accessible(t, ctx, "tenant-charts")
	if got := get(t, ctx, "meter", chromedp.Evaluate[float64](`document.querySelector('#quota meter').value`)); got != 92 {
		t.Errorf("the records bar shows %v; want 92", got)
	}
	shot(t, ctx, "tenant")
	noProblems(t, problems)
}

// TestBrowserLoginTOTP signs in as a user enrolled in TOTP: the console
// asks for the second factor after the password, and a recovery code
// signs in.
func TestBrowserLoginTOTP(t *testing.T) {
	ctx := newBrowser(t)
	srv := startServer(t)
	srv.createTenant(t, "acme", "")
	const email, password = "ada@acme.io", "correct horse battery staple"
	srv.createUser(t, "acme", email, password, "admin")
	var pair struct {
		AccessToken string `json:"access_token"`
	}
	srv.api(t, "POST", "/v1/tenants/acme/auth/login", "", map[string]string{"email": email, "password": password}, http.StatusOK, &pair)
	var enrol struct {
		Secret string `json:"secret"`
	}
	srv.api(t, "POST", "/v1/tenants/acme/auth/totp", pair.AccessToken, nil, http.StatusCreated, &enrol)
	code, err := totp.GenerateCode(enrol.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	var recovery struct {
		Codes []string `json:"recovery_codes"`
	}
	srv.api(t, "POST", "/v1/tenants/acme/auth/totp/verify", pair.AccessToken, map[string]string{"code": code}, http.StatusOK, &recovery)
	if len(recovery.Codes) == 0 {
		t.Fatal("no recovery codes")
	}

	loginPassword(t, ctx, srv, "acme", email, password)
	waitFor(t, ctx, "#login-totp #totp")
	accessible(t, ctx, "login-totp")
	if got := text(t, ctx, "#login-totp p"); !strings.Contains(got, email) {
		t.Errorf("the TOTP step says %q", got)
	}
	submit(t, ctx, map[string]string{"#totp": "000000"}, "#login-totp button[type=submit]")
	if got := text(t, ctx, ".problem code"); got != "invalid_credentials" {
		t.Errorf("a wrong code shows %q; want invalid_credentials", got)
	}
	waitFor(t, ctx, "#login-totp #totp") // asked again, the password kept
	submit(t, ctx, map[string]string{"#totp": recovery.Codes[0]}, "#login-totp button[type=submit]")
	waitText(t, ctx, ".who", email)
}

// TestBrowserRefresh expires a signed-in user's access token inside their
// session cookie: the next page refreshes it with the refresh token, the
// cookie then holds the new pair, and the old refresh token is spent.
func TestBrowserRefresh(t *testing.T) {
	ctx := newBrowser(t)
	srv := startServer(t)
	srv.createTenant(t, "acme", "")
	srv.createUser(t, "acme", "ada@acme.io", "correct horse battery staple", "admin")
	loginPassword(t, ctx, srv, "acme", "ada@acme.io", "correct horse battery staple")
	waitText(t, ctx, ".who", "ada@acme.io")

	hexKey, err := os.ReadFile(filepath.Join(srv.DataDir, "keys", "cursor-mac.key"))
	if err != nil {
		t.Fatal(err)
	}
	secret, err := hex.DecodeString(strings.TrimSpace(string(hexKey)))
	if err != nil {
		t.Fatal(err)
	}
	var value string
	for _, c := range cookies(t, ctx, srv) {
		if c.Name == "bulkhead_console" {
			value = c.Value
		}
	}
	expired, oldRefresh, err := console.ExpireAccess(secret, value)
	if err != nil {
		t.Fatal(err)
	}
	secure, httpOnly := true, true
	if _, err := chromedp.Call(ctx, network.SetCookie, network.SetCookieParams{Name: "bulkhead_console", Value: expired,
		URL: srv.URL + "/ui/", Path: "/ui", Secure: &secure, HTTPOnly: &httpOnly, SameSite: network.CookieSameSiteStrict}); err != nil {
		t.Fatal(err)
	}

	open(t, ctx, srv, "/ui/", "tenant-home")
	waitText(t, ctx, ".who", "ada@acme.io") // still signed in
	var now string
	for _, c := range cookies(t, ctx, srv) {
		if c.Name == "bulkhead_console" {
			now = c.Value
		}
	}
	newRefresh, err := console.SessionRefresh(secret, now)
	if err != nil {
		t.Fatal(err)
	}
	if newRefresh == oldRefresh || newRefresh == "" {
		t.Fatal("the session still holds the old refresh token")
	}
	// The old refresh token was spent by the console's refresh. (Presenting
	// it again ends the login, as the API treats reuse as theft: done last.)
	srv.api(t, "POST", "/v1/tenants/acme/auth/refresh", "", map[string]string{"refresh_token": oldRefresh}, http.StatusUnauthorized, nil)
}
