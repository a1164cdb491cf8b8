package cli

import (
	"strings"
	"testing"

	"github.com/spf13/pflag"

	"github.com/bulkheadhq/bulkhead"
)

func TestMetricsTenantsFlag(t *testing.T) {
	parse := func(args ...string) string {
		fs := pflag.NewFlagSet("serve", pflag.ContinueOnError)
		var v string
		metricsTenantsFlag(fs, &v)
		if err := fs.Parse(args); err != nil {
			t.Fatal(err)
		}
		return v
	}
	t.Setenv("BULKHEAD_METRICS_TENANTS", "")
	if got := parse(); got != "50" {
		t.Errorf("default = %q, want 50", got)
	}
	t.Setenv("BULKHEAD_METRICS_TENANTS", "7")
	if got := parse(); got != "7" {
		t.Errorf("from the environment = %q, want 7", got)
	}
	if got := parse("--metrics-tenants", "3"); got != "3" {
		t.Errorf("the flag over the environment = %q, want 3", got)
	}
	for v, want := range map[string]int{"50": 50, "1": 1, "0": -1} {
		var cfg bulkhead.Config
		if err := applyMetricsTenants(&cfg, v); err != nil || cfg.MetricsTenants != want {
			t.Errorf("--metrics-tenants %s: MetricsTenants = %d, %v; want %d", v, cfg.MetricsTenants, err, want)
		}
	}
	for _, bad := range []string{"-1", "lots", ""} {
		var cfg bulkhead.Config
		err := applyMetricsTenants(&cfg, bad)
		if err == nil || !strings.Contains(err.Error(), "--metrics-tenants") || !strings.Contains(err.Error(), "BULKHEAD_METRICS_TENANTS") {
			t.Errorf("--metrics-tenants %q: %v, want an error naming the flag and the variable", bad, err)
		}
	}
}
