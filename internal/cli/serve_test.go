package cli

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// serve binds its address before it writes anything: on an address already
// in use it fails naming the address, and leaves the data directory without
// an operator token, keys or a database.
func TestServeBindsFirst(t *testing.T) {
	t.Setenv("BULKHEAD_ADMIN_TOKEN", "")
	t.Setenv("BULKHEAD_DATABASE_URL", "")
	busy, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	addr := busy.Addr().String()
	dir := filepath.Join(t.TempDir(), "data")

	code, _, errOut := run(t, dir, "serve", "--addr", addr)
	if code == 0 {
		t.Fatalf("serve on a port in use = exit 0")
	}
	if !strings.Contains(errOut, addr) || !strings.Contains(errOut, "--addr") {
		t.Errorf("serve on a port in use printed %q; want the address %s and the flag named", errOut, addr)
	}
	for _, name := range []string{"admin-token", "keys", "bulkhead.db", "jobs.db", "blobs"} {
		if _, err := os.Stat(filepath.Join(dir, name)); !os.IsNotExist(err) {
			t.Errorf("after a failed bind, %s exists in the data directory (stat: %v)", name, err)
		}
	}
	if _, err := os.Stat(dir); !os.IsNotExist(err) {
		t.Errorf("after a failed bind, the data directory was created (stat: %v)", err)
	}
}

// tenant create without --plan takes --default-plan; an unknown default
// plan is refused naming the flag.
func TestTenantCreateDefaultPlan(t *testing.T) {
	t.Setenv("BULKHEAD_ADMIN_TOKEN", "")
	t.Setenv("BULKHEAD_DEFAULT_PLAN", "")
	dir := dataDir(t)
	out := mustRun(t, dir, "--default-plan", "enterprise", "tenant", "create", "--slug", "acme")
	if !strings.Contains(out, `"plan": "enterprise"`) {
		t.Errorf("tenant create with --default-plan enterprise printed %s", out)
	}
	t.Setenv("BULKHEAD_DEFAULT_PLAN", "pro")
	if out := mustRun(t, dir, "tenant", "create", "--slug", "globex"); !strings.Contains(out, `"plan": "pro"`) {
		t.Errorf("tenant create with BULKHEAD_DEFAULT_PLAN=pro printed %s", out)
	}
	code, _, errOut := run(t, dir, "--default-plan", "gold", "tenant", "create", "--slug", "initech")
	if code == 0 || !strings.Contains(errOut, "--default-plan") || !strings.Contains(errOut, "BULKHEAD_DEFAULT_PLAN") {
		t.Errorf("tenant create with --default-plan gold = exit %d, stderr %q; want a refusal naming the flag", code, errOut)
	}
}

// --database sqlite:PATH keeps the whole store in PATH's directory — silo
// tenants' files included — and --data the keys and the token; a PATH whose
// directory is missing is refused naming the flag, and nothing is created.
func TestSQLitePathRule(t *testing.T) {
	t.Setenv("BULKHEAD_ADMIN_TOKEN", "")
	t.Setenv("BULKHEAD_DATABASE_URL", "")
	root := t.TempDir()
	data := filepath.Join(root, "data")

	missing := filepath.Join(root, "missing", "main.db")
	code, _, errOut := run(t, data, "--database", "sqlite:"+missing, "tenant", "create", "--slug", "acme")
	if code == 0 || !strings.Contains(errOut, "--database") || !strings.Contains(errOut, filepath.Dir(missing)) {
		t.Errorf("tenant create on sqlite:%s = exit %d, stderr %q; want a refusal naming --database and the directory", missing, code, errOut)
	}
	for _, p := range []string{filepath.Dir(missing), data} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("a refused sqlite path created %s (stat: %v)", p, err)
		}
	}

	dbDir := filepath.Join(root, "db")
	if err := os.Mkdir(dbDir, 0o700); err != nil {
		t.Fatal(err)
	}
	mustRun(t, data, "--database", "sqlite:"+filepath.Join(dbDir, "main.db"), "migrate")
	out := mustRun(t, data, "--database", "sqlite:"+filepath.Join(dbDir, "main.db"), "tenant", "create", "--slug", "acme", "--isolation", "silo")
	var created struct{ ID string }
	json.Unmarshal([]byte(out), &created)
	if created.ID == "" {
		t.Fatalf("tenant create printed %s", out)
	}
	for _, p := range []string{
		filepath.Join(dbDir, "main.db"), filepath.Join(dbDir, "main-jobs.db"), filepath.Join(dbDir, "tenants", created.ID+".db"),
		filepath.Join(data, "admin-token"), filepath.Join(data, "keys"),
	} {
		if _, err := os.Stat(p); err != nil {
			t.Errorf("%s: %v", p, err)
		}
	}
	for _, p := range []string{filepath.Join(data, "bulkhead.db"), filepath.Join(data, "tenants")} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("with sqlite:PATH, %s exists (stat: %v)", p, err)
		}
	}
}

// migrate on a data directory that does not exist says that it created
// one, so that a mistyped --data does not start an empty platform without
// a word (the other one-off commands refuse a directory without a
// database).
func TestDataDirCreationIsLogged(t *testing.T) {
	t.Setenv("BULKHEAD_ADMIN_TOKEN", "")
	t.Setenv("BULKHEAD_DATABASE_URL", "")
	dir := filepath.Join(t.TempDir(), "typo")
	code, _, errOut := run(t, dir, "migrate")
	if code != 0 {
		t.Fatalf("migrate = exit %d, stderr %s", code, errOut)
	}
	if !strings.Contains(errOut, "created the data directory") || !strings.Contains(errOut, dir) {
		t.Errorf("migrate on a new data directory logged %q; want a line naming %s", errOut, dir)
	}
	if _, errOut := mustRunErr(t, dir, "tenant", "list"); strings.Contains(errOut, "created the data directory") {
		t.Errorf("the second run logged the creation again: %q", errOut)
	}
}

func mustRunErr(t *testing.T, dir string, args ...string) (string, string) {
	t.Helper()
	code, out, errOut := run(t, dir, args...)
	if code != 0 {
		t.Fatalf("bulkhead %s = exit %d, stderr %s", strings.Join(args, " "), code, errOut)
	}
	return out, errOut
}
