package keyring

import (
	"context"
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// KMS keeps one key-encryption key per tenant, outside the database, and
// wraps (encrypts) and unwraps that tenant's data keys with it. The
// database keeps only wrapped data keys and ciphertext, so destroying a
// tenant's key in the KMS makes every copy of the database, backups
// included, useless for that tenant's encrypted values (crypto-shredding).
//
// Implementations: Local (keys in files of the key directory, wrapped by
// the platform KEK) and Vault (one HashiCorp Vault Transit key per
// tenant). A cloud KMS plugs in the same way (see docs/keys.md). Every
// method is safe for concurrent use. Errors that mean the KMS cannot serve
// now (its KEK is missing or corrupt, the service is unreachable) wrap
// ErrUnavailable; a tenant key that does not exist gives ErrKeyNotFound.
type KMS interface {
	// Name says which implementation this is, for logs and answers
	// ("local", "vault").
	Name() string
	// CreateKey creates tid's key-encryption key unless it exists.
	CreateKey(ctx context.Context, tid tenant.ID) error
	// Wrap encrypts a data key under tid's key, bound to aad: Unwrap
	// succeeds only with the same tenant and aad.
	Wrap(ctx context.Context, tid tenant.ID, dek, aad []byte) ([]byte, error)
	// Unwrap reverses Wrap. It fails (never returning garbage) if wrapped
	// was altered, or wrapped for another tenant or aad.
	Unwrap(ctx context.Context, tid tenant.ID, wrapped, aad []byte) ([]byte, error)
	// Rewrap wraps again, under the newest version of whatever key wraps,
	// a value Wrap returned; the data key inside does not change.
	Rewrap(ctx context.Context, tid tenant.ID, wrapped, aad []byte) ([]byte, error)
	// RotateKEK makes a new version of the key(s) that wrap tenants' keys
	// (Local: the platform KEK, re-wrapping every tenant key file; Vault:
	// each of tenants' transit keys). Old versions keep unwrapping until
	// everything wrapped under them has been rewrapped.
	RotateKEK(ctx context.Context, tenants []tenant.ID) error
	// DestroyKey destroys tid's key for good: nothing it wrapped can be
	// unwrapped again, by anyone. Destroying a key that does not exist is
	// not an error.
	DestroyKey(ctx context.Context, tid tenant.ID) error
}

var (
	// ErrUnavailable says the KMS cannot serve now: the platform KEK is
	// missing or corrupt, or the service cannot be reached. Nothing is
	// sealed or opened in its absence.
	ErrUnavailable = errors.New("keyring: key management unavailable")
	// ErrKeyNotFound says the tenant has no key in the KMS (it was
	// destroyed, or never created).
	ErrKeyNotFound = errors.New("keyring: tenant key not found")
	// ErrOpen says a sealed value or wrapped key does not open: it was
	// altered, or sealed under another key or associated data.
	ErrOpen = errors.New("keyring: sealed value does not open")
)

// KeySize is the size of every symmetric key: AES-256.
const KeySize = 32

// NewKey returns a fresh random 256-bit key.
func NewKey() []byte {
	k := make([]byte, KeySize)
	if _, err := rand.Read(k); err != nil {
		panic(fmt.Sprintf("keyring: no randomness: %v", err)) // crypto/rand never fails on supported platforms
	}
	return k
}

// Seal encrypts plaintext with AES-256-GCM under key, binding aad, and
// returns nonce || ciphertext || tag.
func Seal(key, aad, plaintext []byte) ([]byte, error) {
	g, err := gcm(key)
	if err != nil {
		return nil, err
	}
	out := make([]byte, g.NonceSize(), g.NonceSize()+len(plaintext)+g.Overhead())
	if _, err := rand.Read(out); err != nil {
		return nil, err
	}
	return g.Seal(out, out, plaintext, aad), nil
}

// Open reverses Seal. It returns ErrOpen if sealed was altered or sealed
// under another key or aad.
func Open(key, aad, sealed []byte) ([]byte, error) {
	g, err := gcm(key)
	if err != nil {
		return nil, err
	}
	if len(sealed) < g.NonceSize()+g.Overhead() {
		return nil, ErrOpen
	}
	pt, err := g.Open(nil, sealed[:g.NonceSize()], sealed[g.NonceSize():], aad)
	if err != nil {
		return nil, ErrOpen
	}
	return pt, nil
}

// AEAD returns the AES-256-GCM AEAD of key, with the 12-byte nonces and
// 16-byte tags Seal and Open use; it is safe for concurrent use. Callers
// that seal or open many values under one key keep it instead of paying
// for the key schedule each time.
func AEAD(key []byte) (cipher.AEAD, error) { return gcm(key) }

func gcm(key []byte) (cipher.AEAD, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("keyring: key is %d bytes, want %d", len(key), KeySize)
	}
	b, err := aes.NewCipher(key)
	if err != nil {
		return nil, err
	}
	return cipher.NewGCM(b)
}
