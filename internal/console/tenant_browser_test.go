package console_test

// Browser tests of the tenant admin's pages (/ui/t/{slug}/…): a tenant
// admin manages collections, records, API keys, users and reads the audit
// log, and sees nothing of another tenant.

import (
	"context"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// tenantFixture is a server with two tenants: acme, whose admin signs in,
// and globex, whose data acme's admin must never see.
type tenantFixture struct {
	srv                  *testServer
	acmeKey, globexKey   string
	globexRecord         string
	globexUserID         string
	globexKeyID          string
	adminEmail, password string
}

// globexSecret is a value only globex's data holds.
const globexSecret = "globex-only-secret-7f3a"

// newTenantFixture starts a server and fills acme and globex through the
// API: acme's collection tasks with 7 records, globex's collection
// secret_plans with one record, a user and a key.
func newTenantFixture(t *testing.T) *tenantFixture {
	t.Helper()
	f := &tenantFixture{srv: startServer(t), adminEmail: "ada@acme.io", password: "correct horse battery"}
	srv := f.srv
	// A roomy plan: the tests' clicks and API calls share the tenant's
	// rate limit, which the default plan keeps small.
	srv.api(t, "PUT", "/v1/plans/roomy", operatorToken, map[string]any{"rate_per_sec": 1000, "burst": 1000, "max_inflight": 16,
		"weight": 1, "max_records": 10000, "max_bytes": 50 << 20}, http.StatusOK, nil)
	srv.createTenant(t, "acme", "roomy")
	srv.createTenant(t, "globex", "roomy")
	srv.createUser(t, "acme", f.adminEmail, f.password, "admin")
	f.acmeKey = srv.createAPIKey(t, "acme", "admin")
	f.globexKey = srv.createAPIKey(t, "globex", "admin")

	schema := map[string]any{"type": "object", "required": []string{"title"}, "properties": map[string]any{
		"title": map[string]any{"type": "string"}, "points": map[string]any{"type": "number"},
		"status": map[string]any{"type": "string"}}}
	srv.api(t, "PUT", "/v1/tenants/acme/collections/tasks", f.acmeKey, map[string]any{"schema": schema,
		"indexes": []map[string]any{{"fields": []string{"points"}}}}, http.StatusOK, nil)
	for i := 1; i <= 7; i++ {
		status := "open"
		if i%2 == 0 {
			status = "done"
		}
		srv.api(t, "POST", "/v1/tenants/acme/collections/tasks/records", f.acmeKey,
			map[string]any{"title": fmt.Sprintf("task %d", i), "points": i * 2, "status": status}, http.StatusCreated, nil)
	}

	srv.api(t, "PUT", "/v1/tenants/globex/collections/secret_plans", f.globexKey, map[string]any{}, http.StatusOK, nil)
	var rec struct {
		ID string `json:"id"`
	}
	srv.api(t, "POST", "/v1/tenants/globex/collections/secret_plans/records", f.globexKey,
		map[string]any{"title": globexSecret}, http.StatusCreated, &rec)
	f.globexRecord = rec.ID
	var u struct {
		ID string `json:"id"`
	}
	srv.api(t, "POST", "/v1/tenants/globex/users", operatorToken,
		map[string]string{"email": "boss@globex.io", "password": "globex password 1", "role": "member"}, http.StatusCreated, &u)
	f.globexUserID = u.ID
	var keys struct {
		Items []struct {
			ID string `json:"id"`
		} `json:"items"`
	}
	srv.api(t, "GET", "/v1/tenants/globex/api-keys", f.globexKey, nil, http.StatusOK, &keys)
	f.globexKeyID = keys.Items[0].ID
	return f
}

// pageJS evaluates a JavaScript expression in the page.
func pageJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return get(t, ctx, "evaluate "+expr, chromedp.Evaluate[T](expr))
}

// awaitJS evaluates a JavaScript expression whose value is a promise, and
// returns what it resolves to.
func awaitJS[T any](t *testing.T, ctx context.Context, expr string) T {
	t.Helper()
	return get(t, ctx, "evaluate", chromedp.Evaluate[T](expr, chromedp.EvalAwaitPromise))
}

// recordIDs lists the ids of the records table's rows, in order.
func recordIDs(t *testing.T, ctx context.Context) []string {
	t.Helper()
	return pageJS[[]string](t, ctx, `Array.from(document.querySelectorAll("#records tr[data-record]")).map(r => r.dataset.record)`)
}

// waitRecordsChange waits until the records table's first row is another
// than before (an htmx swap has happened).
func waitRecordsChange(t *testing.T, ctx context.Context, before string) {
	t.Helper()
	for {
		ids, err := chromedp.Run(ctx, chromedp.Evaluate[[]string](
			`Array.from(document.querySelectorAll("#records tr[data-record]")).map(r => r.dataset.record)`))
		if err == nil && len(ids) > 0 && ids[0] != before {
			return
		}
		if ctx.Err() != nil {
			t.Fatalf("the records table never changed from %s", before)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// TestBrowserTenantAdmin clicks through every tenant-admin page as acme's
// admin, signed in with email and password: collections, a collection's
// schema, the records browser (filter, order, paging, a bad filter,
// create, edit, a conflicting edit, delete), API keys (the secret shown
// once, revoking it makes the API refuse it), users (create, change a
// role) and the audit log with its verification.
func TestBrowserTenantAdmin(t *testing.T) {
	ctx := newBrowser(t)
	f := newTenantFixture(t)
	srv := f.srv

	loginPassword(t, ctx, srv, "acme", f.adminEmail, f.password)
	waitFor(t, ctx, "#collections")
	logTiming(t, ctx, "tenant-collections")
	if got := text(t, ctx, `#collections tr[data-collection="tasks"] .count`); got != "7" {
		t.Errorf("tasks' record count shows %q, want 7", got)
	}
	if got := text(t, ctx, "#usage"); !strings.Contains(got, "7") {
		t.Errorf("usage shows %q, want 7 records", got)
	}
	shot(t, ctx, "tenant-collections")
	checkAccessible(t, ctx, "tenant-collections")

	// A collection created through the page.
	submit(t, ctx, map[string]string{"#coll-name": "notes", "#coll-schema": `{"type":"object"}`}, "#collection-form button[type=submit]")
	waitText(t, ctx, "main", "Collection created.")
	if got := text(t, ctx, "#collection-name"); got != "notes" {
		t.Errorf("after creating notes the page shows collection %q", got)
	}

	// The collection's detail: schema, indexes, encrypted fields, retention.
	open(t, ctx, srv, "/ui/t/acme/collections/tasks/schema", "tenant-collection")
	if got := text(t, ctx, "#schema"); !strings.Contains(got, `"points"`) || !strings.Contains(got, `"required"`) {
		t.Errorf("the schema shows %q", got)
	}
	if got := text(t, ctx, "#indexes"); !strings.Contains(got, "points") {
		t.Errorf("the indexes show %q, want the points index", got)
	}
	if got := text(t, ctx, "#retention"); got != "kept for ever" {
		t.Errorf("retention shows %q", got)
	}
	shot(t, ctx, "tenant-collection")
	checkAccessible(t, ctx, "tenant-collection")

	// Paging through the records, three at a time, with htmx.
	open(t, ctx, srv, "/ui/t/acme/collections/tasks?limit=3", "tenant-records")
	first := recordIDs(t, ctx)
	if len(first) != 3 {
		t.Fatalf("the first page has %d records, want 3", len(first))
	}
	if got := text(t, ctx, "#total"); !strings.Contains(got, "7 matching") {
		t.Errorf("the total shows %q, want 7 matching", got)
	}
	run(t, ctx, "next page", chromedp.Click(css("#next-page")))
	waitRecordsChange(t, ctx, first[0])
	second := recordIDs(t, ctx)
	if len(second) != 3 || second[0] == first[2] {
		t.Errorf("the second page is %v after %v", second, first)
	}
	if loc := pageJS[string](t, ctx, "location.search"); !strings.Contains(loc, "cursor=") {
		t.Errorf("the second page's URL %q has no cursor", loc)
	}
	run(t, ctx, "next page", chromedp.Click(css("#next-page")))
	waitRecordsChange(t, ctx, second[0])
	if third := recordIDs(t, ctx); len(third) != 1 {
		t.Errorf("the last page has %d records, want 1", len(third))
	}
	if n := pageJS[int](t, ctx, `document.querySelectorAll("#next-page").length`); n != 0 {
		t.Error("the last page still offers Next")
	}
	run(t, ctx, "back to first", chromedp.Click(css("#first-page")))
	waitText(t, ctx, "#records tbody", first[0])
	if again := recordIDs(t, ctx); !slices.Equal(again, first) {
		t.Errorf("back to first shows %v, want %v", again, first)
	}

	// A filter and an order.
	open(t, ctx, srv, "/ui/t/acme/collections/tasks", "tenant-records")
	run(t, ctx, "filter", chromedp.SetValue(css("#filter"), `points >= 8 && status = "open"`),
		chromedp.SetValue(css("#order"), "-points"), chromedp.Click(css("#apply")))
	waitText(t, ctx, "#total", "(2 matching)")
	if got := text(t, ctx, "#records tbody"); !strings.Contains(got, "task 7") || !strings.Contains(got, "task 5") ||
		strings.Index(got, "task 7") > strings.Index(got, "task 5") || strings.Contains(got, "task 3") {
		t.Errorf("the filtered, ordered records show %q, want task 7 then task 5", got)
	}
	shot(t, ctx, "tenant-records")
	checkAccessible(t, ctx, "tenant-records")

	// A bad filter shows the API's invalid_filter with its position.
	run(t, ctx, "bad filter", chromedp.SetValue(css("#filter"), `points >= `), chromedp.Click(css("#apply")))
	waitText(t, ctx, "#results", "invalid_filter")
	if got := text(t, ctx, "#results .position"); got == "" {
		t.Error("the invalid filter's position is not shown")
	}
	// Without JavaScript's help (a plain GET) the same answer is a page.
	open(t, ctx, srv, "/ui/t/acme/collections/tasks?filter="+strings.ReplaceAll("title %3D%3D", " ", "+"), "tenant-records-bad-filter")
	waitText(t, ctx, "#results", "invalid_filter")

	// Create a record through the form, then edit it.
	open(t, ctx, srv, "/ui/t/acme/collections/tasks", "tenant-records")
	submit(t, ctx, map[string]string{"#new-data": `{"title": "from the console", "points": 1}`}, "#record-new button[type=submit]")
	waitText(t, ctx, "main", "Record created.")
	id := text(t, ctx, "#record-id")
	checkAccessible(t, ctx, "record")
	if got := text(t, ctx, "#record-json"); !strings.Contains(got, "from the console") {
		t.Errorf("the new record shows %q", got)
	}
	submit(t, ctx, map[string]string{"#edit-data": `{"title": "edited", "status": "open"}`}, "#record-edit button[type=submit]")
	waitText(t, ctx, "main", "Record saved: version 2.")
	var rec struct {
		Version int64          `json:"version"`
		Data    map[string]any `json:"data"`
	}
	srv.api(t, "GET", "/v1/tenants/acme/collections/tasks/records/"+id, f.acmeKey, nil, http.StatusOK, &rec)
	if rec.Version != 2 || rec.Data["title"] != "edited" || rec.Data["status"] != "open" || rec.Data["points"] != nil {
		t.Errorf("after the edit the API has version %d, data %v; want version 2, points removed", rec.Version, rec.Data)
	}

	// Someone else changes the record while the form is open: 412, shown plainly.
	srv.api(t, "PATCH", "/v1/tenants/acme/collections/tasks/records/"+id, f.acmeKey, map[string]any{"points": 40},
		http.StatusOK, nil)
	submit(t, ctx, map[string]string{"#edit-data": `{"title": "stale edit"}`}, "#record-edit button[type=submit]")
	waitText(t, ctx, "#conflict", "Someone changed this record")
	if got := text(t, ctx, "main .problem"); !strings.Contains(got, "precondition_failed") {
		t.Errorf("the conflict shows %q, want precondition_failed", got)
	}
	if got := text(t, ctx, "#record-version"); got != "3" {
		t.Errorf("after the conflict the page shows version %q, want the current 3", got)
	}
	srv.api(t, "GET", "/v1/tenants/acme/collections/tasks/records/"+id, f.acmeKey, nil, http.StatusOK, &rec)
	if rec.Data["title"] != "edited" {
		t.Errorf("the stale edit was applied: %v", rec.Data)
	}

	// Delete it (with the confirmation ticked).
	run(t, ctx, "confirm delete", chromedp.Click(css("#delete-confirm")))
	submit(t, ctx, nil, "#record-delete button[type=submit]")
	waitText(t, ctx, "main", "Record deleted.")
	srv.api(t, "GET", "/v1/tenants/acme/collections/tasks/records/"+id, f.acmeKey, nil, http.StatusNotFound, nil)

	// API keys: the secret is shown once.
	open(t, ctx, srv, "/ui/t/acme/keys", "tenant-keys")
	submit(t, ctx, map[string]string{"#key-name": "ci deploy", "#key-role": "viewer"}, "#key-form button[type=submit]")
	waitFor(t, ctx, "#new-key")
	secret := pageJS[string](t, ctx, `document.getElementById("new-key").value`)
	if !strings.HasPrefix(secret, "bh_") {
		t.Fatalf("the new key shows %q", secret)
	}
	shot(t, ctx, "tenant-keys")
	checkAccessible(t, ctx, "tenant-keys")
	srv.api(t, "GET", "/v1/tenants/acme/collections/tasks/records", secret, nil, http.StatusOK, nil)
	open(t, ctx, srv, "/ui/t/acme/keys", "tenant-keys")
	if html := pageJS[string](t, ctx, "document.documentElement.outerHTML"); strings.Contains(html, secret) ||
		strings.Contains(html, `id="new-key"`) {
		t.Error("the key's secret is still shown after reloading the page")
	}
	keyRow := `#keys tr:has(th:first-child)`
	keyID := pageJS[string](t, ctx, `Array.from(document.querySelectorAll("`+keyRow+`")).find(r => r.querySelector("th").innerText === "ci deploy").dataset.key`)
	run(t, ctx, "revoke", chromedp.Click(css(`#keys tr[data-key="`+keyID+`"] a.danger-link`)), chromedp.WaitVisible(css("#confirm-revoke-key")))
	logTiming(t, ctx, "tenant-key-revoke")
	checkAccessible(t, ctx, "revoke-key")
	submit(t, ctx, nil, "#confirm-revoke-key button[type=submit]")
	waitText(t, ctx, "main", "API key revoked")
	if got := text(t, ctx, `#keys tr[data-key="`+keyID+`"] .state`); !strings.HasPrefix(got, "revoked") {
		t.Errorf("the revoked key's state shows %q", got)
	}
	srv.api(t, "GET", "/v1/tenants/acme/collections/tasks/records", secret, nil, http.StatusUnauthorized, nil)

	// Users: create one, change its role.
	open(t, ctx, srv, "/ui/t/acme/users", "tenant-users")
	submit(t, ctx, map[string]string{"#user-email": "bob@acme.io", "#user-password": "bob's long password", "#user-role": "member"},
		"#user-form button[type=submit]")
	waitText(t, ctx, "main", "User created.")
	row := `#users tr[data-user="bob@acme.io"]`
	if got := pageJS[string](t, ctx, `document.querySelector('`+row+` select.role').value`); got != "member" {
		t.Errorf("bob's role shows %q, want member", got)
	}
	run(t, ctx, "change role", chromedp.SetValue(css(row+" select.role"), "viewer"))
	submit(t, ctx, nil, row+" button[type=submit]")
	waitText(t, ctx, "main", "Role changed.")
	if got := pageJS[string](t, ctx, `document.querySelector('`+row+` select.role').value`); got != "viewer" {
		t.Errorf("after the change bob's role shows %q, want viewer", got)
	}
	var users struct {
		Items []struct{ Email, Role string } `json:"items"`
	}
	srv.api(t, "GET", "/v1/tenants/acme/users", f.acmeKey, nil, http.StatusOK, &users)
	for _, u := range users.Items {
		if u.Email == "bob@acme.io" && u.Role != "viewer" {
			t.Errorf("the API has bob as %s, want viewer", u.Role)
		}
	}
	shot(t, ctx, "tenant-users")
	checkAccessible(t, ctx, "users")

	// Remove bob, after the confirmation page.
	run(t, ctx, "remove", chromedp.Click(css(row+" a.danger-link")), chromedp.WaitVisible(css("#confirm-remove-user")))
	checkAccessible(t, ctx, "remove-user")
	submit(t, ctx, nil, "#confirm-remove-user button[type=submit]")
	waitText(t, ctx, "main", "User removed.")
	srv.api(t, "GET", "/v1/tenants/acme/users", f.acmeKey, nil, http.StatusOK, &users)
	for _, u := range users.Items {
		if u.Email == "bob@acme.io" {
			t.Error("bob is still a user after being removed")
		}
	}

	// The audit log shows the writes, and the chain verifies.
	open(t, ctx, srv, "/ui/t/acme/audit", "tenant-audit")
	if got := text(t, ctx, "#verification"); !strings.Contains(got, "verified") || strings.Contains(got, "not verified") {
		t.Errorf("the verification shows %q", got)
	}
	audit := text(t, ctx, "#audit")
	for _, action := range []string{"record.create", "record.update", "record.delete", "api_key.create", "api_key.revoke", "user.create", "user.update", "collection.put"} {
		if !strings.Contains(audit, action) {
			t.Errorf("the audit page lacks %s", action)
		}
	}
	shot(t, ctx, "tenant-audit")
	checkAccessible(t, ctx, "tenant-audit")
}

// globexPaths are the console's paths to each kind of globex's pages.
func (f *tenantFixture) globexPaths() []string {
	return []string{
		"/ui/t/globex/",
		"/ui/t/globex",
		"/ui/t/globex/collections/secret_plans",
		"/ui/t/globex/collections/secret_plans?filter=title+~+%22globex%22",
		"/ui/t/globex/collections/secret_plans/schema",
		"/ui/t/globex/collections/secret_plans/records/" + f.globexRecord,
		"/ui/t/globex/keys",
		"/ui/t/globex/keys/" + f.globexKeyID + "/revoke",
		"/ui/t/globex/users",
		"/ui/t/globex/users/" + f.globexUserID + "/delete",
		"/ui/t/globex/audit",
	}
}

// operatorPaths are the operator's pages.
var operatorPaths = []string{"/ui/noisy", "/ui/audit", "/ui/tenants/globex", "/ui/tenants/acme"}

// TestBrowserTenantIsolation signs in as acme's admin and goes to every
// kind of globex's pages, and to the operator's: each is the not-found
// page and shows none of globex's data. Forms posted to globex's pages
// from acme's session (with its CSRF token) change nothing of globex's.
func TestBrowserTenantIsolation(t *testing.T) {
	ctx := newBrowser(t)
	f := newTenantFixture(t)
	srv := f.srv
	loginPassword(t, ctx, srv, "acme", f.adminEmail, f.password)
	waitFor(t, ctx, "#collections")

	for _, path := range append(f.globexPaths(), operatorPaths...) {
		open(t, ctx, srv, path, "cross-tenant")
		if got := text(t, ctx, "main h1"); got != "Not found" {
			t.Errorf("%s as acme's admin shows %q, want the not-found page", path, got)
		}
		html := pageJS[string](t, ctx, "document.documentElement.outerHTML")
		for _, secret := range []string{globexSecret, "boss@globex.io", "Tenant globex", `id="tenants"`} {
			if strings.Contains(html, secret) {
				t.Errorf("%s as acme's admin shows %q", path, secret)
			}
		}
	}
	open(t, ctx, srv, "/ui/", "home")
	if loc := pageJS[string](t, ctx, "location.pathname"); loc != "/ui/t/acme/" {
		t.Errorf("/ui/ sends acme's admin to %s, want /ui/t/acme/", loc)
	}

	// Forms aimed at globex, posted from acme's page with acme's CSRF token.
	for path, body := range f.globexPosts() {
		status := awaitJS[int](t, ctx, `(async () => {
			const token = document.querySelector('input[name="csrf"]').value;
			const r = await fetch(`+jsString(path)+`, {method: "POST", headers: {"Content-Type": "application/x-www-form-urlencoded",
				"X-CSRF-Token": token}, body: `+jsString(body)+`, redirect: "manual"});
			return r.status; })()`)
		if status != http.StatusNotFound {
			t.Errorf("POST %s from acme's session: status %d, want 404", path, status)
		}
	}
	f.globexUntouched(t)
}

// globexPosts are forms aimed at globex's pages that change something:
// path → urlencoded body.
func (f *tenantFixture) globexPosts() map[string]string {
	return map[string]string{
		"/ui/t/globex/keys":                                                           "name=stolen&role=owner",
		"/ui/t/globex/users":                                                          "email=mallory%40acme.io&password=mallory+password&role=owner",
		"/ui/t/globex/collections":                                                    "name=planted",
		"/ui/t/globex/collections/secret_plans/records":                               "data=%7B%22title%22%3A%22planted%22%7D",
		"/ui/t/globex/collections/secret_plans/records/" + f.globexRecord:             "version=1&data=%7B%7D",
		"/ui/t/globex/collections/secret_plans/records/" + f.globexRecord + "/delete": "version=1&confirm=yes",
		"/ui/t/globex/keys/" + f.globexKeyID + "/revoke":                              "",
		"/ui/t/globex/users/" + f.globexUserID + "/role":                              "role=viewer",
		"/ui/t/globex/users/" + f.globexUserID + "/delete":                            "",
	}
}

// globexUntouched checks through the API that globex is as the fixture
// made it: its key works, its record and user are unchanged, nothing was
// planted.
func (f *tenantFixture) globexUntouched(t *testing.T) {
	t.Helper()
	srv := f.srv
	var rec struct {
		Version int64          `json:"version"`
		Data    map[string]any `json:"data"`
	}
	srv.api(t, "GET", "/v1/tenants/globex/collections/secret_plans/records/"+f.globexRecord, f.globexKey, nil, http.StatusOK, &rec)
	if rec.Version != 1 || rec.Data["title"] != globexSecret {
		t.Errorf("globex's record changed: %+v", rec)
	}
	var users struct {
		Items []struct{ Email, Role string } `json:"items"`
	}
	srv.api(t, "GET", "/v1/tenants/globex/users", f.globexKey, nil, http.StatusOK, &users)
	if len(users.Items) != 1 || users.Items[0].Email != "boss@globex.io" || users.Items[0].Role != "member" {
		t.Errorf("globex's users changed: %+v", users.Items)
	}
	var keys struct {
		Items []struct{ Name string } `json:"items"`
	}
	srv.api(t, "GET", "/v1/tenants/globex/api-keys", f.globexKey, nil, http.StatusOK, &keys)
	if len(keys.Items) != 1 {
		t.Errorf("globex has %d API keys, want its one", len(keys.Items))
	}
	var colls struct {
		Items []struct{ Name string } `json:"items"`
	}
	srv.api(t, "GET", "/v1/tenants/globex/collections", f.globexKey, nil, http.StatusOK, &colls)
	if len(colls.Items) != 1 {
		t.Errorf("globex has %d collections, want its one", len(colls.Items))
	}
	var page struct {
		Items []any `json:"items"`
	}
	srv.api(t, "GET", "/v1/tenants/globex/collections/secret_plans/records", f.globexKey, nil, http.StatusOK, &page)
	if len(page.Items) != 1 {
		t.Errorf("globex's collection has %d records, want 1", len(page.Items))
	}
}

// TestBrowserTenantViewer signs in with a viewer's API key: the records
// browse, but creating a key shows the API's 403 and creates nothing.
func TestBrowserTenantViewer(t *testing.T) {
	ctx := newBrowser(t)
	f := newTenantFixture(t)
	srv := f.srv
	viewer := srv.createAPIKey(t, "acme", "viewer")
	loginAPIKey(t, ctx, srv, "acme", viewer)
	waitText(t, ctx, "main", "The collections cannot be listed")
	submit(t, ctx, map[string]string{"#open": "tasks"}, "#open-form button[type=submit]")
	waitFor(t, ctx, "#records")
	if ids := recordIDs(t, ctx); len(ids) != 7 {
		t.Errorf("the viewer sees %d records, want 7", len(ids))
	}

	open(t, ctx, srv, "/ui/t/acme/keys", "tenant-keys-viewer")
	if got := text(t, ctx, "main .problem"); !strings.Contains(got, "forbidden") {
		t.Errorf("the viewer's keys page shows %q, want the API's forbidden", got)
	}
	submit(t, ctx, map[string]string{"#key-name": "viewer's try", "#key-role": "viewer"}, "#key-form button[type=submit]")
	waitFor(t, ctx, "main > .problem")
	if got := text(t, ctx, "main > .problem"); !strings.Contains(got, "forbidden") {
		t.Errorf("creating a key as a viewer shows %q, want the API's forbidden", got)
	}
	if n := pageJS[int](t, ctx, `document.querySelectorAll("#new-key").length`); n != 0 {
		t.Error("the viewer was shown a new key")
	}
	var keys struct {
		Items []struct{ Name string } `json:"items"`
	}
	srv.api(t, "GET", "/v1/tenants/acme/api-keys", f.acmeKey, nil, http.StatusOK, &keys)
	for _, k := range keys.Items {
		if k.Name == "viewer's try" {
			t.Error("the viewer's key was created")
		}
	}
}

// checkAccessible checks the current page's markup for what a screen
// reader and a keyboard need: every visible form control has a label,
// every table header cell a scope, every link and button a name, one h1.
func checkAccessible(t *testing.T, ctx context.Context, name string) {
	t.Helper()
	problems := pageJS[[]string](t, ctx, `(() => {
		const out = [];
		document.querySelectorAll("input:not([type=hidden]), select, textarea").forEach(e => {
			if (e.labels.length === 0 && !e.getAttribute("aria-label")) out.push("unlabelled " + e.outerHTML.slice(0, 80));
		});
		document.querySelectorAll("th").forEach(e => {
			if (!e.getAttribute("scope")) out.push("th without scope: " + e.innerText.slice(0, 40));
		});
		document.querySelectorAll("a[href], button").forEach(e => {
			if (!e.hidden && !(e.innerText.trim() || e.getAttribute("aria-label"))) out.push("nameless " + e.outerHTML.slice(0, 80));
		});
		if (document.querySelectorAll("h1").length !== 1) out.push("h1 count " + document.querySelectorAll("h1").length);
		if (!document.querySelector("main") || !document.querySelector("a.skip")) out.push("no main landmark or skip link");
		return out; })()`)
	for _, p := range problems {
		t.Errorf("page %s: %s", name, p)
	}
}
