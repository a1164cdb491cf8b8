package breaker

import (
	"context"
	"errors"
	"log/slog"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// fakeKMS fails every Unwrap with err and counts the calls.
type fakeKMS struct {
	keyring.KMS
	err   error
	calls int
}

func (f *fakeKMS) Unwrap(context.Context, tenant.ID, []byte, []byte) ([]byte, error) {
	f.calls++
	return nil, f.err
}

func TestKMSBreaker(t *testing.T) {
	ctx := context.Background()
	// A missing key is the tenant's, not Vault's: it never opens.
	missing := &fakeKMS{err: keyring.ErrKeyNotFound}
	k := NewKMS(missing, Settings{Name: "vault", Timeout: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	for range 20 {
		k.Unwrap(ctx, "t", nil, nil)
	}
	if missing.calls != 20 || k.b.State() != Closed {
		t.Errorf("missing keys: %d calls, breaker %s; want 20 and closed", missing.calls, k.b.State())
	}
	// Vault unreachable: five faults open it, and then calls fail at once
	// as keyring.ErrUnavailable (503 keys_unavailable).
	down := &fakeKMS{err: keyring.ErrUnavailable}
	k = NewKMS(down, Settings{Name: "vault", Timeout: time.Hour, Logger: slog.New(slog.DiscardHandler)})
	for range 5 {
		k.Unwrap(ctx, "t", nil, nil)
	}
	_, err := k.Unwrap(ctx, "t", nil, nil)
	var open *OpenError
	if down.calls != 5 || !errors.Is(err, keyring.ErrUnavailable) || !errors.As(err, &open) {
		t.Errorf("Vault down: %d calls, then %v; want 5 calls, then an open breaker's ErrUnavailable", down.calls, err)
	}
}
