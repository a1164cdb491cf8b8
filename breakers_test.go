package bulkhead

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/internal/observe"
	"github.com/bulkheadhq/bulkhead/store/pgstore"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
)

const testToken = "test-operator-token-0123"

// liveApp is an App serving on loopback.
type liveApp struct {
	t    *testing.T
	app  *App
	base string
	stop func() // stops serving and closes the App
}

// serveApp opens an App for cfg and serves it until the test ends.
func serveApp(t *testing.T, cfg Config) *liveApp {
	t.Helper()
	cfg.AdminToken = testToken
	if cfg.DataDir == "" {
		cfg.DataDir = t.TempDir()
	}
	app, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- app.Serve(ctx, ln) }()
	var once sync.Once
	stop := func() {
		once.Do(func() {
			cancel()
			<-done
			app.Close()
		})
	}
	t.Cleanup(stop)
	return &liveApp{t: t, app: app, base: "http://" + ln.Addr().String(), stop: stop}
}

type answer struct {
	status int
	header http.Header
	body   map[string]any
}

func (s *liveApp) do(method, path, token string, body any) answer {
	s.t.Helper()
	var rd io.Reader
	if body != nil {
		b, _ := json.Marshal(body)
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, s.base+path, rd)
	if err != nil {
		s.t.Fatal(err)
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	res, err := http.DefaultClient.Do(req)
	if err != nil {
		s.t.Fatal(err)
	}
	defer res.Body.Close()
	a := answer{status: res.StatusCode, header: res.Header}
	raw, _ := io.ReadAll(res.Body)
	json.Unmarshal(raw, &a.body)
	return a
}

func (s *liveApp) must(status int, method, path, token string, body any) answer {
	s.t.Helper()
	a := s.do(method, path, token, body)
	if a.status != status {
		s.t.Fatalf("%s %s = %d %v, want %d", method, path, a.status, a.body, status)
	}
	return a
}

// tenantWithKey creates tenant slug on a plan without rate limits, an admin key of it and a collection
// "notes" with a unique index on "email", and returns the key.
func (s *liveApp) tenantWithKey(slug string) string {
	s.t.Helper()
	s.must(201, "POST", "/v1/tenants", testToken, map[string]any{"slug": slug, "name": slug})
	s.must(200, "PUT", "/v1/plans/unlimited", testToken, map[string]any{"rate_per_sec": 0, "burst": 1, "weight": 1, "max_inflight": 0, "max_records": 0, "max_bytes": 0})
	s.must(200, "PATCH", "/v1/tenants/"+slug, testToken, map[string]any{"plan": "unlimited"})
	key := s.must(201, "POST", "/v1/tenants/"+slug+"/api-keys", testToken, map[string]any{"name": "k", "role": "admin"}).body["key"].(string)
	s.must(200, "PUT", "/v1/tenants/"+slug+"/collections/notes", key, map[string]any{
		"schema":  map[string]any{"type": "object", "properties": map[string]any{"email": map[string]any{"type": "string"}}},
		"indexes": []any{map[string]any{"fields": []string{"email"}, "unique": true}}})
	return key
}

// waitFor polls cond with a generous bound: it asserts behaviour, never
// speed.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for give := time.Now().Add(30 * time.Second); !cond(); time.Sleep(20 * time.Millisecond) {
		if time.Now().After(give) {
			t.Fatalf("gave up waiting (30s) for %s", what)
		}
	}
}

// postgresBehindProxy makes a migrated database and a proxy to it that the
// test can cut; it skips without PostgreSQL.
func postgresBehindProxy(t *testing.T) (*pgtest.Database, *pgtest.Proxy) {
	t.Helper()
	pgtest.SuperURL(t)
	d := pgtest.New(t, t)
	if err := pgstore.Migrate(context.Background(), d.OwnerURL(t), d.App); err != nil {
		t.Fatal(err)
	}
	if err := jobs.MigratePostgres(context.Background(), d.OwnerURL(t), d.App); err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(d.Super)
	if err != nil {
		t.Fatal(err)
	}
	return d, pgtest.NewProxy(t, target.Host)
}

// The database goes away: data routes answer 503 unavailable with
// Retry-After, /readyz 503, the database's breaker opens (logged as a
// warning, exported); once the database is back, the breaker closes by
// itself and the routes and /readyz recover.
func TestDatabaseBreaker(t *testing.T) {
	d, proxy := postgresBehindProxy(t)
	var logs syncBuffer
	s := serveApp(t, Config{DatabaseURL: proxy.URL(d.AppURL(t)), ProvisionURL: d.OwnerURL(t),
		Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	key := s.tenantWithKey("acme")
	rec := s.must(201, "POST", "/v1/tenants/acme/collections/notes/records", key, map[string]any{"email": "a@x"}).body["id"].(string)
	s.must(200, "GET", "/readyz", "", nil)
	recPath := "/v1/tenants/acme/collections/notes/records/" + rec

	// Drop: connects are accepted and never answered, as a host behind a
	// firewall; the connect timeout (2s, by construction) makes it a 503.
	for _, mode := range []pgtest.CutMode{pgtest.Refuse, pgtest.Reset, pgtest.Drop} {
		proxy.Cut(mode)
		unavailable := func(a answer) bool {
			return a.status == 503 && a.body["code"] == "unavailable" && a.header.Get("Retry-After") != ""
		}
		for _, c := range []struct{ method, path string }{
			{"GET", recPath}, {"GET", "/v1/tenants/acme/collections/notes/records"}, {"GET", "/readyz"},
		} {
			if a := s.do(c.method, c.path, key, nil); !unavailable(a) {
				t.Errorf("%v: %s %s = %d %v (Retry-After %q), want 503 unavailable with Retry-After",
					mode, c.method, c.path, a.status, a.body, a.header.Get("Retry-After"))
			}
		}
		waitFor(t, "the database breaker to open", func() bool {
			s.do("GET", recPath, key, nil)
			return s.app.metrics.Breakers.State(observe.BreakerDatabase) == observe.BreakerOpen
		})
		// Open, it answers at once, and so does /readyz.
		if a := s.do("POST", "/v1/tenants/acme/collections/notes/records", key, map[string]any{"email": "b@x"}); !unavailable(a) ||
			a.header.Get("Retry-After") != "3" {
			t.Errorf("%v: a write with the breaker open = %d %v, Retry-After %q; want 503 unavailable, Retry-After 3 (the open period)",
				mode, a.status, a.body, a.header.Get("Retry-After"))
		}
		if a := s.do("GET", "/readyz", "", nil); !unavailable(a) {
			t.Errorf("%v: /readyz with the breaker open = %d %v, want 503 unavailable", mode, a.status, a.body)
		}
		proxy.Restore()
		waitFor(t, "/readyz to answer 200 again", func() bool { return s.do("GET", "/readyz", "", nil).status == 200 })
		waitFor(t, "the record to be liveApp again", func() bool { return s.do("GET", recPath, key, nil).status == 200 })
		if st := s.app.metrics.Breakers.State(observe.BreakerDatabase); st != observe.BreakerClosed {
			t.Errorf("%v: database breaker %s after recovery, want closed", mode, st)
		}
		a := s.must(200, "GET", "/readyz", "", nil)
		if a.body["status"] != "ready" || a.body["breakers"].(map[string]any)["database"] != "closed" {
			t.Errorf("/readyz = %v, want ready with the database breaker closed", a.body)
		}
	}
	for _, want := range []string{`"level":"WARN","msg":"circuit breaker opened`, `"breaker":"database"`, `"msg":"circuit breaker closed`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log has no %s", want)
		}
	}
	if strings.Contains(logs.String(), `"status":500`) {
		t.Errorf("a request was answered 500 during the outage")
	}
}

// A storm of client errors — unique violations, unknown records, bad
// filters — never opens the database breaker: the database answered each.
func TestClientErrorsDoNotOpenDatabaseBreaker(t *testing.T) {
	for _, backend := range []string{"sqlite", "postgres"} {
		t.Run(backend, func(t *testing.T) {
			cfg := Config{Logger: slog.New(slog.DiscardHandler)}
			if backend == "postgres" {
				d, _ := postgresBehindProxy(t)
				cfg.DatabaseURL, cfg.ProvisionURL = d.AppURL(t), d.OwnerURL(t)
			}
			s := serveApp(t, cfg)
			key := s.tenantWithKey("acme")
			waitFor(t, "the unique index to be built", func() bool {
				a := s.must(200, "GET", "/v1/tenants/acme/collections/notes", key, nil)
				idx, _ := a.body["indexes"].([]any)
				return len(idx) == 1 && idx[0].(map[string]any)["state"] == "ready"
			})
			s.must(201, "POST", "/v1/tenants/acme/collections/notes/records", key, map[string]any{"email": "taken@x"})
			for i := range 1000 {
				var a answer
				switch i % 3 {
				case 0:
					a = s.do("POST", "/v1/tenants/acme/collections/notes/records", key, map[string]any{"email": "taken@x"})
				case 1:
					a = s.do("GET", "/v1/tenants/acme/collections/notes/records/rec_doesnotexist", key, nil)
				default:
					a = s.do("GET", "/v1/tenants/acme/collections/notes/records?filter="+url.QueryEscape("email >"), key, nil)
				}
				if a.status < 400 || a.status >= 500 {
					t.Fatalf("request %d = %d %v, want a 4xx", i, a.status, a.body)
				}
			}
			if st := s.app.metrics.Breakers.State(observe.BreakerDatabase); st != observe.BreakerClosed {
				t.Errorf("database breaker %s after 1000 client errors, want closed", st)
			}
			s.must(200, "GET", "/readyz", "", nil)
		})
	}
}

// Redis goes away: the node keeps serving on local limits (still
// enforced), /readyz answers 200 "degraded" with the redis breaker open;
// once Redis is back, the breaker closes by itself and /readyz says
// "ready".
func TestRedisBreaker(t *testing.T) {
	redisURL := os.Getenv("BULKHEAD_TEST_REDIS_URL")
	if redisURL == "" {
		t.Skip("BULKHEAD_TEST_REDIS_URL is not set; skipping")
	}
	u, err := url.Parse(redisURL)
	if err != nil {
		t.Fatal(err)
	}
	proxy := pgtest.NewProxy(t, u.Host) // a TCP proxy: Redis's as well
	var logs syncBuffer
	s := serveApp(t, Config{RedisURL: proxy.URL(redisURL), Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	s.must(201, "POST", "/v1/tenants", testToken, map[string]any{"slug": "acme", "name": "Acme"})
	s.must(200, "PUT", "/v1/plans/tight", testToken, map[string]any{"rate_per_sec": 0.001, "burst": 5, "weight": 1,
		"max_inflight": 0, "max_records": 0, "max_bytes": 0})
	s.must(200, "PATCH", "/v1/tenants/acme", testToken, map[string]any{"plan": "tight"})
	key := s.must(201, "POST", "/v1/tenants/acme/api-keys", testToken, map[string]any{"name": "k", "role": "admin"}).body["key"].(string)
	a := s.must(200, "GET", "/readyz", "", nil)
	if a.body["status"] != "ready" || a.body["breakers"].(map[string]any)["redis"] != "closed" {
		t.Fatalf("/readyz with Redis up = %v, want ready with the redis breaker closed", a.body)
	}

	proxy.Cut(pgtest.Refuse)
	allowed, throttled := 0, 0
	for range 12 {
		switch st := s.do("GET", "/v1/tenants/acme/collections", key, nil).status; st {
		case 200:
			allowed++
		case 429:
			throttled++
		default:
			t.Fatalf("GET collections with Redis away = %d, want 200 or 429", st)
		}
	}
	if allowed == 0 || throttled == 0 || allowed > 5 {
		t.Errorf("with Redis away: %d allowed and %d throttled of 12 under burst 5, want some of each and at most 5 allowed (local limits)",
			allowed, throttled)
	}
	a = s.must(200, "GET", "/readyz", "", nil)
	if a.body["status"] != "degraded" || a.body["breakers"].(map[string]any)["redis"] == "closed" {
		t.Errorf("/readyz with Redis away = %v, want degraded with the redis breaker not closed", a.body)
	}

	proxy.Restore()
	waitFor(t, "/readyz to say ready again", func() bool { return s.do("GET", "/readyz", "", nil).body["status"] == "ready" })
	if st := s.app.metrics.Breakers.State(observe.BreakerRedis); st != observe.BreakerClosed {
		t.Errorf("redis breaker %s after Redis returned, want closed", st)
	}
	for _, want := range []string{`"msg":"circuit breaker opened`, `"breaker":"redis"`, `"msg":"circuit breaker closed`} {
		if !strings.Contains(logs.String(), want) {
			t.Errorf("the log has no %s", want)
		}
	}
}

// Redis unreachable at start-up: one warning names its URL without the
// password and says limits are per node; /readyz says "degraded".
func TestRedisUnreachableAtStart(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens there
	var logs syncBuffer
	s := serveApp(t, Config{RedisURL: "redis://:s3cretpw@" + addr + "/0", Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	a := s.must(200, "GET", "/readyz", "", nil)
	if a.body["status"] != "degraded" || a.body["breakers"].(map[string]any)["redis"] == "closed" {
		t.Errorf("/readyz with Redis unreachable = %v, want degraded", a.body)
	}
	var warnings int
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, "rate limits are enforced per node until it returns") {
			warnings++
			if !strings.Contains(line, `"redis":"redis://`+addr+`/0"`) || !strings.Contains(line, `"level":"WARN"`) {
				t.Errorf("the warning does not name the URL without password at WARN: %s", line)
			}
		}
	}
	if warnings != 1 {
		t.Errorf("%d warnings about Redis at start-up, want 1:\n%s", warnings, logs.String())
	}
	if strings.Contains(logs.String(), "s3cretpw") {
		t.Errorf("the log shows Redis's password")
	}
}

// One tenant's failing OpenID provider opens the breaker of its host only:
// "oidc" reads open, while another tenant's provider on another host is
// still reached and its logins start.
func TestOIDCBreakerPerHost(t *testing.T) {
	discovery := func(broken *atomic.Bool, hits *atomic.Int64) *httptest.Server {
		var srv *httptest.Server
		srv = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			hits.Add(1)
			if broken.Load() {
				http.Error(w, "bad gateway", http.StatusBadGateway)
				return
			}
			w.Header().Set("Content-Type", "application/json")
			json.NewEncoder(w).Encode(map[string]any{"issuer": srv.URL, "authorization_endpoint": srv.URL + "/authorize",
				"token_endpoint": srv.URL + "/token", "jwks_uri": srv.URL + "/keys", "id_token_signing_alg_values_supported": []string{"RS256"}})
		}))
		t.Cleanup(srv.Close)
		return srv
	}
	var acmeDown, never atomic.Bool
	var brokenHits, workingHits atomic.Int64
	broken, working := discovery(&acmeDown, &brokenHits), discovery(&never, &workingHits)
	dir := t.TempDir()
	s := serveApp(t, Config{DataDir: dir, OIDCAllowPrivateNetworks: true, Logger: slog.New(slog.DiscardHandler)})
	for slug, issuer := range map[string]string{"acme": broken.URL, "globex": working.URL} {
		key := s.tenantWithKey(slug)
		s.must(200, "PUT", "/v1/tenants/"+slug+"/auth/oidc", key, map[string]any{"issuer": issuer,
			"client_id": "client-" + slug, "client_secret": "secret-" + slug, "default_role": "member", "jit": true})
	}
	// A new node, which has cached no provider, while acme's is down.
	s.stop()
	var logs syncBuffer
	s = serveApp(t, Config{DataDir: dir, OIDCAllowPrivateNetworks: true, Logger: slog.New(slog.NewJSONHandler(&logs, nil))})
	acmeDown.Store(true)
	brokenHits.Store(0)
	noRedirect := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	start := func(slug string) int {
		res, err := noRedirect.Get(s.base + "/v1/tenants/" + slug + "/auth/oidc/start")
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return res.StatusCode
	}
	for i := range 8 {
		// The provider's failure, and then the open breaker, answer as
		// a provider that cannot be reached always has.
		if st := start("acme"); st != http.StatusUnprocessableEntity {
			t.Fatalf("start %d with a broken provider = %d, want 422 oidc_provider_error", i, st)
		}
	}
	if n := brokenHits.Load(); n != 5 {
		t.Errorf("the broken provider was called %d times for 8 starts, want 5: the breaker opens at the 5th failure", n)
	}
	if st := s.app.metrics.Breakers.State(observe.BreakerOIDC); st != observe.BreakerOpen {
		t.Errorf("oidc breaker %s after the provider failed 6 times, want open", st)
	}
	if st := start("globex"); st != http.StatusFound && st != http.StatusSeeOther && st != http.StatusOK {
		t.Errorf("the other tenant's start = %d while the first's provider host is open, want its redirect", st)
	}
	// The lines about the tenant's provider name the tenant by ID and slug.
	var failed int
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"msg":"oidc discovery failed"`) {
			failed++
			if !strings.Contains(line, `"tenant_slug":"acme"`) || !strings.Contains(line, `"tenant":"`) {
				t.Errorf("a line about acme without its ID and slug: %s", line)
			}
		}
	}
	if failed == 0 {
		t.Errorf("no line about the failed discovery:\n%s", logs.String())
	}
	if !strings.Contains(logs.String(), `"breaker":"oidc","from":"closed","to":"open"`) || !strings.Contains(logs.String(), `"host":"`+strings.TrimPrefix(broken.URL, "http://")+`"`) {
		t.Errorf("no warning naming the host whose breaker opened:\n%s", logs.String())
	}
	for name := range s.app.metrics.Breakers.All() {
		if strings.Contains(name, "127.0.0.1") {
			t.Errorf("a breaker named after a host: %s", name)
		}
	}
}
