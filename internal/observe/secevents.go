package observe

import "github.com/prometheus/client_golang/prometheus"

// SecurityEventStats reads a security-event queue's counters.
type SecurityEventStats func() (published, dropped, failed uint64)

// WatchSecurityEvents exports the counters stats reads as
// bulkhead_security_events_total{result="published"|"dropped"|"failed"}.
// Call it at most once per Metrics.
func (m *Metrics) WatchSecurityEvents(stats SecurityEventStats) {
	for _, result := range []string{"published", "dropped", "failed"} {
		m.Registry.MustRegister(prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name:        "bulkhead_security_events_total",
			Help:        "Security events by result: published (sent to the sink), dropped (queue full or shut down), failed (the sink refused every retry).",
			ConstLabels: prometheus.Labels{"result": result},
		}, func() float64 {
			p, d, f := stats()
			switch result {
			case "published":
				return float64(p)
			case "dropped":
				return float64(d)
			}
			return float64(f)
		}))
	}
}
