package breaker

import (
	"context"
	"errors"
	"fmt"

	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// KMS is a keyring.KMS whose every call goes through one breaker (Vault
// Transit is one destination): while it is open, calls fail at once with
// an error wrapping keyring.ErrUnavailable (503 keys_unavailable). Only
// keyring.ErrUnavailable errors count as failures; a missing key does
// not, nor a context its caller ended.
type KMS struct {
	keyring.KMS
	b *Breaker
}

// NewKMS wraps k in a breaker made with s (s.IsFailure is set by NewKMS).
func NewKMS(k keyring.KMS, s Settings) *KMS {
	s.IsFailure = func(err error) bool { return errors.Is(err, keyring.ErrUnavailable) }
	return &KMS{KMS: k, b: New(s)}
}

func (k *KMS) do(fn func() error) error {
	err := k.b.Do(fn)
	var open *OpenError
	if errors.As(err, &open) {
		return fmt.Errorf("%w: %w", keyring.ErrUnavailable, err)
	}
	return err
}

func (k *KMS) bytes(fn func() ([]byte, error)) (out []byte, err error) {
	err = k.do(func() (err error) {
		out, err = fn()
		return err
	})
	return out, err
}

// CreateKey runs keyring.KMS.CreateKey through the breaker.
func (k *KMS) CreateKey(ctx context.Context, tid tenant.ID) error {
	return k.do(func() error { return k.KMS.CreateKey(ctx, tid) })
}

// Wrap runs keyring.KMS.Wrap through the breaker.
func (k *KMS) Wrap(ctx context.Context, tid tenant.ID, dek, aad []byte) ([]byte, error) {
	return k.bytes(func() ([]byte, error) { return k.KMS.Wrap(ctx, tid, dek, aad) })
}

// Unwrap runs keyring.KMS.Unwrap through the breaker.
func (k *KMS) Unwrap(ctx context.Context, tid tenant.ID, wrapped, aad []byte) ([]byte, error) {
	return k.bytes(func() ([]byte, error) { return k.KMS.Unwrap(ctx, tid, wrapped, aad) })
}

// Rewrap runs keyring.KMS.Rewrap through the breaker.
func (k *KMS) Rewrap(ctx context.Context, tid tenant.ID, wrapped, aad []byte) ([]byte, error) {
	return k.bytes(func() ([]byte, error) { return k.KMS.Rewrap(ctx, tid, wrapped, aad) })
}

// RotateKEK runs keyring.KMS.RotateKEK through the breaker.
func (k *KMS) RotateKEK(ctx context.Context, tenants []tenant.ID) error {
	return k.do(func() error { return k.KMS.RotateKEK(ctx, tenants) })
}

// DestroyKey runs keyring.KMS.DestroyKey through the breaker.
func (k *KMS) DestroyKey(ctx context.Context, tid tenant.ID) error {
	return k.do(func() error { return k.KMS.DestroyKey(ctx, tid) })
}
