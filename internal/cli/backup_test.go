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

// TestBackupRestoreCommand restores a backup with the command line into a
// fresh data directory that holds the platform's keys, and finds the
// tenants and verifying audit chains there; it refuses a directory without
// keys or with other keys, and a data directory that holds a store unless
// --force, which moves the old files aside.
func TestBackupRestoreCommand(t *testing.T) {
	t.Setenv("BULKHEAD_ADMIN_TOKEN", "")
	t.Setenv("BULKHEAD_DATABASE_URL", "")
	src := dataDir(t)
	mustRun(t, src, "tenant", "create", "--slug", "acme")
	mustRun(t, src, "tenant", "create", "--slug", "globex", "--isolation", "silo")
	mustRun(t, src, "key", "create", "--tenant", "globex")
	// Data keys for both tenants (a data and a blind-index key each),
	// wrapped by their KMS keys.
	mustRun(t, src, "keys", "rotate", "--tenant", "globex")
	mustRun(t, src, "keys", "rotate", "--tenant", "acme")
	out := filepath.Join(t.TempDir(), "backups")
	var m struct {
		Name  string
		Files []struct{ Path string }
	}
	if err := json.Unmarshal([]byte(mustRun(t, src, "backup", "--out", out)), &m); err != nil {
		t.Fatal(err)
	}

	// No keys: refused, and the reminder says what to restore first.
	empty := t.TempDir()
	code, _, errOut := run(t, empty, "backup", "restore", out, "latest")
	if code != 1 || !strings.Contains(errOut, "no audit key in") || !strings.Contains(errOut, "admin token") {
		t.Errorf("restore without keys = exit %d, stderr %q; want 1 asking for the keys", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(empty, "bulkhead.db")); err == nil {
		t.Error("restore without keys wrote bulkhead.db")
	}
	// Other keys (another platform's data directory): refused.
	other := t.TempDir()
	if err := os.CopyFS(filepath.Join(other, "keys"), os.DirFS(filepath.Join(dataDir(t), "keys"))); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = run(t, other, "backup", "restore", out, "latest")
	if code != 1 || !strings.Contains(errOut, "the keys are not this backup's") {
		t.Errorf("restore with other keys = exit %d, stderr %q; want 1 saying the keys are not the backup's", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(other, "bulkhead.db")); err == nil {
		t.Error("restore with other keys wrote bulkhead.db")
	}
	// The platform's signing keys but another KEK (a keys backup mixed up
	// with another platform's): the tenants' data keys do not open.
	stale := t.TempDir()
	if err := os.CopyFS(filepath.Join(stale, "keys"), os.DirFS(filepath.Join(src, "keys"))); err != nil {
		t.Fatal(err)
	}
	kek, err := os.ReadFile(filepath.Join(other, "keys", "kek.key"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(stale, "keys", "kek.key"), kek, 0o600); err != nil {
		t.Fatal(err)
	}
	code, _, errOut = run(t, stale, "backup", "restore", out, "latest")
	if code != 1 || !strings.Contains(errOut, "the keys are not this backup's") || !strings.Contains(errOut, "data key does not open") {
		t.Errorf("restore with another KEK = exit %d, stderr %q; want 1 saying the data keys do not open", code, errOut)
	}
	if _, err := os.Stat(filepath.Join(stale, "bulkhead.db")); err == nil {
		t.Error("restore with another KEK wrote bulkhead.db")
	}

	dst := t.TempDir()
	if err := os.CopyFS(filepath.Join(dst, "keys"), os.DirFS(filepath.Join(src, "keys"))); err != nil {
		t.Fatal(err)
	}
	var s struct {
		Name     string
		Store    string
		Tenants  int
		Silo     int `json:"silo_tenants"`
		Files    []string
		Replaced string
		Verified struct {
			OK          bool
			KeysChecked int `json:"keys_checked"`
		}
	}
	if err := json.Unmarshal([]byte(mustRun(t, dst, "backup", "restore", out, m.Name)), &s); err != nil {
		t.Fatal(err)
	}
	if s.Name != m.Name || s.Store != "sqlite" || s.Tenants != 2 || s.Silo != 1 || len(s.Files) != 3 || s.Replaced != "" || !s.Verified.OK || s.Verified.KeysChecked != 4 {
		t.Errorf("backup restore printed %+v", s)
	}
	for _, f := range []string{"bulkhead.db", "jobs.db", m.Files[1].Path} {
		if info, err := os.Stat(filepath.Join(dst, filepath.FromSlash(f))); err != nil || info.Mode() != 0o600 {
			t.Errorf("%s: %v, %v; want mode 0600", f, info, err)
		}
	}
	var tenants []struct{ Slug, Isolation string }
	json.Unmarshal([]byte(mustRun(t, dst, "tenant", "list")), &tenants)
	if len(tenants) != 2 {
		t.Errorf("tenant list of the restored store = %+v, want acme and globex", tenants)
	}
	for _, args := range [][]string{{"--platform"}, {"--tenant", "globex"}, {"--tenant", "acme"}} {
		var v struct {
			OK     bool
			Length int
		}
		json.Unmarshal([]byte(mustRun(t, dst, append([]string{"audit", "verify"}, args...)...)), &v)
		if !v.OK || v.Length == 0 {
			t.Errorf("audit verify %v of the restored store = %+v", args, v)
		}
	}

	// Again: the data directory holds a store now.
	code, _, errOut = run(t, dst, "backup", "restore", out, "latest")
	if code != 1 || !strings.Contains(errOut, "already holds a store") || !strings.Contains(errOut, "--force") {
		t.Errorf("restore onto a store = exit %d, stderr %q; want 1 naming --force", code, errOut)
	}
	if err := json.Unmarshal([]byte(mustRun(t, dst, "backup", "restore", "--force", out, "latest")), &s); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(filepath.Base(s.Replaced), "replaced-") || filepath.Dir(s.Replaced) != dst {
		t.Fatalf("restore --force printed replaced %q, want a directory replaced-<time> in %s", s.Replaced, dst)
	}
	for _, f := range []string{"bulkhead.db", "jobs.db", m.Files[1].Path} {
		if _, err := os.Stat(filepath.Join(s.Replaced, filepath.FromSlash(f))); err != nil {
			t.Errorf("the old %s was not moved aside: %v", f, err)
		}
	}
	mustRun(t, dst, "audit", "verify", "--platform")
}
