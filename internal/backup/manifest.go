package backup

import (
	"bytes"
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// Names of the files every backup holds beside its data.
const (
	// ManifestFile is the manifest, JSON.
	ManifestFile = "manifest.json"
	// SignatureFile is the hex Ed25519 signature of ManifestFile's bytes
	// by the platform's audit signing key.
	SignatureFile = "manifest.sig"
)

// Store kinds of Manifest.Store.
const (
	SQLite   = "sqlite"
	Postgres = "postgres"
)

// formatVersion is Manifest.Format: the layout of a backup.
const formatVersion = 1

// Manifest describes a backup. It is written last, so a backup without
// one is incomplete.
type Manifest struct {
	Format int    `json:"format"`
	Name   string `json:"name"`
	// Time is when the backup started.
	Time time.Time `json:"time"`
	// Store is SQLite or Postgres.
	Store string `json:"store"`
	// Version is bulkhead's version that took the backup.
	Version string `json:"version"`
	// SchemaVersion is the store's schema version (SQLite's user_version,
	// goose's version on PostgreSQL).
	SchemaVersion int64 `json:"schema_version"`
	// Files are the backup's data files with their sizes and SHA-256.
	Files []File `json:"files"`
	// Platform is the platform audit chain's head.
	Platform Chain `json:"platform"`
	// Tenants are every tenant's audit head and record count, as the
	// backup holds them.
	Tenants []Tenant `json:"tenants"`
	// PgDump is how the PostgreSQL dump was taken.
	PgDump *PgDump `json:"pg_dump,omitempty"`
	// AuditKey is the hex Ed25519 public key that verifies the audit
	// chains' checkpoints and SignatureFile; empty if the backup is not
	// signed.
	AuditKey string `json:"audit_key,omitempty"`
	// Duration is how long taking the backup took.
	Duration Duration `json:"duration"`
}

// File is one data file of a backup.
type File struct {
	// Path is relative to the backup's directory, with forward slashes.
	Path   string `json:"path"`
	Size   int64  `json:"size"`
	SHA256 string `json:"sha256"`
}

// Chain is an audit chain's head: its last entry's seq and hash (hex).
type Chain struct {
	AuditSeq  int64  `json:"audit_seq"`
	AuditHash string `json:"audit_hash,omitempty"`
}

// Tenant is one tenant in a backup.
type Tenant struct {
	ID        tenant.ID        `json:"id"`
	Isolation tenant.Isolation `json:"isolation"`
	Chain
	Records int64 `json:"records"`
}

// PgDump records the pg_dump run of a PostgreSQL backup.
type PgDump struct {
	// Version is pg_dump --version's output.
	Version string `json:"version"`
	// Command is the command line, with the URL's password removed.
	Command []string `json:"command"`
	// Snapshot is the exported snapshot the dump and the manifest's heads
	// and counts were read in.
	Snapshot string `json:"snapshot"`
	// Schemas are the dumped schemas.
	Schemas []string `json:"schemas"`
}

// Duration is a time.Duration that reads as "1.5s" in JSON.
type Duration time.Duration

func (d Duration) MarshalJSON() ([]byte, error) { return json.Marshal(time.Duration(d).String()) }

func (d *Duration) UnmarshalJSON(b []byte) error {
	var s string
	if err := json.Unmarshal(b, &s); err != nil {
		return err
	}
	v, err := time.ParseDuration(s)
	*d = Duration(v)
	return err
}

// Size is the sum of the data files' sizes.
func (m *Manifest) Size() int64 {
	var n int64
	for _, f := range m.Files {
		n += f.Size
	}
	return n
}

// hashFile returns path's size and hex SHA-256.
func hashFile(path string) (int64, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return 0, "", err
	}
	defer f.Close()
	h := sha256.New()
	n, err := io.Copy(h, f)
	return n, hex.EncodeToString(h.Sum(nil)), err
}

// writeManifest writes m into dir, signed by key unless key is nil.
func writeManifest(dir string, m *Manifest, key ed25519.PrivateKey) error {
	if key != nil {
		m.AuditKey = hex.EncodeToString(key.Public().(ed25519.PublicKey))
	}
	b, err := json.MarshalIndent(m, "", "  ")
	if err != nil {
		return err
	}
	b = append(b, '\n')
	if key != nil {
		sig := hex.EncodeToString(ed25519.Sign(key, b)) + "\n"
		if err := os.WriteFile(filepath.Join(dir, SignatureFile), []byte(sig), 0o600); err != nil {
			return err
		}
	}
	return os.WriteFile(filepath.Join(dir, ManifestFile), b, 0o600)
}

// readManifest reads dir's manifest and checks its signature: against
// trusted if given (the manifest's key must then be trusted), else against
// the key the manifest names. It returns the problems found with the
// signature; an unreadable manifest is an error.
func readManifest(dir string, trusted ed25519.PublicKey) (*Manifest, []string, error) {
	b, err := os.ReadFile(filepath.Join(dir, ManifestFile))
	if err != nil {
		return nil, nil, fmt.Errorf("read manifest: %w", err)
	}
	var m Manifest
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&m); err != nil {
		return nil, nil, fmt.Errorf("manifest is not valid: %w", err)
	}
	if m.Format != formatVersion {
		return nil, nil, fmt.Errorf("manifest format %d is not supported (this build reads %d)", m.Format, formatVersion)
	}
	var problems []string
	sig, err := os.ReadFile(filepath.Join(dir, SignatureFile))
	switch {
	case errors.Is(err, fs.ErrNotExist) && m.AuditKey == "" && trusted == nil:
		// Unsigned, and nothing says it should be.
	case errors.Is(err, fs.ErrNotExist):
		problems = append(problems, "manifest: the signature file "+SignatureFile+" is missing")
	case err != nil:
		return nil, nil, fmt.Errorf("read manifest signature: %w", err)
	default:
		pub, perr := hex.DecodeString(m.AuditKey)
		s, serr := hex.DecodeString(string(bytes.TrimSpace(sig)))
		switch {
		case perr != nil || len(pub) != ed25519.PublicKeySize:
			problems = append(problems, "manifest: audit_key is not an Ed25519 public key")
		case trusted != nil && !bytes.Equal(pub, trusted):
			problems = append(problems, "manifest: signed by another key than the platform's audit key")
		case serr != nil || !ed25519.Verify(pub, b, s):
			problems = append(problems, "manifest: the signature does not verify (the manifest was altered)")
		}
	}
	return &m, problems, nil
}
