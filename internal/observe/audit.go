package observe

import "github.com/prometheus/client_golang/prometheus"

// Audit chain kinds, the chain label of bulkhead_audit_verify_failures_total.
// Tenants are never a label: a broken chain's tenant is in the log line and
// the verification's answer, not in a metric series per tenant.
const (
	AuditChainTenant   = "tenant"
	AuditChainPlatform = "platform"
)

// AuditMetrics count audit chains found broken. Make them with
// (*Metrics).Audit; a nil *AuditMetrics counts nothing.
type AuditMetrics struct {
	failures *prometheus.CounterVec
}

// Audit registers bulkhead_audit_verify_failures_total and returns it.
// Call it at most once per Metrics.
func (m *Metrics) Audit() *AuditMetrics {
	a := &AuditMetrics{failures: prometheus.NewCounterVec(prometheus.CounterOpts{
		Name: "bulkhead_audit_verify_failures_total",
		Help: "Audit chain verifications that found a chain broken (an entry altered, removed or reordered, a checkpoint forged), " +
			"by chain: tenant or platform; counted by GET …/audit/verify, the audit retention job and backup verification.",
	}, []string{"chain"})}
	for _, c := range []string{AuditChainTenant, AuditChainPlatform} {
		a.failures.WithLabelValues(c) // exported as 0 from the start
	}
	m.Registry.MustRegister(a.failures)
	return a
}

// VerifyFailed counts one verification that found a chain of kind chain
// (AuditChainTenant or AuditChainPlatform) broken.
func (a *AuditMetrics) VerifyFailed(chain string) {
	if a != nil {
		a.failures.WithLabelValues(chain).Inc()
	}
}
