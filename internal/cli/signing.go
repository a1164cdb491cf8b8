package cli

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/bulkheadhq/bulkhead"
	"github.com/bulkheadhq/bulkhead/internal/auth"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
)

// NewRotateSigning returns the command "keys rotate-signing", which makes a
// new token signing key current in the data directory's keys.
func NewRotateSigning(o *options) *cobra.Command {
	return &cobra.Command{
		Use:   "rotate-signing",
		Short: "Make a new access-token signing key current",
		Long: "rotate-signing writes a new Ed25519 token signing key into <data>/keys and makes it the one that\n" +
			"signs. Servers sharing the directory pick it up within seconds (or at once on SIGHUP) without a\n" +
			"restart. The previous keys keep verifying, and stay in GET /.well-known/jwks.json, until every\n" +
			"token they signed has expired (the access-token lifetime plus " + core.SigningKeyGrace.String() + "), and are\n" +
			"deleted by the first rotation after that.",
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			dir := filepath.Join(o.data, "keys")
			if _, err := os.Stat(dir); errors.Is(err, fs.ErrNotExist) {
				// Not a new key directory beside the platform's.
				return fmt.Errorf("there are no keys in %s: name the platform's data directory with --data (env BULKHEAD_DATA)", dir)
			}
			if _, err := keyring.Load(dir); err != nil { // creates version 1 on a new directory
				return err
			}
			k, dropped, err := keyring.RotateSigningKey(dir, time.Now(), core.SigningKeyKeep(auth.DefaultAccessTokenTTL))
			if err != nil {
				return err
			}
			return o.print(map[string]any{
				"version":         k.Version,
				"kid":             keyring.KeyID(k.Public()),
				"current_since":   k.Since.Format(time.RFC3339),
				"deleted_retired": dropped,
			})
		},
	}
}

// reloadOnHangup makes SIGHUP reload app's TLS certificate and token
// signing keys until the returned func is called.
func reloadOnHangup(app *bulkhead.App) (stop func()) {
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		for {
			select {
			case <-hup:
				_ = app.Reload() // it logs what failed
			case <-done:
				return
			}
		}
	}()
	return func() { signal.Stop(hup); close(done) }
}
