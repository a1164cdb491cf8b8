package bulkhead

import (
	"errors"
)

// Reload re-reads what may change under a running server without a
// restart: the TLS certificate and key files, and the token signing keys
// of DataDir/keys. What fails to load is logged and the previous version
// kept; the returned error joins those failures. The command line calls it
// on SIGHUP. It is safe to call concurrently with serving.
func (a *App) Reload() error {
	var errs []error
	if a.certs != nil {
		errs = append(errs, a.certs.reload())
	}
	if err := a.core.ReloadSigningKeys(); err != nil {
		a.log.Error("token signing keys not reloaded; keeping the current ones", "err", err)
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}
