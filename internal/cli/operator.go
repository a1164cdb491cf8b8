package cli

import (
	"errors"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/bulkheadhq/bulkhead"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// operator is what an administrative command acts through: the operator's
// control plane and, for a command about one tenant, a scope on it. Both
// are core's, as behind the API's routes, so every change is checked and
// audited alike (request id "cli").
type operator struct {
	app *bulkhead.App
	ctl *core.Control // nil when acting with a tenant's credential
	sc  *core.Scope   // nil unless the command names a tenant
}

// asOperator opens the App and runs fn as the operator, on the tenant slug
// unless it is empty; an unknown tenant is explained. The App is closed
// afterwards.
func (o *options) asOperator(cmd *cobra.Command, slug string, fn func(op *operator) error) error {
	return o.withApp(func(app *bulkhead.App) error {
		op := &operator{app: app}
		var err error
		if op.ctl, err = app.Core().Control(core.Operator(), "cli"); err != nil {
			return explain(err)
		}
		if slug != "" {
			if op.sc, err = app.Core().Scope(cmd.Context(), core.Operator(), tenant.Slug(slug), "cli"); err != nil {
				return explain(err)
			}
		}
		return fn(op)
	})
}

// tenantKeyEnv names the variable holding a tenant's credential, with which
// the commands on a tenant's users and API keys act instead of as the
// operator.
const tenantKeyEnv = "BULKHEAD_TENANT_KEY"

// tenantCredentialHelp explains, in the help of key and user, with whose
// authority they act.
const tenantCredentialHelp = "These commands act as the platform operator, who creates a tenant's first users and API keys\n" +
	"(of any role) but holds no permission on them beyond that: it neither lists nor changes nor revokes\n" +
	"them (user list works while a break-glass grant lets it read the tenant). With " + tenantKeyEnv + "\n" +
	"set to an API key or access token of the tenant, they act as that credential instead, exactly as\n" +
	"the API would: on its own tenant only, within its role, and audited as its."

// inTenant runs fn in a scope on the tenant slug: that of the credential in
// BULKHEAD_TENANT_KEY (an API key or access token of the tenant) when it is
// set, so that the command may do exactly what the API lets that
// credential do, and is audited as its; else the operator's, which creates
// a tenant's users and keys but holds no permission on them beyond that
// (see package access), unless a break-glass grant lets it read.
func (o *options) inTenant(cmd *cobra.Command, slug string, fn func(sc *core.Scope) error) error {
	if o.tenantKey == "" {
		return o.asOperator(cmd, slug, func(op *operator) error {
			err := fn(op.sc)
			var ce *core.Error
			if errors.As(err, &ce) && ce.Kind == core.KindForbidden {
				return fmt.Errorf("%w (to act as a user or API key of tenant %s, put its credential in %s)", err, slug, tenantKeyEnv)
			}
			return err
		})
	}
	return o.withApp(func(app *bulkhead.App) error {
		p, err := app.Core().Authenticate(cmd.Context(), o.tenantKey)
		if err != nil {
			return fmt.Errorf("%s: %w", tenantKeyEnv, err)
		}
		sc, err := app.Core().Scope(cmd.Context(), p, tenant.Slug(slug), "cli")
		if err != nil {
			return explain(err)
		}
		return fn(sc)
	})
}
