package httpapi

import (
	"encoding/base64"
	"encoding/json"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/bulkheadhq/bulkhead/internal/auth"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

const testPassword = "correct horse battery"

// userBody is a user as the API shows it.
type userBody struct {
	ID        string `json:"id"`
	Email     string `json:"email"`
	Role      string `json:"role"`
	CreatedAt string `json:"created_at"`
}

func TestUsers(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	b.tenant(neighbourSlug, tenant.Pooled)
	admin := b.userToken("acme", "admin@example.com", tenant.Admin)
	member := b.userToken("acme", "member@example.com", tenant.Member)
	viewer := b.userToken("acme", "viewer@example.com", tenant.Viewer)
	owner := b.userToken("acme", "owner@example.com", tenant.Owner)
	adminKey := b.apiKey("acme", tenant.Admin)
	memberKey := b.apiKey("acme", tenant.Member)

	users := tpath("acme", "users")
	user := func(email, role string) map[string]any {
		return map[string]any{"email": email, "password": testPassword, "role": role}
	}
	noSecrets := []string{"password", "hash", "argon2", testPassword}
	runScenarios(t, b, []apiScenario{
		{name: "OperatorCreatesOwner", method: "POST", path: users, token: b.admin, body: user("Boss@Example.com", "owner"),
			wantStatus: 201, wantNotContains: noSecrets,
			check: func(t *testing.T, r *response) {
				var u userBody
				r.JSON(t, &u)
				if _, err := uuid.Parse(u.ID); err != nil {
					t.Errorf("id = %q, not a UUID", u.ID)
				}
				if u.Email != "boss@example.com" || u.Role != "owner" || u.CreatedAt == "" {
					t.Errorf("user = %+v, want boss@example.com (normalized), owner, created_at", u)
				}
				var m map[string]any
				r.JSON(t, &m)
				for k := range m {
					if k != "id" && k != "email" && k != "role" && k != "created_at" {
						t.Errorf("user body has field %q: %s", k, r.Body)
					}
				}
			}},
		{name: "EmailNormalized", method: "POST", path: users, token: b.admin, body: user("  Grace.Hopper@Example.COM ", "member"),
			wantStatus: 201, wantContains: []string{`"email":"grace.hopper@example.com"`}},
		{name: "DuplicateEmail", method: "POST", path: users, token: b.admin, body: user("grace.hopper@example.com", "viewer"),
			wantStatus: 409, wantCode: problem.CodeConflict},
		{name: "DuplicateEmailOtherCase", method: "POST", path: users, token: adminKey, body: user("GRACE.HOPPER@example.com", "viewer"),
			wantStatus: 409, wantCode: problem.CodeConflict},
		{name: "SameEmailOtherTenant", method: "POST", path: tpath(neighbourSlug, "users"), token: b.admin,
			body: user("grace.hopper@example.com", "viewer"), wantStatus: 201},
		{name: "WeakPassword", method: "POST", path: users, token: b.admin,
			body:       map[string]any{"email": "weak@example.com", "password": "short", "role": "member"},
			wantStatus: 400, wantCode: problem.CodeInvalidRequest, wantContains: []string{`"field":"password"`}},
		{name: "NoPassword", method: "POST", path: users, token: b.admin,
			body:       map[string]any{"email": "nopw@example.com", "role": "member"},
			wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "BadEmail", method: "POST", path: users, token: b.admin, body: user("not an email", "member"),
			wantStatus: 400, wantCode: problem.CodeInvalidRequest, wantContains: []string{`"field":"email"`}},
		{name: "DisplayNameEmail", method: "POST", path: users, token: b.admin, body: user("Ada <ada@example.com>", "member"),
			wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "BadRole", method: "POST", path: users, token: b.admin, body: user("role@example.com", "superuser"),
			wantStatus: 400, wantCode: problem.CodeInvalidRequest, wantContains: []string{`"field":"role"`}},
		{name: "UnknownField", method: "POST", path: users, token: b.admin,
			body:       map[string]any{"email": "u@example.com", "password": testPassword, "role": "member", "admin": true},
			wantStatus: 400, wantCode: problem.CodeUnknownField},
		{name: "AdminCreatesAdmin", method: "POST", path: users, token: admin.AccessToken, body: user("admin2@example.com", "admin"),
			wantStatus: 201},
		{name: "AdminCreatesMember", method: "POST", path: users, token: admin.AccessToken, body: user("m2@example.com", "member"),
			wantStatus: 201},
		{name: "AdminJWTCreatesOwner", method: "POST", path: users, token: admin.AccessToken, body: user("evil@example.com", "owner"),
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "AdminKeyCreatesOwner", method: "POST", path: users, token: adminKey, body: user("evil2@example.com", "owner"),
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "MemberCreatesViewer", method: "POST", path: users, token: member.AccessToken, body: user("v2@example.com", "viewer"),
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "MemberKeyCreatesViewer", method: "POST", path: users, token: memberKey, body: user("v3@example.com", "viewer"),
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "ViewerCreatesViewer", method: "POST", path: users, token: viewer.AccessToken, body: user("v4@example.com", "viewer"),
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "OwnerCreatesOwner", method: "POST", path: users, token: owner.AccessToken, body: user("owner2@example.com", "owner"),
			wantStatus: 201},
		{name: "Anonymous", method: "POST", path: users, body: user("anon@example.com", "viewer"),
			wantStatus: 401, wantCode: problem.CodeUnauthorized},
		{name: "RefusedUsersCannotLogIn", method: "POST", path: tpath("acme", "auth", "login"),
			body:       map[string]any{"email": "evil@example.com", "password": testPassword},
			wantStatus: 401, wantCode: problem.CodeInvalidCredentials},
		{name: "LoginOtherCase", method: "POST", path: tpath("acme", "auth", "login"),
			body: map[string]any{"email": "GRACE.hopper@EXAMPLE.com", "password": testPassword}, wantStatus: 200},
	})

	t.Run("Idempotent", func(t *testing.T) {
		bt := b.withT(t)
		body := user("idem@example.com", "viewer")
		first := bt.must(201, "POST", users, adminKey, body, "Idempotency-Key", "u-1")
		again := bt.must(201, "POST", users, adminKey, body, "Idempotency-Key", "u-1")
		if string(first.Body) != string(again.Body) || again.Header.Get("Idempotent-Replayed") != "true" {
			t.Errorf("replay = %s (Idempotent-Replayed %q), want %s replayed", again.Body, again.Header.Get("Idempotent-Replayed"), first.Body)
		}
		bt.mustProblem(422, problem.CodeIdempotencyKeyReused, "POST", users, adminKey, user("idem2@example.com", "viewer"), "Idempotency-Key", "u-1")
	})
}

func TestLogin(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.tenant("acme", tenant.Pooled)
	b.must(201, "POST", tpath("acme", "users"), b.admin, map[string]any{"email": "ada@example.com", "password": testPassword, "role": "member"})

	login := tpath("acme", "auth", "login")
	r := b.must(200, "POST", login, "", map[string]any{"email": "ada@example.com", "password": testPassword})
	t.Run("SuccessShape", func(t *testing.T) {
		if got := r.Header.Get("Cache-Control"); got != "private, no-store" {
			t.Errorf("Cache-Control = %q, want private, no-store", got)
		}
		if got := r.Header.Get("Content-Type"); got != "application/json" {
			t.Errorf("Content-Type = %q, want application/json", got)
		}
		var m map[string]any
		r.JSON(t, &m)
		for _, k := range []string{"access_token", "refresh_token", "token_type", "expires_in"} {
			if _, ok := m[k]; !ok {
				t.Errorf("login answer lacks %s: %s", k, r.Body)
			}
		}
		var pair core.TokenPair
		r.JSON(t, &pair)
		if pair.TokenType != "Bearer" || pair.ExpiresIn != 900 {
			t.Errorf("token_type, expires_in = %q, %d, want Bearer, 900", pair.TokenType, pair.ExpiresIn)
		}
		if !auth.LooksLikeJWT(pair.AccessToken) {
			t.Errorf("access_token %q is not a JWT", pair.AccessToken)
		}
		if _, ok := auth.ParseRefreshToken(pair.RefreshToken); !ok {
			t.Errorf("refresh_token %q is not a refresh token", pair.RefreshToken)
		}
		claims := jwtClaims(t, pair.AccessToken)
		if claims["tid"] != string(id) || claims["role"] != "member" {
			t.Errorf("access token claims tid, role = %v, %v; want %s, member", claims["tid"], claims["role"], id)
		}
		// The access token works at once.
		b.withT(t).must(200, "GET", tpath("acme", "collections"), pair.AccessToken, nil)
	})

	t.Run("FailuresLookAlike", func(t *testing.T) {
		bt := b.withT(t)
		cases := []struct {
			name, slug string
			body       map[string]any
		}{
			{"WrongPassword", "acme", map[string]any{"email": "ada@example.com", "password": "wrong horse battery"}},
			{"UnknownEmail", "acme", map[string]any{"email": "bob@example.com", "password": testPassword}},
			{"UnknownTenant", "no-such-tenant", map[string]any{"email": "ada@example.com", "password": testPassword}},
			{"InvalidSlug", "NO_SUCH", map[string]any{"email": "ada@example.com", "password": testPassword}},
		}
		var want map[string]any
		for _, c := range cases {
			r := bt.do("POST", tpath(c.slug, "auth", "login"), "", c.body)
			p := assertProblem(t, r, 401, problem.CodeInvalidCredentials)
			if p.Instance != tpath(c.slug, "auth", "login") {
				t.Errorf("%s: instance = %q", c.name, p.Instance)
			}
			if r.Header.Get("WWW-Authenticate") != "" {
				t.Errorf("%s: WWW-Authenticate on a login failure", c.name)
			}
			var m map[string]any
			r.JSON(t, &m)
			delete(m, "instance")
			delete(m, "request_id")
			if want == nil {
				want = m
				continue
			}
			if diff := cmp.Diff(want, m); diff != "" {
				t.Errorf("%s body differs from WrongPassword's (-want +got):\n%s", c.name, diff)
			}
		}
	})

	runScenarios(t, b, []apiScenario{
		// A body without a credential in it is malformed, whatever the
		// tenant and account: its 400 is decided before either is looked
		// up, and tells nothing of them.
		fieldScenario("EmptyPassword", "POST", login, "", map[string]any{"email": "ada@example.com", "password": ""}, "password"),
		fieldScenario("NullPassword", "POST", login, "", map[string]any{"email": "ada@example.com", "password": nil}, "password"),
		fieldScenario("NoPassword", "POST", login, "", map[string]any{"email": "ada@example.com"}, "password"),
		fieldScenario("EmptyEmailUnknownTenant", "POST", tpath("no-such-tenant", "auth", "login"), "",
			map[string]any{"email": "", "password": testPassword}, "email"),
		{name: "IdempotencyKeyRefused", method: "POST", path: login,
			body:       map[string]any{"email": "ada@example.com", "password": testPassword},
			headers:    []string{"Idempotency-Key", "login-1"},
			wantStatus: 400, wantCode: problem.CodeUnsupported},
		{name: "UnknownField", method: "POST", path: login,
			body:       map[string]any{"email": "ada@example.com", "password": testPassword, "remember": true},
			wantStatus: 400, wantCode: problem.CodeUnknownField},
		{name: "NotJSON", method: "POST", path: login, body: "email=ada", headers: []string{"Content-Type", "application/x-www-form-urlencoded"},
			wantStatus: 415, wantCode: problem.CodeUnsupportedMediaType},
		{name: "TOTPAccepted", method: "POST", path: login,
			body: map[string]any{"email": "ada@example.com", "password": testPassword, "totp": "123456"}, wantStatus: 200},
	})

	t.Run("Audited", func(t *testing.T) {
		bt := b.withT(t)
		key := bt.apiKey("acme", tenant.Admin)
		bad := bt.do("POST", login, "", map[string]any{"email": "ada@example.com", "password": "wrong horse battery"})
		bt.core.Flush() // a failure is audited after its answer
		last := bt.lastAudit("acme", key)
		// The key creation came after; find the failure by request id.
		found := false
		for _, e := range bt.auditLog("acme", key) {
			if e.RequestID == bad.Header.Get("X-Request-Id") {
				found = true
				if e.Action != "auth.login" || e.Outcome != "failure" || !strings.HasPrefix(e.Actor, "user:") {
					t.Errorf("failed login entry = %+v, want auth.login failure by the user", e)
				}
			}
		}
		if !found {
			t.Errorf("no audit entry for the failed login %s (last %+v)", bad.Header.Get("X-Request-Id"), last)
		}
	})
}

// jwtClaims decodes a JWT's payload without verifying it.
func jwtClaims(t *testing.T, token string) map[string]any {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q has %d parts", token, len(parts))
	}
	raw, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil {
		t.Fatalf("JWT payload: %v", err)
	}
	var m map[string]any
	if err := json.Unmarshal(raw, &m); err != nil {
		t.Fatalf("JWT payload %s: %v", raw, err)
	}
	return m
}

func TestRefresh(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	b.tenant(neighbourSlug, tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	refresh := tpath("acme", "auth", "refresh")
	exchange := func(bt *testBundle, token string) (*response, core.TokenPair) {
		bt.t.Helper()
		r := bt.do("POST", refresh, "", map[string]any{"refresh_token": token})
		var pair core.TokenPair
		if r.Status == 200 {
			r.JSON(bt.t, &pair)
		}
		return r, pair
	}

	first := b.userToken("acme", "ada@example.com", tenant.Member)

	t.Run("Rotates", func(t *testing.T) {
		bt := b.withT(t)
		r, second := exchange(bt, first.RefreshToken)
		if r.Status != 200 {
			t.Fatalf("refresh = %d %s", r.Status, r.Body)
		}
		if got := r.Header.Get("Cache-Control"); got != "private, no-store" {
			t.Errorf("Cache-Control = %q, want private, no-store", got)
		}
		if second.RefreshToken == first.RefreshToken || second.AccessToken == "" || second.TokenType != "Bearer" {
			t.Errorf("refresh answered %+v, want a new pair", second)
		}
		bt.must(200, "GET", tpath("acme", "collections"), second.AccessToken, nil)

		// The old token is refused, and presenting it again revokes the
		// whole family: the newer token stops working too.
		r, _ = exchange(bt, first.RefreshToken)
		assertProblem(t, r, 401, problem.CodeInvalidCredentials)
		r, _ = exchange(bt, second.RefreshToken)
		assertProblem(t, r, 401, problem.CodeInvalidCredentials)

		var reuse []auditEntry
		for _, e := range bt.auditLog("acme", key) {
			if e.Action == "auth.refresh_reuse" {
				reuse = append(reuse, e)
			}
		}
		if len(reuse) == 0 || reuse[0].Outcome != "denied" {
			t.Errorf("audit has no denied auth.refresh_reuse entry: %+v", reuse)
		}
	})

	t.Run("ChainWithoutReuse", func(t *testing.T) {
		bt := b.withT(t)
		pair := bt.userToken("acme", "bob@example.com", tenant.Viewer)
		for i := range 4 {
			r, next := exchange(bt, pair.RefreshToken)
			if r.Status != 200 {
				t.Fatalf("refresh %d = %d %s", i, r.Status, r.Body)
			}
			pair = next
		}
		// Another family of the same user is not affected by a reuse in
		// this one.
		other := bt.must(200, "POST", tpath("acme", "auth", "login"), "", map[string]any{"email": "bob@example.com", "password": testPassword})
		var otherPair core.TokenPair
		other.JSON(t, &otherPair)
		r, _ := exchange(bt, pair.RefreshToken)
		if r.Status != 200 {
			t.Fatalf("refresh = %d %s", r.Status, r.Body)
		}
		exchange(bt, pair.RefreshToken) // reuse: revokes this family
		if r, _ := exchange(bt, otherPair.RefreshToken); r.Status != 200 {
			t.Errorf("refresh of an unrelated family = %d %s, want 200", r.Status, r.Body)
		}
	})

	_, neverIssued, _, err := auth.NewRefreshToken()
	if err != nil {
		t.Fatal(err)
	}
	fresh := b.userToken("acme", "cy@example.com", tenant.Member)
	runScenarios(t, b, []apiScenario{
		{name: "Malformed", method: "POST", path: refresh, body: map[string]any{"refresh_token": "nope"},
			wantStatus: 401, wantCode: problem.CodeInvalidCredentials},
		fieldScenario("Missing", "POST", refresh, "", map[string]any{}, "refresh_token"),
		fieldScenario("Empty", "POST", refresh, "", map[string]any{"refresh_token": ""}, "refresh_token"),
		fieldScenario("Null", "POST", refresh, "", map[string]any{"refresh_token": nil}, "refresh_token"),
		{name: "NeverIssued", method: "POST", path: refresh, body: map[string]any{"refresh_token": neverIssued},
			wantStatus: 401, wantCode: problem.CodeInvalidCredentials},
		{name: "AccessTokenAsRefresh", method: "POST", path: refresh, body: map[string]any{"refresh_token": fresh.AccessToken},
			wantStatus: 401, wantCode: problem.CodeInvalidCredentials},
		{name: "OtherTenantsSlug", method: "POST", path: tpath(neighbourSlug, "auth", "refresh"),
			body: map[string]any{"refresh_token": fresh.RefreshToken}, wantStatus: 401, wantCode: problem.CodeInvalidCredentials},
		{name: "IdempotencyKeyRefused", method: "POST", path: refresh, body: map[string]any{"refresh_token": fresh.RefreshToken},
			headers: []string{"Idempotency-Key", "r-1"}, wantStatus: 400, wantCode: problem.CodeUnsupported},
		{name: "UnknownField", method: "POST", path: refresh, body: map[string]any{"refresh_token": fresh.RefreshToken, "x": 1},
			wantStatus: 400, wantCode: problem.CodeUnknownField},
		{name: "StillValidAfterRefusals", method: "POST", path: refresh, body: map[string]any{"refresh_token": fresh.RefreshToken},
			wantStatus: 200},
	})
}

// TestJWTRoles: an access token acts with its user's role in its tenant.
func TestJWTRoles(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	b.collection("acme", key, "notes", nil)
	rec := b.createRecord("acme", key, "notes", map[string]any{"n": 1})
	viewer := b.userToken("acme", "viewer@example.com", tenant.Viewer)
	member := b.userToken("acme", "member@example.com", tenant.Member)
	admin := b.userToken("acme", "admin@example.com", tenant.Admin)
	recs := tpath("acme", "collections", "notes", "records")
	recPath := tpath("acme", "collections", "notes", "records", rec.ID)

	// A token with a bad signature, and one with "alg":"none".
	parts := strings.Split(member.AccessToken, ".")
	sig := []byte(parts[2])
	sig[5] ^= 1
	if sig[5] == '-' || sig[5] == '_' || sig[5] > 'z' {
		sig[5] = 'A'
	}
	badSig := parts[0] + "." + parts[1] + "." + string(sig)
	claims := jwtClaims(t, admin.AccessToken)
	claims["role"] = "owner"
	payload, _ := json.Marshal(claims)
	none := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"none","typ":"JWT"}`)) + "." +
		base64.RawURLEncoding.EncodeToString(payload) + "."
	resigned := strings.Split(admin.AccessToken, ".")
	escalated := resigned[0] + "." + base64.RawURLEncoding.EncodeToString(payload) + "." + resigned[2]

	var memberID string
	runScenarios(t, b, []apiScenario{
		{name: "ViewerReads", method: "GET", path: recPath, token: viewer.AccessToken, wantStatus: 200},
		{name: "ViewerLists", method: "GET", path: recs, token: viewer.AccessToken, wantStatus: 200},
		{name: "ViewerCannotCreate", method: "POST", path: recs, token: viewer.AccessToken, body: map[string]any{"n": 2},
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "ViewerCannotPatch", method: "PATCH", path: recPath, token: viewer.AccessToken, body: map[string]any{"n": 2},
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "ViewerCannotDelete", method: "DELETE", path: recPath, token: viewer.AccessToken,
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "ViewerCannotListCollections", method: "GET", path: tpath("acme", "collections"), token: viewer.AccessToken,
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "MemberCreates", method: "POST", path: recs, token: member.AccessToken, body: map[string]any{"n": 3}, wantStatus: 201},
		{name: "MemberActorInAudit", method: "GET", path: tpath("acme", "audit") + "?after=0&limit=1000", token: key, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				var p page[auditEntry]
				r.JSON(t, &p)
				last := p.Items[len(p.Items)-1]
				if last.Action != "record.create" || !strings.HasPrefix(last.Actor, "user:") {
					t.Errorf("last entry = %+v, want record.create by user:…", last)
				}
				memberID = strings.TrimPrefix(last.Actor, "user:")
			}},
		{name: "MemberPatches", method: "PATCH", path: recPath, token: member.AccessToken, body: map[string]any{"n": 4}, wantStatus: 200},
		{name: "MemberListsCollections", method: "GET", path: tpath("acme", "collections"), token: member.AccessToken, wantStatus: 200},
		{name: "MemberCannotPutCollection", method: "PUT", path: tpath("acme", "collections", "other"), token: member.AccessToken,
			body: map[string]any{}, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "MemberCannotReadAudit", method: "GET", path: tpath("acme", "audit"), token: member.AccessToken,
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "MemberCannotVerifyAudit", method: "GET", path: tpath("acme", "audit", "verify"), token: member.AccessToken,
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "MemberCannotReadUsage", method: "GET", path: tpath("acme", "usage"), token: member.AccessToken,
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "MemberCannotCreateKey", method: "POST", path: tpath("acme", "api-keys"), token: member.AccessToken,
			body: map[string]any{"name": "k", "role": "viewer"}, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "AdminPutsCollection", method: "PUT", path: tpath("acme", "collections", "other"), token: admin.AccessToken,
			body: map[string]any{}, wantStatus: 200},
		{name: "AdminReadsAudit", method: "GET", path: tpath("acme", "audit"), token: admin.AccessToken, wantStatus: 200},
		{name: "AdminCreatesAdminKey", method: "POST", path: tpath("acme", "api-keys"), token: admin.AccessToken,
			body: map[string]any{"name": "k", "role": "admin"}, wantStatus: 201,
			check: func(t *testing.T, r *response) {
				var k map[string]any
				r.JSON(t, &k)
				if cb, _ := k["created_by"].(string); !strings.HasPrefix(cb, "user:") {
					t.Errorf("created_by = %v, want user:…", k["created_by"])
				}
			}},
		{name: "AdminCannotCreateOwnerKey", method: "POST", path: tpath("acme", "api-keys"), token: admin.AccessToken,
			body: map[string]any{"name": "k", "role": "owner"}, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "BadSignature", method: "GET", path: recPath, token: badSig, wantStatus: 401, wantCode: problem.CodeUnauthorized},
		{name: "AlgNone", method: "GET", path: recPath, token: none, wantStatus: 401, wantCode: problem.CodeUnauthorized},
		{name: "EditedClaims", method: "PUT", path: tpath("acme", "collections", "x"), token: escalated, body: map[string]any{},
			wantStatus: 401, wantCode: problem.CodeUnauthorized},
		{name: "Truncated", method: "GET", path: recPath, token: member.AccessToken[:len(member.AccessToken)-10],
			wantStatus: 401, wantCode: problem.CodeUnauthorized},
	})
	if memberID == "" {
		t.Error("no member id found in the audit log")
	}
}

// apiKeyBody is a key as the API shows it.
type apiKeyBody struct {
	ID        string  `json:"id"`
	Name      string  `json:"name"`
	Role      string  `json:"role"`
	CreatedBy string  `json:"created_by"`
	CreatedAt string  `json:"created_at"`
	RevokedAt *string `json:"revoked_at"`
	Key       string  `json:"key"`
}

func TestAPIKeys(t *testing.T) {
	t.Parallel()
	b := setup(t)
	id := b.tenant("acme", tenant.Pooled)
	b.tenant(neighbourSlug, tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	b.collection("acme", admin, "notes", nil)
	rec := b.createRecord("acme", admin, "notes", map[string]any{"n": 1})
	recPath := tpath("acme", "collections", "notes", "records", rec.ID)
	recs := tpath("acme", "collections", "notes", "records")
	keys := tpath("acme", "api-keys")

	var created apiKeyBody
	r := b.must(201, "POST", keys, admin, map[string]any{"name": "ci", "role": "member"})
	r.JSON(t, &created)
	t.Run("CreateShape", func(t *testing.T) {
		if got := r.Header.Get("Cache-Control"); got != "private, no-store" {
			t.Errorf("Cache-Control = %q, want private, no-store", got)
		}
		if !strings.HasPrefix(created.Key, "bh_live_") || !strings.Contains(created.Key, created.ID) {
			t.Errorf("key = %q, want bh_live_… containing id %q", created.Key, created.ID)
		}
		if created.Name != "ci" || created.Role != "member" || !strings.HasPrefix(created.CreatedBy, "key:") ||
			created.CreatedAt == "" || created.RevokedAt != nil {
			t.Errorf("created = %+v", created)
		}
		if owner, ok := auth.TenantOfAPIKeyID(store.APIKeyID(created.ID)); !ok || owner != id {
			t.Errorf("key id names tenant %q, want %q", owner, id)
		}
	})
	member := created.Key
	viewer := b.apiKey("acme", tenant.Viewer)
	viewerID := keyIDOf(t, viewer)
	neighbourKey := b.apiKey(neighbourSlug, tenant.Admin)
	neighbourKeyID := keyIDOf(t, neighbourKey)

	// Well-formed keys that were never issued: one for this tenant, one for
	// a tenant that does not exist, and one of another environment.
	_, unknownKey, err := auth.NewAPIKey("live", id)
	if err != nil {
		t.Fatal(err)
	}
	_, noTenantKey, err := auth.NewAPIKey("live", tenant.ID(uuid.NewString()))
	if err != nil {
		t.Fatal(err)
	}
	testEnvKey := strings.Replace(member, "bh_live_", "bh_test_", 1)
	unauthorized := func(name, token string) apiScenario {
		return apiScenario{name: name, method: "GET", path: recPath, token: token, wantStatus: 401, wantCode: problem.CodeUnauthorized,
			wantHeaders: map[string]string{"WWW-Authenticate": `Bearer realm="bulkhead"`}}
	}

	runScenarios(t, b, []apiScenario{
		{name: "ListHidesSecrets", method: "GET", path: keys, token: admin, wantStatus: 200,
			wantNotContains: []string{member, viewer, admin, `"key"`, "hash"},
			check: func(t *testing.T, r *response) {
				var p page[apiKeyBody]
				r.JSON(t, &p)
				ids := map[string]bool{}
				for _, k := range p.Items {
					ids[k.ID] = true
				}
				if !ids[created.ID] || !ids[viewerID] || len(p.Items) != 3 {
					t.Errorf("list = %+v, want the 3 keys of acme", p.Items)
				}
			}},
		{name: "ListAsMember", method: "GET", path: keys, token: member, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "IdempotencyKeyRefused", method: "POST", path: keys, token: admin, body: map[string]any{"name": "x", "role": "viewer"},
			headers: []string{"Idempotency-Key", "k-1"}, wantStatus: 400, wantCode: problem.CodeUnsupported},
		{name: "EmptyName", method: "POST", path: keys, token: admin, body: map[string]any{"name": "", "role": "viewer"},
			wantStatus: 400, wantCode: problem.CodeInvalidRequest, wantContains: []string{`"field":"name"`}},
		{name: "LongName", method: "POST", path: keys, token: admin, body: map[string]any{"name": strings.Repeat("k", 101), "role": "viewer"},
			wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "BadRole", method: "POST", path: keys, token: admin, body: map[string]any{"name": "x", "role": "root"},
			wantStatus: 400, wantCode: problem.CodeInvalidRequest, wantContains: []string{`"field":"role"`}},
		{name: "UnknownField", method: "POST", path: keys, token: admin, body: map[string]any{"name": "x", "role": "viewer", "expires": 1},
			wantStatus: 400, wantCode: problem.CodeUnknownField},
		{name: "AdminCannotMintOwner", method: "POST", path: keys, token: admin, body: map[string]any{"name": "x", "role": "owner"},
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "MemberCannotMintViewer", method: "POST", path: keys, token: member, body: map[string]any{"name": "x", "role": "viewer"},
			wantStatus: 403, wantCode: problem.CodeForbidden},

		// Role limits of keys.
		{name: "ViewerReads", method: "GET", path: recPath, token: viewer, wantStatus: 200},
		{name: "ViewerCannotCreate", method: "POST", path: recs, token: viewer, body: map[string]any{"n": 2},
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "ViewerCannotPatch", method: "PATCH", path: recPath, token: viewer, body: map[string]any{"n": 2},
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "ViewerCannotDelete", method: "DELETE", path: recPath, token: viewer, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "MemberCreates", method: "POST", path: recs, token: member, body: map[string]any{"n": 3}, wantStatus: 201},
		{name: "MemberCannotPutCollection", method: "PUT", path: tpath("acme", "collections", "notes"), token: member,
			body: map[string]any{}, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "MemberCannotRevoke", method: "DELETE", path: tpath("acme", "api-keys", viewerID), token: member,
			wantStatus: 403, wantCode: problem.CodeForbidden},

		// Bad credentials.
		unauthorized("Garbage", "garbage"),
		unauthorized("PrefixOnly", "bh_"),
		unauthorized("MalformedKey", "bh_live_not-a-key"),
		unauthorized("TruncatedKey", member[:len(member)-1]),
		unauthorized("WrongSecret", flipLast(member)),
		unauthorized("NeverIssued", unknownKey),
		unauthorized("UnknownTenant", noTenantKey),
		unauthorized("OtherEnvironment", testEnvKey),
		unauthorized("EmptyBearer", ""),

		// Revocation: the viewer key was used above and is cached.
		{name: "RevokeUnknownID", method: "DELETE", path: tpath("acme", "api-keys", keyIDOf(t, unknownKey)), token: admin,
			wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "RevokeMalformedID", method: "DELETE", path: tpath("acme", "api-keys", "nope"), token: admin,
			wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "RevokeOtherTenantsKey", method: "DELETE", path: tpath("acme", "api-keys", neighbourKeyID), token: admin,
			wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "ViewerStillWorks", method: "GET", path: recPath, token: viewer, wantStatus: 200},
		{name: "Revoke", method: "DELETE", path: tpath("acme", "api-keys", viewerID), token: admin, wantStatus: 204,
			check: func(t *testing.T, r *response) {
				if len(r.Body) != 0 {
					t.Errorf("204 with body %s", r.Body)
				}
			}},
		unauthorized("RevokedAtOnce", viewer),
		unauthorized("RevokedStaysRevoked", viewer),
		{name: "RevokeAgain", method: "DELETE", path: tpath("acme", "api-keys", viewerID), token: admin,
			wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "ListShowsRevoked", method: "GET", path: keys, token: admin, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				var p page[apiKeyBody]
				r.JSON(t, &p)
				for _, k := range p.Items {
					if (k.ID == viewerID) != (k.RevokedAt != nil) {
						t.Errorf("key %s revoked_at = %v", k.ID, k.RevokedAt)
					}
				}
			}},
		{name: "NeighbourKeyUntouched", method: "GET", path: tpath(neighbourSlug, "api-keys"), token: neighbourKey, wantStatus: 200},
		{name: "MemberStillWorks", method: "GET", path: recPath, token: member, wantStatus: 200},
		{name: "AdminRevokesItself", method: "DELETE", path: tpath("acme", "api-keys", keyIDOf(t, admin)), token: admin, wantStatus: 204},
		unauthorized("SelfRevoked", admin),
	})

	// The revocation is audited with its request id.
	owner := b.apiKey("acme", tenant.Owner)
	var revokes []auditEntry
	for _, e := range b.auditLog("acme", owner) {
		if e.Action == "api_key.revoke" {
			revokes = append(revokes, e)
		}
	}
	if len(revokes) != 2 || revokes[0].Resource != "api_key:"+viewerID {
		t.Errorf("api_key.revoke entries = %+v, want 2, the first of %s", revokes, viewerID)
	}
}

// keyIDOf returns the id part of an API key "bh_<env>_<id>_<secret>".
func keyIDOf(t *testing.T, key string) string {
	t.Helper()
	_, _, id, ok := auth.ParseAPIKey(key)
	if !ok {
		t.Fatalf("ParseAPIKey(%q) failed", key)
	}
	return string(id)
}

// flipLast changes a character near the end of a key (in its secret) to
// another of the same alphabet, keeping the key well-formed.
func flipLast(s string) string {
	b := []byte(s)
	i := len(b) - 5
	if b[i] == 'a' {
		b[i] = 'b'
	} else {
		b[i] = 'a'
	}
	return string(b)
}

// An admin cannot revoke an owner's key: nobody acts on a credential more
// powerful than their own.
func TestRevokeAboveOwnRole(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	var owner struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	b.must(201, "POST", "/v1/tenants/acme/api-keys", b.admin, map[string]any{"name": "owner", "role": "owner"}).JSON(t, &owner)
	admin := b.apiKey("acme", tenant.Admin)
	b.mustProblem(403, problem.CodeForbidden, "DELETE", "/v1/tenants/acme/api-keys/"+owner.ID, admin, nil)
	b.must(200, "GET", "/v1/tenants/acme/api-keys", owner.Key, nil)
	// The owner can.
	b.must(204, "DELETE", "/v1/tenants/acme/api-keys/"+owner.ID, owner.Key, nil)
	b.mustProblem(401, problem.CodeUnauthorized, "GET", "/v1/tenants/acme/usage", owner.Key, nil)
}

// A refresh token replayed while the tenant is suspended still revokes its
// family: the thief must not keep the sibling token for after the resume.
func TestRefreshReuseWhileSuspended(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	first := b.userToken("acme", "ada@example.com", tenant.Member)
	var second core.TokenPair
	b.must(200, "POST", "/v1/tenants/acme/auth/refresh", "", map[string]any{"refresh_token": first.RefreshToken}).JSON(t, &second)

	b.must(200, "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"status": "suspended"})
	b.mustProblem(401, problem.CodeInvalidCredentials, "POST", "/v1/tenants/acme/auth/refresh", "", map[string]any{"refresh_token": first.RefreshToken})
	b.must(200, "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"status": "active"})
	b.mustProblem(401, problem.CodeInvalidCredentials, "POST", "/v1/tenants/acme/auth/refresh", "", map[string]any{"refresh_token": second.RefreshToken})
}
