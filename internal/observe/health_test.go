package observe

import (
	"math"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"
	"unsafe"

	"github.com/prometheus/client_golang/prometheus/testutil"
)

// fakeClock is a clock the test moves by hand.
type fakeClock struct {
	mu sync.Mutex
	t  time.Time
}

func (c *fakeClock) now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.t
}

func (c *fakeClock) add(d time.Duration) {
	c.mu.Lock()
	c.t = c.t.Add(d)
	c.mu.Unlock()
}

// newTestHealth returns windows on a clock at the start of a step.
func newTestHealth() (*Health, *fakeClock) {
	c := &fakeClock{t: time.Unix(1_733_400_000, 0)} // a multiple of 5 s
	return newHealth(c.now), c
}

func TestHealthWindowFigures(t *testing.T) {
	h, clock := newTestHealth()
	// 60 s of traffic, 2 per second: one server error, one shed and one
	// throttled every 10 s, the rest fine.
	for s := range 60 {
		for i := range 2 {
			status, shed := 200, false
			if s%10 == 0 {
				status, shed = [2]int{500, 503}[i], i == 1
			}
			if s%10 == 5 && i == 0 {
				status = 429
			}
			h.Record("t1", "acme", status, shed, 10*time.Millisecond)
		}
		clock.add(time.Second)
	}
	clock.add(-time.Second / 2) // 59.5 s after the first: 4.5 s into the 12th step
	th := h.Tenant("t1", false)
	if th.Requests != 120 {
		t.Fatalf("requests = %d, want 120", th.Requests)
	}
	// The window is the 11 steps before the current one and 4.5 s of it.
	if want := 120 / 59.5; math.Abs(th.Rate-want) > 1e-9 {
		t.Errorf("rate = %v, want %v", th.Rate, want)
	}
	if th.Errors != 6 || th.Shed != 6 || th.Throttled != 6 {
		t.Errorf("errors, shed, throttled = %d, %d, %d; want 6 each", th.Errors, th.Shed, th.Throttled)
	}
	if want := 6.0 / 120; math.Abs(th.ErrorRatio-want) > 1e-9 {
		t.Errorf("error ratio = %v, want %v (shedding is not a server error)", th.ErrorRatio, want)
	}
	if th.Slug != "acme" || th.TenantID != "t1" {
		t.Errorf("tenant = %q/%q", th.TenantID, th.Slug)
	}
}

// The quantiles are within LatencyErrorBound of the exact nearest-rank
// quantiles, over a spread of latencies.
func TestHealthQuantilesWithinBound(t *testing.T) {
	h, _ := newTestHealth()
	var lat []time.Duration
	for i := 1; i <= 1000; i++ {
		// 0.2 ms to ~3.6 s, log-spaced with an irregular step.
		d := time.Duration(float64(200*time.Microsecond) * math.Pow(1.0098, float64(i)))
		lat = append(lat, d)
		h.Record("t1", "acme", 200, false, d)
	}
	th := h.Tenant("t1", false)
	check := func(name string, got float64, q float64) {
		exact := ms(lat[int(math.Ceil(q*float64(len(lat))))-1]) // lat is sorted
		if rel := math.Abs(got-exact) / exact; rel > LatencyErrorBound {
			t.Errorf("%s = %v ms, exact %v ms: off by %.1f%%, bound %.1f%%", name, got, exact, 100*rel, 100*LatencyErrorBound)
		}
	}
	check("p50", th.P50MS, 0.50)
	check("p99", th.P99MS, 0.99)
	if LatencyErrorBound > 0.091 || LatencyErrorBound < 0.09 {
		t.Errorf("LatencyErrorBound = %v, want 2^(1/8)-1", LatencyErrorBound)
	}
}

// Every latency in the bucketed range is reported within the bound, and
// the buckets are found exactly at their edges.
func TestHealthLatencyBuckets(t *testing.T) {
	for i := 1; i < latBuckets; i++ {
		for _, d := range []time.Duration{time.Duration(latBounds[i-1]) + 1, time.Duration(latBounds[i])} {
			if got := latBucket(d); got != i {
				t.Fatalf("latBucket(%v) = %d, want %d", d, got, i)
			}
			if rel := math.Abs(float64(latValue(i)-d)) / float64(d); rel > LatencyErrorBound+1e-9 {
				t.Errorf("%v reported as %v: off by %.2f%%", d, latValue(i), 100*rel)
			}
		}
	}
	if got := latBucket(0); got != 0 {
		t.Errorf("latBucket(0) = %d", got)
	}
	if got := latBucket(time.Hour); got != latBuckets-1 {
		t.Errorf("latBucket(1h) = %d, want the last", got)
	}
}

func TestHealthOldStepsExpire(t *testing.T) {
	h, clock := newTestHealth()
	for range 10 {
		h.Record("t1", "acme", 500, false, time.Millisecond)
	}
	clock.add(30 * time.Second)
	h.Record("t1", "acme", 200, false, time.Second)
	if th := h.Tenant("t1", false); th.Requests != 11 || th.Errors != 10 {
		t.Fatalf("after 30 s: requests, errors = %d, %d; want 11, 10", th.Requests, th.Errors)
	}
	clock.add(31 * time.Second) // the first step has left the window
	th := h.Tenant("t1", false)
	if th.Requests != 1 || th.Errors != 0 || th.ErrorRatio != 0 {
		t.Errorf("after 61 s: requests, errors, ratio = %d, %d, %v; want 1, 0, 0", th.Requests, th.Errors, th.ErrorRatio)
	}
	if rel := math.Abs(th.P99MS-1000) / 1000; rel > LatencyErrorBound {
		t.Errorf("p99 = %v ms, want about 1000 (the early fast requests have expired)", th.P99MS)
	}
	if got := len(h.Active()); got != 1 {
		t.Errorf("active = %d, want 1", got)
	}
	clock.add(time.Minute)
	if th := h.Tenant("t1", false); th.Requests != 0 || th.Rate != 0 || th.P99MS != 0 {
		t.Errorf("after 2 min idle: %+v, want zeros", th)
	}
	if got := len(h.Active()); got != 0 {
		t.Errorf("active = %d, want 0", got)
	}
	// The window is freed once the tenant has been idle for the series.
	h.Sweep()
	if h.Len() != 1 {
		t.Errorf("swept a window with requests in its series")
	}
	clock.add(HealthSeries)
	h.Sweep()
	if h.Len() != 0 {
		t.Errorf("windows = %d after the sweep, want 0", h.Len())
	}
	// A tenant returning after the sweep starts afresh.
	h.Record("t1", "acme", 200, false, time.Millisecond)
	if th := h.Tenant("t1", false); th.Requests != 1 {
		t.Errorf("requests after return = %d, want 1", th.Requests)
	}
}

func TestHealthSeries(t *testing.T) {
	h, clock := newTestHealth()
	start := clock.now().Unix()
	// Step 0: 10 requests; step 1: nothing; step 2: 5 throttled and a
	// shed; then 13 steps (65 s) later, far outside the histogram window,
	// one more request.
	for range 10 {
		h.Record("t1", "acme", 200, false, 2*time.Millisecond)
	}
	clock.add(2 * HealthStep)
	for range 5 {
		h.Record("t1", "acme", 429, false, 100*time.Microsecond)
	}
	h.Record("t1", "acme", 503, true, 400*time.Millisecond)
	clock.add(13*HealthStep + 2*time.Second)
	h.Record("t1", "acme", 200, false, time.Millisecond)

	th := h.Tenant("t1", true)
	if len(th.Series) != int(seriesSteps) {
		t.Fatalf("series has %d points, want %d", len(th.Series), seriesSteps)
	}
	for i := 1; i < len(th.Series); i++ {
		if th.Series[i].T-th.Series[i-1].T != 5 {
			t.Fatalf("points %d and %d are %d s apart, want 5", i-1, i, th.Series[i].T-th.Series[i-1].T)
		}
	}
	last := th.Series[len(th.Series)-1]
	if want := start + 15*5; last.T != want {
		t.Fatalf("last point at %d, want %d (the current step's start)", last.T, want)
	}
	byT := map[int64]HealthPoint{}
	for _, p := range th.Series {
		byT[p.T] = p
	}
	p0, p1, p2 := byT[start], byT[start+5], byT[start+10]
	if p0.Rate != 2 || p1.Rate != 0 || p2.Rate != 6.0/5 {
		t.Errorf("rates = %v, %v, %v; want 2, 0, 1.2", p0.Rate, p1.Rate, p2.Rate)
	}
	if p2.Throttled != 5 || p2.Shed != 1 || p2.Errors != 0 {
		t.Errorf("step 2: throttled, shed, errors = %d, %d, %d; want 5, 1, 0", p2.Throttled, p2.Shed, p2.Errors)
	}
	// The p99 of steps whose histograms were recycled was kept.
	if rel := math.Abs(p0.P99MS-2) / 2; rel > LatencyErrorBound {
		t.Errorf("step 0 p99 = %v ms, want about 2", p0.P99MS)
	}
	if rel := math.Abs(p2.P99MS-400) / 400; rel > LatencyErrorBound {
		t.Errorf("step 2 p99 = %v ms, want about 400", p2.P99MS)
	}
	// The current step: 1 request in the 2 s elapsed.
	if last.Rate != 0.5 {
		t.Errorf("current step rate = %v, want 0.5", last.Rate)
	}
	// The window holds only the last request.
	if th.Requests != 1 {
		t.Errorf("window requests = %d, want 1", th.Requests)
	}

	// A tenant with no traffic: zeros, and a zero series.
	none := h.Tenant("t2", true)
	if none.Requests != 0 || len(none.Series) != int(seriesSteps) {
		t.Fatalf("idle tenant = %+v", none)
	}
	for _, p := range none.Series {
		if p.Rate != 0 || p.P99MS != 0 || p.Errors+p.Throttled+p.Shed != 0 {
			t.Fatalf("idle tenant's point %+v is not zero", p)
		}
	}
}

func TestSortHealth(t *testing.T) {
	ths := []TenantHealth{
		{Slug: "b", Rate: 1, ErrorRatio: 0.5, P99MS: 3, Throttled: 0, Shed: 2},
		{Slug: "a", Rate: 1, ErrorRatio: 0.1, P99MS: 9, Throttled: 4, Shed: 0},
		{Slug: "c", Rate: 5, ErrorRatio: 0, P99MS: 1, Throttled: 1, Shed: 1},
	}
	for key, want := range map[string]string{
		SortRate: "c a b", SortErrorRatio: "b a c", SortP99: "a b c", SortThrottled: "a c b", SortShed: "b c a",
	} {
		if !SortHealth(ths, key) {
			t.Fatalf("%s refused", key)
		}
		var got []string
		for _, th := range ths {
			got = append(got, th.Slug)
		}
		if strings.Join(got, " ") != want {
			t.Errorf("by %s: %v, want %s", key, got, want)
		}
	}
	if SortHealth(ths, "name") {
		t.Error("unknown key accepted")
	}
}

func TestHealthConcurrent(t *testing.T) {
	h, _ := newTestHealth()
	var wg sync.WaitGroup
	var stop atomic.Bool
	wg.Add(1)
	go func() { // sweeps and reads race the records
		defer wg.Done()
		for !stop.Load() {
			h.Sweep()
			h.Active()
			h.Tenant("t0", true)
		}
	}()
	var writers sync.WaitGroup
	for g := range 8 {
		writers.Add(1)
		go func() {
			defer writers.Done()
			for i := range 1000 {
				h.Record([]string{"t0", "t1", "t2"}[(g+i)%3], "s", 200, false, time.Millisecond)
			}
		}()
	}
	writers.Wait()
	stop.Store(true)
	wg.Wait()
	var total int64
	for _, th := range h.Active() {
		total += th.Requests
	}
	if total != 8000 {
		t.Errorf("counted %d requests, want 8000", total)
	}
}

func TestTenantLabelsFold(t *testing.T) {
	m := NewMetrics()
	clock := &fakeClock{t: time.Unix(1_733_400_000, 0)}
	m.Health = newHealth(clock.now)
	m.SetTenantLabels(1)
	request := func(slug string, n int) {
		for range n {
			m.ObserveRequest(slug, "GET /x", 200, time.Millisecond)
			m.Health.Record("id-"+slug, slug, 200, false, time.Millisecond)
		}
	}
	count := func(label string) float64 {
		return testutil.ToFloat64(m.tenant.WithLabelValues(label, OutcomeOK))
	}
	request("quiet", 1) // first: it takes the one label
	request("busy", 5)
	if got := testutil.CollectAndCount(m.tenant); got != 2 {
		t.Errorf("series = %d, want quiet and other", got)
	}
	if count("quiet") != 1 || count(OtherTenant) != 5 {
		t.Fatalf("quiet, other = %v, %v; want 1, 5", count("quiet"), count(OtherTenant))
	}
	m.RefreshTenantLabels() // busy is the busier: it takes the label
	request("quiet", 2)
	request("busy", 1)
	if got := testutil.CollectAndCount(m.tenant); got != 2 {
		t.Errorf("series = %d, want busy and other", got)
	}
	if count("busy") != 1 || count(OtherTenant) != 7 {
		t.Errorf("busy, other = %v, %v; want 1, 7", count("busy"), count(OtherTenant))
	}
	// Sweep refreshes only every RefreshInterval.
	request("quiet", 20)
	m.Sweep()
	if _, ok := (*m.labels.set.Load())["busy"]; !ok {
		t.Error("Sweep refreshed the labels before RefreshInterval")
	}
	clock.add(RefreshInterval)
	m.Sweep()
	if _, ok := (*m.labels.set.Load())["quiet"]; !ok {
		t.Error("Sweep did not refresh the labels after RefreshInterval")
	}

	// 0 folds every tenant; a tenant called "other" always folds.
	m.SetTenantLabels(0)
	m.RefreshTenantLabels()
	request("busy", 1)
	if got := testutil.CollectAndCount(m.tenant); got != 1 {
		t.Errorf("series = %d with no tenant labels, want only other", got)
	}
	m.SetTenantLabels(5)
	request(OtherTenant, 1)
	if l := m.labels.label(OtherTenant); l != OtherTenant {
		t.Errorf("tenant other labelled %q", l)
	}
}

// BenchmarkHealthRecord measures the record path against a bare counter
// increment (BenchmarkHealthBaseline) in the same run.
func BenchmarkHealthRecord(b *testing.B) {
	h := NewHealth()
	ids := []string{"0194f1b2-tenant-a", "0194f1b2-tenant-b", "0194f1b2-tenant-c", "0194f1b2-tenant-d"}
	for _, id := range ids {
		h.Record(id, "slug", 200, false, time.Millisecond)
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		h.Record(ids[i&3], "slug", 200, false, time.Duration(i&1023)*time.Microsecond)
	}
}

func BenchmarkHealthBaseline(b *testing.B) {
	var n atomic.Int64
	b.ReportAllocs()
	for b.Loop() {
		n.Add(1)
	}
}

func BenchmarkHealthRecordParallel(b *testing.B) {
	h := NewHealth()
	b.ReportAllocs()
	var g atomic.Int64
	b.RunParallel(func(pb *testing.PB) {
		id := []string{"tenant-a", "tenant-b", "tenant-c", "tenant-d"}[g.Add(1)&3]
		for pb.Next() {
			h.Record(id, "slug", 200, false, time.Millisecond)
		}
	})
}

// After a tenant's first request, recording allocates nothing.
func TestHealthRecordAllocatesNothing(t *testing.T) {
	h := NewHealth()
	h.Record("t1", "acme", 200, false, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() {
		h.Record("t1", "acme", 503, true, 3*time.Millisecond)
	}); n != 0 {
		t.Errorf("Record allocates %v times per call", n)
	}
	m := NewMetrics()
	m.ObserveRequest("acme", "GET /x", 200, time.Millisecond)
	if n := testing.AllocsPerRun(1000, func() {
		m.ObserveRequest("acme", "GET /x", 200, time.Millisecond)
	}); n != 0 {
		t.Errorf("ObserveRequest with a labelled tenant allocates %v times per call", n)
	}
}

func TestHealthWindowSize(t *testing.T) {
	if size := unsafe.Sizeof(tenantWindow{}); size > 6<<10 {
		t.Errorf("a tenant's window takes %d bytes, more than the 6 KiB the documentation says", size)
	}
}

// BenchmarkObserveRequest is what the request path's metrics already cost
// per request, for comparison with BenchmarkHealthRecord.
func BenchmarkObserveRequest(b *testing.B) {
	m := NewMetrics()
	b.ReportAllocs()
	for b.Loop() {
		m.ObserveRequest("acme", "GET /v1/tenants/{tenant}/usage", 200, time.Millisecond)
	}
}
