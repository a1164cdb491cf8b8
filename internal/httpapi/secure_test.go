package httpapi

import (
	"encoding/base64"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"testing"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/store/sqlitestore"

	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

func TestSecurityHeaders(t *testing.T) {
	t.Parallel()
	for _, tlsOn := range []bool{false, true} {
		b := setup(t, func(c *Config) { c.TLS = tlsOn })
		b.tenant("acme", tenant.Pooled)
		key := b.apiKey("acme", tenant.Admin)
		for _, r := range []*response{
			b.do("GET", "/healthz", "", nil),
			b.do("GET", "/v1/tenants/acme/collections", key, nil),
			b.do("GET", "/v1/tenants/acme/collections", "", nil), // 401
			b.do("GET", "/nowhere", "", nil),                     // 404
			b.do("GET", "/.well-known/jwks.json", "", nil),
		} {
			for name, want := range map[string]string{
				"X-Content-Type-Options":  "nosniff",
				"Referrer-Policy":         "no-referrer",
				"X-Frame-Options":         "DENY",
				"Content-Security-Policy": "frame-ancestors 'none'",
			} {
				if got := r.Header.Get(name); got != want {
					t.Errorf("TLS %v, status %d: %s = %q, want %q", tlsOn, r.Status, name, got, want)
				}
			}
			if got := r.Header.Get("Strict-Transport-Security"); (got != "") != tlsOn {
				t.Errorf("TLS %v, status %d: Strict-Transport-Security = %q", tlsOn, r.Status, got)
			}
		}
		data := b.must(200, "GET", "/v1/tenants/acme/collections", key, nil)
		if got := data.Header.Get("Cache-Control"); got != "private, no-store" {
			t.Errorf("tenant data: Cache-Control = %q, want private, no-store", got)
		}
	}
}

func TestCredentialsInQueryRefused(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	pair := b.userToken("acme", "a@example.com", tenant.Admin)
	b.collection("acme", key, "things", nil)

	queries := map[string]url.Values{
		"access_token":          {"access_token": {pair.AccessToken}},
		"api_key":               {"api_key": {key}},
		"Api-Key":               {"Api-Key": {"whatever"}},
		"token":                 {"token": {"x"}},
		"key":                   {"key": {"x"}},
		"refresh_token":         {"refresh_token": {pair.RefreshToken}},
		"API key under a name":  {"filter": {key}},
		"JWT under a name":      {"cursor": {pair.AccessToken}},
		"refresh token by form": {"q": {pair.RefreshToken}},
		"operator token":        {"x": {testAdminToken}},
	}
	paths := []string{"/v1/tenants/acme/collections/things/records", "/healthz", "/v1/tenants/acme/auth/login", "/nowhere"}
	for name, q := range queries {
		for _, p := range paths {
			// With a valid credential in the header too: the refusal comes
			// before anything else, whoever asks.
			r := b.do("GET", p+"?"+q.Encode(), key, nil)
			assertProblem(t, r, 400, problem.CodeCredentialsInQuery)
			if t.Failed() {
				t.Fatalf("%s on %s not refused", name, p)
			}
		}
	}
	// Nothing was done for the refused requests: the credential alone in
	// the query does not authenticate either.
	b.mustProblem(400, problem.CodeCredentialsInQuery, "POST", "/v1/tenants/acme/collections/things/records?access_token="+url.QueryEscape(pair.AccessToken), "", map[string]any{"a": 1})
	if n := len(b.listRecords("acme", key, "things", nil).Items); n != 0 {
		t.Errorf("records after refused writes = %d, want 0", n)
	}
	// Ordinary parameters pass, and so does a JWT that is no access token
	// (such as an OpenID Connect state).
	state := base64.RawURLEncoding.EncodeToString([]byte(`{"alg":"HS256","typ":"JWT"}`)) + ".eyJzIjoxfQ.c2ln"
	b.must(200, "GET", "/v1/tenants/acme/collections?state="+state, key, nil)
	// Ordinary parameters pass.
	b.must(200, "GET", "/v1/tenants/acme/collections/things/records?limit=5&order=-created_at&filter="+url.QueryEscape(`title = "x"`), key, nil)
}

// BenchmarkCheckQuery is the cost the credential check adds to a list
// request with a filter, an order, a limit and a cursor.
func BenchmarkCheckQuery(b *testing.B) {
	dir := b.TempDir()
	st, err := sqlitestore.Open(filepath.Join(dir, "bulkhead.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	defer st.Close()
	keys, err := keyring.Load(filepath.Join(dir, "keys"))
	if err != nil {
		b.Fatal(err)
	}
	c, err := core.New(core.Config{Store: st, Keys: keys, AdminToken: testAdminToken, PasswordParams: fastPasswords})
	if err != nil {
		b.Fatal(err)
	}
	defer c.Close()
	s := New(Config{Core: c, Store: st})
	r := httptest.NewRequest("GET", "/v1/tenants/acme/collections/things/records?filter="+url.QueryEscape(`owner = "ann" && n > 5`)+
		"&order=-n&limit=20&cursor=eyJrIjpbMSwiMDE5MiJdfQ.c2lnbmF0dXJlc2lnbmF0dXJl", nil)
	b.ReportAllocs()
	for b.Loop() {
		if err := s.checkQuery(r); err != nil {
			b.Fatal(err)
		}
	}
}
