package console_test

// The browser tests' harness: a real bulkhead server on a loopback
// listener (SQLite in a temporary directory), a headless Chromium driven by
// chromedp, and helpers to sign in, fill forms, save screenshots and log
// each page's navigation timing. Tests skip when BULKHEAD_TEST_CHROMIUM
// (the path of the Chromium binary) is not set.

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	cdplog "github.com/chromedp/cdproto/log"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/cdproto/runtime"
	"github.com/chromedp/chromedp"

	"github.com/bulkheadhq/bulkhead"
)

// operatorToken is the test server's operator token.
const operatorToken = "console-test-operator-token-0123456789"

// testServer is a bulkhead server serving on a loopback address.
type testServer struct {
	URL     string // http://127.0.0.1:PORT
	App     *bulkhead.App
	DataDir string
}

// startServer starts a server with a fresh SQLite data directory; it stops
// when the test ends.
func startServer(t testing.TB) *testServer {
	t.Helper()
	dir := t.TempDir()
	app, err := bulkhead.New(bulkhead.Config{DataDir: dir, AdminToken: operatorToken,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		app.Close()
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, ln) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("serve: %v", err)
		}
		app.Close()
	})
	return &testServer{URL: "http://" + ln.Addr().String(), App: app, DataDir: dir}
}

// api calls the API over the network and decodes a JSON answer into out
// (when not nil); it fails the test on a status other than want.
func (s *testServer) api(t testing.TB, method, path, token string, body any, want int, out any) {
	t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.URL+path, rd)
	if err != nil {
		t.Fatal(err)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	if resp.StatusCode != want {
		t.Fatalf("%s %s: status %d, want %d: %s", method, path, resp.StatusCode, want, raw)
	}
	if out != nil {
		if err := json.Unmarshal(raw, out); err != nil {
			t.Fatalf("%s %s: %v: %s", method, path, err, raw)
		}
	}
}

// createTenant creates a tenant on plan ("" for the default plan).
func (s *testServer) createTenant(t testing.TB, slug, plan string) {
	t.Helper()
	body := map[string]string{"slug": slug, "name": "Tenant " + slug}
	if plan != "" {
		body["plan"] = plan
	}
	s.api(t, "POST", "/v1/tenants", operatorToken, body, http.StatusCreated, nil)
}

// putPlan creates or replaces a plan: the default plan's limits with
// change applied (such as {"rate_per_sec": 1}).
func (s *testServer) putPlan(t testing.TB, name string, change map[string]any) {
	t.Helper()
	var plans struct {
		Items []map[string]any `json:"items"`
	}
	s.api(t, "GET", "/v1/plans", operatorToken, nil, http.StatusOK, &plans)
	if len(plans.Items) == 0 {
		t.Fatal("no plans")
	}
	plan := plans.Items[0]
	delete(plan, "name")
	for k, v := range change {
		plan[k] = v
	}
	s.api(t, "PUT", "/v1/plans/"+name, operatorToken, plan, http.StatusOK, nil)
}

// createUser adds a user to a tenant (as the operator, who may bootstrap
// users).
func (s *testServer) createUser(t testing.TB, slug, email, password, role string) {
	t.Helper()
	s.api(t, "POST", "/v1/tenants/"+slug+"/users", operatorToken,
		map[string]string{"email": email, "password": password, "role": role}, http.StatusCreated, nil)
}

// createAPIKey issues an API key of role for a tenant and returns it.
func (s *testServer) createAPIKey(t testing.TB, slug, role string) string {
	t.Helper()
	var k struct {
		Key string `json:"key"`
	}
	s.api(t, "POST", "/v1/tenants/"+slug+"/api-keys", operatorToken, map[string]string{"name": "console test", "role": role},
		http.StatusCreated, &k)
	if k.Key == "" {
		t.Fatal("the API key answer has no key")
	}
	return k.Key
}

// browserTimeout bounds one browser test: generous, so that a slow shared
// machine does not fail it, while a hung browser still ends.
const browserTimeout = 90 * time.Second

// newBrowser starts a headless Chromium for the test and returns its
// context, or skips the test when BULKHEAD_TEST_CHROMIUM is not set.
func newBrowser(t *testing.T) context.Context {
	t.Helper()
	bin := os.Getenv("BULKHEAD_TEST_CHROMIUM")
	if bin == "" {
		t.Skip("BULKHEAD_TEST_CHROMIUM is not set; skipping")
	}
	opts := []chromedp.ExecAllocatorOption{
		chromedp.ExecPath(bin),
		chromedp.Headless,
		chromedp.NoSandbox,
		chromedp.DisableGPU,
		chromedp.NoFirstRun,
		chromedp.NoDefaultBrowserCheck,
		chromedp.UserDataDir(t.TempDir()),
		chromedp.Flag("disable-quic", true),
		chromedp.Flag("disable-background-networking", true),
		chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-sync", true),
		chromedp.Flag("disable-dev-shm-usage", true),
		chromedp.WindowSize(1280, 900),
	}
	actx, cancelAlloc := chromedp.NewExecAllocator(context.Background(), opts...)
	bctx, cancelBrowser := chromedp.NewContext(actx, chromedp.WithLogf(t.Logf))
	// The first run starts the browser, which lives as long as its context:
	// no timeout on that one. The test's actions get a generous bound.
	if err := chromedp.Do(bctx); err != nil {
		cancelBrowser()
		cancelAlloc()
		t.Fatalf("start Chromium: %v", err)
	}
	ctx, cancelTimeout := context.WithTimeout(bctx, browserTimeout)
	t.Cleanup(func() {
		cancelTimeout()
		cancelBrowser()
		cancelAlloc()
	})
	return ctx
}

// run runs browser actions, failing the test on error.
func run(t *testing.T, ctx context.Context, what string, actions ...chromedp.Action[chromedp.Void]) {
	t.Helper()
	if err := chromedp.Do(ctx, actions...); err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

// get runs one browser action that returns a value, failing the test on
// error.
func get[T any](t *testing.T, ctx context.Context, what string, a chromedp.Action[T]) T {
	t.Helper()
	v, err := chromedp.Run(ctx, a)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	return v
}

// css is a CSS selector.
type css = chromedp.CSS

// open navigates to a console path, waits for its <main> and logs its
// navigation timing under name.
func open(t *testing.T, ctx context.Context, srv *testServer, path, name string) {
	t.Helper()
	run(t, ctx, "open "+path, chromedp.Navigate(srv.URL+path), chromedp.WaitReady(css("main")))
	logTiming(t, ctx, name)
}

// navTiming is a page's navigation timing, in milliseconds from the start
// of the navigation.
type navTiming struct {
	Duration, DOMContentLoaded, Load, ResponseEnd, TransferSize float64
}

// logTiming logs the current page's navigation timing. It is a record for
// the reader, never asserted on.
func logTiming(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	nav, err := chromedp.Run(ctx, chromedp.Evaluate[navTiming](`(() => { const n = performance.getEntriesByType('navigation')[0];
		return n ? {Duration: n.duration, DOMContentLoaded: n.domContentLoadedEventEnd, Load: n.loadEventEnd,
		ResponseEnd: n.responseEnd, TransferSize: n.transferSize} : {}; })()`))
	if err != nil {
		t.Logf("page %s: navigation timing unavailable: %v", name, err)
		return
	}
	t.Logf("page %s: navigation timing: response end %.1f ms, DOMContentLoaded %.1f ms, load %.1f ms, duration %.1f ms, %.0f bytes",
		name, nav.ResponseEnd, nav.DOMContentLoaded, nav.Load, nav.Duration, nav.TransferSize)
}

// viewportOnly names the pages too long for a full-page screenshot: their
// PNG shows the window.
var viewportOnly = map[string]bool{"api": true}

// shot saves a full-page PNG of the current page as <dir>/<name>.png when
// BULKHEAD_SCREENSHOTS=<dir> is set.
func shot(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	dir := os.Getenv("BULKHEAD_SCREENSHOTS")
	if dir == "" {
		return
	}
	shoot := chromedp.FullScreenshot(100)
	if viewportOnly[name] {
		shoot = chromedp.CaptureScreenshot()
	}
	png := get(t, ctx, "screenshot "+name, shoot)
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, name+".png"), png, 0o644); err != nil {
		t.Fatal(err)
	}
}

// text returns the visible text of the first element sel matches.
func text(t *testing.T, ctx context.Context, sel string) string {
	t.Helper()
	return strings.TrimSpace(get(t, ctx, "read "+sel, chromedp.Text(css(sel))))
}

// submit fills a form's fields (selector → value), clicks its button and
// waits for the next page's <main>.
func submit(t *testing.T, ctx context.Context, fields map[string]string, button string) {
	t.Helper()
	var acts []chromedp.Action[chromedp.Void]
	for sel, v := range fields {
		acts = append(acts, chromedp.SetValue(css(sel), v))
	}
	acts = append(acts, chromedp.Click(css(button)), chromedp.Sleep(100*time.Millisecond), chromedp.WaitReady(css("main")))
	run(t, ctx, "submit "+button, acts...)
}

// loginOperator signs the browser in with the operator token; it ends on
// the dashboard.
func loginOperator(t *testing.T, ctx context.Context, srv *testServer) {
	t.Helper()
	open(t, ctx, srv, "/ui/login?kind=operator", "login")
	submit(t, ctx, map[string]string{"#token": operatorToken}, "#login-operator button[type=submit]")
	waitFor(t, ctx, "#tenants")
}

// loginPassword signs the browser in as a tenant user; it ends on the
// first page of a tenant session.
func loginPassword(t *testing.T, ctx context.Context, srv *testServer, slug, email, password string) {
	t.Helper()
	open(t, ctx, srv, "/ui/login?kind=password", "login-password")
	submit(t, ctx, map[string]string{"#tenant": slug, "#email": email, "#password": password},
		"#login-password button[type=submit]")
}

// loginAPIKey signs the browser in with a tenant API key.
func loginAPIKey(t *testing.T, ctx context.Context, srv *testServer, slug, key string) {
	t.Helper()
	open(t, ctx, srv, "/ui/login?kind=api_key", "login-apikey")
	submit(t, ctx, map[string]string{"#tenant": slug, "#api_key": key}, "#login-apikey button[type=submit]")
}

// waitFor waits until sel is visible on the page.
func waitFor(t *testing.T, ctx context.Context, sel string) {
	t.Helper()
	run(t, ctx, "wait for "+sel, chromedp.WaitVisible(css(sel)))
}

// waitText waits until the text of sel contains want, polling; it fails
// the test when the browser test's deadline passes first.
func waitText(t *testing.T, ctx context.Context, sel, want string) {
	t.Helper()
	var got string
	var err error
	for {
		got, err = chromedp.Run(ctx, chromedp.Evaluate[string](
			`(() => { const e = document.querySelector(`+jsString(sel)+`); return e ? e.innerText : ""; })()`))
		if err == nil && strings.Contains(got, want) {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("%s never showed %q; last: %q (%v)", sel, want, got, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// waitJS waits until the JavaScript expression is true in the page,
// polling; it fails the test when the browser test's deadline passes first.
func waitJS(t *testing.T, ctx context.Context, expr string) {
	t.Helper()
	for {
		ok, err := chromedp.Run(ctx, chromedp.Evaluate[bool](expr))
		if err == nil && ok {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("never true: %s (%v)", expr, err)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// jsString quotes s as a JavaScript string literal.
func jsString(s string) string {
	b, _ := json.Marshal(s)
	return string(b)
}

// cookies returns the browser's cookies for the console.
func cookies(t *testing.T, ctx context.Context, srv *testServer) []*network.Cookie {
	t.Helper()
	res, err := chromedp.Call(ctx, network.GetCookies, network.GetCookiesParams{URLs: []string{srv.URL + "/ui/"}})
	if err != nil {
		t.Fatalf("read cookies: %v", err)
	}
	return res.Cookies
}

// watchPage collects the page's Content-Security-Policy violations,
// JavaScript errors and uncaught exceptions from now on; the returned
// func lists them.
func watchPage(t *testing.T, ctx context.Context) func() []string {
	t.Helper()
	var mu sync.Mutex
	var problems []string
	err := chromedp.Listen(ctx, func(ev any) {
		switch ev := ev.(type) {
		case *cdplog.EventEntryAdded:
			if ev.Entry.Level == cdplog.EntryLevelError && ev.Entry.Source != cdplog.EntrySourceNetwork {
				mu.Lock()
				problems = append(problems, string(ev.Entry.Source)+": "+ev.Entry.Text)
				mu.Unlock()
			}
		case *runtime.EventExceptionThrown:
			mu.Lock()
			problems = append(problems, "exception: "+ev.ExceptionDetails.Text+" "+fmt.Sprint(ev.ExceptionDetails.Exception))
			mu.Unlock()
		}
	})
	if err != nil {
		t.Fatalf("listen: %v", err)
	}
	if _, err := chromedp.Call(ctx, cdplog.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable the log domain: %v", err)
	}
	if _, err := chromedp.Call(ctx, runtime.Enable, cdp.Empty{}); err != nil {
		t.Fatalf("enable the runtime domain: %v", err)
	}
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(problems)
	}
}

// accessible checks the current page against the console's markup rules:
// every visible form control has a label, every table header cell a scope,
// the page has header, nav and main landmarks and a skip link to main,
// and no clickable div or span stands in for a button.
func accessible(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	problems := get(t, ctx, "accessibility of "+name, chromedp.Evaluate[[]string](`(() => {
		const p = [];
		for (const e of document.querySelectorAll('input:not([type=hidden]), select, textarea')) {
			if (!e.labels.length && !e.getAttribute('aria-label')) p.push('control without a label: ' + (e.id || e.name));
		}
		for (const th of document.querySelectorAll('th')) {
			if (!th.getAttribute('scope')) p.push('th without scope: ' + th.textContent.trim());
		}
		for (const sel of ['header', 'nav', 'main']) {
			if (!document.querySelector(sel)) p.push('no <' + sel + '> landmark');
		}
		const skip = document.querySelector('a.skip');
		if (!skip || skip.getAttribute('href') !== '#main') p.push('no skip link to #main');
		for (const e of document.querySelectorAll('div[onclick], span[onclick], div[hx-post], span[hx-post], [role=button]:not(button)')) {
			p.push('a non-button acts as a button: ' + e.outerHTML.slice(0, 80));
		}
		return p;
	})()`))
	for _, p := range problems {
		t.Errorf("page %s: %s", name, p)
	}
}
