package cli

import (
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// defaultDeletionGrace is --deletion-grace's default, also what tenant
// delete uses without --grace.
func defaultDeletionGrace() string { return envOr("BULKHEAD_DELETION_GRACE", "30d") }

// parseDeletionGrace reads --deletion-grace (core.ParseGrace) into
// Config.DeletionGrace, where none is negative.
func parseDeletionGrace(s string) (time.Duration, error) {
	g, err := core.ParseGrace(s)
	if err != nil {
		return 0, err
	}
	if g == 0 {
		return -1, nil
	}
	return g, nil
}

// newTenantDelete is "tenant delete": DELETE /v1/tenants/{tenant} on the
// database directly. With a grace period the tenant is left deleting; the
// running servers purge it when it is due (their purge sweeper, or their
// job queue).
func newTenantDelete(o *options) *cobra.Command {
	var slug, grace string
	cmd := &cobra.Command{
		Use:   "delete --tenant SLUG [--grace 30d]",
		Short: "Delete a tenant: suspend it now, shred its keys and purge its data after the grace period",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			g, err := core.ParseGrace(grace)
			if err != nil {
				return fmt.Errorf("--grace: %w", err)
			}
			return o.asOperator(cmd, slug, func(op *operator) error {
				view, err := op.ctl.OffboardTenant(cmd.Context(), op.sc, &g)
				if err != nil {
					return explain(err)
				}
				return o.print(view)
			})
		},
	}
	cmd.Flags().StringVar(&slug, "tenant", "", "slug of the tenant to delete (required)")
	cmd.Flags().StringVar(&grace, "grace", defaultDeletionGrace(),
		"grace period before the purge: days, hours or minutes (30d, 12h, 90m; at most 366d), or 0 to purge now (env BULKHEAD_DELETION_GRACE)")
	_ = cmd.MarkFlagRequired("tenant")
	return cmd
}

// newTenantUndelete is "tenant undelete": it cancels a deletion whose
// purge is not due yet, as PATCH /v1/tenants/{tenant} with a status does.
func newTenantUndelete(o *options) *cobra.Command {
	var slug string
	var suspended bool
	cmd := &cobra.Command{
		Use:   "undelete --tenant SLUG [--suspended]",
		Short: "Cancel a tenant's deletion before its purge: it becomes active (or suspended)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.asOperator(cmd, slug, func(op *operator) error {
				if st := op.sc.Tenant().Status; st != tenant.Deleting {
					return fmt.Errorf("tenant %s is %s, not deleting", slug, st)
				}
				status := tenant.Active
				if suspended {
					status = tenant.Suspended
				}
				view, err := op.ctl.UpdateTenant(cmd.Context(), op.sc, core.UpdateTenantParams{Status: &status})
				if err != nil {
					return explain(err)
				}
				return o.print(view)
			})
		},
	}
	cmd.Flags().StringVar(&slug, "tenant", "", "slug of the deleting tenant (required)")
	cmd.Flags().BoolVar(&suspended, "suspended", false, "leave the tenant suspended instead of active")
	_ = cmd.MarkFlagRequired("tenant")
	return cmd
}
