package cli

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
)

// TestBackupRestorePostgres backs up a PostgreSQL platform with the command
// line and restores it into a fresh database made by the test (dropped
// afterwards), where the tenants and chains are found; a second restore
// into it is refused without --force and drops the store's schemas with it.
func TestBackupRestorePostgres(t *testing.T) {
	t.Setenv("BULKHEAD_ADMIN_TOKEN", "")
	t.Setenv("BULKHEAD_DATABASE_URL", "")
	db := pgtest.New(t, t)
	dir := t.TempDir()
	if _, err := keyring.Load(filepath.Join(dir, "keys")); err != nil { // as serve makes them
		t.Fatal(err)
	}
	app := []string{"--database", db.AppURL(t), "--provision-url", db.OwnerURL(t)}
	mustRun(t, dir, append([]string{"migrate", "--owner-url", db.OwnerURL(t)}, app...)...)
	mustRun(t, dir, append([]string{"tenant", "create", "--slug", "acme"}, app...)...)
	mustRun(t, dir, append([]string{"tenant", "create", "--slug", "globex", "--isolation", "silo"}, app...)...)
	out := filepath.Join(t.TempDir(), "backups")
	mustRun(t, dir, append([]string{"backup", "--out", out, "--backup-postgres-url", db.URL(t, "")}, app...)...)

	ctx := context.Background()
	suffix := make([]byte, 6)
	rand.Read(suffix)
	name := "bulkhead_restore_" + hex.EncodeToString(suffix)
	admin, err := pgx.Connect(ctx, db.Super)
	if err != nil {
		t.Fatal(err)
	}
	pgtest.Exec(t, db.Super, "CREATE DATABASE "+pgx.Identifier{name}.Sanitize(),
		"GRANT CONNECT ON DATABASE "+pgx.Identifier{name}.Sanitize()+" TO "+pgx.Identifier{db.App}.Sanitize())
	t.Cleanup(func() {
		if _, err := admin.Exec(context.Background(), "DROP DATABASE IF EXISTS "+pgx.Identifier{name}.Sanitize()+" WITH (FORCE)"); err != nil {
			t.Error(err)
		}
		admin.Close(context.Background())
	})
	target := func(raw string) string {
		u, _ := url.Parse(raw)
		u.Path = "/" + name
		return u.String()
	}
	// The keys of the platform, in a data directory of their own.
	dst := t.TempDir()
	if err := os.CopyFS(filepath.Join(dst, "keys"), os.DirFS(filepath.Join(dir, "keys"))); err != nil {
		t.Fatal(err)
	}
	restore := []string{"backup", "restore", "--database", target(db.AppURL(t)), "--backup-postgres-url", target(db.Super), out, "latest"}
	var s struct {
		Store          string
		Tenants        int
		Silo           int      `json:"silo_tenants"`
		DroppedSchemas []string `json:"dropped_schemas"`
	}
	json.Unmarshal([]byte(mustRun(t, dst, restore...)), &s)
	if s.Store != "postgres" || s.Tenants != 2 || s.Silo != 1 || len(s.DroppedSchemas) != 0 {
		t.Errorf("backup restore printed %+v", s)
	}
	var tenants []struct{ Slug string }
	json.Unmarshal([]byte(mustRun(t, dst, "tenant", "list", "--database", target(db.AppURL(t)))), &tenants)
	if len(tenants) != 2 {
		t.Errorf("tenant list of the restored database = %+v, want acme and globex", tenants)
	}
	mustRun(t, dst, "audit", "verify", "--platform", "--database", target(db.AppURL(t)))

	code, _, errOut := run(t, dst, restore...)
	if code != 1 || !strings.Contains(errOut, "already holds a store") || !strings.Contains(errOut, "bulkhead_keys") {
		t.Errorf("restore into a database that holds the store = exit %d, stderr %q; want 1 naming its schemas", code, errOut)
	}
	json.Unmarshal([]byte(mustRun(t, dst, append(restore, "--force")...)), &s)
	if len(s.DroppedSchemas) != 4 { // bulkhead, bulkhead_jobs, bulkhead_keys and the silo tenant's
		t.Errorf("backup restore --force dropped %v, want the store's schemas and the silo tenant's", s.DroppedSchemas)
	}
	// The superuser's URL must name the database restored into.
	code, _, errOut = run(t, dst, "backup", "restore", "--force", "--database", target(db.AppURL(t)), "--backup-postgres-url", db.Super, out, "latest")
	if code != 1 || !strings.Contains(errOut, "both must name the target") {
		t.Errorf("restore with URLs of two databases = exit %d, stderr %q; want 1", code, errOut)
	}
}
