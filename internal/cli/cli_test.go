package cli

import (
	"bytes"
	"database/sql"
	"encoding/json"
	"path/filepath"
	"strings"
	"testing"

	_ "modernc.org/sqlite"
)

// run runs the command line with --data dir and returns its exit code and
// output.
func run(t *testing.T, dir string, args ...string) (int, string, string) {
	t.Helper()
	var stdout, stderr bytes.Buffer
	code := Main(append([]string{"--data", dir}, args...), &stdout, &stderr)
	return code, stdout.String(), stderr.String()
}

// dataDir returns a new data directory with an empty embedded store, made
// as an operator makes one: with migrate.
func dataDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	mustRun(t, dir, "migrate")
	return dir
}

func mustRun(t *testing.T, dir string, args ...string) string {
	t.Helper()
	code, out, errOut := run(t, dir, args...)
	if code != 0 {
		t.Fatalf("bulkhead %s = exit %d, stderr %s", strings.Join(args, " "), code, errOut)
	}
	return out
}

func TestTenantLifecycle(t *testing.T) {
	t.Setenv("BULKHEAD_ADMIN_TOKEN", "")
	dir := dataDir(t)
	var created struct{ Slug, Isolation, Status, Plan string }
	json.Unmarshal([]byte(mustRun(t, dir, "tenant", "create", "--slug", "acme", "--isolation", "silo")), &created)
	if created.Slug != "acme" || created.Isolation != "silo" || created.Status != "active" || created.Plan != "free" {
		t.Errorf("tenant create printed %+v", created)
	}
	mustRun(t, dir, "tenant", "create", "--slug", "globex", "--plan", "pro")

	var list []struct{ Slug string }
	json.Unmarshal([]byte(mustRun(t, dir, "tenant", "list", "--page-size", "1")), &list)
	if len(list) != 2 || list[0].Slug != "acme" || list[1].Slug != "globex" {
		t.Errorf("tenant list = %+v, want acme and globex (paged one at a time)", list)
	}

	if out := mustRun(t, dir, "tenant", "suspend", "acme"); !strings.Contains(out, `"status": "suspended"`) {
		t.Errorf("tenant suspend printed %s", out)
	}
	if out := mustRun(t, dir, "tenant", "resume", "acme"); !strings.Contains(out, `"status": "active"`) {
		t.Errorf("tenant resume printed %s", out)
	}

	var key struct{ ID, Key, Role string }
	json.Unmarshal([]byte(mustRun(t, dir, "key", "create", "--tenant", "acme", "--role", "member", "--name", "ci")), &key)
	if !strings.HasPrefix(key.Key, "bh_live_"+key.ID+"_") || key.Role != "member" {
		t.Errorf("key create printed %+v", key)
	}

	// Errors are explained and exit non-zero.
	for _, args := range [][]string{
		{"tenant", "create", "--slug", "acme"},                 // taken
		{"tenant", "create", "--slug", "Bad Slug"},             // invalid
		{"tenant", "suspend", "nobody"},                        // unknown
		{"key", "create", "--tenant", "acme", "--role", "god"}, // no such role
		{"audit", "verify"},                                    // neither --tenant nor --platform
	} {
		if code, _, errOut := run(t, dir, args...); code == 0 || errOut == "" {
			t.Errorf("bulkhead %s = exit %d, stderr %q; want a failure explained on stderr", strings.Join(args, " "), code, errOut)
		}
	}
}

// audit verify reads the database directly, so it catches tampering that a
// compromised server would hide, and its exit status says so.
func TestAuditVerify(t *testing.T) {
	t.Setenv("BULKHEAD_ADMIN_TOKEN", "")
	dir := dataDir(t)
	mustRun(t, dir, "tenant", "create", "--slug", "acme")
	for range 3 {
		mustRun(t, dir, "key", "create", "--tenant", "acme")
	}
	out := mustRun(t, dir, "audit", "verify", "--tenant", "acme")
	if !strings.Contains(out, `"ok": true`) || !strings.Contains(out, `"length": 4`) {
		t.Errorf("audit verify printed %s, want ok with 4 entries", out)
	}
	if out := mustRun(t, dir, "audit", "verify", "--platform"); !strings.Contains(out, `"ok": true`) {
		t.Errorf("audit verify --platform printed %s", out)
	}

	db, err := sql.Open("sqlite", filepath.Join(dir, "bulkhead.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE audit_log SET actor = 'operator:forged' WHERE seq = 3 AND tenant_id != 'platform'`); err != nil {
		t.Fatal(err)
	}
	code, out, errOut := run(t, dir, "audit", "verify", "--tenant", "acme")
	if code == 0 || !strings.Contains(out, `"broken_at": 3`) || !strings.Contains(errOut, "broken at entry 3") {
		t.Errorf("audit verify of a tampered chain = exit %d, stdout %s, stderr %s; want exit 1 naming entry 3", code, out, errOut)
	}
}

func TestParseTrustedProxies(t *testing.T) {
	got, err := ParseTrustedProxies(" 10.0.0.0/8, 192.0.2.7 ,2001:db8::/32,::ffff:198.51.100.1,")
	if err != nil {
		t.Fatal(err)
	}
	want := []string{"10.0.0.0/8", "192.0.2.7/32", "2001:db8::/32", "198.51.100.1/32"}
	if len(got) != len(want) {
		t.Fatalf("ParseTrustedProxies = %v, want %v", got, want)
	}
	for i := range want {
		if got[i].String() != want[i] {
			t.Errorf("ParseTrustedProxies[%d] = %s, want %s", i, got[i], want[i])
		}
	}
	if got, err := ParseTrustedProxies(""); err != nil || len(got) != 0 {
		t.Errorf(`ParseTrustedProxies("") = %v, %v; want none`, got, err)
	}
	for _, bad := range []string{"10.0.0.0/33", "proxy.example.com", "10.0.0.1/8/2"} {
		if _, err := ParseTrustedProxies(bad); err == nil {
			t.Errorf("ParseTrustedProxies(%q) = no error", bad)
		}
	}
}
