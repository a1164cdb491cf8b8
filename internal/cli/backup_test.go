package cli

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBackupCommands backs up the embedded store with the command line,
// verifies the backup by name, as the latest, and by its directory, and
// checks that a damaged copy fails with exit status 1 and says why.
func TestBackupCommands(t *testing.T) {
	t.Setenv("BULKHEAD_ADMIN_TOKEN", "")
	t.Setenv("BULKHEAD_DATABASE_URL", "")
	dir := dataDir(t)
	mustRun(t, dir, "tenant", "create", "--slug", "acme")
	mustRun(t, dir, "tenant", "create", "--slug", "globex", "--isolation", "silo")
	out := filepath.Join(t.TempDir(), "backups")
	var m struct {
		Name     string
		Store    string
		AuditKey string `json:"audit_key"`
		Tenants  []struct{ ID string }
		Files    []struct{ Path string }
	}
	if err := json.Unmarshal([]byte(mustRun(t, dir, "backup", "--out", out)), &m); err != nil {
		t.Fatal(err)
	}
	// The main file, the silo tenant's and the job queue's.
	if m.Store != "sqlite" || len(m.Tenants) != 2 || len(m.Files) != 3 || m.Files[2].Path != "jobs.db" || m.AuditKey == "" {
		t.Fatalf("backup printed %+v, want a signed SQLite backup of 2 tenants in 3 files", m)
	}
	for _, args := range [][]string{{out, m.Name}, {out, "latest"}, {filepath.Join(out, m.Name)}} {
		var r struct {
			OK      bool
			Tenants int
		}
		json.Unmarshal([]byte(mustRun(t, dir, append([]string{"backup", "verify"}, args...)...)), &r)
		if !r.OK || r.Tenants != 2 {
			t.Errorf("backup verify %v printed %+v", args, r)
		}
	}
	silo := filepath.Join(out, m.Name, m.Files[1].Path)
	b, err := os.ReadFile(silo)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)/2] ^= 0xff
	if err := os.WriteFile(silo, b, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut := run(t, dir, "backup", "verify", out, m.Name)
	if code != 1 || !strings.Contains(errOut, "does not verify") || !strings.Contains(errOut, m.Files[1].Path+": SHA-256") {
		t.Errorf("backup verify of a damaged backup = exit %d, stderr %q; want 1 naming the file", code, errOut)
	}
}

// TestServeBackupFlags: a schedule without a destination is refused
// before anything starts.
func TestServeBackupFlags(t *testing.T) {
	t.Setenv("BULKHEAD_DATABASE_URL", "")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"serve", "--backup-every", "6h"}, "BackupDir (--backup-dir"},
		{[]string{"serve", "--backup-every", "soon"}, "--backup-every"},
		{[]string{"serve", "--backup-every", "6h", "--backup-dir", "x", "--backup-keep", "-1"}, "BackupKeep (--backup-keep, BULKHEAD_BACKUP_KEEP) must be >= 0"},
	} {
		code, _, errOut := run(t, t.TempDir(), tc.args...)
		if code != 1 || !strings.Contains(errOut, tc.want) {
			t.Errorf("bulkhead %v = exit %d, stderr %q; want 1 with %q", tc.args, code, errOut, tc.want)
		}
	}
}
