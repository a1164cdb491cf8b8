package cli

import (
	"errors"
	"fmt"
	"os"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/store"
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
			return o.asOperator(cmd, slug, func(op *operator) error {
				st, err := op.ctl.RotateKeys(cmd.Context(), op.sc)
				if err != nil {
					return explain(err)
				}
				if !noWait {
					// This process works the re-encryption job (or a server does).
					if err := op.app.StartJobs(cmd.Context()); err != nil {
						return err
					}
					if err := op.app.Core().WaitBackground(cmd.Context()); err != nil {
						return fmt.Errorf("interrupted; the server resumes the re-encryption when it starts: %w", err)
					}
					if st, err = op.sc.Keys(cmd.Context()); err != nil {
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
			return o.asOperator(cmd, "", func(op *operator) error {
				n, err := op.ctl.RotateKEK(cmd.Context())
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
			return o.asOperator(cmd, slug, func(op *operator) error {
				st, err := op.sc.Keys(cmd.Context())
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

// newKeyList is "key list": GET /v1/tenants/{tenant}/api-keys.
func newKeyList(o *options) *cobra.Command {
	var slug string
	cmd := &cobra.Command{
		Use:   "list --tenant SLUG",
		Short: "List a tenant's API keys, revoked ones included (never their secrets)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.inTenant(cmd, slug, func(sc *core.Scope) error {
				page, err := sc.ListAPIKeys(cmd.Context())
				if err != nil {
					return explain(err)
				}
				return o.print(page.Items)
			})
		},
	}
	cmd.Flags().StringVar(&slug, "tenant", "", "the tenant's slug (required)")
	_ = cmd.MarkFlagRequired("tenant")
	return cmd
}

// newKeyRevoke is "key revoke": DELETE /v1/tenants/{tenant}/api-keys/{id}.
func newKeyRevoke(o *options) *cobra.Command {
	var slug string
	cmd := &cobra.Command{
		Use:   "revoke --tenant SLUG ID",
		Short: "Revoke a tenant's API key; it prints the key as revoked",
		Long: "revoke stops the key (its ID as key list prints it) from working: at once on the servers sharing\n" +
			"a PostgreSQL database or a Redis (their change feed tells them). With the embedded SQLite\n" +
			"database a running server may go on accepting a key it has cached for up to 10 minutes: revoke\n" +
			"through DELETE /v1/tenants/{tenant}/api-keys/{id} instead, or restart it.",
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			id := store.APIKeyID(args[0])
			return o.inTenant(cmd, slug, func(sc *core.Scope) error {
				if err := sc.RevokeAPIKey(cmd.Context(), id); err != nil {
					if errors.Is(err, store.ErrNotFound) {
						return fmt.Errorf("tenant %s has no API key %s", slug, id)
					}
					return explain(err)
				}
				page, err := sc.ListAPIKeys(cmd.Context())
				if err != nil {
					return explain(err)
				}
				for _, k := range page.Items {
					if k.ID == id {
						return o.print(k)
					}
				}
				return fmt.Errorf("API key %s is revoked but no longer listed", id)
			})
		},
	}
	cmd.Flags().StringVar(&slug, "tenant", "", "the tenant's slug (required)")
	_ = cmd.MarkFlagRequired("tenant")
	return cmd
}
