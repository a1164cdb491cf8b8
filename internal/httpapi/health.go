package httpapi

import (
	"errors"
	"net/http"
	"strings"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/internal/observe"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Per-tenant health, for the operator: this node's sliding windows of each
// tenant's requests (observe.Health), the tenant's quotas and the breakers
// that hold it back.

// tenantHealth is the answer of GET /v1/tenants/{tenant}/health and, without
// Series, an item of GET /v1/health/tenants.
type tenantHealth struct {
	Tenant   tenant.Slug   `json:"tenant"`
	TenantID tenant.ID     `json:"tenant_id"`
	Status   tenant.Status `json:"status"`
	Plan     string        `json:"plan"`
	// WindowSeconds is what the figures cover: observe.HealthWindow.
	WindowSeconds int64 `json:"window_seconds"`
	// Requests counts the answers to the tenant's credentials; Rate is
	// them per second.
	Requests int64   `json:"requests"`
	Rate     float64 `json:"rate"`
	// ErrorRatio is the server errors (5xx other than shedding) per
	// request.
	ErrorRatio float64 `json:"error_ratio"`
	P50MS      float64 `json:"p50_ms"`
	P99MS      float64 `json:"p99_ms"`
	// Throttled counts the 429 answers, Shed the 503 answers of load
	// shedding.
	Throttled int64 `json:"throttled"`
	Shed      int64 `json:"shed"`
	// Quota is each limit of the plan with a usage figure.
	Quota []quotaUse `json:"quota"`
	// OpenBreakers names the node's breakers that are not closed, and
	// "tenant" while the scheduler's breaker of the tenant is not.
	OpenBreakers []string      `json:"open_breakers"`
	Series       *healthSeries `json:"series,omitempty"`
}

// quotaUse is one limit of a plan against the tenant's use of it.
type quotaUse struct {
	Name string `json:"name"`
	Used int64  `json:"used"`
	// Limit is the plan's; 0 means none, and Ratio is then 0.
	Limit int64   `json:"limit"`
	Ratio float64 `json:"ratio"`
}

// healthSeries is the last observe.HealthSeries of a tenant in steps.
type healthSeries struct {
	StepSeconds int64         `json:"step_seconds"`
	Points      []healthPoint `json:"points"`
}

// healthPoint is one step of a tenant's series.
type healthPoint struct {
	// T is the step's start, Unix seconds.
	T         int64   `json:"t"`
	Rate      float64 `json:"rate"`
	P99MS     float64 `json:"p99_ms"`
	Errors    int64   `json:"errors"`
	Throttled int64   `json:"throttled"`
	Shed      int64   `json:"shed"`
}

// tenantHealthList is the answer of GET /v1/health/tenants.
type tenantHealthList struct {
	WindowSeconds int64           `json:"window_seconds"`
	Items         []*tenantHealth `json:"items"`
	// Breakers are the node's breakers by name, with their states.
	Breakers map[string]string `json:"breakers"`
}

// The bounds of GET /v1/health/tenants?limit=.
const (
	defaultHealthLimit = 20
	maxHealthLimit     = 100
)

// tenantHealth answers GET /v1/tenants/{tenant}/health.
func (s *Server) tenantHealth(w http.ResponseWriter, r *http.Request, rq *request) error {
	t := rq.scope.Tenant()
	q, err := rq.control.TenantQuota(r.Context(), rq.scope)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, s.healthView(s.metrics.Health.Tenant(string(t.ID), true), q))
}

// listTenantHealth answers GET /v1/health/tenants: the tenants with
// requests in the window, ranked by sort, at most limit of them.
func (s *Server) listTenantHealth(w http.ResponseWriter, r *http.Request, rq *request) error {
	limit, err := queryInt(r, "limit", defaultHealthLimit, 1, maxHealthLimit)
	if err != nil {
		return err
	}
	key := r.URL.Query().Get("sort")
	if key == "" {
		key = observe.SortRate
	}
	active := s.metrics.Health.Active()
	if !observe.SortHealth(active, key) {
		msg := "must be one of " + strings.Join(observe.HealthSorts, ", ")
		return fieldProblem("sort", "sort "+msg, msg)
	}
	list := &tenantHealthList{WindowSeconds: windowSeconds(), Items: make([]*tenantHealth, 0, min(len(active), int(limit))),
		Breakers: s.metrics.Breakers.All()}
	for _, th := range active {
		if len(list.Items) == int(limit) {
			break
		}
		sc, err := s.core.Scope(r.Context(), rq.principal, tenant.Slug(th.Slug), rq.id)
		if errors.Is(err, store.ErrNotFound) {
			continue // purged since its last request
		}
		if err != nil {
			return err
		}
		q, err := rq.control.TenantQuota(r.Context(), sc)
		if err != nil {
			return err
		}
		list.Items = append(list.Items, s.healthView(th, q))
	}
	return writeJSON(w, http.StatusOK, list)
}

func windowSeconds() int64 { return int64(observe.HealthWindow.Seconds()) }

// healthView is the answer for th, with its series if th has one.
func (s *Server) healthView(th observe.TenantHealth, q *core.TenantQuota) *tenantHealth {
	v := &tenantHealth{
		Tenant: q.Tenant.Slug, TenantID: q.Tenant.ID, Status: q.Tenant.Status, Plan: q.Plan.Name,
		WindowSeconds: windowSeconds(),
		Requests:      th.Requests, Rate: th.Rate, ErrorRatio: th.ErrorRatio, P50MS: th.P50MS, P99MS: th.P99MS,
		Throttled: th.Throttled, Shed: th.Shed,
		Quota: []quotaUse{
			quota("records", q.Records, q.Plan.MaxRecords),
			quota("bytes", q.Bytes, q.Plan.MaxBytes),
		},
		OpenBreakers: s.openBreakers(q.Tenant.ID),
	}
	if th.Series != nil {
		v.Series = &healthSeries{StepSeconds: int64(observe.HealthStep.Seconds()), Points: make([]healthPoint, len(th.Series))}
		for i, p := range th.Series {
			v.Series.Points[i] = healthPoint{T: p.T, Rate: p.Rate, P99MS: p.P99MS, Errors: p.Errors, Throttled: p.Throttled, Shed: p.Shed}
		}
	}
	return v
}

func quota(name string, used, limit int64) quotaUse {
	q := quotaUse{Name: name, Used: used, Limit: limit}
	if limit > 0 {
		q.Ratio = float64(used) / float64(limit)
	}
	return q
}

// openBreakers names the node's breakers that are not closed, and "tenant"
// while the scheduler's breaker of tid is not closed.
func (s *Server) openBreakers(tid tenant.ID) []string {
	open := s.metrics.Breakers.NotClosed()
	if sch := s.admission.Scheduler; sch != nil && sch.TenantStats(tid).Breaker != fairq.BreakerClosed {
		open = append(open, "tenant")
	}
	if open == nil {
		open = []string{}
	}
	return open
}
