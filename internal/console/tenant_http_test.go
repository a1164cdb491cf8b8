package console_test

// Tests of the tenant admin's pages over plain HTTP, without a browser
// (they run everywhere): a client with a cookie jar signs in through the
// login form as a browser without JavaScript would, and reads and posts
// the pages' forms.

import (
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"
)

// formClient is a browser without JavaScript: cookies, forms, redirects.
type formClient struct {
	srv  *testServer
	http *http.Client
	csrf string // the last page's CSRF token
}

// newFormClient returns a client of srv with an empty cookie jar.
func newFormClient(t *testing.T, srv *testServer) *formClient {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &formClient{srv: srv, http: &http.Client{Jar: jar}}
}

// csrfField finds a page's CSRF hidden field.
var csrfField = regexp.MustCompile(`name="csrf" value="([^"]+)"`)

// get loads a console page and returns its status and HTML.
func (c *formClient) get(t *testing.T, path string) (int, string) {
	t.Helper()
	resp, err := c.http.Get(c.srv.URL + path)
	if err != nil {
		t.Fatal(err)
	}
	return c.read(t, resp)
}

// post sends a form as the page's own (with its CSRF token and Origin,
// unless form sets csrf itself) and returns the final status and HTML.
func (c *formClient) post(t *testing.T, path string, form url.Values) (int, string) {
	t.Helper()
	if _, ok := form["csrf"]; !ok {
		form.Set("csrf", c.csrf)
	}
	req, err := http.NewRequest(http.MethodPost, c.srv.URL+path, strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.Header.Set("Origin", c.srv.URL)
	resp, err := c.http.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	return c.read(t, resp)
}

// read reads an answer and remembers its CSRF token.
func (c *formClient) read(t *testing.T, resp *http.Response) (int, string) {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatal(err)
	}
	if m := csrfField.FindSubmatch(b); m != nil {
		c.csrf = string(m[1])
	}
	return resp.StatusCode, string(b)
}

// loginPassword signs in as a tenant user through the login form.
func (c *formClient) loginPassword(t *testing.T, slug, email, password string) string {
	t.Helper()
	c.get(t, "/ui/login?kind=password")
	status, html := c.post(t, "/ui/login", url.Values{"kind": {"password"}, "tenant": {slug}, "email": {email}, "password": {password}})
	if status != http.StatusOK {
		t.Fatalf("sign in as %s of %s: status %d: %s", email, slug, status, html)
	}
	return html
}

// loginAPIKey signs in with a tenant API key through the login form.
func (c *formClient) loginAPIKey(t *testing.T, slug, key string) string {
	t.Helper()
	c.get(t, "/ui/login?kind=api_key")
	status, html := c.post(t, "/ui/login", url.Values{"kind": {"api_key"}, "tenant": {slug}, "api_key": {key}})
	if status != http.StatusOK {
		t.Fatalf("sign in with a key of %s: status %d: %s", slug, status, html)
	}
	return html
}

// TestTenantPagesRender signs in as acme's admin and loads every tenant
// page without JavaScript: each answers 200 and shows what the API holds.
func TestTenantPagesRender(t *testing.T) {
	f := newTenantFixture(t)
	c := newFormClient(t, f.srv)
	home := c.loginPassword(t, "acme", f.adminEmail, f.password)
	if !strings.Contains(home, `data-collection="tasks"`) {
		t.Fatalf("the tenant's home does not list tasks: %s", home)
	}
	for path, want := range map[string]string{
		"/ui/t/acme/collections/tasks":                      "task 7",
		"/ui/t/acme/collections/tasks/schema":               "&#34;points&#34;",
		"/ui/t/acme/collections/tasks?filter=points+%3E%3D": "invalid_filter",
		"/ui/t/acme/keys":                                   "console test",
		"/ui/t/acme/users":                                  f.adminEmail,
		"/ui/t/acme/audit":                                  "record.create",
	} {
		status, html := c.get(t, path)
		if !strings.Contains(html, want) {
			t.Errorf("%s (status %d) lacks %q", path, status, want)
		}
		if strings.Contains(html, globexSecret) {
			t.Errorf("%s shows globex's data", path)
		}
	}
}

// TestTenantPagesCrossTenant signs in as acme's admin, without a browser,
// and gets and posts every kind of globex's pages and the operator's: all
// answer 404 with none of globex's data, and globex is unchanged.
func TestTenantPagesCrossTenant(t *testing.T) {
	f := newTenantFixture(t)
	c := newFormClient(t, f.srv)
	c.loginPassword(t, "acme", f.adminEmail, f.password)
	for _, path := range append(f.globexPaths(), operatorPaths...) {
		status, html := c.get(t, path)
		if status != http.StatusNotFound {
			t.Errorf("GET %s as acme's admin: status %d, want 404", path, status)
		}
		for _, secret := range []string{globexSecret, "boss@globex.io", "Tenant globex"} {
			if strings.Contains(html, secret) {
				t.Errorf("GET %s as acme's admin shows %q", path, secret)
			}
		}
	}
	c.get(t, "/ui/t/acme/")
	for path, body := range f.globexPosts() {
		form, err := url.ParseQuery(body)
		if err != nil {
			t.Fatal(err)
		}
		if status, _ := c.post(t, path, form); status != http.StatusNotFound {
			t.Errorf("POST %s as acme's admin: status %d, want 404", path, status)
		}
	}
	f.globexUntouched(t)

	// The same session's own forms work: the 404s above are not a broken
	// client.
	c.get(t, "/ui/t/acme/keys")
	if status, html := c.post(t, "/ui/t/acme/keys", url.Values{"name": {"mine"}, "role": {"viewer"}}); status != http.StatusCreated ||
		!strings.Contains(html, `id="new-key"`) {
		t.Errorf("acme's own key form: status %d", status)
	}
}

// TestTenantFormsNeedCSRF posts a tenant form without the session's CSRF
// token, and with another session's: both are refused and change nothing.
func TestTenantFormsNeedCSRF(t *testing.T) {
	f := newTenantFixture(t)
	c := newFormClient(t, f.srv)
	c.loginAPIKey(t, "acme", f.acmeKey)
	other := newFormClient(t, f.srv)
	other.loginPassword(t, "acme", f.adminEmail, f.password)
	for _, token := range []string{"", other.csrf} {
		status, html := c.post(t, "/ui/t/acme/keys", url.Values{"name": {"forged"}, "role": {"owner"}, "csrf": {token}})
		if status != http.StatusForbidden || !strings.Contains(html, "csrf_token_invalid") {
			t.Errorf("a key form with CSRF token %q: status %d, want 403 csrf_token_invalid", token, status)
		}
	}
	var keys struct {
		Items []struct{ Name string } `json:"items"`
	}
	f.srv.api(t, "GET", "/v1/tenants/acme/api-keys", f.acmeKey, nil, http.StatusOK, &keys)
	for _, k := range keys.Items {
		if k.Name == "forged" {
			t.Error("a forged form created a key")
		}
	}
}

// TestTenantRecordsFragment asks the records browser as htmx does: a
// swap gets the results alone, a history restore the whole page.
func TestTenantRecordsFragment(t *testing.T) {
	f := newTenantFixture(t)
	c := newFormClient(t, f.srv)
	c.loginPassword(t, "acme", f.adminEmail, f.password)
	for _, tc := range []struct {
		restore   bool
		wantWhole bool
	}{{false, false}, {true, true}} {
		req, err := http.NewRequest(http.MethodGet, f.srv.URL+"/ui/t/acme/collections/tasks?limit=2", nil)
		if err != nil {
			t.Fatal(err)
		}
		req.Header.Set("HX-Request", "true")
		if tc.restore {
			req.Header.Set("HX-History-Restore-Request", "true")
		}
		resp, err := c.http.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		_, html := c.read(t, resp)
		if whole := strings.Contains(html, "<main"); whole != tc.wantWhole || !strings.Contains(html, `id="results"`) {
			t.Errorf("history restore %v: whole page %v, want %v", tc.restore, whole, tc.wantWhole)
		}
	}
}

// TestTenantUserUnlockAndTOTPReset locks a user out with wrong passwords
// and enrols another in TOTP, then lifts both through the users page's
// forms: the lock-out is lifted (the audit chain says so) and the other
// signs in with their password alone again.
func TestTenantUserUnlockAndTOTPReset(t *testing.T) {
	f := newTenantFixture(t)
	srv := f.srv
	var carol, dave struct {
		ID string `json:"id"`
	}
	srv.api(t, "POST", "/v1/tenants/acme/users", f.acmeKey,
		map[string]string{"email": "carol@acme.io", "password": "carol's password", "role": "member"}, http.StatusCreated, &carol)
	srv.api(t, "POST", "/v1/tenants/acme/users", f.acmeKey,
		map[string]string{"email": "dave@acme.io", "password": "dave's password", "role": "member"}, http.StatusCreated, &dave)
	login := func(email, password string, want int) {
		t.Helper()
		srv.api(t, "POST", "/v1/tenants/acme/auth/login", "", map[string]string{"email": email, "password": password}, want, nil)
	}

	// carol is locked out after five wrong passwords. (A sixth try would
	// meet the per-account login limit, which refills one every five
	// seconds: the unlock is checked in the audit chain instead.)
	for range 5 {
		login("carol@acme.io", "wrong password", http.StatusUnauthorized)
	}

	// dave enrols in TOTP: his password alone no longer signs him in.
	var pair struct {
		AccessToken string `json:"access_token"`
	}
	srv.api(t, "POST", "/v1/tenants/acme/auth/login", "", map[string]string{"email": "dave@acme.io", "password": "dave's password"},
		http.StatusOK, &pair)
	var enrol struct {
		Secret string `json:"secret"`
	}
	srv.api(t, "POST", "/v1/tenants/acme/auth/totp", pair.AccessToken, nil, http.StatusCreated, &enrol)
	code, err := totp.GenerateCode(enrol.Secret, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	srv.api(t, "POST", "/v1/tenants/acme/auth/totp/verify", pair.AccessToken, map[string]string{"code": code}, http.StatusOK, nil)
	login("dave@acme.io", "dave's password", http.StatusUnauthorized)

	c := newFormClient(t, srv)
	c.loginPassword(t, "acme", f.adminEmail, f.password)
	c.get(t, "/ui/t/acme/users")
	if status, html := c.post(t, "/ui/t/acme/users/"+carol.ID+"/unlock", url.Values{}); status != http.StatusOK ||
		!strings.Contains(html, "Sign-in unlocked") {
		t.Errorf("unlock: status %d", status)
	}
	var audit struct {
		Items []struct{ Action, Resource string } `json:"items"`
	}
	srv.api(t, "GET", "/v1/tenants/acme/audit?limit=1000", f.acmeKey, nil, http.StatusOK, &audit)
	unlocked := false
	for _, e := range audit.Items {
		unlocked = unlocked || (e.Action == "auth.unlock" && strings.Contains(e.Resource, carol.ID))
	}
	if !unlocked {
		t.Error("the tenant's audit has no auth.unlock of carol after the unlock form")
	}

	if status, html := c.get(t, "/ui/t/acme/users/"+dave.ID+"/totp-reset"); status != http.StatusOK ||
		!strings.Contains(html, `id="confirm-reset-totp"`) || !strings.Contains(html, "dave@acme.io") {
		t.Errorf("the reset's confirmation page: status %d", status)
	}
	if status, html := c.post(t, "/ui/t/acme/users/"+dave.ID+"/totp-reset", url.Values{}); status != http.StatusOK ||
		!strings.Contains(html, "Two-factor sign-in reset") {
		t.Errorf("reset TOTP: status %d", status)
	}
	login("dave@acme.io", "dave's password", http.StatusOK)
	// A second reset finds no enrolment, and says so on the users page.
	if status, html := c.post(t, "/ui/t/acme/users/"+dave.ID+"/totp-reset", url.Values{}); status != http.StatusNotFound ||
		!strings.Contains(html, "no two-factor enrolment") || !strings.Contains(html, `id="users"`) {
		t.Errorf("a second reset: status %d", status)
	}
}

// TestTenantRecordEditConflict edits a record through the form after
// someone else changed it: the API's 412 is shown plainly, the current
// record with it, and the stale edit is not applied.
func TestTenantRecordEditConflict(t *testing.T) {
	f := newTenantFixture(t)
	srv := f.srv
	var rec struct {
		ID      string         `json:"id"`
		Version int64          `json:"version"`
		Data    map[string]any `json:"data"`
	}
	srv.api(t, "POST", "/v1/tenants/acme/collections/tasks/records", f.acmeKey, map[string]any{"title": "first"}, http.StatusCreated, &rec)
	c := newFormClient(t, srv)
	c.loginPassword(t, "acme", f.adminEmail, f.password)
	page := "/ui/t/acme/collections/tasks/records/" + rec.ID
	c.get(t, page)
	srv.api(t, "PATCH", "/v1/tenants/acme/collections/tasks/records/"+rec.ID, f.acmeKey, map[string]any{"title": "theirs"}, http.StatusOK, nil)

	status, html := c.post(t, page, url.Values{"version": {"1"}, "data": {`{"title": "mine"}`}})
	if status != http.StatusPreconditionFailed || !strings.Contains(html, "Someone changed this record") ||
		!strings.Contains(html, "precondition_failed") || !strings.Contains(html, `id="record-version">2<`) ||
		!strings.Contains(html, "mine") {
		t.Errorf("a stale edit: status %d, want 412 explained, the current version 2 and the typed text kept", status)
	}
	srv.api(t, "GET", "/v1/tenants/acme/collections/tasks/records/"+rec.ID, f.acmeKey, nil, http.StatusOK, &rec)
	if rec.Data["title"] != "theirs" || rec.Version != 2 {
		t.Errorf("after the stale edit the record is %+v", rec)
	}
	// Saved against the current version, the edit applies.
	if status, html := c.post(t, page, url.Values{"version": {"2"}, "data": {`{"title": "mine"}`}}); status != http.StatusOK ||
		!strings.Contains(html, "Record saved: version 3.") {
		t.Errorf("an edit of the current version: status %d", status)
	}
	// A stale delete is refused the same way.
	if status, _ := c.post(t, page+"/delete", url.Values{"version": {"2"}, "confirm": {"yes"}}); status != http.StatusPreconditionFailed {
		t.Errorf("a stale delete: status %d, want 412", status)
	}
	srv.api(t, "GET", "/v1/tenants/acme/collections/tasks/records/"+rec.ID, f.acmeKey, nil, http.StatusOK, nil)
}
