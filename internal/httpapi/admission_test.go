package httpapi

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"runtime"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulkheadhq/bulkhead/internal/auth"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/internal/ratelimit"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// withAdmission turns admission control on with a local limiter.
func withAdmission(a Admission) func(*Config) {
	return func(c *Config) { c.Admission = a }
}

// slowPlan is a plan whose bucket does not refill during a test: one request
// every 1,000 seconds, after the burst.
func (b *testBundle) slowPlan(name string, burst, inflight int) {
	b.t.Helper()
	b.must(200, "PUT", "/v1/plans/"+name, b.admin, map[string]any{
		"rate_per_sec": 0.001, "burst": burst, "max_inflight": inflight, "weight": 1, "max_records": 0, "max_bytes": 0})
}

// tenantID returns the id of the tenant slug.
func (b *testBundle) tenantID(slug string) tenant.ID {
	b.t.Helper()
	var t struct {
		ID tenant.ID `json:"id"`
	}
	b.must(200, "GET", "/v1/tenants/"+slug, b.admin, nil).JSON(b.t, &t)
	return t.ID
}

// tenantOnPlan creates a pooled tenant on plan with a collection "notes",
// and returns the path of its records.
func (b *testBundle) tenantOnPlan(slug, plan string) string {
	b.t.Helper()
	b.tenant(slug, tenant.Pooled)
	b.must(200, "PATCH", "/v1/tenants/"+slug, b.admin, map[string]any{"plan": plan})
	return "/v1/tenants/" + slug + "/collections/notes/records"
}

func TestAdmissionRateLimit(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmission(Admission{Limiter: ratelimit.NewLocal(), CredentialShare: 1}))
	b.slowPlan("slow", 3, 10)
	b.tenantOnPlan("acme", "slow")
	key := b.apiKey("acme", tenant.Admin) // the operator is not admitted per tenant
	for i := range 3 {
		b.must(200, "GET", "/v1/tenants/acme/usage", key, nil)
		_ = i
	}
	r := b.do("GET", "/v1/tenants/acme/usage", key, nil)
	assertProblem(t, r, 429, problem.CodeRateLimited)
	for _, h := range []string{"Retry-After", "RateLimit-Policy", "RateLimit"} {
		if r.Header.Get(h) == "" {
			t.Errorf("429 lacks %s", h)
		}
	}
	if got := r.Header.Get("RateLimit-Policy"); got != "3;w=3000" {
		t.Errorf("RateLimit-Policy = %q, want 3;w=3000", got)
	}
	if got := r.Header.Get("RateLimit"); !strings.HasPrefix(got, "limit=3, remaining=0, reset=") {
		t.Errorf("RateLimit = %q, want limit=3, remaining=0, reset=…", got)
	}
	// Another tenant is untouched by acme's exhaustion.
	b.slowPlan("slow2", 3, 10)
	b.tenantOnPlan("globex", "slow2")
	other := b.apiKey("globex", tenant.Admin)
	b.must(200, "GET", "/v1/tenants/globex/usage", other, nil)

	// A plan change applies to the next request.
	b.slowPlan("slow", 10, 10)
	b.must(200, "GET", "/v1/tenants/acme/usage", key, nil)
}

// One credential cannot use more than its share of the tenant's budget, and
// many credentials together cannot exceed the tenant's.
func TestAdmissionCredentialShare(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmission(Admission{Limiter: ratelimit.NewLocal(), CredentialShare: 0.5}))
	b.slowPlan("slow", 4, 10)
	b.tenantOnPlan("acme", "slow")
	keys := []string{b.apiKey("acme", tenant.Admin), b.apiKey("acme", tenant.Admin), b.apiKey("acme", tenant.Admin)}
	// Each key may use half the burst: 2.
	b.must(200, "GET", "/v1/tenants/acme/usage", keys[0], nil)
	b.must(200, "GET", "/v1/tenants/acme/usage", keys[0], nil)
	assertProblem(t, b.do("GET", "/v1/tenants/acme/usage", keys[0], nil), 429, problem.CodeRateLimited)
	// The second key still has its share.
	b.must(200, "GET", "/v1/tenants/acme/usage", keys[1], nil)
	b.must(200, "GET", "/v1/tenants/acme/usage", keys[1], nil)
	// The tenant's burst of 4 is spent: a third key gets nothing.
	assertProblem(t, b.do("GET", "/v1/tenants/acme/usage", keys[2], nil), 429, problem.CodeRateLimited)
}

// holdRequest starts a request that is admitted and then waits for its body,
// holding its in-flight slot until the returned func sends the body. It returns once admitted reports that the server holds it.
func holdRequest(t *testing.T, b *testBundle, path, key string, admitted func() bool) (finish func() int) {
	t.Helper()
	conn, err := net.Dial("tcp", strings.TrimPrefix(b.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	body := `{"held":true}`
	fmt.Fprintf(conn, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
		path, key, len(body))
	for give := time.Now().Add(10 * time.Second); !admitted(); runtime.Gosched() {
		if time.Now().After(give) {
			t.Fatal("the held request was never admitted")
		}
	}
	return func() int {
		fmt.Fprint(conn, body)
		res, err := http.ReadResponse(bufio.NewReader(conn), nil)
		if err != nil {
			t.Fatalf("held request: %v", err)
		}
		res.Body.Close()
		return res.StatusCode
	}
}

func TestAdmissionInflight(t *testing.T) {
	t.Parallel()
	inflight := &ratelimit.Inflight{}
	b := setup(t, withAdmission(Admission{Inflight: inflight}))
	b.slowPlan("single", 100, 1)
	path := b.tenantOnPlan("acme", "single")
	key := b.apiKey("acme", tenant.Admin)
	b.collection("acme", key, "notes", nil)
	tid := b.tenantID("acme")
	finish := holdRequest(t, b, path, key, func() bool { return inflight.Count(tid) == 1 })
	r := b.do("GET", "/v1/tenants/acme/usage", key, nil)
	assertProblem(t, r, 429, problem.CodeConcurrencyLimited)
	if r.Header.Get("Retry-After") == "" {
		t.Error("429 concurrency_limited lacks Retry-After")
	}
	if got := finish(); got != 201 {
		t.Errorf("held request = %d, want 201", got)
	}
	// The slot is free again.
	b.must(200, "GET", "/v1/tenants/acme/usage", key, nil)
}

// A request whose transaction cannot get a database slot before its
// deadline is shed with 503 and Retry-After, and its write does not happen;
// once the slot is free the tenant is served again.
func TestAdmissionShed(t *testing.T) {
	t.Parallel()
	sched, err := fairq.New(fairq.Config{Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, withAdmission(Admission{Scheduler: sched, QueueTimeout: time.Millisecond}))
	b.slowPlan("plan", 100, 100)
	path := b.tenantOnPlan("acme", "plan")
	key := b.apiKey("acme", tenant.Admin)
	b.collection("acme", key, "notes", nil)
	// Another tenant's long operation holds the only slot.
	held, err := sched.Acquire(context.Background(), b.tenant("globex", tenant.Pooled), 1, fairq.Interactive, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	r := b.do("POST", path, key, map[string]any{"n": 1})
	assertProblem(t, r, 503, problem.CodeOverloaded)
	if r.Header.Get("Retry-After") == "" {
		t.Error("503 overloaded lacks Retry-After")
	}
	held.Release(fairq.OutcomeOK)
	if got := b.listRecords("acme", key, "notes", nil); len(got.Items) != 0 {
		t.Errorf("the shed create left %d records, want none", len(got.Items))
	}
	b.must(201, "POST", path, key, map[string]any{"n": 2})
}

func redisURL(t *testing.T) string {
	url := os.Getenv("BULKHEAD_TEST_REDIS_URL")
	if url == "" {
		t.Skip("BULKHEAD_TEST_REDIS_URL is not set; skipping the Redis tests")
	}
	return url
}

func redisLimiter(t *testing.T, url string) *ratelimit.Redis {
	t.Helper()
	opt, err := ratelimit.ClientOptions(url)
	if err != nil {
		t.Fatal(err)
	}
	client := redis.NewClient(opt)
	t.Cleanup(func() { client.Close() })
	lim, err := ratelimit.NewRedis(ratelimit.RedisConfig{Client: client, Prefix: "bulkhead-test:" + t.Name() + ":" + fmt.Sprint(time.Now().UnixNano())})
	if err != nil {
		t.Fatal(err)
	}
	return lim
}

// Two server nodes sharing one database and one Redis share each tenant's
// limit: together they admit exactly the burst.
func TestAdmissionRedisSharedAcrossNodes(t *testing.T) {
	t.Parallel()
	url := redisURL(t)
	dir := t.TempDir()
	prefix := "bulkhead-test:" + fmt.Sprint(time.Now().UnixNano())
	node := func() *testBundle {
		opt, err := ratelimit.ClientOptions(url)
		if err != nil {
			t.Fatal(err)
		}
		client := redis.NewClient(opt)
		t.Cleanup(func() { client.Close() })
		lim, err := ratelimit.NewRedis(ratelimit.RedisConfig{Client: client, Prefix: prefix})
		if err != nil {
			t.Fatal(err)
		}
		return setupIn(t, dir, withAdmission(Admission{Limiter: lim, CredentialShare: 1}))
	}
	a, b := node(), node()
	a.slowPlan("slow", 5, 100)
	a.tenantOnPlan("acme", "slow")
	key := a.apiKey("acme", tenant.Admin)
	allowed := 0
	for i := range 20 {
		n := a
		if i%2 == 1 {
			n = b
		}
		switch r := n.do("GET", "/v1/tenants/acme/usage", key, nil); r.Status {
		case 200:
			allowed++
		case 429:
		default:
			t.Fatalf("request %d = %d %s", i, r.Status, r.Body)
		}
	}
	if allowed != 5 {
		t.Errorf("two nodes admitted %d of 20 requests, want exactly the burst of 5", allowed)
	}
}

// When Redis is unreachable, limits still hold, decided locally: never
// unlimited, never an outage.
func TestAdmissionRedisFallback(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // nothing listens here now
	lim := redisLimiter(t, "redis://"+addr+"/0")
	b := setup(t, withAdmission(Admission{Limiter: lim, CredentialShare: 1}))
	b.slowPlan("slow", 3, 100)
	b.tenantOnPlan("acme", "slow")
	key := b.apiKey("acme", tenant.Admin)
	allowed := 0
	for range 10 {
		if r := b.do("GET", "/v1/tenants/acme/usage", key, nil); r.Status == 200 {
			allowed++
		} else {
			assertProblem(t, r, 429, problem.CodeRateLimited)
		}
	}
	if allowed != 3 {
		t.Errorf("with Redis down, %d of 10 requests were admitted, want the burst of 3", allowed)
	}
	if lim.Fallbacks() == 0 {
		t.Error("no decision was counted as a fallback")
	}
}

// TestAuthRateLimit: logins and refreshes are held to AuthLimit per tenant
// slug before anything is looked up, the same for a slug that names no
// tenant, and without touching the tenant's API budget or other slugs.
func TestAuthRateLimit(t *testing.T) {
	t.Parallel()
	// Refusals wait before they are answered; the test records the waits
	// instead of sleeping through them.
	var waits []time.Duration
	b := setup(t, withAdmission(Admission{Limiter: ratelimit.NewLocal(),
		AuthLimit: ratelimit.Limit{Rate: 0.001, Burst: 3},
		// One address sends it all: its own limit is not what is tested.
		AddressLimit: ratelimit.Limit{Rate: 1e6, Burst: 1e6},
		refusalWait:  func(ctx context.Context, d time.Duration) { waits = append(waits, d) }}))
	b.tenant("acme", tenant.Pooled)
	b.tenant("globex", tenant.Pooled)
	pair := b.userToken("acme", "ann@acme.test", tenant.Member) // the first of acme's three
	key := b.apiKey("acme", tenant.Admin)

	login := func(slug, password string) *response {
		return b.do("POST", "/v1/tenants/"+slug+"/auth/login", "", map[string]any{"email": "ann@acme.test", "password": password})
	}
	assertProblem(t, login("acme", "wrong password"), 401, problem.CodeInvalidCredentials)
	b.must(200, "POST", "/v1/tenants/acme/auth/refresh", "", map[string]any{"refresh_token": pair.RefreshToken})
	// The burst is spent: even the right password is refused, before it is
	// checked, and so is a refresh.
	r := login("acme", "correct horse battery")
	assertProblem(t, r, 429, problem.CodeRateLimited)
	for _, h := range []string{"Retry-After", "RateLimit-Policy", "RateLimit"} {
		if r.Header.Get(h) == "" {
			t.Errorf("429 lacks %s", h)
		}
	}
	assertProblem(t, b.do("POST", "/v1/tenants/acme/auth/refresh", "", map[string]any{"refresh_token": "x"}), 429, problem.CodeRateLimited)

	// A slug that names no tenant is limited exactly alike: the limit does
	// not tell which tenants exist.
	for range 3 {
		assertProblem(t, login("nobody-here", "guess"), 401, problem.CodeInvalidCredentials)
	}
	assertProblem(t, login("nobody-here", "guess"), 429, problem.CodeRateLimited)

	// Slugs that name no tenant share one tenant's worth of logins, so that
	// inventing slugs does not multiply the budget: nobody-here's three
	// spent it for every made-up slug.
	assertProblem(t, login("nobody-else", "guess"), 429, problem.CodeRateLimited)

	// Paths that are no valid slug share one bucket, so that buckets cannot
	// be multiplied (or grown) by inventing long or malformed slugs.
	for _, slug := range []string{"Not-A-Slug", "x", "9starts-with-a-digit"} {
		assertProblem(t, login(slug, "guess"), 401, problem.CodeInvalidCredentials)
	}
	assertProblem(t, login(strings.Repeat("Y", 300), "guess"), 429, problem.CodeRateLimited)

	// Other slugs and acme's API requests are untouched.
	assertProblem(t, login("globex", "guess"), 401, problem.CodeInvalidCredentials)
	b.must(200, "GET", "/v1/tenants/acme/usage", key, nil)

	// Each of the five refusals waited a second (the default delay, shorter
	// than their Retry-After) before it was answered, so that a client
	// flooding them gets one a second per connection.
	if len(waits) != 5 {
		t.Errorf("%d refusals waited, want 5", len(waits))
	}
	for _, d := range waits {
		if d != time.Second {
			t.Errorf("a refusal waited %s, want 1s", d)
		}
	}
}

// TestLoginRateLimitPerEmail: guessing one account's password is held to
// LoginLimit, whatever the case and spacing of the address and whether the
// account exists, while other accounts of the tenant can still log in.
func TestLoginRateLimitPerEmail(t *testing.T) {
	t.Parallel()
	b := setup(t, withAdmission(Admission{Limiter: ratelimit.NewLocal(),
		AuthLimit: ratelimit.Limit{Rate: 1000, Burst: 1000}, LoginLimit: ratelimit.Limit{Rate: 0.001, Burst: 2},
		AddressLimit: ratelimit.Limit{Rate: 1e6, Burst: 1e6}, AuthRefusalDelay: -1}))
	b.tenant("acme", tenant.Pooled)
	const password = "correct horse battery"
	for _, email := range []string{"ann@acme.test", "bob@acme.test"} {
		b.must(201, "POST", "/v1/tenants/acme/users", b.admin, map[string]any{"email": email, "password": password, "role": tenant.Member})
	}
	login := func(email, password string) *response {
		return b.do("POST", "/v1/tenants/acme/auth/login", "", map[string]any{"email": email, "password": password})
	}
	for _, email := range []string{"ann@acme.test", "nobody@acme.test"} {
		assertProblem(t, login(email, "guess 1"), 401, problem.CodeInvalidCredentials)
		assertProblem(t, login(email, "guess 2"), 401, problem.CodeInvalidCredentials)
		assertProblem(t, login(email, "guess 3"), 429, problem.CodeRateLimited)
	}
	assertProblem(t, login("  ANN@Acme.Test ", password), 429, problem.CodeRateLimited)
	b.must(200, "POST", "/v1/tenants/acme/auth/login", "", map[string]any{"email": "bob@acme.test", "password": password})
}

// TestLoginFairUnderFlood: while many clients flood logins at slugs that
// name no tenant, a tenant's own users still log in, every time, within the
// hashing deadline; the flood shares one tenant's worth of hashing and what
// does not fit its bounded queue is shed with 503 and Retry-After.
func TestLoginFairUnderFlood(t *testing.T) {
	t.Parallel()
	b := setupCore(t, t.TempDir(), func(c *core.Config) {
		// Hashes that cost something, one at a time, with a queue of 8.
		c.PasswordParams = auth.PasswordParams{Memory: 4 * 1024, Time: 1, Threads: 1}
		c.HashLimits = auth.HashLimits{Concurrent: 1, MaxQueue: 8, MaxWait: time.Second}
	}, withAdmission(Admission{Limiter: ratelimit.NewLocal(),
		AuthLimit: ratelimit.Limit{Rate: 1e6, Burst: 1e6}, LoginLimit: ratelimit.Limit{Rate: 1e6, Burst: 1e6},
		// The flood and the user share the test's one address: the
		// address limit (see TestLoginAddressLimit) is not what is tested.
		AddressLimit: ratelimit.Limit{Rate: 1e6, Burst: 1e6}}))
	b.tenant("acme", tenant.Pooled)
	const password = "correct horse battery"
	b.must(201, "POST", "/v1/tenants/acme/users", b.admin, map[string]any{"email": "ann@acme.test", "password": password, "role": tenant.Member})

	stop := make(chan struct{})
	var flooders sync.WaitGroup
	var shed, other atomic.Int64
	for i := range 32 {
		flooders.Go(func() {
			for n := 0; ; n++ {
				select {
				case <-stop:
					return
				default:
				}
				body := fmt.Sprintf(`{"email":"x%d@y.test","password":"guess"}`, n)
				res, err := b.srv.Client().Post(fmt.Sprintf("%s/v1/tenants/flood-%d-%d/auth/login", b.srv.URL, i, n), "application/json", strings.NewReader(body))
				if err != nil {
					continue
				}
				io.Copy(io.Discard, res.Body)
				res.Body.Close()
				switch {
				case res.StatusCode == 503 && res.Header.Get("Retry-After") != "":
					shed.Add(1)
				case res.StatusCode != 401:
					other.Add(1)
				}
			}
		})
	}
	// Let the flood fill the queue before the tenant's users log in.
	for give := time.Now().Add(hangGuard); shed.Load() == 0; time.Sleep(time.Millisecond) {
		if time.Now().After(give) {
			t.Fatal("the flood was never shed: is the hashing queue bounded?")
		}
	}
	for i := range 10 {
		r := b.do("POST", "/v1/tenants/acme/auth/login", "", map[string]any{"email": "ann@acme.test", "password": password})
		if r.Status != 200 {
			t.Errorf("login %d during the flood = %d %s, want 200", i, r.Status, r.Body)
		}
	}
	close(stop)
	flooders.Wait()
	if n := other.Load(); n != 0 {
		t.Errorf("%d flood logins were answered neither 401 nor 503 with Retry-After", n)
	}
}

// A plan's rate_per_sec of 0 means no rate limit (its burst is then
// ignored) and a max_inflight of 0 no in-flight cap: admission skips them
// for the plan's tenants, whose requests no count refuses.
func TestAdmissionPlanZeroMeansNoCap(t *testing.T) {
	t.Parallel()
	inflight := &ratelimit.Inflight{}
	b := setup(t, withAdmission(Admission{Limiter: ratelimit.NewLocal(), Inflight: inflight, CredentialShare: 0.5}))
	b.must(200, "PUT", "/v1/plans/open", b.admin, map[string]any{
		"rate_per_sec": 0, "burst": 1, "max_inflight": 0, "weight": 1, "max_records": 0, "max_bytes": 0})
	path := b.tenantOnPlan("acme", "open")
	key := b.apiKey("acme", tenant.Admin)
	b.collection("acme", key, "notes", nil)
	tid := b.tenantID("acme")

	// Far more than a burst of 1 (or its credential's share) would allow.
	for i := range 30 {
		if r := b.do("GET", "/v1/tenants/acme/usage", key, nil); r.Status != 200 {
			t.Fatalf("request %d = %d %s, want 200: rate_per_sec 0 is no rate limit", i, r.Status, r.Body)
		}
	}
	// With one request held in flight under a cap of 1, the next is
	// refused; with the cap lifted to 0, it is not.
	putPlan := func(rate float64, inflight int) {
		b.must(200, "PUT", "/v1/plans/open", b.admin, map[string]any{
			"rate_per_sec": rate, "burst": 1, "max_inflight": inflight, "weight": 1, "max_records": 0, "max_bytes": 0})
	}
	putPlan(0, 1)
	finish := holdRequest(t, b, path, key, func() bool { return inflight.Count(tid) == 1 })
	assertProblem(t, b.do("GET", "/v1/tenants/acme/usage", key, nil), 429, problem.CodeConcurrencyLimited)
	putPlan(0, 0)
	for range 3 {
		b.must(200, "GET", "/v1/tenants/acme/usage", key, nil)
	}
	if got := finish(); got != 201 {
		t.Errorf("held request = %d, want 201", got)
	}

	// The same tenant on a rate-limited plan is held to it again.
	putPlan(0.001, 0)
	b.must(200, "GET", "/v1/tenants/acme/usage", key, nil)
	assertProblem(t, b.do("GET", "/v1/tenants/acme/usage", key, nil), 429, problem.CodeRateLimited)
}
