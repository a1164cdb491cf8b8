package keyring

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"net/http"
	"strings"

	vault "github.com/hashicorp/vault/api"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// VaultConfig configures a Vault KMS.
type VaultConfig struct {
	// Address is Vault's URL (BULKHEAD_VAULT_ADDR, else VAULT_ADDR).
	// Required.
	Address string
	// Token authenticates to Vault (VAULT_TOKEN). Required. Its policy
	// needs create, read and update on <Mount>/keys/bulkhead-*,
	// <Mount>/encrypt/bulkhead-*, <Mount>/decrypt/bulkhead-* and
	// <Mount>/rewrap/bulkhead-*, plus delete on <Mount>/keys/bulkhead-*
	// for crypto-shredding.
	Token string
	// Mount is the Transit secrets engine's mount path. Defaults to
	// "transit".
	Mount string
	// KeyPrefix starts every tenant key's name, followed by the tenant's
	// ID. Defaults to "bulkhead-".
	KeyPrefix string
	// HTTPClient, if set, carries the requests (tests, custom TLS).
	HTTPClient *http.Client
}

// Vault is a KMS backed by HashiCorp Vault's Transit secrets engine: one
// transit key (aes256-gcm96) per tenant, named KeyPrefix+tenant ID. A data
// key is wrapped by transit encrypt with the associated data bound in;
// Vault never lets the transit key itself out. RotateKEK rotates the
// transit keys and Rewrap re-encrypts under their newest version;
// DestroyKey allows the key's deletion and deletes it.
type Vault struct {
	c      *vault.Client
	mount  string
	prefix string
}

var _ KMS = (*Vault)(nil)

// OpenVault returns a Vault KMS. It does not contact Vault: an unreachable
// Vault makes each operation fail with ErrUnavailable instead.
func OpenVault(cfg VaultConfig) (*Vault, error) {
	if cfg.Address == "" || cfg.Token == "" {
		return nil, errors.New("keyring: the Vault KMS needs an address and a token")
	}
	vc := vault.DefaultConfig()
	vc.Address = cfg.Address
	vc.MaxRetries = 1
	if cfg.HTTPClient != nil {
		vc.HttpClient = cfg.HTTPClient
	}
	c, err := vault.NewClient(vc)
	if err != nil {
		return nil, fmt.Errorf("keyring: vault client: %w", err)
	}
	c.SetToken(cfg.Token)
	v := &Vault{c: c, mount: strings.Trim(cfg.Mount, "/"), prefix: cfg.KeyPrefix}
	if v.mount == "" {
		v.mount = "transit"
	}
	if v.prefix == "" {
		v.prefix = "bulkhead-"
	}
	return v, nil
}

// Name returns "vault".
func (v *Vault) Name() string { return "vault" }

func (v *Vault) path(op string, tid tenant.ID) (string, error) {
	if _, ok := tid.Bytes(); !ok {
		return "", fmt.Errorf("keyring: tenant id %q is not canonical", tid)
	}
	return v.mount + "/" + op + "/" + v.prefix + string(tid), nil
}

// vaultError classifies a Vault client error: transport failures and 5xx
// answers (sealed, standby, overloaded) are ErrUnavailable; a missing key
// is ErrKeyNotFound; a refused decryption is ErrOpen.
func vaultError(tid tenant.ID, what string, err error) error {
	if err == nil {
		return nil
	}
	var re *vault.ResponseError
	if errors.As(err, &re) {
		msg := strings.Join(re.Errors, "; ")
		switch {
		case re.StatusCode >= 500 || re.StatusCode == http.StatusTooManyRequests:
			return fmt.Errorf("%w: vault %s for tenant %s: %s", ErrUnavailable, what, tid, msg)
		case re.StatusCode == http.StatusNotFound || strings.Contains(msg, "key not found") || strings.Contains(msg, "no existing key"):
			return fmt.Errorf("vault %s for tenant %s: %w", what, tid, ErrKeyNotFound)
		case re.StatusCode == http.StatusForbidden:
			return fmt.Errorf("%w: vault %s for tenant %s: permission denied", ErrUnavailable, what, tid)
		case re.StatusCode == http.StatusBadRequest && strings.Contains(msg, "decrypt"):
			return fmt.Errorf("vault %s for tenant %s: %w", what, tid, ErrOpen)
		}
		return fmt.Errorf("vault %s for tenant %s: %s (status %d)", what, tid, msg, re.StatusCode)
	}
	return fmt.Errorf("%w: vault %s for tenant %s: %v", ErrUnavailable, what, tid, err)
}

func (v *Vault) write(ctx context.Context, tid tenant.ID, op, what string, body map[string]any) (*vault.Secret, error) {
	p, err := v.path(op, tid)
	if err != nil {
		return nil, err
	}
	s, err := v.c.Logical().WriteWithContext(ctx, p, body)
	return s, vaultError(tid, what, err)
}

// CreateKey creates the tenant's transit key (Vault keeps an existing one
// as it is).
func (v *Vault) CreateKey(ctx context.Context, tid tenant.ID) error {
	_, err := v.write(ctx, tid, "keys", "create key", map[string]any{"type": "aes256-gcm96"})
	return err
}

func str(s *vault.Secret, field string) (string, bool) {
	if s == nil || s.Data == nil {
		return "", false
	}
	out, ok := s.Data[field].(string)
	return out, ok && out != ""
}

// Wrap encrypts dek with transit encrypt, aad as associated data.
func (v *Vault) Wrap(ctx context.Context, tid tenant.ID, dek, aad []byte) ([]byte, error) {
	s, err := v.write(ctx, tid, "encrypt", "encrypt", map[string]any{
		"plaintext":       base64.StdEncoding.EncodeToString(dek),
		"associated_data": base64.StdEncoding.EncodeToString(dekAAD(tid, aad)),
	})
	if err != nil {
		return nil, err
	}
	ct, ok := str(s, "ciphertext")
	if !ok {
		return nil, fmt.Errorf("vault encrypt for tenant %s: no ciphertext in the answer", tid)
	}
	return []byte(ct), nil
}

// Unwrap decrypts with transit decrypt.
func (v *Vault) Unwrap(ctx context.Context, tid tenant.ID, wrapped, aad []byte) ([]byte, error) {
	s, err := v.write(ctx, tid, "decrypt", "decrypt", map[string]any{
		"ciphertext":      string(wrapped),
		"associated_data": base64.StdEncoding.EncodeToString(dekAAD(tid, aad)),
	})
	if err != nil {
		return nil, err
	}
	pt, ok := str(s, "plaintext")
	if !ok {
		return nil, fmt.Errorf("vault decrypt for tenant %s: no plaintext in the answer", tid)
	}
	dek, err := base64.StdEncoding.DecodeString(pt)
	if err != nil {
		return nil, fmt.Errorf("vault decrypt for tenant %s: %w", tid, err)
	}
	return dek, nil
}

// Rewrap re-encrypts with transit rewrap, under the key's newest version;
// the plaintext never leaves Vault.
func (v *Vault) Rewrap(ctx context.Context, tid tenant.ID, wrapped, aad []byte) ([]byte, error) {
	s, err := v.write(ctx, tid, "rewrap", "rewrap", map[string]any{
		"ciphertext":      string(wrapped),
		"associated_data": base64.StdEncoding.EncodeToString(dekAAD(tid, aad)),
	})
	if err != nil {
		return nil, err
	}
	ct, ok := str(s, "ciphertext")
	if !ok {
		return nil, fmt.Errorf("vault rewrap for tenant %s: no ciphertext in the answer", tid)
	}
	return []byte(ct), nil
}

// RotateKEK rotates each tenant's transit key.
func (v *Vault) RotateKEK(ctx context.Context, tenants []tenant.ID) error {
	for _, tid := range tenants {
		p, err := v.path("keys", tid)
		if err != nil {
			return err
		}
		if _, err := v.c.Logical().WriteWithContext(ctx, p+"/rotate", nil); err != nil {
			return vaultError(tid, "rotate key", err)
		}
	}
	return nil
}

// DestroyKey allows the deletion of the tenant's transit key and deletes
// it: every version goes, and nothing it encrypted can be decrypted again.
func (v *Vault) DestroyKey(ctx context.Context, tid tenant.ID) error {
	p, err := v.path("keys", tid)
	if err != nil {
		return err
	}
	if _, err := v.c.Logical().WriteWithContext(ctx, p+"/config", map[string]any{"deletion_allowed": true}); err != nil {
		if err := vaultError(tid, "allow deletion", err); errors.Is(err, ErrKeyNotFound) {
			return nil
		} else if err != nil {
			return err
		}
	}
	if _, err := v.c.Logical().DeleteWithContext(ctx, p); err != nil {
		if err := vaultError(tid, "delete key", err); !errors.Is(err, ErrKeyNotFound) {
			return err
		}
	}
	return nil
}
