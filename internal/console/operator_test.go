package console

import (
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"regexp"
	"strings"
	"testing"
)

// The health answers of the API contract, as the health routes give them.
const (
	contractTenantHealth = `{
  "tenant": "acme", "tenant_id": "t1", "status": "active", "plan": "free",
  "window_seconds": 60, "requests": 123, "rate": 2.05,
  "error_ratio": 0.25, "p50_ms": 1.2, "p99_ms": 8.3, "throttled": 3, "shed": 0,
  "quota": [{"name": "records", "used": 10, "limit": 1000, "ratio": 0.01}, {"name": "bytes", "used": 5, "limit": 0, "ratio": 0}],
  "open_breakers": ["database"],
  "series": {"step_seconds": 5, "points": [
     {"t": 1733400000, "rate": 2.0, "p99_ms": 8.1, "errors": 0, "throttled": 1, "shed": 0},
     {"t": 1733400005, "rate": 3.0, "p99_ms": 9.5, "errors": 1, "throttled": 0, "shed": 2}]}
}`
	contractRanking = `{"window_seconds": 60, "items": [
  {"tenant": "noisy", "tenant_id": "t2", "status": "active", "plan": "tight", "window_seconds": 60, "requests": 900, "rate": 15,
   "error_ratio": 0, "p50_ms": 2, "p99_ms": 40, "throttled": 70, "shed": 4, "quota": [], "open_breakers": ["tenant"]},
  {"tenant": "acme", "tenant_id": "t1", "status": "active", "plan": "free", "window_seconds": 60, "requests": 123, "rate": 2.05,
   "error_ratio": 0, "p50_ms": 1.2, "p99_ms": 8.3, "throttled": 0, "shed": 0, "quota": [], "open_breakers": []}],
 "breakers": {"database": "open", "redis": "closed", "oidc": "half-open"}}`
)

// contractAPI answers the operator's reads with the contract's examples.
func contractAPI() *fakeAPI {
	return &fakeAPI{answer: func(r *http.Request, _ string) (int, any) {
		switch r.URL.Path {
		case "/v1/tenants":
			return 200, json.RawMessage(`{"items": [{"slug": "acme", "name": "Acme", "plan": "free", "status": "active"},
				{"slug": "noisy", "name": "Noisy", "plan": "tight", "status": "active"},
				{"slug": "idle", "name": "Idle", "plan": "free", "status": "suspended"}], "next_cursor": ""}`)
		case "/v1/health/tenants":
			return 200, json.RawMessage(contractRanking)
		case "/v1/tenants/acme":
			return 200, json.RawMessage(`{"slug": "acme", "name": "Acme", "plan": "free", "status": "active"}`)
		case "/v1/tenants/acme/health":
			return 200, json.RawMessage(contractTenantHealth)
		case "/v1/plans":
			return 200, json.RawMessage(`{"items": [{"name": "free"}, {"name": "pro"}]}`)
		}
		return 404, map[string]any{"code": "not_found"}
	}}
}

// get serves a GET of path as the operator and returns the answer.
func getAsOperator(t *testing.T, c *Console, path string, htmx bool) *httptest.ResponseRecorder {
	t.Helper()
	req := httptest.NewRequest("GET", "http://127.0.0.1:8080"+path, nil)
	req.AddCookie(sessionCookieFor(t, c, operatorSession()))
	if htmx {
		req.Header.Set("HX-Request", "true")
	}
	rec := httptest.NewRecorder()
	c.ServeHTTP(rec, req)
	if rec.Code != 200 {
		t.Fatalf("GET %s: status %d: %s", path, rec.Code, rec.Body)
	}
	return rec
}

// squash collapses the whitespace of HTML, for matching.
func squash(s string) string { return regexp.MustCompile(`\s+`).ReplaceAllString(s, " ") }

func TestDashboardShowsHealthAndBreakers(t *testing.T) {
	c := newTestConsole(t, contractAPI())
	body := squash(getAsOperator(t, c, "/ui/", false).Body.String())
	for _, want := range []string{
		`<li class="breaker open" data-breaker="database"><span class="name">database</span> <span class="state">open</span></li>`,
		`<li class="breaker closed" data-breaker="redis">`,
		`<li class="breaker open" data-breaker="oidc">`, // half-open is not closed
		`<td class="num">15.00</td>`,                    // noisy's rate
		`<td class="num hot">70</td>`,                   // noisy's throttles
		`<tr data-tenant="idle"> <th scope="row"><a href="/ui/tenants/idle">idle</a></th> <td>Idle</td><td class="plan">free</td><td class="status status-suspended">suspended</td> <td class="num nodata" colspan="5">no traffic</td>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the dashboard lacks %s", want)
		}
	}
	if !strings.Contains(body, `<body hx-headers='{"X-CSRF-Token": "csrf-token-1"}'>`) {
		t.Error("the page does not give htmx the session's CSRF token")
	}
	if strings.Contains(body, "No health data") {
		t.Error("the dashboard says there is no health data")
	}
	// The htmx poll gets the live part alone.
	live := getAsOperator(t, c, "/ui/", true).Body.String()
	if strings.Contains(live, "<html") || !strings.HasPrefix(strings.TrimSpace(live), `<div id="live"`) {
		t.Errorf("the poll's answer is not the live fragment: %.200s", live)
	}
}

func TestDashboardWithoutHealthSaysNoData(t *testing.T) {
	api := contractAPI()
	inner := api.answer
	api.answer = func(r *http.Request, b string) (int, any) {
		if r.URL.Path == "/v1/health/tenants" {
			return 404, map[string]any{"code": "not_found"}
		}
		return inner(r, b)
	}
	c := newTestConsole(t, api)
	body := getAsOperator(t, c, "/ui/", false).Body.String()
	if !strings.Contains(body, "No health data") || !strings.Contains(body, `data-tenant="acme"`) {
		t.Error("without health figures the dashboard should list the tenants and say there is no data")
	}
}

func TestNoisyView(t *testing.T) {
	api := contractAPI()
	c := newTestConsole(t, api)
	body := squash(getAsOperator(t, c, "/ui/noisy?sort=p99", false).Body.String())
	if got := api.called("GET", "/v1/health/tenants"); len(got) != 1 || got[0].URL.Query().Get("sort") != "p99" {
		t.Fatalf("the API was asked %v; want sort=p99", got)
	}
	for _, want := range []string{
		`<li data-tenant="noisy"><a href="/ui/tenants/noisy">noisy</a>: 70 throttled, 4 shed</li>`,
		`hx-get="/ui/noisy?sort=p99" hx-trigger="every 3s"`,
		`<td class="num">1</td> <th scope="row"><a href="/ui/tenants/noisy">noisy</a></th>`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the noisy view lacks %s", want)
		}
	}
	if strings.Contains(body, `<li data-tenant="acme">`) {
		t.Error("acme, neither throttled nor shed, is listed as pressured")
	}
	// An unknown sort is not passed on.
	getAsOperator(t, c, "/ui/noisy?sort=bogus", false)
	if got := api.called("GET", "/v1/health/tenants"); got[len(got)-1].URL.Query().Get("sort") != "rate" {
		t.Errorf("sort=bogus asked the API for %q; want rate", got[len(got)-1].URL.Query().Get("sort"))
	}
}

func TestTenantPageShowsHealthQuotaAndSeries(t *testing.T) {
	c := newTestConsole(t, contractAPI())
	body := squash(getAsOperator(t, c, "/ui/tenants/acme", false).Body.String())
	for _, want := range []string{
		`<dd id="tenant-plan">free</dd>`,
		`<option value="pro">pro</option>`,
		`<option value="free" selected>free</option>`,
		`<div><dt>Error ratio</dt><dd>25%</dd></div>`,
		`<div><dt>p99</dt><dd>8.3 ms</dd></div>`,
		`<dd class="hot">database</dd>`,
		`<meter min="0" max="100" low="70" high="90" optimum="0" value="1" aria-label="records used">1.0%</meter>`,
		`<td class="num">unlimited</td>`,
		`data-series-url="/ui/tenants/acme/series"`,
	} {
		if !strings.Contains(body, want) {
			t.Errorf("the tenant page lacks %s", want)
		}
	}
	var series struct {
		Columns   [][]float64 `json:"columns"`
		Available bool        `json:"available"`
	}
	if err := json.Unmarshal(getAsOperator(t, c, "/ui/tenants/acme/series", false).Body.Bytes(), &series); err != nil {
		t.Fatal(err)
	}
	want := [][]float64{{1733400000, 1733400005}, {2, 3}, {8.1, 9.5}, {1, 0}, {0, 2}}
	if !series.Available || len(series.Columns) != 5 {
		t.Fatalf("series %+v", series)
	}
	for i := range want {
		for j := range want[i] {
			if series.Columns[i][j] != want[i][j] {
				t.Errorf("column %d: %v; want %v", i, series.Columns[i], want[i])
			}
		}
	}
}

func TestAPIReferenceFromDocument(t *testing.T) {
	doc := `{"openapi": "3.1.0", "info": {"title": "bulkhead", "version": "1"},
	  "tags": [{"name": "platform", "description": "Tenants."}],
	  "paths": {"/v1/tenants/{tenant}": {"patch": {"operationId": "updateTenant", "tags": ["platform"], "summary": "Change a tenant",
	     "parameters": [{"$ref": "#/components/parameters/Tenant"}],
	     "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/UpdateTenant"}}}},
	     "responses": {"200": {"description": "The tenant.", "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Tenant"}}}},
	                   "404": {"$ref": "#/components/responses/NotFound"}}}}},
	  "components": {"parameters": {"Tenant": {"name": "tenant", "in": "path", "required": true, "schema": {"type": "string"}, "description": "The slug."}},
	    "responses": {"NotFound": {"description": "No such tenant."}},
	    "schemas": {"UpdateTenant": {"type": "object", "required": ["status"], "properties": {"status": {"type": "string", "enum": ["active", "suspended"]}}},
	                "Tenant": {"type": "object", "properties": {"slug": {"type": "string"}}}}}}`
	d := buildAPIRef(mustDecode(t, doc))
	if len(d.Tags) != 1 || len(d.Tags[0].Operations) != 1 {
		t.Fatalf("tags %+v", d.Tags)
	}
	op := d.Tags[0].Operations[0]
	if op.Method != "PATCH" || op.Parameters[0].Name != "tenant" || op.Body.Ref != "UpdateTenant" || op.Answers[1].Description != "No such tenant." {
		t.Errorf("operation %+v", op)
	}
	if d.Schemas[1].Name != "UpdateTenant" || d.Schemas[1].Properties[0].Type != `string: "active" | "suspended"` || !d.Schemas[1].Properties[0].Required {
		t.Errorf("schemas %+v", d.Schemas)
	}
}

func mustDecode(t *testing.T, doc string) *openAPI {
	t.Helper()
	var d openAPI
	if err := json.Unmarshal([]byte(doc), &d); err != nil {
		t.Fatal(err)
	}
	return &d
}
