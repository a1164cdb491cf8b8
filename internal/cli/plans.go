package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/bulkheadhq/bulkhead/tenant"
)

func newPlan(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "plan", Short: "Manage plans: the limits and shares tenants are admitted by"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List the plans",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.asOperator(cmd, "", func(op *operator) error {
				page, err := op.ctl.ListPlans(cmd.Context())
				if err != nil {
					return explain(err)
				}
				return o.print(page.Items)
			})
		},
	}
	cmd.AddCommand(list, newPlanSet(o))
	return cmd
}

// newPlanSet is "plan set": PUT /v1/plans/{plan}, where the flags not given
// keep the plan's current values.
func newPlanSet(o *options) *cobra.Command {
	var p tenant.Plan
	cmd := &cobra.Command{
		Use:   "set NAME [--rate R] [--burst N] [--max-inflight N] [--weight N] [--max-records N] [--max-bytes N]",
		Short: "Create a plan or change some of its fields; it prints the plan",
		Long: "set writes the plan NAME as PUT /v1/plans/{plan} does, with the same bounds. Changing a plan,\n" +
			"the flags not given keep their current values; a new plan needs them all. The plan's tenants are\n" +
			"admitted by the new values at once on the servers sharing a PostgreSQL database or a Redis (their\n" +
			"change feed tells them); with the embedded SQLite database a running server may go on using a\n" +
			"plan it has cached for up to 10 minutes: set it through the API instead, or restart it.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			name := args[0]
			return o.asOperator(cmd, "", func(op *operator) error {
				page, err := op.ctl.ListPlans(cmd.Context())
				if err != nil {
					return explain(err)
				}
				plan := tenant.Plan{Name: name}
				exists := false
				for _, q := range page.Items {
					if q.Name == name {
						plan, exists = *q, true
					}
				}
				var missing []string
				for _, f := range []struct {
					flag string
					set  func()
				}{
					{"rate", func() { plan.RatePerSec = p.RatePerSec }},
					{"burst", func() { plan.Burst = p.Burst }},
					{"max-inflight", func() { plan.MaxInflight = p.MaxInflight }},
					{"weight", func() { plan.Weight = p.Weight }},
					{"max-records", func() { plan.MaxRecords = p.MaxRecords }},
					{"max-bytes", func() { plan.MaxBytes = p.MaxBytes }},
				} {
					switch {
					case cmd.Flags().Changed(f.flag):
						f.set()
					case !exists:
						missing = append(missing, "--"+f.flag)
					}
				}
				if len(missing) > 0 {
					return fmt.Errorf("there is no plan %s; creating it needs %s", name, strings.Join(missing, ", "))
				}
				saved, err := op.ctl.PutPlan(cmd.Context(), name, plan)
				if err != nil {
					return explain(err)
				}
				return o.print(saved)
			})
		},
	}
	f := cmd.Flags()
	f.Float64Var(&p.RatePerSec, "rate", 0, "sustained requests per second per tenant; 0 means no rate limit (rate_per_sec)")
	f.IntVar(&p.Burst, "burst", 0, "requests that may arrive at once above the rate, 1 or more (burst)")
	f.IntVar(&p.MaxInflight, "max-inflight", 0, "a tenant's concurrent requests; 0 means no cap (max_inflight)")
	f.IntVar(&p.Weight, "weight", 0, "the tenant's share of database slots relative to others, 1 to 1000 (weight)")
	f.Int64Var(&p.MaxRecords, "max-records", 0, "records a tenant may hold; 0 means no cap (max_records)")
	f.Int64Var(&p.MaxBytes, "max-bytes", 0, "total size in bytes of a tenant's records; 0 means no cap (max_bytes)")
	return cmd
}
