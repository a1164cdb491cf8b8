package httpapi

import (
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/auth"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// userID returns the id of the user with email in slug, as its admin sees
// it.
func (b *testBundle) userID(slug, adminKey, email string) string {
	b.t.Helper()
	var page struct {
		Items []userBody `json:"items"`
	}
	b.must(200, "GET", tpath(slug, "users"), adminKey, nil).JSON(b.t, &page)
	for _, u := range page.Items {
		if u.Email == email {
			return u.ID
		}
	}
	b.t.Fatalf("no user %s in %s", email, slug)
	return ""
}

// TestUserManagement: admins list users, change roles and remove users,
// within the rule that nobody acts on a user above their own role or
// grants above it, and a tenant keeps an owner; every change is audited.
func TestUserManagement(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	b.tenant(neighbourSlug, tenant.Pooled)
	b.userToken("acme", "owner@example.com", tenant.Owner)
	admin := b.userToken("acme", "admin@example.com", tenant.Admin)
	b.userToken("acme", "member@example.com", tenant.Member)
	adminKey := b.apiKey("acme", tenant.Admin)
	ownerKey := b.apiKey("acme", tenant.Owner)
	memberKey := b.apiKey("acme", tenant.Member)
	neighbourKey := b.apiKey(neighbourSlug, tenant.Owner)

	var page struct {
		Items      []userBody `json:"items"`
		NextCursor string     `json:"next_cursor"`
	}
	r := b.must(200, "GET", tpath("acme", "users"), adminKey, nil)
	r.JSON(t, &page)
	if len(page.Items) != 3 || page.Items[0].Email != "owner@example.com" || page.Items[2].Email != "member@example.com" {
		t.Errorf("users = %+v, want owner, admin, member (oldest first)", page.Items)
	}
	for _, secret := range []string{"password", "argon2", testPassword} {
		if containsFold(r.Body, secret) {
			t.Errorf("the user list shows %q", secret)
		}
	}
	ownerID := b.userID("acme", adminKey, "owner@example.com")
	adminID := b.userID("acme", adminKey, "admin@example.com")
	memberID := b.userID("acme", adminKey, "member@example.com")
	user := func(id string) string { return tpath("acme", "users", id) }
	runScenarios(t, b, []apiScenario{
		{name: "MemberCannotList", method: "GET", path: tpath("acme", "users"), token: memberKey, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "OperatorCannotList", method: "GET", path: tpath("acme", "users"), token: b.admin, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "NeighbourCannotList", method: "GET", path: tpath("acme", "users"), token: neighbourKey, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "NeighbourCannotChange", method: "PATCH", path: user(memberID), token: neighbourKey, body: map[string]any{"role": "viewer"},
			wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "NeighbourCannotChangeAtHome", method: "PATCH", path: tpath(neighbourSlug, "users", memberID), token: neighbourKey,
			body: map[string]any{"role": "viewer"}, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "NeighbourCannotRemove", method: "DELETE", path: user(memberID), token: neighbourKey, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "AdminCannotPromoteToOwner", method: "PATCH", path: user(memberID), token: adminKey, body: map[string]any{"role": "owner"},
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "AdminCannotDemoteOwner", method: "PATCH", path: user(ownerID), token: adminKey, body: map[string]any{"role": "viewer"},
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "AdminCannotRemoveOwner", method: "DELETE", path: user(ownerID), token: adminKey, wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "MemberCannotChange", method: "PATCH", path: user(memberID), token: memberKey, body: map[string]any{"role": "viewer"},
			wantStatus: 403, wantCode: problem.CodeForbidden},
		{name: "LastOwnerStays", method: "PATCH", path: user(ownerID), token: ownerKey, body: map[string]any{"role": "admin"},
			wantStatus: 409, wantCode: problem.CodeConflict},
		{name: "LastOwnerCannotBeRemoved", method: "DELETE", path: user(ownerID), token: ownerKey, wantStatus: 409, wantCode: problem.CodeConflict},
		{name: "NoRole", method: "PATCH", path: user(memberID), token: adminKey, body: map[string]any{},
			wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "BadRole", method: "PATCH", path: user(memberID), token: adminKey, body: map[string]any{"role": "root"},
			wantStatus: 400, wantCode: problem.CodeInvalidRequest},
		{name: "UnknownField", method: "PATCH", path: user(memberID), token: adminKey, body: map[string]any{"role": "viewer", "email": "x@y.z"},
			wantStatus: 400, wantCode: problem.CodeUnknownField},
		{name: "UnknownUser", method: "DELETE", path: user("0190d5a0-0000-7000-8000-000000000000"), token: adminKey, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "MalformedID", method: "DELETE", path: user("not-a-uuid"), token: adminKey, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "Demote", method: "PATCH", path: user(memberID), token: adminKey, body: map[string]any{"role": "viewer"}, wantStatus: 200,
			check: func(t *testing.T, r *response) {
				var u userBody
				r.JSON(t, &u)
				if u.ID != memberID || u.Role != "viewer" {
					t.Errorf("user = %+v, want %s as viewer", u, memberID)
				}
			}},
		{name: "SameRoleAgain", method: "PATCH", path: user(memberID), token: adminKey, body: map[string]any{"role": "viewer"}, wantStatus: 200},
		{name: "AdminRemovesAdmin", method: "DELETE", path: user(adminID), token: adminKey, wantStatus: 204},
		{name: "RemovedAgain", method: "DELETE", path: user(adminID), token: adminKey, wantStatus: 404, wantCode: problem.CodeNotFound},
	})
	// The removed admin's token and its login are gone.
	assertProblem(t, b.do("GET", tpath("acme", "collections"), admin.AccessToken, nil), 401, problem.CodeUnauthorized)
	assertProblem(t, b.do("POST", tpath("acme", "auth", "login"), "", map[string]any{"email": "admin@example.com", "password": testPassword}),
		401, problem.CodeInvalidCredentials)
	var got []string
	for _, e := range b.auditLog("acme", ownerKey) {
		if e.Action == "user.update" || e.Action == "user.delete" {
			got = append(got, e.Action+" "+e.Resource)
		}
	}
	want := []string{"user.update user:" + memberID, "user.delete user:" + adminID}
	if len(got) != 2 || got[0] != want[0] || got[1] != want[1] {
		t.Errorf("audited user changes = %q, want %q (the unchanged role is not a change)", got, want)
	}
}

// TestAccessTokenSessions: an access token works only while its session
// does. Removing its user, changing the user's role or detecting the reuse
// of a refresh token of its family stops it at once on the node that did
// it, and within the cache window on another node — not when it expires.
func TestAccessTokenSessions(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	b := setupIn(t, dir)
	other := setupIn(t, dir) // a second node on the same database
	b.tenant("acme", tenant.Pooled)
	adminKey := b.apiKey("acme", tenant.Owner)
	// works reports whether token authenticates: 401 or not (a viewer's
	// token is refused the collections with 403).
	works := func(nb *testBundle, token string) bool {
		t.Helper()
		r := nb.do("GET", tpath("acme", "collections"), token, nil)
		if r.Status != 200 && r.Status != 401 && r.Status != 403 {
			t.Fatalf("GET with an access token = %d %s", r.Status, r.Body)
		}
		return r.Status != 401
	}
	// stops asserts that token stops working on the node that ended its
	// session at once, and on the other node eventually (within CacheTTL).
	stops := func(t *testing.T, what, token string) {
		t.Helper()
		if works(b, token) {
			t.Errorf("%s: the access token still works on the node that did it", what)
		}
		waitFor(t, what+": the access token stops working on the other node", func() bool { return !works(other, token) })
	}

	t.Run("UserRemoved", func(t *testing.T) {
		pair := b.userToken("acme", "gone@example.com", tenant.Member)
		if !works(b, pair.AccessToken) || !works(other, pair.AccessToken) {
			t.Fatal("a fresh access token does not work")
		}
		b.must(204, "DELETE", tpath("acme", "users", b.userID("acme", adminKey, "gone@example.com")), adminKey, nil)
		stops(t, "user removed", pair.AccessToken)
		assertProblem(t, b.do("POST", tpath("acme", "auth", "refresh"), "", map[string]any{"refresh_token": pair.RefreshToken}),
			401, problem.CodeInvalidCredentials)
	})
	t.Run("RoleChanged", func(t *testing.T) {
		pair := b.userToken("acme", "demoted@example.com", tenant.Admin)
		works(other, pair.AccessToken) // cache it on the other node
		b.must(200, "PATCH", tpath("acme", "users", b.userID("acme", adminKey, "demoted@example.com")), adminKey, map[string]any{"role": "viewer"})
		stops(t, "role changed", pair.AccessToken)
		assertProblem(t, b.do("POST", tpath("acme", "auth", "refresh"), "", map[string]any{"refresh_token": pair.RefreshToken}),
			401, problem.CodeInvalidCredentials)
		// A new login carries the new role.
		var fresh core.TokenPair
		b.must(200, "POST", tpath("acme", "auth", "login"), "", map[string]any{"email": "demoted@example.com", "password": testPassword}).JSON(t, &fresh)
		if claims := jwtClaims(t, fresh.AccessToken); claims["role"] != "viewer" {
			t.Errorf("the new token's role = %v, want viewer", claims["role"])
		}
		if !works(b, fresh.AccessToken) {
			t.Error("the new token does not work")
		}
	})
	t.Run("RefreshReused", func(t *testing.T) {
		pair := b.userToken("acme", "stolen@example.com", tenant.Member)
		works(other, pair.AccessToken)
		var next core.TokenPair
		b.must(200, "POST", tpath("acme", "auth", "refresh"), "", map[string]any{"refresh_token": pair.RefreshToken}).JSON(t, &next)
		// The thief replays the used refresh token: the family ends.
		assertProblem(t, b.do("POST", tpath("acme", "auth", "refresh"), "", map[string]any{"refresh_token": pair.RefreshToken}),
			401, problem.CodeInvalidCredentials)
		stops(t, "refresh token reused", pair.AccessToken)
		stops(t, "refresh token reused (the newer access token)", next.AccessToken)
		// Other sessions of the same user go on.
		var again core.TokenPair
		b.must(200, "POST", tpath("acme", "auth", "login"), "", map[string]any{"email": "stolen@example.com", "password": testPassword}).JSON(t, &again)
		if !works(b, again.AccessToken) {
			t.Error("a new login's token does not work")
		}
	})
}

// TestAccessTokenClaims: the API takes only its own access tokens: of its
// issuer, for its audience, no longer-lived than it issues them, whoever
// signed them.
func TestAccessTokenClaims(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	pair := b.userToken("acme", "ada@example.com", tenant.Admin)
	keys, err := keyring.Load(filepath.Join(b.dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	claims := jwtClaims(t, pair.AccessToken)
	real := auth.AccessClaims{Tenant: tenant.ID(claims["tid"].(string)), User: store.UserID(claims["sub"].(string)),
		Role: tenant.Admin, Session: claims["sid"].(string)}
	sign := func(cfg auth.TokenConfig) string {
		token, _, err := auth.NewTokens(keys.TokenKey, cfg).Issue(real)
		if err != nil {
			t.Fatal(err)
		}
		return token
	}
	for _, tc := range []struct {
		name  string
		cfg   auth.TokenConfig
		works bool
	}{
		{"AsIssued", auth.TokenConfig{Issuer: "bulkhead", Audience: "bulkhead-api", TTL: 15 * time.Minute}, true},
		{"OtherAudience", auth.TokenConfig{Issuer: "bulkhead", Audience: "bulkhead-console", TTL: 15 * time.Minute}, false},
		{"NoAudienceOfOurs", auth.TokenConfig{Issuer: "bulkhead", TTL: 15 * time.Minute}, false},
		{"OtherIssuer", auth.TokenConfig{Issuer: "https://idp.example", Audience: "bulkhead-api", TTL: 15 * time.Minute}, false},
		{"LivesTooLong", auth.TokenConfig{Issuer: "bulkhead", Audience: "bulkhead-api", TTL: 24 * time.Hour}, false},
	} {
		r := b.do("GET", tpath("acme", "collections"), sign(tc.cfg), nil)
		if got := r.Status == 200; got != tc.works {
			t.Errorf("%s: answered %d %s", tc.name, r.Status, r.Body)
		}
		if !tc.works {
			assertProblem(t, r, 401, problem.CodeUnauthorized)
		}
	}
}

// containsFold reports whether b contains s, ignoring case.
func containsFold(b []byte, s string) bool {
	return strings.Contains(strings.ToLower(string(b)), strings.ToLower(s))
}
