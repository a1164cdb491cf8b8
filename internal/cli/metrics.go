package cli

import (
	"fmt"
	"os"
	"strconv"

	"github.com/spf13/pflag"

	"github.com/bulkheadhq/bulkhead"
	"github.com/bulkheadhq/bulkhead/internal/observe"
)

// metricsTenantsFlag is serve's --metrics-tenants: how many tenants keep a
// tenant label of their own on the per-tenant request counter.
func metricsTenantsFlag(fs *pflag.FlagSet, v *string) {
	def := os.Getenv("BULKHEAD_METRICS_TENANTS")
	if def == "" {
		def = strconv.Itoa(observe.DefaultMetricsTenants)
	}
	fs.StringVar(v, "metrics-tenants", def,
		`how many of the busiest tenants keep their own tenant label on bulkhead_tenant_requests_total; the rest count as tenant="other"; 0 folds every tenant (env BULKHEAD_METRICS_TENANTS)`)
}

// applyMetricsTenants sets cfg.MetricsTenants from the flag's value: a
// count, where 0 means none (a negative MetricsTenants).
func applyMetricsTenants(cfg *bulkhead.Config, v string) error {
	n, err := strconv.Atoi(v)
	if err != nil || n < 0 {
		return fmt.Errorf("--metrics-tenants (env BULKHEAD_METRICS_TENANTS) must be an integer >= 0, got %q", v)
	}
	if n == 0 {
		n = -1
	}
	cfg.MetricsTenants = n
	return nil
}
