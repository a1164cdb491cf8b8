package observe

import (
	"time"

	"github.com/prometheus/client_golang/prometheus"
)

// Backup stages counted by BackupMetrics.Failed.
const (
	BackupTake   = "take"
	BackupVerify = "verify"
)

// BackupMetrics are the scheduled backups' metrics. The zero value is not
// usable; make them with (*Metrics).Backups.
type BackupMetrics struct {
	lastSuccess prometheus.Gauge
	failures    *prometheus.CounterVec
	duration    prometheus.Gauge
	size        prometheus.Gauge
}

// Backups registers the scheduled backups' metrics and returns them. Call
// it at most once per Metrics.
func (m *Metrics) Backups() *BackupMetrics {
	b := &BackupMetrics{
		lastSuccess: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bulkhead_backup_last_success_timestamp_seconds",
			Help: "When the last scheduled backup that was taken, uploaded and verified started, in Unix seconds; 0 before the first.",
		}),
		failures: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulkhead_backup_failures_total",
			Help: "Scheduled backups that failed, by stage: take (copy, dump or upload) or verify (download, restore or check).",
		}, []string{"stage"}),
		duration: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bulkhead_backup_duration_seconds",
			Help: "How long the last successful scheduled backup took to take, upload and verify.",
		}),
		size: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "bulkhead_backup_size_bytes",
			Help: "The size of the last successful scheduled backup's data files.",
		}),
	}
	for _, s := range []string{BackupTake, BackupVerify} {
		b.failures.WithLabelValues(s) // exported as 0 from the start
	}
	m.Registry.MustRegister(b.lastSuccess, b.failures, b.duration, b.size)
	return b
}

// Succeeded records a backup that started at start, took d and holds size
// bytes.
func (b *BackupMetrics) Succeeded(start time.Time, d time.Duration, size int64) {
	b.lastSuccess.Set(float64(start.UnixNano()) / 1e9)
	b.duration.Set(d.Seconds())
	b.size.Set(float64(size))
}

// Failed counts a backup that failed at stage (BackupTake or BackupVerify).
func (b *BackupMetrics) Failed(stage string) { b.failures.WithLabelValues(stage).Inc() }
