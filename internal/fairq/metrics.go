package fairq

import "github.com/prometheus/client_golang/prometheus"

// The scheduler's metrics. None is labelled by tenant: per-tenant state is
// in TenantStats, for health pages, and would make a series per tenant.
var (
	descSlots = prometheus.NewDesc("bulkhead_scheduler_slots",
		"Database slots the fair scheduler grants, in use or not.", nil, nil)
	descInUse = prometheus.NewDesc("bulkhead_scheduler_slots_in_use",
		"Database slots held, by class of work.", []string{"class"}, nil)
	descWaiting = prometheus.NewDesc("bulkhead_scheduler_waiting",
		"Requests queued for a database slot.", nil, nil)
	descGranted = prometheus.NewDesc("bulkhead_scheduler_granted_total",
		"Database slots granted.", nil, nil)
	descShed = prometheus.NewDesc("bulkhead_scheduler_shed_total",
		"Requests shed without a slot, by reason: deadline (could not start in time) or queue_full.", []string{"reason"}, nil)
	descCanceled = prometheus.NewDesc("bulkhead_scheduler_canceled_total",
		"Queued requests whose caller gave up.", nil, nil)
	descHold = prometheus.NewDesc("bulkhead_scheduler_hold_seconds",
		"Recent mean time a database slot is held.", nil, nil)
)

// Describe implements prometheus.Collector.
func (s *Scheduler) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{descSlots, descInUse, descWaiting, descGranted, descShed, descCanceled, descHold} {
		ch <- d
	}
}

// Collect implements prometheus.Collector: one consistent Stats snapshot as
// the bulkhead_scheduler_* metrics.
func (s *Scheduler) Collect(ch chan<- prometheus.Metric) {
	st := s.Stats()
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge(descSlots, float64(st.Slots))
	gauge(descInUse, float64(st.InUse-st.BatchInUse), Interactive.String())
	gauge(descInUse, float64(st.BatchInUse), Batch.String())
	gauge(descWaiting, float64(st.Waiting))
	counter(descGranted, st.Granted)
	counter(descShed, st.ShedDeadline, "deadline")
	counter(descShed, st.ShedQueueFull, "queue_full")
	counter(descCanceled, st.Canceled)
	gauge(descHold, st.AvgHold.Seconds())
}
