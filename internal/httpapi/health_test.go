package httpapi

import (
	"context"
	"errors"
	"math"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/internal/observe"
	"github.com/bulkheadhq/bulkhead/internal/ratelimit"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// downKMS is a KMS that fails for one tenant once told to: that tenant's
// operations needing its keys fail with 503 keys_unavailable, a real
// server error no other tenant sees.
type downKMS struct {
	keyring.KMS
	mu   sync.Mutex
	down tenant.ID
}

var errKMSDown = errors.New("the KMS is down for this tenant (test)")

func (k *downKMS) setDown(tid tenant.ID) {
	k.mu.Lock()
	k.down = tid
	k.mu.Unlock()
}

func (k *downKMS) isDown(tid tenant.ID) bool {
	k.mu.Lock()
	defer k.mu.Unlock()
	return k.down != "" && k.down == tid
}

func (k *downKMS) CreateKey(ctx context.Context, tid tenant.ID) error {
	if k.isDown(tid) {
		return errKMSDown
	}
	return k.KMS.CreateKey(ctx, tid)
}

func (k *downKMS) Wrap(ctx context.Context, tid tenant.ID, dek, aad []byte) ([]byte, error) {
	if k.isDown(tid) {
		return nil, errKMSDown
	}
	return k.KMS.Wrap(ctx, tid, dek, aad)
}

func (k *downKMS) Unwrap(ctx context.Context, tid tenant.ID, wrapped, aad []byte) ([]byte, error) {
	if k.isDown(tid) {
		return nil, errKMSDown
	}
	return k.KMS.Unwrap(ctx, tid, wrapped, aad)
}

// healthBody is the answer of GET …/health, as a client reads it.
type healthBody struct {
	Tenant        string  `json:"tenant"`
	TenantID      string  `json:"tenant_id"`
	Status        string  `json:"status"`
	Plan          string  `json:"plan"`
	WindowSeconds int     `json:"window_seconds"`
	Requests      int64   `json:"requests"`
	Rate          float64 `json:"rate"`
	ErrorRatio    float64 `json:"error_ratio"`
	P50MS         float64 `json:"p50_ms"`
	P99MS         float64 `json:"p99_ms"`
	Throttled     int64   `json:"throttled"`
	Shed          int64   `json:"shed"`
	Quota         []struct {
		Name  string  `json:"name"`
		Used  int64   `json:"used"`
		Limit int64   `json:"limit"`
		Ratio float64 `json:"ratio"`
	} `json:"quota"`
	OpenBreakers []string `json:"open_breakers"`
	Series       *struct {
		StepSeconds int `json:"step_seconds"`
		Points      []struct {
			T         int64   `json:"t"`
			Rate      float64 `json:"rate"`
			P99MS     float64 `json:"p99_ms"`
			Errors    int64   `json:"errors"`
			Throttled int64   `json:"throttled"`
			Shed      int64   `json:"shed"`
		} `json:"points"`
	} `json:"series"`
}

type healthListBody struct {
	WindowSeconds int               `json:"window_seconds"`
	Items         []healthBody      `json:"items"`
	Breakers      map[string]string `json:"breakers"`
}

// tally counts what one tenant's client was answered.
type tally struct{ requests, serverErrors, throttled, shed int64 }

func (c *tally) add(r *response) {
	c.requests++
	switch {
	case r.Status == 429:
		c.throttled++
	case r.Status == 503 && strings.Contains(string(r.Body), `"code":"overloaded"`):
		c.shed++
	case r.Status >= 500:
		c.serverErrors++
	}
}

// queueTimeout is how long a request waits for a database slot before it
// is shed, in TestTenantHealth: the shed request takes at least as long,
// by construction.
const queueTimeout = time.Second

// TestTenantHealth sends a noisy tenant's traffic for real — fine
// requests, a server error, a request shed for want of a slot and
// requests over its rate limit — beside a calm tenant's, and checks what
// the operator reads of both.
func TestTenantHealth(t *testing.T) {
	t.Parallel()
	sched, err := fairq.New(fairq.Config{Slots: 1})
	if err != nil {
		t.Fatal(err)
	}
	metrics := observe.NewMetrics()
	kms := &downKMS{}
	b := setupCore(t, t.TempDir(), func(c *core.Config) { kms.KMS = c.KMS; c.KMS = kms },
		withAdmission(Admission{Limiter: ratelimit.NewLocal(), CredentialShare: 1, Scheduler: sched, QueueTimeout: queueTimeout}),
		func(c *Config) { c.Metrics = metrics })

	b.must(200, "PUT", "/v1/plans/roomy", b.admin, map[string]any{
		"rate_per_sec": 1000, "burst": 1000, "max_inflight": 100, "weight": 1, "max_records": 1000, "max_bytes": 0})
	b.tenantOnPlan("calm", "roomy")
	b.slowPlan("tight", 8, 100)
	b.tenantOnPlan("noisy", "tight")
	noisyID := b.tenantID("noisy")
	calmKey, noisyKey := b.apiKey("calm", tenant.Admin), b.apiKey("noisy", tenant.Admin)

	var calm, noisy tally
	send := func(c *tally, method, path, key string, body any) *response {
		r := b.do(method, path, key, body)
		c.add(r)
		return r
	}
	// calm: a collection, two records, a read.
	send(&calm, "PUT", tpath("calm", "collections", "notes"), calmKey, map[string]any{})
	send(&calm, "POST", tpath("calm", "collections", "notes", "records"), calmKey, map[string]any{"n": 1})
	send(&calm, "POST", tpath("calm", "collections", "notes", "records"), calmKey, map[string]any{"n": 2})
	send(&calm, "GET", tpath("calm", "usage"), calmKey, nil)
	if calm != (tally{requests: 4}) {
		t.Fatalf("calm's requests failed: %+v", calm)
	}

	// noisy: a read; a read shed while another tenant holds the only slot
	// (it waits queueTimeout first); a write failing for want of its keys;
	// then reads until over its rate limit, and two more.
	send(&noisy, "GET", tpath("noisy", "usage"), noisyKey, nil)
	held, err := sched.Acquire(context.Background(), b.tenant("holder", tenant.Pooled), 1, fairq.Interactive, time.Time{})
	if err != nil {
		t.Fatal(err)
	}
	assertProblem(t, send(&noisy, "GET", tpath("noisy", "usage"), noisyKey, nil), 503, problem.CodeOverloaded)
	held.Release(fairq.OutcomeOK)
	kms.setDown(noisyID)
	send(&noisy, "PUT", tpath("noisy", "collections", "people"), noisyKey, map[string]any{
		"schema": encPeopleSchema, "encrypted_fields": []any{"ssn", "pin"}})
	r := send(&noisy, "POST", tpath("noisy", "collections", "people", "records"), noisyKey, map[string]any{"name": "ada", "ssn": "123-45"})
	if noisy.serverErrors == 0 {
		t.Fatalf("no server error with the KMS down: the last answer was %d %s", r.Status, r.Body)
	}
	for i := 0; noisy.throttled < 3; i++ {
		if i > 20 {
			t.Fatalf("20 reads past a burst of 8 were not throttled: %+v", noisy)
		}
		send(&noisy, "GET", tpath("noisy", "usage"), noisyKey, nil)
	}
	if noisy.shed != 1 || noisy.requests <= calm.requests {
		t.Fatalf("noisy's tally = %+v", noisy)
	}

	// The operator's own requests about a tenant are not its traffic.
	for range 3 {
		b.must(200, "GET", tpath("calm", "health"), b.admin, nil)
	}

	var h healthBody
	b.must(200, "GET", tpath("noisy", "health"), b.admin, nil).JSON(t, &h)
	if h.Tenant != "noisy" || h.TenantID != string(noisyID) || h.Status != "active" || h.Plan != "tight" || h.WindowSeconds != 60 {
		t.Errorf("noisy's health names %s/%s %s %s over %d s", h.Tenant, h.TenantID, h.Status, h.Plan, h.WindowSeconds)
	}
	if h.Requests != noisy.requests || h.Throttled != noisy.throttled || h.Shed != noisy.shed {
		t.Errorf("noisy: requests, throttled, shed = %d, %d, %d; its client saw %d, %d, %d",
			h.Requests, h.Throttled, h.Shed, noisy.requests, noisy.throttled, noisy.shed)
	}
	if want := float64(noisy.serverErrors) / float64(noisy.requests); math.Abs(h.ErrorRatio-want) > 1e-9 {
		t.Errorf("noisy: error_ratio = %v, want %v (shedding is not counted)", h.ErrorRatio, want)
	}
	if h.Rate <= 0 || h.P50MS <= 0 || h.P99MS < ms(queueTimeout)*(1-observe.LatencyErrorBound) {
		t.Errorf("noisy: rate %v, p50 %v ms, p99 %v ms; want p99 at least the %v the shed request waited",
			h.Rate, h.P50MS, h.P99MS, queueTimeout)
	}
	if h.Series == nil || h.Series.StepSeconds != 5 || len(h.Series.Points) != 60 {
		t.Fatalf("noisy's series = %+v, want 60 points of 5 s", h.Series)
	}
	var sum tally
	for i, p := range h.Series.Points {
		if i > 0 && p.T-h.Series.Points[i-1].T != 5 {
			t.Fatalf("points %d and %d are not 5 s apart", i-1, i)
		}
		sum.throttled += p.Throttled
		sum.shed += p.Shed
		sum.serverErrors += p.Errors
	}
	if now := time.Now().Unix(); h.Series.Points[59].T > now || h.Series.Points[59].T <= now-10 {
		t.Errorf("the last point starts at %d, not in the current step (now %d)", h.Series.Points[59].T, now)
	}
	if sum.throttled != noisy.throttled || sum.shed != noisy.shed || sum.serverErrors != noisy.serverErrors {
		t.Errorf("the series adds up to %+v, the client saw %+v", sum, noisy)
	}
	if len(h.Quota) != 2 || h.Quota[0].Name != "records" || h.Quota[1].Name != "bytes" ||
		h.Quota[0].Limit != 0 || h.Quota[0].Ratio != 0 {
		t.Errorf("noisy's quota = %+v, want records and bytes, unlimited", h.Quota)
	}
	if h.OpenBreakers == nil || len(h.OpenBreakers) != 0 {
		t.Errorf("open_breakers = %#v, want []", h.OpenBreakers)
	}

	var c healthBody
	b.must(200, "GET", tpath("calm", "health"), b.admin, nil).JSON(t, &c)
	if c.Requests != calm.requests || c.ErrorRatio != 0 || c.Throttled != 0 || c.Shed != 0 {
		t.Errorf("calm: %+v, its client made %d requests, all fine", c, calm.requests)
	}
	if q := c.Quota[0]; q.Name != "records" || q.Used != 2 || q.Limit != 1000 || q.Ratio != 0.002 {
		t.Errorf("calm's records quota = %+v, want 2 of 1000", q)
	}

	// The noisy tenant ranks first whatever the sort.
	for _, sort := range append([]string{""}, observe.HealthSorts...) {
		var l healthListBody
		b.must(200, "GET", "/v1/health/tenants?sort="+sort, b.admin, nil).JSON(t, &l)
		var got []string
		for _, it := range l.Items {
			got = append(got, it.Tenant)
			if it.Series != nil {
				t.Errorf("sort=%s: %s has a series in the listing", sort, it.Tenant)
			}
		}
		if strings.Join(got, " ") != "noisy calm" {
			t.Errorf("sort=%s ranks %v, want noisy calm (holder made no request)", sort, got)
		}
		if l.WindowSeconds != 60 || l.Breakers == nil {
			t.Errorf("sort=%s: window_seconds %d, breakers %v", sort, l.WindowSeconds, l.Breakers)
		}
	}
	var one healthListBody
	b.must(200, "GET", "/v1/health/tenants?sort=p99&limit=1", b.admin, nil).JSON(t, &one)
	if len(one.Items) != 1 || one.Items[0].Tenant != "noisy" || one.Items[0].Requests != noisy.requests {
		t.Errorf("limit=1 gave %+v", one.Items)
	}

	// Breakers: a node breaker open shows on every tenant and in the
	// listing; the scheduler's breaker of noisy, opened by its timeouts,
	// only on noisy.
	metrics.Breakers.Set(observe.BreakerDatabase, observe.BreakerClosed)
	metrics.Breakers.Set(observe.BreakerRedis, observe.BreakerOpen)
	for range 5 { // fairq's default BreakerThreshold
		sl, err := sched.Acquire(context.Background(), noisyID, 1, fairq.Interactive, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		sl.Release(fairq.OutcomeTimeout)
	}
	if got := sched.TenantStats(noisyID).Breaker; got != fairq.BreakerOpen {
		t.Fatalf("noisy's scheduler breaker is %v after 5 timeouts", got)
	}
	b.must(200, "GET", tpath("noisy", "health"), b.admin, nil).JSON(t, &h)
	if strings.Join(h.OpenBreakers, " ") != "redis tenant" {
		t.Errorf("noisy's open_breakers = %v, want [redis tenant]", h.OpenBreakers)
	}
	b.must(200, "GET", tpath("calm", "health"), b.admin, nil).JSON(t, &c)
	if strings.Join(c.OpenBreakers, " ") != "redis" {
		t.Errorf("calm's open_breakers = %v, want [redis]", c.OpenBreakers)
	}
	var l healthListBody
	b.must(200, "GET", "/v1/health/tenants", b.admin, nil).JSON(t, &l)
	if l.Breakers["redis"] != "open" || l.Breakers["database"] != "closed" {
		t.Errorf("breakers = %v", l.Breakers)
	}

	// A tenant without traffic is no 404: zeros.
	var idle healthBody
	b.must(200, "GET", tpath("holder", "health"), b.admin, nil).JSON(t, &idle)
	if idle.Requests != 0 || idle.Rate != 0 || idle.P99MS != 0 || idle.Series == nil || len(idle.Series.Points) != 60 {
		t.Errorf("an idle tenant's health = %+v", idle)
	}

	// Refusals: tenant credentials, unknown slugs, bad parameters.
	assertProblem(t, b.do("GET", tpath("calm", "health"), calmKey, nil), 403, problem.CodeForbidden)
	assertProblem(t, b.do("GET", "/v1/health/tenants", calmKey, nil), 403, problem.CodeForbidden)
	assertProblem(t, b.do("GET", tpath("noisy", "health"), calmKey, nil), 404, problem.CodeNotFound)
	assertProblem(t, b.do("GET", tpath("no-such-tenant", "health"), b.admin, nil), 404, problem.CodeNotFound)
	assertProblem(t, b.do("GET", "/v1/health/tenants", "", nil), 401, problem.CodeUnauthorized)
	p := assertProblem(t, b.do("GET", "/v1/health/tenants?sort=name", b.admin, nil), 400, problem.CodeInvalidRequest)
	if len(p.Errors) != 1 || p.Errors[0].Field != "sort" {
		t.Errorf("bad sort: errors = %+v, want sort named", p.Errors)
	}
	for _, limit := range []string{"0", "101", "x"} {
		p := assertProblem(t, b.do("GET", "/v1/health/tenants?limit="+limit, b.admin, nil), 400, problem.CodeInvalidRequest)
		if len(p.Errors) != 1 || p.Errors[0].Field != "limit" {
			t.Errorf("limit=%s: errors = %+v, want limit named", limit, p.Errors)
		}
	}
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// With room for one tenant label, the second tenant's requests count as
// tenant="other" on /metrics, until a refresh gives the label to the
// busier tenant and drops the other's series.
func TestTenantLabelsFoldOnMetrics(t *testing.T) {
	t.Parallel()
	metrics := observe.NewMetrics()
	metrics.SetTenantLabels(1)
	b := setup(t, func(c *Config) { c.Metrics = metrics })
	b.tenant("first", tenant.Pooled)
	b.tenant("second", tenant.Pooled)
	first, second := b.apiKey("first", tenant.Admin), b.apiKey("second", tenant.Admin)
	series := func() map[string]string {
		body := string(b.must(200, "GET", "/metrics", b.admin, nil).Body)
		out := map[string]string{}
		for _, m := range regexp.MustCompile(`(?m)^bulkhead_tenant_requests_total\{outcome="ok",tenant="([^"]*)"\} (\d+)$`).FindAllStringSubmatch(body, -1) {
			out[m[1]] = m[2]
		}
		return out
	}
	// The operator's requests above (tenants, keys) labelled both tenants
	// while there was room for one: first, created first, holds it.
	b.must(200, "GET", tpath("first", "usage"), first, nil)
	before := series()
	if before["first"] == "" || before["second"] != "" || before[observe.OtherTenant] == "" {
		t.Fatalf("ok series = %v, want first and other only", before)
	}
	for range 3 {
		b.must(200, "GET", tpath("second", "usage"), second, nil)
	}
	// second is the busier in the health window: it takes the label.
	metrics.RefreshTenantLabels()
	b.must(200, "GET", tpath("first", "usage"), first, nil)
	b.must(200, "GET", tpath("second", "usage"), second, nil)
	after := series()
	if after["second"] != "1" || after["first"] != "" || after[observe.OtherTenant] == "" {
		t.Errorf("ok series after the refresh = %v, want second=1 and other, first folded", after)
	}
	if n := len(after); n != 2 {
		t.Errorf("%d ok series, want 2: %v", n, after)
	}
}
