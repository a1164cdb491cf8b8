package httpapi

import (
	"bytes"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/bulkheadhq/bulkhead/internal/auth"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// tenantBody is a tenant as the operator API shows it.
type tenantBody struct {
	ID        string `json:"id"`
	Slug      string `json:"slug"`
	Name      string `json:"name"`
	Plan      string `json:"plan"`
	Isolation string `json:"isolation"`
	Status    string `json:"status"`
	CreatedAt string `json:"created_at"`
	UpdatedAt string `json:"updated_at"`
}

func TestTenantCreate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("taken", tenant.Pooled)
	tenantKey := b.apiKey("taken", tenant.Owner)

	long := "a" + strings.Repeat("b", 62) // 63 bytes: the longest slug
	runScenarios(t, b, []apiScenario{
		{
			name: "DefaultsPooledFree", method: "POST", path: "/v1/tenants", token: b.admin,
			body:       map[string]any{"slug": "acme", "name": "Acme Inc."},
			wantStatus: 201,
			wantHeaders: map[string]string{
				"Location":     "/v1/tenants/acme",
				"Content-Type": "application/json",
			},
			check: func(t *testing.T, r *response) {
				var got tenantBody
				r.JSON(t, &got)
				if _, err := uuid.Parse(got.ID); err != nil {
					t.Errorf("id = %q, not a UUID", got.ID)
				}
				if got.CreatedAt == "" {
					t.Errorf("created_at is empty: %s", r.Body)
				}
				want := tenantBody{ID: got.ID, Slug: "acme", Name: "Acme Inc.", Plan: "free", Isolation: "pooled",
					Status: "active", CreatedAt: got.CreatedAt, UpdatedAt: got.UpdatedAt}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("tenant (-want +got):\n%s", diff)
				}
			},
		},
		{
			name: "SiloPro", method: "POST", path: "/v1/tenants", token: b.admin,
			body:       map[string]any{"slug": "silo-co", "name": "Silo", "plan": "pro", "isolation": "silo"},
			wantStatus: 201,
			check: func(t *testing.T, r *response) {
				var got tenantBody
				r.JSON(t, &got)
				if got.Plan != "pro" || got.Isolation != "silo" {
					t.Errorf("plan, isolation = %q, %q, want pro, silo", got.Plan, got.Isolation)
				}
			},
		},
		{name: "LongestSlug", method: "POST", path: "/v1/tenants", token: b.admin,
			body: map[string]any{"slug": long, "name": "x"}, wantStatus: 201},
		{name: "SlugTooLong", method: "POST", path: "/v1/tenants", token: b.admin,
			body: map[string]any{"slug": long + "c", "name": "x"}, wantStatus: 400, wantCode: problem.CodeInvalidRequest,
			wantContains: []string{`"field":"slug"`}},
		{name: "SlugOneChar", method: "POST", path: "/v1/tenants", token: b.admin,
			body: map[string]any{"slug": "a", "name": "x"}, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "SlugUpperCase", method: "POST", path: "/v1/tenants", token: b.admin,
			body: map[string]any{"slug": "Acme", "name": "x"}, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "SlugLeadingDigit", method: "POST", path: "/v1/tenants", token: b.admin,
			body: map[string]any{"slug": "1acme", "name": "x"}, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "SlugUnderscore", method: "POST", path: "/v1/tenants", token: b.admin,
			body: map[string]any{"slug": "ac_me", "name": "x"}, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "SlugMissing", method: "POST", path: "/v1/tenants", token: b.admin,
			body: map[string]any{"name": "x"}, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "SlugWrongType", method: "POST", path: "/v1/tenants", token: b.admin,
			body: map[string]any{"slug": 12, "name": "x"}, wantStatus: 400, wantCode: problem.CodeInvalidRequest,
			wantContains: []string{`"field":"slug"`}},
		{name: "NameEmpty", method: "POST", path: "/v1/tenants", token: b.admin,
			body: map[string]any{"slug": "named", "name": ""}, wantStatus: 400, wantCode: problem.CodeInvalidRequest,
			wantContains: []string{`"field":"name"`}},
		{name: "NameTooLong", method: "POST", path: "/v1/tenants", token: b.admin,
			body: map[string]any{"slug": "named", "name": strings.Repeat("n", 201)}, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "IsolationUnknown", method: "POST", path: "/v1/tenants", token: b.admin,
			body: map[string]any{"slug": "iso", "name": "x", "isolation": "shared"}, wantStatus: 400, wantCode: problem.CodeInvalidRequest,
			wantContains: []string{`"field":"isolation"`}},
		{name: "PlanUnknown", method: "POST", path: "/v1/tenants", token: b.admin,
			body: map[string]any{"slug": "plan-x", "name": "x", "plan": "platinum"}, wantStatus: 400, wantCode: problem.CodeInvalidRequest,
			wantContains: []string{`"field":"plan"`}},
		{name: "UnknownField", method: "POST", path: "/v1/tenants", token: b.admin,
			body: map[string]any{"slug": "unk", "name": "x", "owner": "me"}, wantStatus: 400, wantCode: problem.CodeUnknownField,
			wantContains: []string{`"field":"owner"`}},
		{name: "TwoValues", method: "POST", path: "/v1/tenants", token: b.admin,
			body: `{"slug":"two","name":"x"} {}`, wantStatus: 400, wantCode: problem.CodeInvalidJSON},
		{name: "NotJSON", method: "POST", path: "/v1/tenants", token: b.admin,
			body: `{"slug":`, wantStatus: 400, wantCode: problem.CodeInvalidJSON},
		{name: "EmptyBody", method: "POST", path: "/v1/tenants", token: b.admin,
			body: "", wantStatus: 400, wantCode: problem.CodeInvalidJSON},
		{name: "BodyArray", method: "POST", path: "/v1/tenants", token: b.admin,
			body: `[]`, wantStatus: 400, wantCode: problem.CodeInvalidRequest,
			check: func(t *testing.T, r *response) {
				p := assertProblem(t, r, 400, problem.CodeInvalidRequest)
				if strings.HasPrefix(p.Detail, " ") || len(p.Errors) != 1 || p.Errors[0].Field == "" {
					t.Errorf("detail %q, errors %+v: want the problem to name what has the wrong type", p.Detail, p.Errors)
				}
			}},
		{name: "BodyNull", method: "POST", path: "/v1/tenants", token: b.admin,
			body: `null`, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "DuplicateSlug", method: "POST", path: "/v1/tenants", token: b.admin,
			body: map[string]any{"slug": "taken", "name": "again"}, wantStatus: 409, wantCode: problem.CodeConflict},
		{name: "NoCredential", method: "POST", path: "/v1/tenants",
			body: map[string]any{"slug": "anon", "name": "x"}, wantStatus: 401, wantCode: problem.CodeUnauthorized,
			wantHeaders: map[string]string{"WWW-Authenticate": `Bearer realm="bulkhead"`}},
		{name: "TenantKeyForbidden", method: "POST", path: "/v1/tenants", token: tenantKey,
			body: map[string]any{"slug": "by-key", "name": "x"}, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "WrongOperatorToken", method: "POST", path: "/v1/tenants", token: b.admin + "x",
			body: map[string]any{"slug": "bad-op", "name": "x"}, wantStatus: 401, wantCode: problem.CodeUnauthorized},
	})

	// Nothing refused above was created.
	var all page[tenantBody]
	b.must(200, "GET", "/v1/tenants?limit=1000", b.admin, nil).JSON(t, &all)
	var slugs []string
	for _, tn := range all.Items {
		slugs = append(slugs, tn.Slug)
	}
	if diff := cmp.Diff([]string{"taken", "acme", "silo-co", long}, slugs); diff != "" {
		t.Errorf("tenants (-want +got):\n%s", diff)
	}
}

func TestTenantCreateIdempotent(t *testing.T) {
	t.Parallel()
	b := setup(t)
	body := map[string]any{"slug": "idem", "name": "Idem"}
	first := b.must(201, "POST", "/v1/tenants", b.admin, body, "Idempotency-Key", "t-1")
	second := b.must(201, "POST", "/v1/tenants", b.admin, body, "Idempotency-Key", "t-1")
	if got := second.Header.Get("Idempotent-Replayed"); got != "true" {
		t.Errorf("Idempotent-Replayed = %q, want true", got)
	}
	if first.Header.Get("Idempotent-Replayed") != "" {
		t.Errorf("first response is marked replayed")
	}
	if string(first.Body) != string(second.Body) {
		t.Errorf("replay body = %s, want %s", second.Body, first.Body)
	}
	b.mustProblem(422, problem.CodeIdempotencyKeyReused, "POST", "/v1/tenants", b.admin,
		map[string]any{"slug": "idem-2", "name": "Idem"}, "Idempotency-Key", "t-1")
	var all page[tenantBody]
	b.must(200, "GET", "/v1/tenants", b.admin, nil).JSON(t, &all)
	if len(all.Items) != 1 {
		t.Errorf("%d tenants exist, want 1: %+v", len(all.Items), all.Items)
	}
}

func TestTenantList(t *testing.T) {
	t.Parallel()
	b := setup(t)
	var want []string
	for i := range 11 {
		slug := fmt.Sprintf("list-%02d", i)
		b.tenant(slug, tenant.Pooled)
		want = append(want, slug)
	}

	t.Run("Pages", func(t *testing.T) {
		bt := b.withT(t)
		var got []string
		cursor := ""
		pages := 0
		for {
			path := "/v1/tenants?limit=4"
			if cursor != "" {
				path += "&cursor=" + url.QueryEscape(cursor)
			}
			var p page[tenantBody]
			bt.must(200, "GET", path, b.admin, nil).JSON(t, &p)
			pages++
			if len(p.Items) > 4 {
				t.Fatalf("page %d has %d items, limit 4", pages, len(p.Items))
			}
			for _, tn := range p.Items {
				got = append(got, tn.Slug)
			}
			if p.NextCursor == "" {
				break
			}
			if pages > 10 {
				t.Fatal("listing does not end")
			}
			cursor = p.NextCursor
		}
		if pages != 3 {
			t.Errorf("pages = %d, want 3", pages)
		}
		if diff := cmp.Diff(want, got); diff != "" {
			t.Errorf("tenants over all pages (-want +got):\n%s", diff)
		}
	})

	t.Run("DefaultLimitHoldsAll", func(t *testing.T) {
		var p page[tenantBody]
		b.withT(t).must(200, "GET", "/v1/tenants", b.admin, nil).JSON(t, &p)
		if len(p.Items) != 11 || p.NextCursor != "" {
			t.Errorf("got %d items, next_cursor %q; want 11 and none", len(p.Items), p.NextCursor)
		}
	})

	var first page[tenantBody]
	b.must(200, "GET", "/v1/tenants?limit=2", b.admin, nil).JSON(t, &first)
	cur := first.NextCursor
	payload, mac, _ := strings.Cut(cur, ".")
	// A cursor whose payload names another position but keeps the MAC.
	forgedPayload := base64.RawURLEncoding.EncodeToString([]byte(`{"created_at":"2000-01-01T00:00:00Z","id":"x"}`))
	flipped := []byte(mac)
	if flipped[0] == 'A' {
		flipped[0] = 'B'
	} else {
		flipped[0] = 'A'
	}
	bad := []struct{ name, cursor string }{
		{"Truncated", cur[:len(cur)-3]},
		{"NoMAC", payload},
		{"ForgedPayload", forgedPayload + "." + mac},
		{"FlippedMAC", payload + "." + string(flipped)},
		{"Garbage", "!!!.???"},
		{"Long", strings.Repeat("A", 5000) + "." + mac},
	}
	var scenarios []apiScenario
	for _, c := range bad {
		scenarios = append(scenarios, apiScenario{
			name: "Cursor" + c.name, method: "GET", path: "/v1/tenants?limit=2&cursor=" + url.QueryEscape(c.cursor),
			token: b.admin, wantStatus: 400, wantCode: problem.CodeInvalidCursor,
		})
	}
	scenarios = append(scenarios,
		apiScenario{name: "LimitTooLarge", method: "GET", path: "/v1/tenants?limit=1001", token: b.admin,
			wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		apiScenario{name: "LimitNegative", method: "GET", path: "/v1/tenants?limit=-1", token: b.admin,
			wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		apiScenario{name: "LimitNotANumber", method: "GET", path: "/v1/tenants?limit=ten", token: b.admin,
			wantStatus: 400, wantCode: problem.CodeInvalidRequest, wantContains: []string{`"field":"limit"`}},
		apiScenario{name: "LimitMax", method: "GET", path: "/v1/tenants?limit=1000", token: b.admin, wantStatus: 200},
		apiScenario{name: "CursorStillGood", method: "GET", path: "/v1/tenants?limit=2&cursor=" + url.QueryEscape(cur),
			token: b.admin, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				var p page[tenantBody]
				r.JSON(t, &p)
				if len(p.Items) != 2 || p.Items[0].Slug != "list-02" {
					t.Errorf("page after cursor = %+v, want list-02, list-03", p.Items)
				}
			}},
	)
	runScenarios(t, b, scenarios)
}

func TestTenantGetAndPatch(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Owner)

	runScenarios(t, b, []apiScenario{
		{name: "Get", method: "GET", path: "/v1/tenants/acme", token: b.admin, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				var got tenantBody
				r.JSON(t, &got)
				if got.ID != string(id) || got.Slug != "acme" || got.Status != "active" {
					t.Errorf("tenant = %+v, want id %s, slug acme, active", got, id)
				}
			}},
		{name: "GetUnknown", method: "GET", path: "/v1/tenants/nobody", token: b.admin,
			wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "GetInvalidSlug", method: "GET", path: "/v1/tenants/NOT_A_SLUG", token: b.admin,
			wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "GetAsTenantKey", method: "GET", path: "/v1/tenants/acme", token: key,
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "PatchName", method: "PATCH", path: "/v1/tenants/acme", token: b.admin,
			body: map[string]any{"name": "Acme Renamed"}, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				var got tenantBody
				r.JSON(t, &got)
				if got.Name != "Acme Renamed" || got.Plan != "free" || got.Status != "active" {
					t.Errorf("tenant = %+v, want renamed, free, active", got)
				}
			}},
		{name: "PatchPlan", method: "PATCH", path: "/v1/tenants/acme", token: b.admin,
			body: map[string]any{"plan": "enterprise"}, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				var got tenantBody
				r.JSON(t, &got)
				if got.Plan != "enterprise" || got.Name != "Acme Renamed" {
					t.Errorf("tenant = %+v, want plan enterprise and the new name kept", got)
				}
			}},
		{name: "PlanVisibleInUsage", method: "GET", path: "/v1/tenants/acme/usage", token: key, wantStatus: 200,
			wantContains: []string{`"plan":"enterprise"`}},
		{name: "PatchUnknownPlan", method: "PATCH", path: "/v1/tenants/acme", token: b.admin,
			body: map[string]any{"plan": "nope"}, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "PatchBadStatus", method: "PATCH", path: "/v1/tenants/acme", token: b.admin,
			body: map[string]any{"status": "deleted"}, wantStatus: 400, wantCode: problem.CodeInvalidRequest,
			wantContains: []string{`"field":"status"`}},
		{name: "PatchEmptyName", method: "PATCH", path: "/v1/tenants/acme", token: b.admin,
			body: map[string]any{"name": ""}, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "PatchUnknownField", method: "PATCH", path: "/v1/tenants/acme", token: b.admin,
			body: map[string]any{"isolation": "silo"}, wantStatus: 400, wantCode: problem.CodeUnknownField},
		{name: "PatchUnknownTenant", method: "PATCH", path: "/v1/tenants/nobody", token: b.admin,
			body: map[string]any{"name": "x"}, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "PatchAsTenantOwner", method: "PATCH", path: "/v1/tenants/acme", token: key,
			body: map[string]any{"plan": "free"}, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "PatchSuspend", method: "PATCH", path: "/v1/tenants/acme", token: b.admin,
			body: map[string]any{"status": "suspended"}, wantStatus: 200, wantContains: []string{`"status":"suspended"`}},
		{name: "GetSuspended", method: "GET", path: "/v1/tenants/acme", token: b.admin, wantStatus: 200,
			wantContains: []string{`"status":"suspended"`, `"plan":"enterprise"`, `"name":"Acme Renamed"`}},
	})
}

// TestTenantSuspend suspends a tenant and checks that every credential of it
// is refused with 403 tenant_suspended, then resumes it.
func TestTenantSuspend(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	b.tenant(neighbourSlug, tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	viewer := b.apiKey("acme", tenant.Viewer)
	b.collection("acme", admin, "notes", nil)
	rec := b.createRecord("acme", admin, "notes", map[string]any{"n": 1})
	const password = "correct horse battery"
	pair := b.userToken("acme", "ada@example.com", tenant.Member)
	neighbourKey := b.apiKey(neighbourSlug, tenant.Admin)
	b.collection(neighbourSlug, neighbourKey, "notes", nil)

	recPath := tpath("acme", "collections", "notes", "records", rec.ID)
	// Warm the caches so suspension must invalidate them.
	b.must(200, "GET", recPath, admin, nil)
	b.must(200, "GET", recPath, pair.AccessToken, nil)

	b.must(200, "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"status": "suspended"})

	suspended := func(name, method, path, token string, body any) apiScenario {
		return apiScenario{name: name, method: method, path: path, token: token, body: body,
			wantStatus: 403, wantCode: problem.CodeTenantSuspended}
	}
	runScenarios(t, b, []apiScenario{
		suspended("KeyGetRecord", "GET", recPath, admin, nil),
		suspended("ViewerKeyList", "GET", tpath("acme", "collections", "notes", "records"), viewer, nil),
		suspended("KeyCreateRecord", "POST", tpath("acme", "collections", "notes", "records"), admin, map[string]any{"n": 2}),
		suspended("KeyPatchRecord", "PATCH", recPath, admin, map[string]any{"n": 3}),
		suspended("KeyDeleteRecord", "DELETE", recPath, admin, nil),
		suspended("KeyPutCollection", "PUT", tpath("acme", "collections", "other"), admin, map[string]any{}),
		suspended("KeyListCollections", "GET", tpath("acme", "collections"), admin, nil),
		suspended("KeyAudit", "GET", tpath("acme", "audit"), admin, nil),
		suspended("KeyAuditVerify", "GET", tpath("acme", "audit", "verify"), admin, nil),
		suspended("KeyUsage", "GET", tpath("acme", "usage"), admin, nil),
		suspended("KeyCreateKey", "POST", tpath("acme", "api-keys"), admin, map[string]any{"name": "k", "role": "viewer"}),
		suspended("KeyCreateUser", "POST", tpath("acme", "users"), admin,
			map[string]any{"email": "x@example.com", "password": password, "role": "viewer"}),
		suspended("JWTGetRecord", "GET", recPath, pair.AccessToken, nil),
		suspended("JWTList", "GET", tpath("acme", "collections", "notes", "records"), pair.AccessToken, nil),
		suspended("LoginCorrectPassword", "POST", tpath("acme", "auth", "login"), "",
			map[string]any{"email": "ada@example.com", "password": password}),
		suspended("Refresh", "POST", tpath("acme", "auth", "refresh"), "",
			map[string]any{"refresh_token": pair.RefreshToken}),
		{name: "LoginWrongPassword", method: "POST", path: tpath("acme", "auth", "login"),
			body:       map[string]any{"email": "ada@example.com", "password": "wrong password!"},
			wantStatus: 401, wantCode: problem.CodeInvalidCredentials},
		{name: "NeighbourUnaffected", method: "GET", path: tpath(neighbourSlug, "collections", "notes", "records"),
			token: neighbourKey, wantStatus: 200},
		{name: "OperatorStillManages", method: "GET", path: "/v1/tenants/acme", token: b.admin, wantStatus: 200},
	})

	b.must(200, "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"status": "active"})

	runScenarios(t, b, []apiScenario{
		{name: "ResumedKey", method: "GET", path: recPath, token: admin, wantStatus: 200},
		{name: "ResumedJWT", method: "GET", path: recPath, token: pair.AccessToken, wantStatus: 200},
		{name: "ResumedWrite", method: "PATCH", path: recPath, token: admin, body: map[string]any{"n": 4}, wantStatus: 200},
		{name: "ResumedLogin", method: "POST", path: tpath("acme", "auth", "login"),
			body: map[string]any{"email": "ada@example.com", "password": password}, wantStatus: 200},
		{name: "ResumedRefresh", method: "POST", path: tpath("acme", "auth", "refresh"),
			body: map[string]any{"refresh_token": pair.RefreshToken}, wantStatus: 200},
	})

	// The platform chain recorded both transitions.
	var p page[auditEntry]
	b.must(200, "GET", "/v1/audit?limit=1000", b.admin, nil).JSON(t, &p)
	var actions []string
	for _, e := range p.Items {
		if e.Action == "tenant.suspend" || e.Action == "tenant.resume" {
			actions = append(actions, e.Action)
		}
	}
	if diff := cmp.Diff([]string{"tenant.suspend", "tenant.resume"}, actions); diff != "" {
		t.Errorf("platform audit (-want +got):\n%s", diff)
	}
}

// TestSuspendedTenantRefreshOracle: an unauthenticated caller with a
// well-formed but made-up refresh token must not learn that a tenant exists
// and is suspended; login only reveals the suspension after a correct
// password, and refresh should only after a valid refresh token.
func TestSuspendedTenantRefreshOracle(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	b.userToken("acme", "ada@example.com", tenant.Member)
	// A well-formed refresh token that was never issued: anyone can make one.
	_, forged, _, err := auth.NewRefreshToken()
	if err != nil {
		t.Fatal(err)
	}
	unknownTenant := b.do("POST", tpath("nobody-here", "auth", "refresh"), "", map[string]any{"refresh_token": forged})
	assertProblem(t, unknownTenant, 401, problem.CodeInvalidCredentials)

	b.must(200, "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"status": "suspended"})
	r := b.do("POST", tpath("acme", "auth", "refresh"), "", map[string]any{"refresh_token": forged})
	if r.Status != 401 {
		t.Errorf("refresh with a forged token on a suspended tenant = %d %s, want 401 invalid_credentials like an unknown tenant", r.Status, r.Body)
	}
}

func TestTenantDelete(t *testing.T) {
	t.Parallel()
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		t.Run(string(iso), func(t *testing.T) {
			t.Parallel()
			b := setup(t)
			id := b.tenant("doomed", iso)
			b.tenant(neighbourSlug, iso)
			key := b.apiKey("doomed", tenant.Admin)
			unused := b.apiKey("doomed", tenant.Viewer)
			pair := b.userToken("doomed", "ada@example.com", tenant.Admin)
			b.collection("doomed", key, "notes", nil)
			rec := b.createRecord("doomed", key, "notes", map[string]any{"secret": "s"})
			nkey := b.apiKey(neighbourSlug, tenant.Admin)
			b.collection(neighbourSlug, nkey, "notes", nil)
			nrec := b.createRecord(neighbourSlug, nkey, "notes", map[string]any{"kept": true})

			runScenarios(t, b, []apiScenario{
				{name: "DeleteAsTenantAdmin", method: "DELETE", path: "/v1/tenants/doomed", token: key,
					wantStatus: 403, wantCode: problem.CodeForbidden},
				{name: "Delete", method: "DELETE", path: "/v1/tenants/doomed?grace=0", token: b.admin, wantStatus: 202,
					check: func(t *testing.T, r *response) {
						var got map[string]string
						r.JSON(t, &got)
						if got["id"] != string(id) {
							t.Errorf("body = %s, want id %s", r.Body, id)
						}
					}},
				{name: "GetGone", method: "GET", path: "/v1/tenants/doomed", token: b.admin,
					wantStatus: 404, wantCode: problem.CodeNotFound},
				{name: "DeleteAgain", method: "DELETE", path: "/v1/tenants/doomed?grace=0", token: b.admin,
					wantStatus: 404, wantCode: problem.CodeNotFound},
				{name: "UsedKey401", method: "GET", path: tpath("doomed", "collections", "notes", "records", rec.ID),
					token: key, wantStatus: 401, wantCode: problem.CodeUnauthorized},
				{name: "UnusedKey401", method: "GET", path: tpath("doomed", "collections"),
					token: unused, wantStatus: 401, wantCode: problem.CodeUnauthorized},
				// The token's user is gone with its tenant: the token is no
				// credential any more.
				{name: "JWT401", method: "GET", path: tpath("doomed", "collections", "notes", "records"),
					token: pair.AccessToken, wantStatus: 401, wantCode: problem.CodeUnauthorized},
				{name: "Login401", method: "POST", path: tpath("doomed", "auth", "login"),
					body:       map[string]any{"email": "ada@example.com", "password": "correct horse battery"},
					wantStatus: 401, wantCode: problem.CodeInvalidCredentials},
				{name: "Refresh401", method: "POST", path: tpath("doomed", "auth", "refresh"),
					body: map[string]any{"refresh_token": pair.RefreshToken}, wantStatus: 401, wantCode: problem.CodeInvalidCredentials},
				{name: "NeighbourKept", method: "GET", path: tpath(neighbourSlug, "collections", "notes", "records", nrec.ID),
					token: nkey, wantStatus: 200},
				{name: "NeighbourChainOK", method: "GET", path: tpath(neighbourSlug, "audit", "verify"),
					token: nkey, wantStatus: 200, wantContains: []string{`"ok":true`}},
				{name: "SlugReusable", method: "POST", path: "/v1/tenants", token: b.admin,
					body: map[string]any{"slug": "doomed", "name": "Reborn", "isolation": iso}, wantStatus: 201},
				{name: "OldKeyStillDead", method: "GET", path: tpath("doomed", "collections"),
					token: key, wantStatus: 401, wantCode: problem.CodeUnauthorized},
				{name: "OldJWTNotInNewTenant", method: "GET", path: tpath("doomed", "collections"),
					token: pair.AccessToken, wantStatus: 401, wantCode: problem.CodeUnauthorized},
			})

			// The tenant's rows are gone from the main file, and a silo
			// tenant's file is gone.
			db := b.tenantDB(id, tenant.Pooled)
			for _, table := range []string{"users", "api_keys", "refresh_tokens", "collections", "records",
				"idempotency_keys", "audit_log", "audit_checkpoints", "usage"} {
				var n int
				if err := db.QueryRow("SELECT count(*) FROM "+table+" WHERE tenant_id = ?", string(id)).Scan(&n); err != nil {
					t.Fatalf("count %s: %v", table, err)
				}
				if n != 0 {
					t.Errorf("%d rows of the deleted tenant remain in %s", n, table)
				}
			}
			for _, suffix := range []string{"", "-wal", "-shm"} {
				path := filepath.Join(b.dir, "tenants", string(id)+".db"+suffix)
				if _, err := os.Stat(path); !errors.Is(err, fs.ErrNotExist) {
					t.Errorf("silo file %s still exists (%v)", path, err)
				}
			}

			var p page[auditEntry]
			b.must(200, "GET", "/v1/audit?limit=1000", b.admin, nil).JSON(t, &p)
			found := false
			for _, e := range p.Items {
				if e.Action == "tenant.delete" && e.Resource == "tenant:"+string(id) {
					found = true
				}
			}
			if !found {
				t.Errorf("platform audit has no tenant.delete of %s: %+v", id, p.Items)
			}
		})
	}
}

type planBody struct {
	Name        string  `json:"name,omitempty"`
	RatePerSec  float64 `json:"rate_per_sec"`
	Burst       int     `json:"burst"`
	MaxInflight int     `json:"max_inflight"`
	Weight      int     `json:"weight"`
	MaxRecords  int64   `json:"max_records"`
	MaxBytes    int64   `json:"max_bytes"`
}

func TestPlans(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	owner := b.apiKey("acme", tenant.Owner)
	pair := b.userToken("acme", "ada@example.com", tenant.Owner)

	gold := planBody{Name: "gold", RatePerSec: 50, Burst: 100, MaxInflight: 8, Weight: 2, MaxRecords: 5000, MaxBytes: 1 << 30}
	with := func(f func(p *planBody)) planBody {
		p := gold
		f(&p)
		return p
	}
	plans := func(t *testing.T, r *response) map[string]planBody {
		var p page[planBody]
		r.JSON(t, &p)
		m := map[string]planBody{}
		for _, pl := range p.Items {
			m[pl.Name] = pl
		}
		return m
	}
	runScenarios(t, b, []apiScenario{
		{name: "ListSeeded", method: "GET", path: "/v1/plans", token: b.admin, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				got := plans(t, r)
				want := map[string]planBody{
					"free":       {Name: "free", RatePerSec: 10, Burst: 20, MaxInflight: 4, Weight: 1, MaxRecords: 10_000, MaxBytes: 50 << 20},
					"pro":        {Name: "pro", RatePerSec: 100, Burst: 200, MaxInflight: 32, Weight: 4, MaxRecords: 1_000_000, MaxBytes: 5 << 30},
					"enterprise": {Name: "enterprise", RatePerSec: 1000, Burst: 2000, MaxInflight: 256, Weight: 16, MaxRecords: 100_000_000, MaxBytes: 500 << 30},
				}
				if diff := cmp.Diff(want, got); diff != "" {
					t.Errorf("plans (-want +got):\n%s", diff)
				}
			}},
		{name: "PutNew", method: "PUT", path: "/v1/plans/gold", token: b.admin, body: gold, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				var got planBody
				r.JSON(t, &got)
				if diff := cmp.Diff(gold, got); diff != "" {
					t.Errorf("plan (-want +got):\n%s", diff)
				}
			}},
		{name: "PutNameFromPath", method: "PUT", path: "/v1/plans/silver", token: b.admin,
			body: with(func(p *planBody) { p.Name = "" }), wantStatus: 200, wantContains: []string{`"name":"silver"`}},
		{name: "PutReplace", method: "PUT", path: "/v1/plans/gold", token: b.admin,
			body: with(func(p *planBody) { p.Burst = 7; p.MaxRecords = 0 }), wantStatus: 200},
		{name: "ListAfterPut", method: "GET", path: "/v1/plans", token: b.admin, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				got := plans(t, r)
				if len(got) != 5 {
					t.Errorf("%d plans, want 5: %v", len(got), got)
				}
				if diff := cmp.Diff(with(func(p *planBody) { p.Burst = 7; p.MaxRecords = 0 }), got["gold"]); diff != "" {
					t.Errorf("replaced gold (-want +got):\n%s", diff)
				}
			}},
		{name: "ReplaceSeeded", method: "PUT", path: "/v1/plans/free", token: b.admin,
			body: with(func(p *planBody) { p.Name = "free"; p.MaxRecords = 3 }), wantStatus: 200},
		{name: "TenantUsageSeesPlan", method: "GET", path: "/v1/tenants/acme/usage", token: owner, wantStatus: 200,
			wantContains: []string{`"plan":"free"`, `"max_records":3`}},
		{name: "AssignNewPlan", method: "PATCH", path: "/v1/tenants/acme", token: b.admin,
			body: map[string]any{"plan": "gold"}, wantStatus: 200, wantContains: []string{`"plan":"gold"`}},

		{name: "NameMismatch", method: "PUT", path: "/v1/plans/gold", token: b.admin,
			body: with(func(p *planBody) { p.Name = "other" }), wantStatus: 400, wantCode: problem.CodeInvalidRequest,
			wantContains: []string{`"field":"name"`}},
		{name: "BadPlanName", method: "PUT", path: "/v1/plans/Gold_1", token: b.admin,
			body: with(func(p *planBody) { p.Name = "" }), wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "RateNegative", method: "PUT", path: "/v1/plans/gold", token: b.admin,
			body: with(func(p *planBody) { p.RatePerSec = -1 }), wantStatus: 400, wantCode: problem.CodeInvalidRequest,
			wantContains: []string{`"field":"rate_per_sec"`}},
		{name: "RateHuge", method: "PUT", path: "/v1/plans/gold", token: b.admin,
			body: with(func(p *planBody) { p.RatePerSec = 2e9 }), wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "BurstZero", method: "PUT", path: "/v1/plans/gold", token: b.admin,
			body: with(func(p *planBody) { p.Burst = 0 }), wantStatus: 400, wantCode: problem.CodeInvalidRequest,
			wantContains: []string{`"field":"burst"`}},
		{name: "InflightNegative", method: "PUT", path: "/v1/plans/gold", token: b.admin,
			body: with(func(p *planBody) { p.MaxInflight = -1 }), wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "BurstTooLarge", method: "PUT", path: "/v1/plans/gold", token: b.admin,
			body: with(func(p *planBody) { p.Burst = 1 << 31 }), wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "WeightTooBig", method: "PUT", path: "/v1/plans/gold", token: b.admin,
			body: with(func(p *planBody) { p.Weight = 1001 }), wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "NegativeRecords", method: "PUT", path: "/v1/plans/gold", token: b.admin,
			body: with(func(p *planBody) { p.MaxRecords = -1 }), wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "NegativeBytes", method: "PUT", path: "/v1/plans/gold", token: b.admin,
			body: with(func(p *planBody) { p.MaxBytes = -1 }), wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "WrongType", method: "PUT", path: "/v1/plans/gold", token: b.admin,
			body: `{"name":"gold","rate_per_sec":"fast","burst":1,"max_inflight":1,"weight":1}`, wantStatus: 400,
			wantCode: problem.CodeInvalidRequest, wantContains: []string{`"field":"rate_per_sec"`}},
		{name: "UnknownField", method: "PUT", path: "/v1/plans/gold", token: b.admin,
			body: `{"name":"gold","rate_per_sec":1,"burst":1,"max_inflight":1,"weight":1,"price":9}`, wantStatus: 400,
			wantCode: problem.CodeUnknownField},
		{name: "TenantOwnerKeyList", method: "GET", path: "/v1/plans", token: owner, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "TenantOwnerKeyPut", method: "PUT", path: "/v1/plans/gold", token: owner, body: gold,
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "TenantOwnerJWTPut", method: "PUT", path: "/v1/plans/free", token: pair.AccessToken, body: gold,
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "Anonymous", method: "GET", path: "/v1/plans", wantStatus: 401, wantCode: problem.CodeUnauthorized},
		{name: "GoldUnchangedByRefusals", method: "GET", path: "/v1/plans", token: b.admin, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				if diff := cmp.Diff(with(func(p *planBody) { p.Burst = 7; p.MaxRecords = 0 }), plans(t, r)["gold"]); diff != "" {
					t.Errorf("gold (-want +got):\n%s", diff)
				}
			}},
	})
}

func TestPlatformAudit(t *testing.T) {
	t.Parallel()
	b := setup(t)
	created := b.must(201, "POST", "/v1/tenants", b.admin, map[string]any{"slug": "acme", "name": "Acme"})
	var tn tenantBody
	created.JSON(t, &tn)
	suspended := b.must(200, "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"status": "suspended"})
	resumed := b.must(200, "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"status": "active"})
	renamed := b.must(200, "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"name": "Acme 2"})
	plan := b.must(200, "PUT", "/v1/plans/gold", b.admin,
		map[string]any{"rate_per_sec": 1, "burst": 1, "max_inflight": 1, "weight": 1, "max_records": 0, "max_bytes": 0})

	var p page[auditEntry]
	b.must(200, "GET", "/v1/audit", b.admin, nil).JSON(t, &p)
	type entry struct {
		Seq                                         int64
		Actor, Action, Resource, RequestID, Outcome string
	}
	var got []entry
	for _, e := range p.Items {
		got = append(got, entry{e.Seq, e.Actor, e.Action, e.Resource, e.RequestID, e.Outcome})
	}
	res := "tenant:" + tn.ID
	want := []entry{
		{1, "operator", "tenant.create", res, created.Header.Get("X-Request-Id"), "success"},
		{2, "operator", "tenant.suspend", res, suspended.Header.Get("X-Request-Id"), "success"},
		{3, "operator", "tenant.resume", res, resumed.Header.Get("X-Request-Id"), "success"},
		{4, "operator", "tenant.update", res, renamed.Header.Get("X-Request-Id"), "success"},
		{5, "operator", "plan.put", "plan:gold", plan.Header.Get("X-Request-Id"), "success"},
	}
	if diff := cmp.Diff(want, got); diff != "" {
		t.Errorf("platform audit (-want +got):\n%s", diff)
	}
	for i := 1; i < len(p.Items); i++ {
		if p.Items[i].PrevHash != p.Items[i-1].Hash {
			t.Errorf("entry %d prev_hash %s, want %s", p.Items[i].Seq, p.Items[i].PrevHash, p.Items[i-1].Hash)
		}
	}

	var v verification
	b.must(200, "GET", "/v1/audit/verify", b.admin, nil).JSON(t, &v)
	if !v.OK || v.Length != 5 || v.Head != p.Items[4].Hash {
		t.Errorf("verify = %+v, want ok, length 5, head %s", v, p.Items[4].Hash)
	}

	var p2 page[auditEntry]
	b.must(200, "GET", "/v1/audit?after=3&limit=1", b.admin, nil).JSON(t, &p2)
	if len(p2.Items) != 1 || p2.Items[0].Seq != 4 || p2.NextCursor != "4" {
		t.Errorf("after=3&limit=1 = %+v, next %q; want seq 4, next_cursor 4", p2.Items, p2.NextCursor)
	}

	key := b.apiKey("acme", tenant.Owner)
	runScenarios(t, b, []apiScenario{
		{name: "ListAsTenantOwner", method: "GET", path: "/v1/audit", token: key, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "VerifyAsTenantOwner", method: "GET", path: "/v1/audit/verify", token: key, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "Anonymous", method: "GET", path: "/v1/audit", wantStatus: 401, wantCode: problem.CodeUnauthorized},
		{name: "NegativeAfter", method: "GET", path: "/v1/audit?after=-1", token: b.admin, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "LimitTooLarge", method: "GET", path: "/v1/audit?limit=1001", token: b.admin, wantStatus: 400, wantCode: problem.CodeInvalidRequest},
	})
}

func TestHealthAndMeta(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Owner)
	pair := b.userToken("acme", "ada@example.com", tenant.Member)

	runScenarios(t, b, []apiScenario{
		{name: "Healthz", method: "GET", path: "/healthz", wantStatus: 200, wantContains: []string{`"status":"ok"`}},
		{name: "Readyz", method: "GET", path: "/readyz", wantStatus: 200, wantContains: []string{`"status":"ready"`}},
		{name: "HealthzIgnoresBadToken", method: "GET", path: "/healthz", token: "garbage", wantStatus: 200},
		{name: "OpenAPI", method: "GET", path: "/openapi.json", wantStatus: 200,
			check: func(t *testing.T, r *response) {
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "application/json") &&
					!strings.HasPrefix(ct, "application/vnd.oai.openapi+json") {
					t.Errorf("Content-Type = %q, want JSON", ct)
				}
				var doc map[string]any
				r.JSON(t, &doc)
				if _, ok := doc["openapi"]; !ok {
					t.Errorf("openapi.json has no openapi field")
				}
				if _, ok := doc["paths"]; !ok {
					t.Errorf("openapi.json has no paths")
				}
			}},
		{name: "JWKS", method: "GET", path: "/.well-known/jwks.json", wantStatus: 200,
			wantHeaders: map[string]string{"Content-Type": "application/jwk-set+json"},
			check: func(t *testing.T, r *response) {
				var set struct {
					Keys []struct {
						Kty, Crv, X, Kid, Alg, Use string
						D                          string `json:"d"`
					} `json:"keys"`
				}
				r.JSON(t, &set)
				if len(set.Keys) == 0 {
					t.Fatalf("JWKS has no keys: %s", r.Body)
				}
				kid := jwtHeader(t, pair.AccessToken)["kid"]
				found := false
				for _, k := range set.Keys {
					if k.D != "" {
						t.Errorf("JWKS publishes a private key: %s", r.Body)
					}
					if k.Kid == kid {
						found = true
						if k.Kty != "OKP" || k.Crv != "Ed25519" || k.Alg != "EdDSA" || k.X == "" {
							t.Errorf("signing key = %+v, want an Ed25519 OKP key for EdDSA", k)
						}
					}
				}
				if !found {
					t.Errorf("JWKS %s has no key with the access token's kid %q", r.Body, kid)
				}
			}},
		{name: "MetricsAnonymous", method: "GET", path: "/metrics", wantStatus: 401, wantCode: problem.CodeUnauthorized,
			wantHeaders: map[string]string{"WWW-Authenticate": `Bearer realm="bulkhead"`}},
		{name: "MetricsTenantKey", method: "GET", path: "/metrics", token: key, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "MetricsTenantJWT", method: "GET", path: "/metrics", token: pair.AccessToken, wantStatus: 403, wantCode: problem.CodeForbidden},
		// Requests that must not mint a tenant label.
		{name: "UnscopedProbe", method: "GET", path: "/v1/tenants/probe-slug/usage", wantStatus: 401, wantCode: problem.CodeUnauthorized},
		{name: "BadKeyProbe", method: "GET", path: "/v1/tenants/other-probe/usage", token: key, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "ScopedRequest", method: "GET", path: "/v1/tenants/acme/usage", token: key, wantStatus: 200},
		{name: "Metrics", method: "GET", path: "/metrics", token: b.admin, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				if ct := r.Header.Get("Content-Type"); !strings.HasPrefix(ct, "text/plain") {
					t.Errorf("Content-Type = %q, want Prometheus text", ct)
				}
				body := string(r.Body)
				for _, want := range []string{
					`bulkhead_http_requests_total{route="GET /v1/tenants/{tenant}/usage",status="200"} 1`,
					`bulkhead_http_requests_total{route="GET /healthz",status="200"} 2`,
					`bulkhead_http_requests_total{route="GET /metrics",status="401"} 1`,
					`bulkhead_http_requests_total{route="GET /v1/tenants/{tenant}/usage",status="401"} 1`,
					`bulkhead_http_requests_total{route="GET /v1/tenants/{tenant}/usage",status="404"} 1`,
					`bulkhead_tenant_requests_total{outcome="ok",tenant="acme"}`,
				} {
					if !strings.Contains(body, want) {
						t.Errorf("metrics lack %s", want)
					}
				}
				for _, bad := range []string{`tenant="probe-slug"`, `tenant="other-probe"`} {
					if strings.Contains(body, bad) {
						t.Errorf("metrics carry %s from an unscoped request", bad)
					}
				}
				// Every tenant label is a tenant that exists.
				for _, m := range regexp.MustCompile(`tenant="([^"]*)"`).FindAllStringSubmatch(body, -1) {
					if m[1] != "acme" {
						t.Errorf("metrics carry tenant label %q", m[1])
					}
				}
			}},
	})
}

// jwtHeader decodes the protected header of a compact JWS.
func jwtHeader(t *testing.T, token string) map[string]string {
	t.Helper()
	h, _, _ := strings.Cut(token, ".")
	raw, err := base64.RawURLEncoding.DecodeString(h)
	if err != nil {
		t.Fatalf("JWT header: %v", err)
	}
	var m map[string]string
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("JWT header %s: %v", raw, err)
	}
	return m
}

func TestRoutingErrors(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Owner)

	allow := func(want string) map[string]string { return map[string]string{"Allow": want} }
	runScenarios(t, b, []apiScenario{
		{name: "UnknownPath", method: "GET", path: "/nope", wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "UnknownPathWithToken", method: "GET", path: "/v2/tenants", token: b.admin, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "UnknownTenantSubpath", method: "GET", path: "/v1/tenants/acme/secrets", token: key, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "Root", method: "GET", path: "/", wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "DeleteHealthz", method: "DELETE", path: "/healthz", wantStatus: 405, wantCode: problem.CodeMethodNotAllowed,
			wantHeaders: allow("GET")},
		{name: "PutTenants", method: "PUT", path: "/v1/tenants", token: b.admin, body: map[string]any{},
			wantStatus: 405, wantCode: problem.CodeMethodNotAllowed, wantHeaders: allow("GET, POST")},
		{name: "PostTenant", method: "POST", path: "/v1/tenants/acme", token: b.admin, body: map[string]any{},
			wantStatus: 405, wantCode: problem.CodeMethodNotAllowed, wantHeaders: allow("DELETE, GET, PATCH")},
		{name: "PostRecord", method: "POST", path: "/v1/tenants/acme/collections/notes/records/x", token: key, body: map[string]any{},
			wantStatus: 405, wantCode: problem.CodeMethodNotAllowed, wantHeaders: allow("DELETE, GET, PATCH")},
		{name: "PostCollection", method: "POST", path: "/v1/tenants/acme/collections/notes", token: key, body: map[string]any{},
			wantStatus: 405, wantCode: problem.CodeMethodNotAllowed, wantHeaders: allow("DELETE, GET, PUT")},
		{name: "GetLogin", method: "GET", path: "/v1/tenants/acme/auth/login",
			wantStatus: 405, wantCode: problem.CodeMethodNotAllowed, wantHeaders: allow("POST")},
		{name: "DeletePlans", method: "DELETE", path: "/v1/plans/free", token: b.admin,
			wantStatus: 405, wantCode: problem.CodeMethodNotAllowed, wantHeaders: allow("PUT")},
		{name: "PatchAPIKeys", method: "PATCH", path: "/v1/tenants/acme/api-keys", token: key, body: map[string]any{},
			wantStatus: 405, wantCode: problem.CodeMethodNotAllowed, wantHeaders: allow("GET, POST")},
		{name: "OptionsTenants", method: "OPTIONS", path: "/v1/tenants", wantStatus: 405, wantCode: problem.CodeMethodNotAllowed,
			wantHeaders: allow("GET, POST")},
		{name: "HeadHealthz", method: "HEAD", path: "/healthz", wantStatus: 200,
			check: func(t *testing.T, r *response) {
				if len(r.Body) != 0 {
					t.Errorf("HEAD answered with a body: %s", r.Body)
				}
			}},
		{name: "TrailingSlash", method: "GET", path: "/v1/tenants/acme/collections/", token: key, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "LowercaseBearer", method: "GET", path: "/v1/tenants/acme/usage", headers: []string{"Authorization", "bearer " + key},
			wantStatus: 200},
		{name: "BasicAuth", method: "GET", path: "/v1/tenants/acme/usage", headers: []string{"Authorization", "Basic " + key},
			wantStatus: 401, wantCode: problem.CodeUnauthorized},
	})
}

// TestOperatorCannotReadTenantData: the operator manages tenants but holds
// no permission on their data.
func TestOperatorCannotReadTenantData(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	b.collection("acme", key, "notes", nil)
	rec := b.createRecord("acme", key, "notes", map[string]any{"secret": "launch codes"})
	recPath := tpath("acme", "collections", "notes", "records", rec.ID)
	keyID := b.newKeyID("acme", key)

	forbidden := func(name, method, path string, body any) apiScenario {
		return apiScenario{name: name, method: method, path: path, token: b.admin, body: body,
			wantStatus: 403, wantCode: problem.CodeForbidden, wantNotContains: []string{"launch codes"}}
	}
	runScenarios(t, b, []apiScenario{
		forbidden("GetRecord", "GET", recPath, nil),
		forbidden("ListRecords", "GET", tpath("acme", "collections", "notes", "records"), nil),
		forbidden("CreateRecord", "POST", tpath("acme", "collections", "notes", "records"), map[string]any{"x": 1}),
		forbidden("PatchRecord", "PATCH", recPath, map[string]any{"secret": "changed"}),
		forbidden("DeleteRecord", "DELETE", recPath, nil),
		forbidden("PutCollection", "PUT", tpath("acme", "collections", "spy"), map[string]any{}),
		forbidden("ListCollections", "GET", tpath("acme", "collections"), nil),
		forbidden("ListAudit", "GET", tpath("acme", "audit"), nil),
		forbidden("Usage", "GET", tpath("acme", "usage"), nil),
		forbidden("ListAPIKeys", "GET", tpath("acme", "api-keys"), nil),
		forbidden("RevokeAPIKey", "DELETE", tpath("acme", "api-keys", keyID), nil),
		{name: "VerifyAllowed", method: "GET", path: tpath("acme", "audit", "verify"), token: b.admin,
			wantStatus: 200, wantContains: []string{`"ok":true`}},
		{name: "CreateUserAllowed", method: "POST", path: tpath("acme", "users"), token: b.admin,
			body: map[string]any{"email": "boot@example.com", "password": "correct horse battery", "role": "owner"}, wantStatus: 201},
		{name: "CreateKeyAllowed", method: "POST", path: tpath("acme", "api-keys"), token: b.admin,
			body: map[string]any{"name": "boot", "role": "owner"}, wantStatus: 201},
		{name: "RecordUnchanged", method: "GET", path: recPath, token: key, wantStatus: 200,
			wantContains: []string{`"version":1`, "launch codes"}},
	})
}

// newKeyID creates a viewer key with adminKey and returns its id.
func (b *testBundle) newKeyID(slug, adminKey string) string {
	b.t.Helper()
	var k struct {
		ID string `json:"id"`
	}
	b.must(201, "POST", tpath(slug, "api-keys"), adminKey, map[string]any{"name": "spare", "role": "viewer"}).JSON(b.t, &k)
	return k.ID
}

// TestStoreDown closes the database under a running server: readiness turns
// 503 and requests fail as 500 problems that leak nothing of the cause.
func TestStoreDown(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	b.must(200, "GET", "/readyz", "", nil)
	if err := b.store.Close(); err != nil {
		t.Fatalf("close store: %v", err)
	}
	runScenarios(t, b, []apiScenario{
		{name: "Healthz", method: "GET", path: "/healthz", wantStatus: 200},
		{name: "Readyz", method: "GET", path: "/readyz", wantStatus: 503, wantCode: problem.CodeUnavailable,
			check: func(t *testing.T, r *response) {
				if r.Header.Get("Retry-After") == "" {
					t.Errorf("503 without Retry-After")
				}
			}},
		{name: "ListTenants", method: "GET", path: "/v1/tenants", token: b.admin, wantStatus: 500, wantCode: problem.CodeInternal,
			wantNotContains: []string{"closed"}},
		{name: "CreateTenant", method: "POST", path: "/v1/tenants", token: b.admin, body: map[string]any{"slug": "late", "name": "x"},
			wantStatus: 500, wantCode: problem.CodeInternal, wantNotContains: []string{"closed"}},
		{name: "Usage", method: "GET", path: tpath("acme", "usage"), token: key, wantStatus: 500, wantCode: problem.CodeInternal,
			wantNotContains: []string{"closed"}},
	})
}

// TestTenantDeletePurgesPooledBytes looks for a deleted tenant's data in the
// bytes of the data directory. docs/offboarding.md promises that the purge
// removes it.
func TestTenantDeletePurgesPooledBytes(t *testing.T) {
	t.Parallel()
	for _, iso := range []tenant.Isolation{tenant.Silo, tenant.Pooled} {
		t.Run(string(iso), func(t *testing.T) {
			t.Parallel()
			sqliteOnly(t)
			b := setup(t)
			b.tenant("acme", iso)
			key := b.apiKey("acme", tenant.Admin)
			b.collection("acme", key, "notes", nil)
			const secret = "PLAINTEXT-SECRET-2f8bd054"
			for range 5 {
				b.createRecord("acme", key, "notes", map[string]any{"s": secret})
			}
			b.must(202, "DELETE", "/v1/tenants/acme?grace=0", b.admin, nil)
			err := filepath.WalkDir(b.dir, func(path string, d fs.DirEntry, err error) error {
				if err != nil || d.IsDir() {
					return err
				}
				data, err := os.ReadFile(path)
				if err != nil {
					return err
				}
				if bytes.Contains(data, []byte(secret)) {
					t.Errorf("%s still holds the deleted tenant's data", strings.TrimPrefix(path, b.dir))
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		})
	}
}

// TestNoStore: every answer that depends on the credential says that no
// cache may keep it or give it to another credential; only the public
// documents may be cached.
func TestNoStore(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	b.collection("acme", key, "notes", nil)
	rec := b.createRecord("acme", key, "notes", map[string]any{"n": 1})
	pair := b.userToken("acme", "ada@example.com", tenant.Member)
	for _, tc := range []struct {
		name, method, path, token string
		body                      any
	}{
		{"ListTenants", "GET", "/v1/tenants", b.admin, nil},
		{"Plans", "GET", "/v1/plans", b.admin, nil},
		{"Record", "GET", tpath("acme", "collections", "notes", "records", rec.ID), key, nil},
		{"RecordByJWT", "GET", tpath("acme", "collections", "notes", "records", rec.ID), pair.AccessToken, nil},
		{"List", "GET", tpath("acme", "collections", "notes", "records"), key, nil},
		{"Create", "POST", tpath("acme", "collections", "notes", "records"), key, map[string]any{"n": 2}},
		{"Usage", "GET", tpath("acme", "usage"), key, nil},
		{"Login", "POST", tpath("acme", "auth", "login"), "", map[string]any{"email": "ada@example.com", "password": "correct horse battery"}},
		{"NotFound", "GET", tpath("acme", "collections", "notes", "records", "0190d5a0-0000-7000-8000-000000000000"), key, nil},
		{"Unauthorized", "GET", tpath("acme", "usage"), "", nil},
		{"Metrics", "GET", "/metrics", b.admin, nil},
		{"Readyz", "GET", "/readyz", "", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := b.withT(t).do(tc.method, tc.path, tc.token, tc.body)
			if got := r.Header.Get("Cache-Control"); got != "private, no-store" {
				t.Errorf("%d answer: Cache-Control = %q, want %q", r.Status, got, "private, no-store")
			}
			if got := r.Header.Get("Vary"); got != "Authorization" {
				t.Errorf("%d answer: Vary = %q, want Authorization", r.Status, got)
			}
		})
	}
	for _, path := range []string{"/openapi.json", "/.well-known/jwks.json"} {
		r := b.must(200, "GET", path, "", nil)
		if got := r.Header.Get("Cache-Control"); !strings.HasPrefix(got, "public") {
			t.Errorf("%s: Cache-Control = %q, want public", path, got)
		}
	}
}
