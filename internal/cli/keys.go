package cli

import (
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bulkheadhq/bulkhead"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// kmsOptions select the key management service. The platform KEK
// (BULKHEAD_KEK) and Vault's token (VAULT_TOKEN) come from the environment
// only, never from a flag, which other users could read in the process
// list.
type kmsOptions struct {
	kind, vaultAddr, vaultMount string
}

func (k *kmsOptions) flags(pf *pflag.FlagSet) {
	pf.StringVar(&k.kind, "kms", envOr("BULKHEAD_KMS", "local"),
		"key management service for tenants' keys: local (files in --data/keys, wrapped by the platform KEK; env BULKHEAD_KEK overrides kek.key) or vault (env BULKHEAD_KMS)")
	pf.StringVar(&k.vaultAddr, "vault-addr", envOr("BULKHEAD_VAULT_ADDR", os.Getenv("VAULT_ADDR")),
		"Vault's address for --kms vault; the token is read from VAULT_TOKEN (env BULKHEAD_VAULT_ADDR, else VAULT_ADDR)")
	pf.StringVar(&k.vaultMount, "vault-mount", envOr("BULKHEAD_VAULT_MOUNT", "transit"),
		"mount path of Vault's Transit engine (env BULKHEAD_VAULT_MOUNT)")
}

func newKeys(o *options) *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage keys: rotate a tenant's data key, the KEK or the token signing key"}
	var slug string
	var noWait bool
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Give a tenant a new data key version and re-encrypt its records under it",
		Long: "rotate makes a new data key version for the tenant, which seals every write from now on,\n" +
			"and re-encrypts the tenant's records under it in batches; the old version is retired once no\n" +
			"record uses it. It waits for the re-encryption unless --no-wait is given; a server resumes an\n" +
			"unfinished one when it starts. A running server learns of the new version through its change\n" +
			"feed (PostgreSQL or Redis; with the embedded SQLite database, restart it or rotate through\n" +
			"POST /v1/tenants/{tenant}/keys/rotate).",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.withApp(func(app *bulkhead.App) error {
				c := app.Core()
				ctl, err := c.Control(core.Operator(), "cli")
				if err != nil {
					return explain(err)
				}
				sc, err := c.Scope(cmd.Context(), core.Operator(), tenant.Slug(slug), "cli")
				if err != nil {
					return explain(err)
				}
				st, err := ctl.RotateKeys(cmd.Context(), sc)
				if err != nil {
					return explain(err)
				}
				if !noWait {
					// This process works the re-encryption job (or a server does).
					if err := app.StartJobs(cmd.Context()); err != nil {
						return err
					}
					if err := c.WaitBackground(cmd.Context()); err != nil {
						return fmt.Errorf("interrupted; the server resumes the re-encryption when it starts: %w", err)
					}
					if st, err = sc.Keys(cmd.Context()); err != nil {
						return explain(err)
					}
				}
				return o.print(st)
			})
		},
	}
	rotate.Flags().StringVar(&slug, "tenant", "", "the tenant's slug (required)")
	rotate.Flags().BoolVar(&noWait, "no-wait", false, "return once the new version exists; a server finishes the re-encryption")
	rotate.MarkFlagRequired("tenant")

	rotateKEK := &cobra.Command{
		Use:   "rotate-kek",
		Short: "Rotate the keys that wrap tenants' keys, and re-wrap every data key (no record is rewritten)",
		Long: "With --kms local, rotate-kek adds a new version of the platform KEK to kek.key (with\n" +
			"BULKHEAD_KEK, append a new key to its list first: the last one is used) and re-wraps every\n" +
			"tenant key file under it. With --kms vault, it rotates each tenant's transit key and rewraps\n" +
			"the stored data keys under the new version. Records are not rewritten.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.withApp(func(app *bulkhead.App) error {
				ctl, err := app.Core().Control(core.Operator(), "cli")
				if err != nil {
					return explain(err)
				}
				n, err := ctl.RotateKEK(cmd.Context())
				if err != nil {
					return explain(err)
				}
				return o.print(map[string]any{"rewrapped_data_keys": n, "kms": o.kms.kind})
			})
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Show a tenant's data key versions and rotation progress (no key material)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.withApp(func(app *bulkhead.App) error {
				sc, err := app.Core().Scope(cmd.Context(), core.Operator(), tenant.Slug(slug), "cli")
				if err != nil {
					return explain(err)
				}
				st, err := sc.Keys(cmd.Context())
				if err != nil {
					return explain(err)
				}
				return o.print(st)
			})
		},
	}
	status.Flags().StringVar(&slug, "tenant", "", "the tenant's slug (required)")
	status.MarkFlagRequired("tenant")
	cmd.AddCommand(rotate, rotateKEK, status, NewRotateSigning(o))
	return cmd
}
