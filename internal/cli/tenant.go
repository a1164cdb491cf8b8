package cli

import (
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"github.com/schollz/progressbar/v3"
	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// newTenantExport is `bulkhead tenant export`.
func newTenantExport(o *options) *cobra.Command {
	var slug, out string
	cmd := &cobra.Command{
		Use:   "export",
		Short: "Write a tenant's signed, encrypted archive to a file",
		Long: "export writes the tenant's collections, records, users and API keys (without secrets) and audit\n" +
			"chain into one archive, signed by the platform's export key and encrypted under a key wrapped by\n" +
			"the tenant's key in the KMS: crypto-shredding the tenant makes the archive unreadable. The file\n" +
			"is written beside --out and renamed into place once complete.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return o.asOperator(cmd, slug, func(op *operator) error {
				f, err := os.CreateTemp(filepath.Dir(out), ".bulkhead-export-*")
				if err != nil {
					return err
				}
				defer os.Remove(f.Name()) // a no-op once renamed
				bar := o.progress("exporting records")
				m, err := op.ctl.ExportTenant(cmd.Context(), op.sc, f, bar.update)
				bar.finish()
				if err == nil {
					err = f.Sync()
				}
				if cerr := f.Close(); err == nil {
					err = cerr
				}
				if err != nil {
					return explain(err)
				}
				if err := os.Rename(f.Name(), out); err != nil {
					return err
				}
				return o.print(m)
			})
		},
	}
	cmd.Flags().StringVar(&slug, "tenant", "", "the tenant's slug (required)")
	cmd.Flags().StringVar(&out, "out", "", "the archive file to write (required)")
	cmd.MarkFlagRequired("tenant")
	cmd.MarkFlagRequired("out")
	return cmd
}

// newTenantRestore is `bulkhead tenant restore`.
func newTenantRestore(o *options) *cobra.Command {
	var from, isolation, source string
	var p core.CreateTenantParams
	cmd := &cobra.Command{
		Use:   "restore",
		Short: "Create a tenant from an archive of any tenant of this platform",
		Long: "restore verifies the archive (signatures, hashes, audit chain), creates a new tenant with --slug,\n" +
			"and restores the archive's collections and records into it, sealing encrypted fields again under\n" +
			"the new tenant's keys. Users and API keys are not restored: create the new tenant's first admin\n" +
			"with `bulkhead key create` or POST /v1/tenants/{tenant}/users. The source tenant's key must\n" +
			"still exist in the KMS.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			p.Isolation = tenant.Isolation(isolation)
			if p.Name == "" {
				p.Name = string(p.Slug)
			}
			open := func() (io.ReadCloser, error) { return os.Open(from) }
			if _, err := os.Stat(from); err != nil {
				return err
			}
			// With --tenant, the operator's scope is on the archive's source.
			return o.asOperator(cmd, source, func(op *operator) error {
				bar := o.progress("restoring records")
				t, res, err := op.ctl.RestoreTenant(cmd.Context(), p, op.sc, open, bar.update)
				bar.finish()
				if err != nil {
					return explain(err)
				}
				return o.print(map[string]any{"tenant": t, "restore": res})
			})
		},
	}
	cmd.Flags().StringVar(&from, "from", "", "the archive file (required)")
	cmd.Flags().StringVar((*string)(&p.Slug), "slug", "", "the new tenant's slug (required)")
	cmd.Flags().StringVar(&source, "tenant", "", "the slug of the tenant the archive must be of, if it still exists (defaults to any tenant of this platform)")
	cmd.Flags().StringVar(&p.Name, "name", "", "the new tenant's display name (defaults to the slug)")
	cmd.Flags().StringVar(&p.Plan, "plan", "", "plan (defaults to free)")
	cmd.Flags().StringVar(&isolation, "isolation", "pooled", "pooled or silo")
	cmd.MarkFlagRequired("from")
	cmd.MarkFlagRequired("slug")
	return cmd
}

// progressBar shows a job's progress on stderr when stderr is a terminal,
// and nothing otherwise.
type progressBar struct {
	bar *progressbar.ProgressBar
	out *os.File
}

func (o *options) progress(what string) *progressBar {
	f, ok := o.stderr.(*os.File)
	if !ok || !term.IsTerminal(int(f.Fd())) {
		return &progressBar{}
	}
	return &progressBar{out: f, bar: progressbar.NewOptions64(-1, progressbar.OptionSetWriter(f), progressbar.OptionSetDescription(what),
		progressbar.OptionShowCount(), progressbar.OptionShowIts(), progressbar.OptionSetItsString("records"),
		progressbar.OptionThrottle(100*time.Millisecond), progressbar.OptionClearOnFinish())}
}

func (p *progressBar) update(done, total int64) {
	if p.bar == nil {
		return
	}
	if total > 0 && p.bar.GetMax64() != total {
		p.bar.ChangeMax64(total)
	}
	_ = p.bar.Set64(done)
}

func (p *progressBar) finish() {
	if p.bar != nil {
		_ = p.bar.Finish()
		fmt.Fprintln(p.out)
	}
}
