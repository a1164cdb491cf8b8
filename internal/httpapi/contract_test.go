package httpapi

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"

	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// fieldScenario is a request that must be refused with 400 invalid_request
// naming field.
func fieldScenario(name, method, path, token string, body any, field string) apiScenario {
	return apiScenario{name: name, method: method, path: path, token: token, body: body,
		wantStatus: 400, wantCode: problem.CodeInvalidRequest,
		check: func(t *testing.T, r *response) { wantField(t, r, field) }}
}

// wantField checks that a problem names field among its errors.
func wantField(t *testing.T, r *response, field string) {
	t.Helper()
	var p problemBody
	r.JSON(t, &p)
	var fields []string
	for _, e := range p.Errors {
		fields = append(fields, e.Field)
	}
	if !slices.Contains(fields, field) {
		t.Errorf("errors name %q, want %q: %s", fields, field, r.Body)
	}
}

// No string a client sends may hold U+0000: PostgreSQL's text and jsonb
// cannot, SQLite could. Both stores refuse it alike, with a 400 naming the
// field, before the database sees it.
func TestNULRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	b.userToken("acme", "ada@example.com", tenant.Owner)
	const nul = "\x00"
	users := tpath("acme", "users")
	login := tpath("acme", "auth", "login")
	runScenarios(t, b, []apiScenario{
		fieldScenario("TenantName", "POST", "/v1/tenants", b.admin, map[string]any{"slug": "nul-name", "name": "a" + nul + "b"}, "name"),
		fieldScenario("TenantPlan", "POST", "/v1/tenants", b.admin, map[string]any{"slug": "nul-plan", "name": "x", "plan": "free" + nul}, "plan"),
		fieldScenario("TenantSlug", "POST", "/v1/tenants", b.admin, map[string]any{"slug": "nul" + nul, "name": "x"}, "slug"),
		fieldScenario("PatchTenantName", "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"name": nul}, "name"),
		fieldScenario("PatchTenantPlan", "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"plan": "pro" + nul}, "plan"),
		fieldScenario("PlanName", "PUT", "/v1/plans/gold", b.admin, map[string]any{"name": "gold" + nul,
			"rate_per_sec": 1, "burst": 1, "max_inflight": 1, "weight": 1, "max_records": 0, "max_bytes": 0}, "name"),
		fieldScenario("UserEmail", "POST", users, b.admin, map[string]any{"email": "bob" + nul + "@example.com",
			"password": "correct horse battery", "role": "member"}, "email"),
		fieldScenario("UserPassword", "POST", users, b.admin, map[string]any{"email": "bob@example.com",
			"password": "correct horse" + nul + "battery", "role": "member"}, "password"),
		fieldScenario("LoginEmail", "POST", login, "", map[string]any{"email": "ada" + nul + "@example.com", "password": "correct horse battery"}, "email"),
		fieldScenario("LoginEmailOnly", "POST", login, "", map[string]any{"email": nul, "password": "correct horse battery"}, "email"),
		fieldScenario("LoginPassword", "POST", login, "", map[string]any{"email": "ada@example.com", "password": "x" + nul}, "password"),
		fieldScenario("LoginTOTP", "POST", login, "", map[string]any{"email": "ada@example.com", "password": "x", "totp": nul}, "totp"),
		fieldScenario("RefreshToken", "POST", tpath("acme", "auth", "refresh"), "", map[string]any{"refresh_token": "bhr_" + nul}, "refresh_token"),
		fieldScenario("APIKeyName", "POST", tpath("acme", "api-keys"), admin, map[string]any{"name": "ci" + nul, "role": "member"}, "name"),
		fieldScenario("APIKeyNameOperator", "POST", tpath("acme", "api-keys"), b.admin, map[string]any{"name": nul, "role": "member"}, "name"),
		fieldScenario("IndexField", "PUT", tpath("acme", "collections", "notes"), admin,
			map[string]any{"indexes": []any{map[string]any{"fields": []string{"a" + nul}}}}, "indexes[0].fields[0]"),
		fieldScenario("SchemaString", "PUT", tpath("acme", "collections", "notes"), admin,
			`{"schema":{"properties":{"a":{"const":"x\u0000"}}}}`, "schema"),
		fieldScenario("SchemaKey", "PUT", tpath("acme", "collections", "notes"), admin,
			`{"schema":{"properties":{"a\u0000":{}}}}`, "schema"),
		{name: "CollectionAfterRefusals", method: "PUT", path: tpath("acme", "collections", "notes"), token: admin,
			body: `{"schema":{"properties":{"a":{"const":"x\\u0000"}}}}`, wantStatus: 200}, // an escaped backslash, no NUL
		fieldScenario("RecordKey", "POST", tpath("acme", "collections", "notes", "records"), admin, `{"a\u0000":1}`, "/a\u0000"),
		fieldScenario("RecordString", "POST", tpath("acme", "collections", "notes", "records"), admin, `{"a":["\u0000"]}`, "/a/0"),
		{name: "Filter", method: "GET", path: tpath("acme", "collections", "notes", "records") + `?filter=a+%3D+%22%5Cu0000%22`,
			token: admin, wantStatus: 400, wantCode: problem.CodeInvalidFilter},
	})
	// Nothing refused was stored, and the tenant is as it was.
	b.must(200, "GET", "/v1/tenants/acme", b.admin, nil)
	var list page[map[string]any]
	b.must(200, "GET", "/v1/tenants", b.admin, nil).JSON(t, &list)
	if len(list.Items) != 1 {
		t.Errorf("%d tenants, want 1: %v", len(list.Items), list.Items)
	}
}

// Control-plane bodies: a field is given or left out, never null, and a
// given string is never empty (the document says string, minLength 1);
// integers may be written with an exponent or a fraction as long as they
// denote an integer.
func TestStrictBodies(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	plan := func(kv ...any) map[string]any {
		p := map[string]any{"rate_per_sec": 5, "burst": 10, "max_inflight": 2, "weight": 1, "max_records": 0, "max_bytes": 0}
		for i := 0; i+1 < len(kv); i += 2 {
			if kv[i+1] == "<absent>" {
				delete(p, kv[i].(string))
				continue
			}
			p[kv[i].(string)] = kv[i+1]
		}
		return p
	}
	number := func(s string) json.Number { return json.Number(s) }
	runScenarios(t, b, []apiScenario{
		fieldScenario("CreateTenantPlanEmpty", "POST", "/v1/tenants", b.admin, map[string]any{"slug": "p-empty", "name": "x", "plan": ""}, "plan"),
		fieldScenario("CreateTenantPlanNull", "POST", "/v1/tenants", b.admin, map[string]any{"slug": "p-null", "name": "x", "plan": nil}, "plan"),
		fieldScenario("CreateTenantIsolationEmpty", "POST", "/v1/tenants", b.admin, map[string]any{"slug": "i-empty", "name": "x", "isolation": ""}, "isolation"),
		fieldScenario("CreateTenantNameNull", "POST", "/v1/tenants", b.admin, map[string]any{"slug": "n-null", "name": nil}, "name"),
		fieldScenario("CreateTenantSlugMissing", "POST", "/v1/tenants", b.admin, map[string]any{"name": "x"}, "slug"),
		fieldScenario("PatchTenantNameNull", "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"name": nil}, "name"),
		fieldScenario("PatchTenantNameEmpty", "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"name": ""}, "name"),
		fieldScenario("PatchTenantPlanNull", "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"plan": nil}, "plan"),
		fieldScenario("PatchTenantPlanEmpty", "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"plan": ""}, "plan"),
		fieldScenario("PatchTenantStatusNull", "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"status": nil}, "status"),
		{name: "PatchTenantNothing", method: "PATCH", path: "/v1/tenants/acme", token: b.admin, body: map[string]any{}, wantStatus: 200},
		{name: "FieldNamesAreExact", method: "PATCH", path: "/v1/tenants/acme", token: b.admin, body: map[string]any{"Name": "x"},
			wantStatus: 400, wantCode: problem.CodeUnknownField, wantContains: []string{`"field":"Name"`}},
		{name: "NotUTF8", method: "PATCH", path: "/v1/tenants/acme", token: b.admin, body: []byte("{\"name\":\"\xff\"}"),
			wantStatus: 400, wantCode: problem.CodeInvalidJSON},
		fieldScenario("PlanNameEmpty", "PUT", "/v1/plans/gold", b.admin, plan("name", ""), "name"),
		fieldScenario("PlanNameNull", "PUT", "/v1/plans/gold", b.admin, plan("name", nil), "name"),
		fieldScenario("PlanBurstNull", "PUT", "/v1/plans/gold", b.admin, plan("burst", nil), "burst"),
		fieldScenario("PlanMaxRecordsNull", "PUT", "/v1/plans/gold", b.admin, plan("max_records", nil), "max_records"),
		fieldScenario("PlanMaxBytesMissing", "PUT", "/v1/plans/gold", b.admin, plan("max_bytes", "<absent>"), "max_bytes"),
		fieldScenario("PlanRateMissing", "PUT", "/v1/plans/gold", b.admin, plan("rate_per_sec", "<absent>"), "rate_per_sec"),
		fieldScenario("PlanBurstFraction", "PUT", "/v1/plans/gold", b.admin, plan("burst", number("1.5")), "burst"),
		fieldScenario("PlanBurstTinyExponent", "PUT", "/v1/plans/gold", b.admin, plan("burst", number("1e-400")), "burst"),
		fieldScenario("PlanBurstHugeExponent", "PUT", "/v1/plans/gold", b.admin, plan("burst", number("1e999999999999999999999")), "burst"),
		fieldScenario("PlanMaxRecordsBeyondInt64", "PUT", "/v1/plans/gold", b.admin, plan("max_records", number("9223372036854775808")), "max_records"),
		fieldScenario("PlanMaxBytesBeyondInt64", "PUT", "/v1/plans/gold", b.admin, plan("max_bytes", number("1e19")), "max_bytes"),
		fieldScenario("PlanRateBeyondFloat64", "PUT", "/v1/plans/gold", b.admin, plan("rate_per_sec", number("1e400")), "rate_per_sec"),
		fieldScenario("PlanWeightString", "PUT", "/v1/plans/gold", b.admin, plan("weight", "1"), "weight"),
		{name: "PlanIntegersWithExponents", method: "PUT", path: "/v1/plans/gold", token: b.admin,
			body: plan("burst", number("1e3"), "max_inflight", number("20.0"), "weight", number("0.3e1"),
				"max_records", number("9223372036854775807"), "max_bytes", number("-0.0e5")),
			wantStatus: 200, check: func(t *testing.T, r *response) {
				want := `{"name":"gold","rate_per_sec":5,"burst":1000,"max_inflight":20,"weight":3,"max_records":9223372036854775807,"max_bytes":0}`
				if string(r.Body) != want {
					t.Errorf("plan = %s, want %s", r.Body, want)
				}
			}},
	})
}

// Query parameters: an empty one is absent; limit is 1 to 1000 and 50 when
// absent, 0 included in what is refused; an empty Idempotency-Key is a 400.
func TestQueryParameters(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	b.collection("acme", admin, "notes", nil)
	for i := range 60 {
		b.createRecord("acme", admin, "notes", map[string]any{"i": i})
	}
	records := tpath("acme", "collections", "notes", "records")
	items := func(n int) func(t *testing.T, r *response) {
		return func(t *testing.T, r *response) {
			var p page[map[string]any]
			r.JSON(t, &p)
			if len(p.Items) != n {
				t.Errorf("%d items, want %d", len(p.Items), n)
			}
		}
	}
	var scenarios []apiScenario
	for _, listing := range []struct{ name, path, token string }{
		{"Tenants", "/v1/tenants", b.admin},
		{"Records", records, admin},
		{"Audit", tpath("acme", "audit"), admin},
		{"PlatformAudit", "/v1/audit", b.admin},
	} {
		scenarios = append(scenarios,
			fieldScenario(listing.name+"LimitZero", "GET", listing.path+"?limit=0", listing.token, nil, "limit"),
			fieldScenario(listing.name+"LimitNegative", "GET", listing.path+"?limit=-1", listing.token, nil, "limit"),
			fieldScenario(listing.name+"LimitTooLarge", "GET", listing.path+"?limit=1001", listing.token, nil, "limit"),
			fieldScenario(listing.name+"LimitFraction", "GET", listing.path+"?limit=1.5", listing.token, nil, "limit"),
			apiScenario{name: listing.name + "LimitEmpty", method: "GET", path: listing.path + "?limit=&cursor=", token: listing.token, wantStatus: 200},
			apiScenario{name: listing.name + "LimitOne", method: "GET", path: listing.path + "?limit=1", token: listing.token, wantStatus: 200, check: items(1)},
			apiScenario{name: listing.name + "LimitMax", method: "GET", path: listing.path + "?limit=1000", token: listing.token, wantStatus: 200},
		)
	}
	for _, path := range []string{tpath("acme", "audit"), "/v1/audit"} {
		token := admin
		if path == "/v1/audit" {
			token = b.admin
		}
		scenarios = append(scenarios,
			fieldScenario("AfterNegative"+path, "GET", path+"?after=-1", token, nil, "after"),
			fieldScenario("AfterBeyondInt64"+path, "GET", path+"?after=9223372036854775808", token, nil, "after"),
			apiScenario{name: "AfterMax" + path, method: "GET", path: path + "?after=9223372036854775807", token: token, wantStatus: 200, check: items(0)},
			apiScenario{name: "AfterEmpty" + path, method: "GET", path: path + "?after=", token: token, wantStatus: 200},
		)
	}
	scenarios = append(scenarios,
		apiScenario{name: "RecordsAbsentMeans50", method: "GET", path: records, token: admin, wantStatus: 200, check: items(50)},
		apiScenario{name: "RecordsEmptyMeansAbsent", method: "GET", path: records + "?limit=&filter=&order=&cursor=&count=",
			token: admin, wantStatus: 200, check: items(50)},
		fieldScenario("IdempotencyKeyEmpty", "POST", records, admin, map[string]any{"a": 1}, "Idempotency-Key"),
		fieldScenario("IdempotencyKeyTooLong", "POST", records, admin, map[string]any{"a": 1}, "Idempotency-Key"),
		apiScenario{name: "IdempotencyKeyEmptyWhereUnsupported", method: "POST", path: tpath("acme", "api-keys"), token: admin,
			body: map[string]any{"name": "x", "role": "viewer"}, headers: []string{"Idempotency-Key", ""},
			wantStatus: 400, wantCode: problem.CodeUnsupported},
	)
	scenarios[len(scenarios)-3].headers = []string{"Idempotency-Key", ""}
	scenarios[len(scenarios)-2].headers = []string{"Idempotency-Key", strings.Repeat("k", 256)}
	runScenarios(t, b, scenarios)
}

// A 403 says which rule refused the request, in words about the credential
// and the rule only: never about another tenant.
func TestForbiddenSaysWhy(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	neighbourID := b.tenant(neighbourSlug, tenant.Pooled)
	member := b.apiKey("acme", tenant.Member)
	admin := b.apiKey("acme", tenant.Admin)
	adminUser := b.userToken("acme", "ada@example.com", tenant.Admin)
	b.collection("acme", admin, "notes", nil)
	rec := b.createRecord("acme", admin, "notes", map[string]any{"a": 1})
	neighbourKey := b.apiKey(neighbourSlug, tenant.Owner)

	forbidden := func(name, method, path, token string, body any, detail string) apiScenario {
		return apiScenario{name: name, method: method, path: path, token: token, body: body,
			wantStatus: 403, wantCode: problem.CodeForbidden,
			check: func(t *testing.T, r *response) {
				var p problemBody
				r.JSON(t, &p)
				if p.Detail != detail {
					t.Errorf("detail = %q, want %q", p.Detail, detail)
				}
				// The instance echoes the request's own path.
				rest := strings.Replace(string(r.Body), p.Instance, "", 1)
				for _, other := range []string{neighbourSlug, string(neighbourID), neighbourKey[:20]} {
					if strings.Contains(rest, other) {
						t.Errorf("the 403 names another tenant (%s): %s", other, r.Body)
					}
				}
			}}
	}
	const operatorOnly = "only the platform operator may do this"
	runScenarios(t, b, []apiScenario{
		forbidden("MemberCreatesAPIKey", "POST", tpath("acme", "api-keys"), member, map[string]any{"name": "ci", "role": "viewer"},
			"this needs the admin role or above; the credential's role is member"),
		forbidden("MemberListsUsers", "GET", tpath("acme", "users"), member, nil,
			"this needs the admin role or above; the credential's role is member"),
		forbidden("AdminKeyGrantsOwner", "POST", tpath("acme", "api-keys"), admin, map[string]any{"name": "ci", "role": "owner"},
			"a credential cannot grant, change or remove a role above its own (admin)"),
		forbidden("AdminUserCreatesOwner", "POST", tpath("acme", "users"), adminUser.AccessToken,
			map[string]any{"email": "bob@example.com", "password": "correct horse battery", "role": "owner"},
			"a credential cannot grant, change or remove a role above its own (admin)"),
		forbidden("TenantKeyListsPlans", "GET", "/v1/plans", admin, nil, operatorOnly),
		forbidden("TenantUserListsPlans", "GET", "/v1/plans", adminUser.AccessToken, nil, operatorOnly),
		forbidden("TenantKeyReadsItsTenant", "GET", "/v1/tenants/acme", admin, nil, operatorOnly),
		forbidden("TenantKeyReadsMetrics", "GET", "/metrics", admin, nil, operatorOnly),
		forbidden("OperatorReadsRecords", "GET", tpath("acme", "collections", "notes", "records"), b.admin, nil,
			"the operator token does not reach a tenant's data; use a credential of the tenant"),
		forbidden("OperatorReadsARecord", "GET", tpath("acme", "collections", "notes", "records", rec.ID), b.admin, nil,
			"the operator token does not reach a tenant's data; use a credential of the tenant"),
		// Another tenant's routes are a 404, not a 403 that would say it exists.
		{name: "MemberAtNeighbour", method: "POST", path: tpath(neighbourSlug, "api-keys"), token: member,
			body: map[string]any{"name": "ci", "role": "viewer"}, wantStatus: 404, wantCode: problem.CodeNotFound},
	})
}
