// Package keyring holds the platform's secret keys: the Ed25519 keys that
// sign access tokens, audit checkpoints and export archives, and the MAC keys for API key
// hashes and pagination cursors. They live in files of mode 0600 in the data
// directory and are generated on first start. The token signing key is
// versioned and rotated (see LoadSigningKeys and RotateSigningKey).
//
// It also holds envelope encryption's key-encryption side: the platform KEK
// and the KMS interface, with the Local implementation (per-tenant keys in
// files outside the database, sealed by the KEK) and Vault Transit, which
// wrap and unwrap tenants' data keys and destroy a tenant's key to
// crypto-shred it.
package keyring

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
)

// Keyring is the set of platform keys. Its fields are read-only after Load.
type Keyring struct {
	// TokenKey signs access tokens: the current signing key when Load ran
	// (see LoadSigningKeys for the versions and their rotation).
	TokenKey ed25519.PrivateKey
	// AuditKey signs audit checkpoints. It is kept apart from the database
	// so that write access to the database cannot forge a checkpoint.
	AuditKey ed25519.PrivateKey
	// ExportKey signs tenants' export archives (package archive), so that
	// a restore accepts only archives this platform made.
	ExportKey ed25519.PrivateKey
	// APIKeyMAC keys the hash under which API keys are stored.
	APIKeyMAC []byte
	// CursorMAC authenticates pagination cursors.
	CursorMAC []byte
	// Dir is the directory the keys were loaded from, where rotated token
	// signing keys appear; empty for a Keyring not made by Load.
	Dir string
}

// Load reads the keys from dir, creating any that are missing. dir is created
// with mode 0700 if needed.
func Load(dir string) (*Keyring, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("create key directory: %w", err)
	}
	k := Keyring{Dir: dir}
	// The current token signing key: the highest version, or version 1,
	// created, on a directory that has none (once rotated, version 1 may
	// have been retired and deleted; it is not made again).
	signing, err := readSigningKeys(dir)
	if err != nil {
		return nil, err
	}
	if len(signing) > 0 {
		k.TokenKey = signing[len(signing)-1].Key
	} else if k.TokenKey, err = loadEd25519(filepath.Join(dir, legacySigningFile)); err != nil {
		return nil, err
	}
	if k.AuditKey, err = loadEd25519(filepath.Join(dir, "audit-signing.key")); err != nil {
		return nil, err
	}
	if k.ExportKey, err = loadEd25519(filepath.Join(dir, "export-signing.key")); err != nil {
		return nil, err
	}
	if k.APIKeyMAC, err = loadSecret(filepath.Join(dir, "api-key-mac.key"), 32); err != nil {
		return nil, err
	}
	if k.CursorMAC, err = loadSecret(filepath.Join(dir, "cursor-mac.key"), 32); err != nil {
		return nil, err
	}
	return &k, nil
}

// KeyID names a public key: the first 8 bytes of its SHA-256, in hex.
func KeyID(pub ed25519.PublicKey) string {
	sum := sha256.Sum256(pub)
	return hex.EncodeToString(sum[:8])
}

func loadEd25519(path string) (ed25519.PrivateKey, error) {
	seed, err := loadSecret(path, ed25519.SeedSize)
	if err != nil {
		return nil, err
	}
	return ed25519.NewKeyFromSeed(seed), nil
}

// loadSecret returns the n random bytes stored hex-encoded at path, creating
// the file if it does not exist.
func loadSecret(path string, n int) ([]byte, error) {
	b, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		secret := make([]byte, n)
		if _, err := rand.Read(secret); err != nil {
			return nil, err
		}
		f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
		if errors.Is(err, fs.ErrExist) { // another process won the race
			return loadSecret(path, n)
		}
		if err != nil {
			return nil, fmt.Errorf("create %s: %w", filepath.Base(path), err)
		}
		if _, err := f.WriteString(hex.EncodeToString(secret) + "\n"); err != nil {
			f.Close()
			return nil, fmt.Errorf("write %s: %w", filepath.Base(path), err)
		}
		if err := f.Sync(); err != nil {
			f.Close()
			return nil, fmt.Errorf("sync %s: %w", filepath.Base(path), err)
		}
		return secret, f.Close()
	}
	if err != nil {
		return nil, fmt.Errorf("read %s: %w", filepath.Base(path), err)
	}
	secret := make([]byte, n)
	if got, err := hex.Decode(secret, trimNewline(b)); err != nil || got != n {
		return nil, fmt.Errorf("%s is not %d hex-encoded bytes", filepath.Base(path), n)
	}
	return secret, nil
}

func trimNewline(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == '\r') {
		b = b[:len(b)-1]
	}
	return b
}
