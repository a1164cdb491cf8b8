package cli

import (
	"github.com/spf13/cobra"
	"github.com/spf13/pflag"
)

// secretDefaults are the flags whose default, taken from the environment,
// may hold a credential: a database or Redis URL with a password, a token,
// a webhook or bucket URL. Their help does not show it.
var secretDefaults = map[string]bool{
	"database": true, "provision-url": true, "owner-url": true, "backup-postgres-url": true,
	"redis": true, "token": true, "security-events": true, "blob-url": true, "backup-dir": true,
}

// hideSecretDefaults keeps the values of secretDefaults out of the help of
// cmd and its subcommands; the flags still default to them.
func hideSecretDefaults(cmd *cobra.Command) {
	hide := func(f *pflag.Flag) {
		if secretDefaults[f.Name] {
			f.DefValue = ""
		}
	}
	cmd.Flags().VisitAll(hide)
	cmd.PersistentFlags().VisitAll(hide)
	for _, c := range cmd.Commands() {
		hideSecretDefaults(c)
	}
}
