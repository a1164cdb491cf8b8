package cli

import (
	"context"
	"strings"
	"testing"

	"github.com/bulkheadhq/bulkhead/store/pgstore"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
)

func TestUserOf(t *testing.T) {
	for url, want := range map[string]string{
		"postgres://bulkhead_app:secret@127.0.0.1:5432/bulkhead": "bulkhead_app",
		"postgresql://app@db.internal/bulkhead?sslmode=require":  "app",
		"postgres://app%40corp:pw@host/db":                       "app@corp",
		"postgres://127.0.0.1:5432/bulkhead":                     "",
		"postgres:///bulkhead?host=/run/postgresql":              "",
		"": "",
	} {
		if got := userOf(url); got != want {
			t.Errorf("userOf(%q) = %q, want %q", url, got, want)
		}
	}
}

// migrate grants the application role the server connects as: the user of
// --database, unless --app-role names another.
func TestMigrateAppRole(t *testing.T) {
	db := pgtest.New(t, t)
	dir := t.TempDir()
	t.Setenv("BULKHEAD_ADMIN_TOKEN", "")

	// --app-role still wins: a role that does not exist fails.
	code, _, errOut := run(t, dir, "migrate", "--database", db.AppURL(t), "--owner-url", db.OwnerURL(t), "--app-role", "bh_no_such_role")
	if code == 0 || !strings.Contains(errOut, "bh_no_such_role") {
		t.Errorf("migrate --app-role bh_no_such_role = exit %d, stderr %q; want a failure naming the role", code, errOut)
	}
	// A URL without a user names no role.
	noUser := strings.Replace(db.AppURL(t), db.App+":"+db.Password+"@", "", 1)
	if code, _, errOut := run(t, dir, "migrate", "--database", noUser, "--owner-url", db.OwnerURL(t)); code == 0 || !strings.Contains(errOut, "--app-role") {
		t.Errorf("migrate with a --database of no user = exit %d, stderr %q; want a failure asking for --app-role", code, errOut)
	}

	out := mustRun(t, dir, "migrate", "--database", db.AppURL(t), "--owner-url", db.OwnerURL(t))
	if !strings.Contains(out, "migrated") {
		t.Errorf("migrate printed %q", out)
	}
	// Open refuses an application role that lacks what migrate grants.
	st, err := pgstore.Open(context.Background(), db.AppURL(t), nil)
	if err != nil {
		t.Fatalf("open the store as the --database user after migrate: %v", err)
	}
	st.Close()
}
