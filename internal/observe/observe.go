// Package observe builds bulkhead's Prometheus metrics and structured logs.
package observe

import (
	"io"
	"log/slog"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
)

// Metrics are the HTTP metrics of one server.
//
// Routes and statuses are broken down without the tenant, and tenants by a
// handful of outcomes without the route: a series per tenant per route (let
// alone a latency histogram per tenant) would cost kilobytes per tenant and
// grow with every route a tenant touches. Tenant labels carry the tenant
// slug, and only once the request was scoped to a tenant its credential
// belongs to, so unauthenticated clients cannot mint label values; and only
// the busiest tenants keep one of their own, the rest count as
// tenant="other" (see SetTenantLabels), so that the series stay bounded.
type Metrics struct {
	Registry *prometheus.Registry
	requests *prometheus.CounterVec
	latency  *prometheus.HistogramVec
	tenant   *prometheus.CounterVec
	rejected *prometheus.CounterVec
	// Breakers are the node's circuit breakers and their states.
	Breakers *Breakers
	// Health holds the per-tenant sliding windows of this node, which
	// also decide which tenants keep their own tenant label.
	Health *Health

	labels tenantLabels
}

// Outcome classes of the per-tenant counter.
const (
	OutcomeOK          = "ok"           // 1xx–3xx
	OutcomeClientError = "client_error" // 4xx other than 429
	OutcomeThrottled   = "throttled"    // 429
	OutcomeShed        = "shed"         // 503
	OutcomeServerError = "server_error" // other 5xx
)

// NewMetrics registers bulkhead's metrics, plus the Go runtime and process
// collectors, in a new registry.
func NewMetrics() *Metrics {
	reg := prometheus.NewRegistry()
	m := &Metrics{
		Registry: reg,
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulkhead_http_requests_total",
			Help: "HTTP requests by route and status code.",
		}, []string{"route", "status"}),
		latency: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "bulkhead_http_request_duration_seconds",
			Help:    "HTTP request latency by route.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10},
		}, []string{"route"}),
		tenant: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulkhead_tenant_requests_total",
			Help: "HTTP requests scoped to a tenant, by outcome: ok, client_error, throttled, shed, server_error.",
		}, []string{"tenant", "outcome"}),
		rejected: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulkhead_admission_rejected_total",
			Help: "Requests refused before any database work, by reason: rate, credential_rate, inflight, shed, auth_rate (logins and refreshes per tenant slug).",
		}, []string{"reason"}),
	}
	reg.MustRegister(m.requests, m.latency, m.tenant, m.rejected,
		collectors.NewGoCollector(), collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}))
	m.Breakers = newBreakers(reg)
	m.Health = NewHealth()
	m.labels.max.Store(DefaultMetricsTenants)
	return m
}

// ObserveRequest counts one finished request; tenant is empty for requests
// not scoped to a tenant.
func (m *Metrics) ObserveRequest(tenant, route string, status int, d time.Duration) {
	m.requests.WithLabelValues(route, statusText(status)).Inc()
	m.latency.WithLabelValues(route).Observe(d.Seconds())
	if tenant != "" {
		m.tenant.WithLabelValues(m.labels.label(tenant), outcome(status)).Inc()
	}
}

// Rejected counts a request refused by admission control.
func (m *Metrics) Rejected(reason string) { m.rejected.WithLabelValues(reason).Inc() }

func outcome(status int) string {
	switch {
	case status < 400:
		return OutcomeOK
	case status == 429:
		return OutcomeThrottled
	case status == 503:
		return OutcomeShed
	case status < 500:
		return OutcomeClientError
	}
	return OutcomeServerError
}

// statusText avoids strconv's allocation for the common codes.
func statusText(code int) string {
	switch code {
	case 200:
		return "200"
	case 201:
		return "201"
	case 202:
		return "202"
	case 204:
		return "204"
	case 400:
		return "400"
	case 401:
		return "401"
	case 403:
		return "403"
	case 404:
		return "404"
	case 409:
		return "409"
	case 412:
		return "412"
	case 413:
		return "413"
	case 422:
		return "422"
	case 429:
		return "429"
	case 500:
		return "500"
	case 503:
		return "503"
	}
	b := []byte{byte('0' + code/100%10), byte('0' + code/10%10), byte('0' + code%10)}
	return string(b)
}

// NewLogger returns a JSON logger writing to w at level.
func NewLogger(w io.Writer, level slog.Level) *slog.Logger {
	return slog.New(slog.NewJSONHandler(w, &slog.HandlerOptions{Level: level}))
}
