package observe

import (
	"slices"
	"sync"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	dto "github.com/prometheus/client_model/go"
)

// Bounded tenant labels. bulkhead_tenant_requests_total keeps a tenant
// label of its own for at most N tenants, and counts every other tenant's
// requests under tenant="other", so that its series stay at most
// (N+1) × 5 however many tenants there are.
//
// A tenant gets a label of its own at its first request while fewer than N
// tenants hold one. Every RefreshInterval, RefreshTenantLabels gives the
// labels to the N busiest tenants by requests in the health window, keeps
// the rest of the room for the tenants that held a label before (so that a
// quiet tenant's series is not dropped and restarted for nothing), and
// deletes the series of the tenants that lost theirs: their next requests
// count under "other". A tenant whose slug is "other" always counts there.

// DefaultMetricsTenants is how many tenants keep their own label unless
// SetTenantLabels says otherwise.
const DefaultMetricsTenants = 50

// OtherTenant is the tenant label of the requests of every tenant without
// a label of its own.
const OtherTenant = "other"

// RefreshInterval is how often Sweep recomputes the labelled tenants.
const RefreshInterval = 10 * time.Second

// tenantLabels is the set of tenant slugs with a label of their own. Reads
// are lock-free; the set is replaced, never changed in place.
type tenantLabels struct {
	max atomic.Int64
	set atomic.Pointer[map[string]struct{}]

	mu        sync.Mutex // serialises replacements
	refreshed time.Time
}

// label returns the tenant label of slug's requests.
func (l *tenantLabels) label(slug string) string {
	if slug == OtherTenant {
		return OtherTenant
	}
	max := int(l.max.Load())
	if s := l.set.Load(); s != nil {
		if _, ok := (*s)[slug]; ok {
			return slug
		}
		if len(*s) >= max {
			return OtherTenant
		}
	} else if max <= 0 {
		return OtherTenant
	}
	l.mu.Lock()
	defer l.mu.Unlock()
	var cur map[string]struct{}
	if s := l.set.Load(); s != nil {
		cur = *s
	}
	if _, ok := cur[slug]; ok {
		return slug
	}
	if len(cur) >= int(l.max.Load()) {
		return OtherTenant
	}
	next := make(map[string]struct{}, len(cur)+1)
	for k := range cur {
		next[k] = struct{}{}
	}
	next[slug] = struct{}{}
	l.set.Store(&next)
	return slug
}

// SetTenantLabels sets how many tenants keep a tenant label of their own;
// 0 or less counts every tenant under "other". It applies at the next
// RefreshTenantLabels.
func (m *Metrics) SetTenantLabels(n int) { m.labels.max.Store(int64(max(n, 0))) }

// RefreshTenantLabels gives the tenant labels to the busiest tenants in the
// health window, as the package documentation says, and deletes the
// series of the tenants that lost theirs.
func (m *Metrics) RefreshTenantLabels() {
	active := m.Health.Active()
	SortHealth(active, SortRate) // requests per second: the same order as requests
	l := &m.labels
	l.mu.Lock()
	max := int(l.max.Load())
	next := make(map[string]struct{}, max)
	for _, th := range active {
		if len(next) >= max {
			break
		}
		if th.Slug != OtherTenant {
			next[th.Slug] = struct{}{}
		}
	}
	if prev := l.set.Load(); prev != nil && len(next) < max {
		held := make([]string, 0, len(*prev))
		for k := range *prev {
			held = append(held, k)
		}
		slices.Sort(held)
		for _, k := range held {
			if len(next) >= max {
				break
			}
			next[k] = struct{}{}
		}
	}
	l.set.Store(&next)
	l.refreshed = m.Health.now()
	l.mu.Unlock()
	m.dropTenantSeries(next)
}

// dropTenantSeries deletes the series of bulkhead_tenant_requests_total
// whose tenant is neither in keep nor "other". It finds them by collecting
// the counter, so that it also deletes a series a request re-created
// while the labels were being replaced.
func (m *Metrics) dropTenantSeries(keep map[string]struct{}) {
	ch := make(chan prometheus.Metric, 64)
	go func() {
		m.tenant.Collect(ch)
		close(ch)
	}()
	var stale []string
	for pm := range ch {
		var d dto.Metric
		if err := pm.Write(&d); err != nil {
			continue
		}
		for _, lp := range d.GetLabel() {
			if lp.GetName() != "tenant" {
				continue
			}
			if v := lp.GetValue(); v != OtherTenant && !slices.Contains(stale, v) {
				if _, ok := keep[v]; !ok {
					stale = append(stale, v)
				}
			}
		}
	}
	for _, v := range stale {
		m.tenant.DeletePartialMatch(prometheus.Labels{"tenant": v})
	}
}

// Sweep frees the health windows of idle tenants and, every
// RefreshInterval, refreshes the tenant labels. The server calls it every
// second.
func (m *Metrics) Sweep() {
	m.Health.Sweep()
	m.labels.mu.Lock()
	due := m.Health.now().Sub(m.labels.refreshed) >= RefreshInterval
	m.labels.mu.Unlock()
	if due {
		m.RefreshTenantLabels()
	}
}
