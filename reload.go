package bulkhead

import (
	"errors"
	"time"
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

// reloadKeysEvery re-reads the token signing keys every interval until the
// returned func is called, so that a rotation made through another node
// applies here too.
func (a *App) reloadKeysEvery(interval time.Duration) (stop func()) {
	done := make(chan struct{})
	stopped := make(chan struct{})
	go func() {
		defer close(stopped)
		t := time.NewTicker(interval)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-t.C:
				if err := a.core.ReloadSigningKeys(); err != nil {
					a.log.Error("token signing keys not reloaded; keeping the current ones", "err", err)
				}
			}
		}
	}()
	return func() { close(done); <-stopped }
}
