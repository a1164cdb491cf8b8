package backup

import (
	"bytes"
	"cmp"
	"context"
	"crypto/ed25519"
	"encoding/hex"
	"errors"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime/debug"
	"strings"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/store/pgstore"
	"github.com/bulkheadhq/bulkhead/store/sqlitestore"
)

// DumpFile is the PostgreSQL dump of a backup, in pg_dump's custom format.
const DumpFile = "bulkhead.dump"

// JobsFile is the copy of an SQLite job queue's file in a backup.
const JobsFile = "jobs.db"

// Source is what Take backs up. Set exactly one of SQLitePath and
// PostgresURL.
type Source struct {
	// SQLitePath is the main database file of an SQLite store. The store
	// may be serving from this process or another.
	SQLitePath string
	// PostgresURL connects to the store's PostgreSQL database as a role
	// that sees every tenant's rows: a superuser, or a role with BYPASSRLS
	// and SELECT on the store's tables (row-level security is forced, so
	// not even the owner role will do).
	PostgresURL string
	// SQLiteJobsPath, if set, is the job queue's SQLite file, copied
	// after the store's files as JobsFile (skipped if it does not exist).
	SQLiteJobsPath string
	// PgDump is the pg_dump program. Defaults to "pg_dump" on PATH.
	PgDump string
	// AuditKey, if set, signs the manifest: the platform's audit signing
	// key, whose public key also verifies the chains' checkpoints.
	AuditKey ed25519.PrivateKey
	// Version is bulkhead's version, recorded in the manifest.
	Version string
	// NowFunc returns the current time. Defaults to time.Now.
	NowFunc func() time.Time
}

// Name returns the name of a backup taken at t: "bulkhead-" and t in UTC,
// which sorts in time order.
func Name(t time.Time) string {
	return "bulkhead-" + t.UTC().Format("20060102T150405.000Z")
}

// Take backs src up into a new directory dir/Name(now) and returns its
// manifest. A failed backup leaves no directory behind.
func Take(ctx context.Context, src *Source, dir string) (m *Manifest, err error) {
	if (src.SQLitePath == "") == (src.PostgresURL == "") {
		return nil, errors.New("backup: set exactly one of SQLitePath and PostgresURL")
	}
	now := time.Now
	if src.NowFunc != nil {
		now = src.NowFunc
	}
	start := now().UTC()
	m = &Manifest{Format: formatVersion, Name: Name(start), Time: start, Version: cmp.Or(src.Version, buildVersion())}
	out := filepath.Join(dir, m.Name)
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	if err := os.Mkdir(out, 0o700); err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	defer func() {
		if err != nil {
			os.RemoveAll(out)
		}
	}()
	if src.SQLitePath != "" {
		err = takeSQLite(ctx, src, out, m)
	} else {
		err = takePostgres(ctx, src, out, m)
	}
	if err != nil {
		return nil, fmt.Errorf("backup: %w", err)
	}
	for i := range m.Files {
		f := &m.Files[i]
		if f.Size, f.SHA256, err = hashFile(filepath.Join(out, filepath.FromSlash(f.Path))); err != nil {
			return nil, fmt.Errorf("backup: %w", err)
		}
	}
	m.Duration = Duration(now().Sub(start))
	if err := writeManifest(out, m, src.AuditKey); err != nil {
		return nil, fmt.Errorf("backup: write manifest: %w", err)
	}
	return m, nil
}

func takeSQLite(ctx context.Context, src *Source, out string, m *Manifest) error {
	m.Store = SQLite
	b, err := sqlitestore.BackupFiles(ctx, src.SQLitePath, out)
	if err != nil {
		return err
	}
	m.SchemaVersion = int64(b.SchemaVersion)
	for _, f := range b.Files {
		m.Files = append(m.Files, File{Path: f})
	}
	m.Platform = Chain{AuditSeq: b.Platform.AuditSeq, AuditHash: hex.EncodeToString(b.Platform.AuditHash)}
	for _, t := range b.Tenants {
		m.Tenants = append(m.Tenants, Tenant{ID: t.Tenant, Isolation: t.Isolation, Records: t.Records,
			Chain: Chain{AuditSeq: t.AuditSeq, AuditHash: hex.EncodeToString(t.AuditHash)}})
	}
	// The job queue last: a job enqueued with a write the store's copy
	// holds is then in the backup too (a job newer than the copy fails to
	// find what it works on, rather than a write losing its job).
	if src.SQLiteJobsPath != "" {
		if _, err := os.Stat(src.SQLiteJobsPath); err == nil {
			if err := sqlitestore.BackupFile(ctx, src.SQLiteJobsPath, filepath.Join(out, JobsFile)); err != nil {
				return err
			}
			m.Files = append(m.Files, File{Path: JobsFile})
		}
	}
	return nil
}

func takePostgres(ctx context.Context, src *Source, out string, m *Manifest) error {
	m.Store = Postgres
	pgDump := cmp.Or(src.PgDump, "pg_dump")
	version, err := exec.CommandContext(ctx, pgDump, "--version").Output()
	if err != nil {
		return fmt.Errorf("%s --version: %w", pgDump, err)
	}
	// The job queue's schema is in the same snapshot as the store's.
	return pgstore.WithSnapshot(ctx, src.PostgresURL, []string{jobs.Schema}, func(snap *pgstore.Snapshot) error {
		m.SchemaVersion = snap.SchemaVersion
		m.Platform = Chain{AuditSeq: snap.Platform.AuditSeq, AuditHash: hex.EncodeToString(snap.Platform.AuditHash)}
		for _, t := range snap.Tenants {
			m.Tenants = append(m.Tenants, Tenant{ID: t.Tenant, Isolation: t.Isolation, Records: t.Records,
				Chain: Chain{AuditSeq: t.AuditSeq, AuditHash: hex.EncodeToString(t.AuditHash)}})
		}
		args := []string{"--format=custom", "--snapshot=" + snap.ID, "--no-password", "--file=" + filepath.Join(out, DumpFile)}
		for _, s := range snap.Schemas {
			args = append(args, "--schema="+s)
		}
		// The URL goes last, and into the manifest without its password.
		cmd := exec.CommandContext(ctx, pgDump, append(args, "--dbname="+src.PostgresURL)...)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		if err := cmd.Run(); err != nil {
			return fmt.Errorf("pg_dump: %w: %s", err, strings.TrimSpace(stderr.String()))
		}
		m.PgDump = &PgDump{Version: strings.TrimSpace(string(version)), Snapshot: snap.ID, Schemas: snap.Schemas,
			Command: append(append([]string{pgDump}, args...), "--dbname="+redact(src.PostgresURL))}
		m.Files = append(m.Files, File{Path: DumpFile})
		return nil
	})
}

// buildVersion is the main module's version, as the build recorded it.
func buildVersion() string {
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}

// redact removes the password from a URL.
func redact(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		return "(unparsable URL)"
	}
	return u.Redacted()
}
