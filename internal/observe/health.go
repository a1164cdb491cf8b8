package observe

import (
	"cmp"
	"hash/maphash"
	"math"
	"slices"
	"sync"
	"time"
)

// Per-tenant health: each node keeps, in memory, a sliding window of every
// tenant's requests — how many, how many failed, were throttled or shed,
// and how long they took — in 5-second steps. The figures are this node's
// only; nodes behind a load balancer each see their share.

const (
	// HealthStep is the length of one step of a tenant's window.
	HealthStep = 5 * time.Second
	// HealthWindow is what the figures of TenantHealth cover: the current
	// step and the 11 before it, so between 55 and 60 seconds.
	HealthWindow = 60 * time.Second
	// HealthSeries is what TenantHealth.Series covers: the current step
	// and the 59 before it.
	HealthSeries = 5 * time.Minute

	windowSteps = int64(HealthWindow / HealthStep) // 12
	seriesSteps = int64(HealthSeries / HealthStep) // 60
)

// Latency histogram: latBuckets buckets, log-spaced with latPerOctave
// buckets per doubling. Bucket 0 holds latencies up to latBase; bucket i > 0
// those in (latBase·2^((i-1)/4), latBase·2^(i/4)]; the last bucket also
// holds everything longer (its upper bound is about 88 s). A quantile is
// reported as the geometric middle of its bucket, latBase·2^((i-½)/4), so
// for latencies from latBase to 88 s it is within a factor 2^(1/8) — 9.1% —
// of the exact (nearest-rank) quantile of the recorded latencies; below
// latBase it is latBase/2, within 50 µs.
const (
	latBuckets   = 80
	latPerOctave = 4
	latBase      = 100 * time.Microsecond
)

// LatencyErrorBound is the largest relative error of TenantHealth's
// P50/P99 (and of each series point's) for latencies of 100 µs to 88 s:
// 2^(1/8) − 1.
var LatencyErrorBound = math.Exp2(1.0/(2*latPerOctave)) - 1

// latBounds are the buckets' upper bounds, in nanoseconds.
var latBounds = func() (b [latBuckets]int64) {
	for i := range b {
		b[i] = int64(float64(latBase) * math.Exp2(float64(i)/latPerOctave))
	}
	return b
}()

// latBucket returns the bucket of latency d: a binary search of latBounds,
// with no allocation and no floating point.
func latBucket(d time.Duration) int {
	lo, hi := 0, latBuckets-1
	for lo < hi {
		mid := (lo + hi) / 2
		if int64(d) <= latBounds[mid] {
			hi = mid
		} else {
			lo = mid + 1
		}
	}
	return lo
}

// latValue is the latency a quantile falling in bucket i is reported as.
func latValue(i int) time.Duration {
	if i == 0 {
		return latBase / 2
	}
	return time.Duration(float64(latBase) * math.Exp2((float64(i)-0.5)/latPerOctave))
}

// quantile is the nearest-rank q-quantile of the latencies counted in h, of
// which there are n; 0 if none.
func quantile(h *[latBuckets]uint32, n uint64, q float64) time.Duration {
	if n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(n)))
	rank = max(rank, 1)
	var seen uint64
	for i, c := range h {
		seen += uint64(c)
		if seen >= rank {
			return latValue(i)
		}
	}
	return latValue(latBuckets - 1)
}

// stepCounts are one step's counts. at is the step's number (Unix time
// divided by HealthStep); a slot whose at is not the step looked for holds
// an older step, which counts as empty.
type stepCounts struct {
	at                                int64
	requests, errors, throttled, shed uint32
	p99                               float32 // ms; set once the step's histogram is recycled
}

// stepHist is one step's latency histogram.
type stepHist struct {
	at  int64
	lat [latBuckets]uint32
}

// tenantWindow is one tenant's window. Its counts cover the series, its
// histograms only the window: when a histogram is recycled, the step's p99
// is kept in its counts. About 6 KB per tenant.
type tenantWindow struct {
	mu     sync.Mutex
	id     string
	slug   string
	last   int64 // the latest step with a request
	dead   bool  // swept: a new window replaces it
	counts [seriesSteps]stepCounts
	hists  [windowSteps]stepHist
}

func (w *tenantWindow) record(k int64, status int, shed bool, d time.Duration) {
	// A request whose recorder was held up past a newer one counts in the
	// newer step: a step is never reopened once passed.
	k = max(k, w.last)
	c := &w.counts[k%seriesSteps]
	if c.at != k {
		*c = stepCounts{at: k}
	}
	h := &w.hists[k%windowSteps]
	if h.at != k {
		if h.at != 0 {
			w.finish(h)
		}
		h.at = k
		h.lat = [latBuckets]uint32{}
	}
	c.requests++
	switch {
	case status == 429:
		c.throttled++
	case status == 503 && shed:
		c.shed++
	case status >= 500:
		c.errors++
	}
	h.lat[latBucket(d)]++
	w.last = k
}

// finish keeps the p99 of the step of h, whose histogram is about to be
// reused, in the step's counts.
func (w *tenantWindow) finish(h *stepHist) {
	c := &w.counts[h.at%seriesSteps]
	if c.at == h.at {
		c.p99 = float32(ms(quantile(&h.lat, uint64(c.requests), 0.99)))
	}
}

// healthShards spreads the tenants over locks, so that no lock is shared by
// every request.
const healthShards = 32

type healthShard struct {
	mu      sync.RWMutex
	tenants map[string]*tenantWindow
}

// Health holds the sliding windows of the tenants of one node. Record is
// O(1) and, after a tenant's first request, allocates nothing; it locks
// only the tenant's own window (and takes a read lock of one of 32 shards
// to find it). Sweep frees the windows of tenants idle for HealthSeries.
// It is safe for concurrent use.
type Health struct {
	now    func() time.Time
	seed   maphash.Seed
	shards [healthShards]healthShard
}

// NewHealth returns empty windows on the real clock.
func NewHealth() *Health { return newHealth(time.Now) }

func newHealth(now func() time.Time) *Health {
	h := &Health{now: now, seed: maphash.MakeSeed()}
	for i := range h.shards {
		h.shards[i].tenants = map[string]*tenantWindow{}
	}
	return h
}

func (h *Health) shard(id string) *healthShard {
	return &h.shards[maphash.String(h.seed, id)%healthShards]
}

func stepOf(t time.Time) int64 { return t.UnixNano() / int64(HealthStep) }

// Record counts one finished request of the tenant id (whose slug is slug):
// its status, whether a 503 was load shedding, and how long it took.
func (h *Health) Record(id, slug string, status int, shed bool, d time.Duration) {
	k := stepOf(h.now())
	sh := h.shard(id)
	for {
		sh.mu.RLock()
		w := sh.tenants[id]
		sh.mu.RUnlock()
		if w == nil {
			sh.mu.Lock()
			if w = sh.tenants[id]; w == nil {
				w = &tenantWindow{id: id, slug: slug}
				sh.tenants[id] = w
			}
			sh.mu.Unlock()
		}
		w.mu.Lock()
		if w.dead {
			w.mu.Unlock()
			continue
		}
		if w.slug != slug {
			w.slug = slug
		}
		w.record(k, status, shed, d)
		w.mu.Unlock()
		return
	}
}

// Sweep frees the windows of tenants without a request in HealthSeries.
func (h *Health) Sweep() {
	oldest := stepOf(h.now()) - seriesSteps
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.Lock()
		for id, w := range sh.tenants {
			w.mu.Lock()
			if w.last <= oldest {
				w.dead = true
				delete(sh.tenants, id)
			}
			w.mu.Unlock()
		}
		sh.mu.Unlock()
	}
}

// Len returns how many tenants have a window.
func (h *Health) Len() int {
	n := 0
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		n += len(sh.tenants)
		sh.mu.RUnlock()
	}
	return n
}

// TenantHealth is one tenant's figures over HealthWindow, and with
// Tenant(…, true) its series over HealthSeries.
type TenantHealth struct {
	TenantID, Slug string
	// Requests counts the requests answered; Rate is them per second.
	Requests int64
	Rate     float64
	// Errors counts the server errors: 5xx answers other than shedding.
	// ErrorRatio is Errors / Requests, 0 without requests.
	Errors     int64
	ErrorRatio float64
	// Throttled counts the 429 answers, Shed the 503 answers of load
	// shedding.
	Throttled, Shed int64
	// P50MS and P99MS are latency quantiles in milliseconds, within
	// LatencyErrorBound.
	P50MS, P99MS float64
	// Series are the steps of HealthSeries, oldest first; empty unless
	// asked for.
	Series []HealthPoint
}

// HealthPoint is one step of a tenant's series.
type HealthPoint struct {
	// T is the step's start, in Unix seconds.
	T int64
	// Rate is the step's requests per second (for the current step, per
	// second elapsed so far, at least one).
	Rate float64
	// P99MS is the step's p99 latency in milliseconds.
	P99MS float64
	// Errors, Throttled and Shed are as in TenantHealth.
	Errors, Throttled, Shed int64
}

// Tenant returns the figures of tenant id, with its series if series is
// true. A tenant without requests has zero figures (and a series of zero
// points).
func (h *Health) Tenant(id string, series bool) TenantHealth {
	now := h.now()
	sh := h.shard(id)
	sh.mu.RLock()
	w := sh.tenants[id]
	sh.mu.RUnlock()
	var th TenantHealth
	if w != nil {
		w.mu.Lock()
		th = w.figures(now, series)
		w.mu.Unlock()
	} else {
		th = (&tenantWindow{}).figures(now, series)
	}
	th.TenantID = id
	return th
}

// Active returns the figures (without series) of every tenant with a
// request in HealthWindow, in no particular order.
func (h *Health) Active() []TenantHealth {
	now := h.now()
	var out []TenantHealth
	for i := range h.shards {
		sh := &h.shards[i]
		sh.mu.RLock()
		for _, w := range sh.tenants {
			w.mu.Lock()
			if w.last > stepOf(now)-windowSteps {
				out = append(out, w.figures(now, false))
			}
			w.mu.Unlock()
		}
		sh.mu.RUnlock()
	}
	return out
}

// figures computes w's figures at now. w.mu is held.
func (w *tenantWindow) figures(now time.Time, series bool) TenantHealth {
	k := stepOf(now)
	elapsed := now.Sub(time.Unix(0, k*int64(HealthStep))) // into the current step
	th := TenantHealth{TenantID: w.id, Slug: w.slug}
	var lat [latBuckets]uint32
	for j := k - windowSteps + 1; j <= k; j++ {
		c := &w.counts[j%seriesSteps]
		if c.at != j {
			continue
		}
		th.Requests += int64(c.requests)
		th.Errors += int64(c.errors)
		th.Throttled += int64(c.throttled)
		th.Shed += int64(c.shed)
		if hs := &w.hists[j%windowSteps]; hs.at == j {
			for i, n := range hs.lat {
				lat[i] += n
			}
		}
	}
	if th.Requests > 0 {
		span := time.Duration(windowSteps-1)*HealthStep + elapsed
		th.Rate = float64(th.Requests) / span.Seconds()
		th.ErrorRatio = float64(th.Errors) / float64(th.Requests)
		th.P50MS = ms(quantile(&lat, uint64(th.Requests), 0.50))
		th.P99MS = ms(quantile(&lat, uint64(th.Requests), 0.99))
	}
	if !series {
		return th
	}
	th.Series = make([]HealthPoint, 0, seriesSteps)
	for j := k - seriesSteps + 1; j <= k; j++ {
		p := HealthPoint{T: j * int64(HealthStep/time.Second)}
		if c := &w.counts[j%seriesSteps]; c.at == j {
			secs := HealthStep.Seconds()
			if j == k {
				secs = max(elapsed.Seconds(), 1)
			}
			p.Rate = float64(c.requests) / secs
			p.Errors, p.Throttled, p.Shed = int64(c.errors), int64(c.throttled), int64(c.shed)
			p.P99MS = float64(c.p99)
			if hs := &w.hists[j%windowSteps]; hs.at == j {
				p.P99MS = ms(quantile(&hs.lat, uint64(c.requests), 0.99))
			}
		}
		th.Series = append(th.Series, p)
	}
	return th
}

func ms(d time.Duration) float64 { return float64(d) / float64(time.Millisecond) }

// Health sort keys: what ranks tenants in SortHealth.
const (
	SortRate       = "rate"
	SortErrorRatio = "error_ratio"
	SortP99        = "p99"
	SortThrottled  = "throttled"
	SortShed       = "shed"
)

// HealthSorts are the sort keys SortHealth accepts.
var HealthSorts = []string{SortRate, SortErrorRatio, SortP99, SortThrottled, SortShed}

// SortHealth ranks ths by key, descending, ties by slug; it reports false
// for an unknown key.
func SortHealth(ths []TenantHealth, key string) bool {
	var by func(*TenantHealth) float64
	switch key {
	case SortRate:
		by = func(t *TenantHealth) float64 { return t.Rate }
	case SortErrorRatio:
		by = func(t *TenantHealth) float64 { return t.ErrorRatio }
	case SortP99:
		by = func(t *TenantHealth) float64 { return t.P99MS }
	case SortThrottled:
		by = func(t *TenantHealth) float64 { return float64(t.Throttled) }
	case SortShed:
		by = func(t *TenantHealth) float64 { return float64(t.Shed) }
	default:
		return false
	}
	slices.SortFunc(ths, func(a, b TenantHealth) int {
		return cmp.Or(cmp.Compare(by(&b), by(&a)), cmp.Compare(a.Slug, b.Slug))
	})
	return true
}
