package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/bulkheadhq/bulkhead"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// openCore opens the App on dir for checks beside the command line, closed
// when the test ends.
func openCore(t *testing.T, dir string) *core.Core {
	t.Helper()
	app, err := bulkhead.New(bulkhead.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { app.Close() })
	return app.Core()
}

// auditActions are the entries of the tenant's audit chain as read with
// its credential key (of the platform's when slug is empty), oldest first:
// actor, action, resource and request id.
func auditActions(t *testing.T, dir string, slug tenant.Slug, key string) []string {
	t.Helper()
	ctx := context.Background()
	c := openCore(t, dir)
	var page *core.List[core.AuditEntry]
	var err error
	if slug == "" {
		ctl, _ := c.Control(core.Operator(), "test")
		page, err = ctl.ListPlatformAudit(ctx, 0, 1000)
	} else {
		var p *tenant.Principal
		var sc *core.Scope
		if p, err = c.Authenticate(ctx, key); err == nil {
			if sc, err = c.Scope(ctx, p, slug, "test"); err == nil {
				page, err = sc.ListAudit(ctx, 0, 1000)
			}
		}
	}
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range page.Items {
		out = append(out, e.Actor+" "+e.Action+" "+e.Resource+" "+e.RequestID)
	}
	return out
}

// failsWith runs a command that must fail and checks that stderr says
// want.
func failsWith(t *testing.T, dir, want string, args ...string) {
	t.Helper()
	if code, _, errOut := run(t, dir, args...); code == 0 || !strings.Contains(errOut, want) {
		t.Errorf("bulkhead %s = exit %d, stderr %q; want a failure saying %q", strings.Join(args, " "), code, errOut, want)
	}
}

// The operator creates a tenant's keys but may not list or revoke them;
// with BULKHEAD_TENANT_KEY the commands act as that key, exactly as the API
// would: its own tenant only, within its role. A revoked key stops
// authenticating, and the audit chain names the key that revoked it.
func TestKeyListRevoke(t *testing.T) {
	t.Setenv("BULKHEAD_ADMIN_TOKEN", "")
	t.Setenv("BULKHEAD_TENANT_KEY", "")
	dir := dataDir(t)
	mustRun(t, dir, "tenant", "create", "--slug", "acme")
	mustRun(t, dir, "tenant", "create", "--slug", "globex")
	var admin, victim, member, other struct{ ID, Key string }
	json.Unmarshal([]byte(mustRun(t, dir, "key", "create", "--tenant", "acme", "--name", "admin")), &admin)
	json.Unmarshal([]byte(mustRun(t, dir, "key", "create", "--tenant", "acme", "--name", "leaked")), &victim)
	json.Unmarshal([]byte(mustRun(t, dir, "key", "create", "--tenant", "globex", "--name", "globex")), &other)
	failsWith(t, dir, "BULKHEAD_TENANT_KEY", "key", "list", "--tenant", "acme")
	failsWith(t, dir, "BULKHEAD_TENANT_KEY", "key", "revoke", "--tenant", "acme", victim.ID)

	t.Setenv("BULKHEAD_TENANT_KEY", admin.Key)
	json.Unmarshal([]byte(mustRun(t, dir, "key", "create", "--tenant", "acme", "--name", "member", "--role", "member")), &member)
	out := mustRun(t, dir, "key", "list", "--tenant", "acme")
	var list []struct {
		ID, Name, Role string
		CreatedBy      string  `json:"created_by"`
		RevokedAt      *string `json:"revoked_at"`
	}
	json.Unmarshal([]byte(out), &list)
	if len(list) != 3 || list[2].CreatedBy != "key:"+admin.ID || list[0].RevokedAt != nil || strings.Contains(out, "bh_live_") {
		t.Fatalf("key list printed %s, want three live keys without secrets, the last made by the admin key", out)
	}
	failsWith(t, dir, "above its own", "key", "create", "--tenant", "acme", "--role", "owner") // nobody grants above their role

	// Another tenant: the same "not found" as an unknown one.
	failsWith(t, dir, "not found", "key", "list", "--tenant", "globex")
	failsWith(t, dir, "not found", "key", "revoke", "--tenant", "globex", other.ID)
	failsWith(t, dir, "has no API key", "key", "revoke", "--tenant", "acme", other.ID)
	failsWith(t, dir, "has no API key", "key", "revoke", "--tenant", "acme", "nokey")
	failsWith(t, dir, "tenant", "key", "revoke", victim.ID)
	t.Setenv("BULKHEAD_TENANT_KEY", member.Key)
	failsWith(t, dir, "role", "key", "revoke", "--tenant", "acme", victim.ID)
	t.Setenv("BULKHEAD_TENANT_KEY", "bh_live_nonsense_key")
	failsWith(t, dir, "BULKHEAD_TENANT_KEY", "key", "list", "--tenant", "acme")

	t.Setenv("BULKHEAD_TENANT_KEY", admin.Key)
	var revoked struct {
		ID        string
		RevokedAt *string `json:"revoked_at"`
	}
	json.Unmarshal([]byte(mustRun(t, dir, "key", "revoke", "--tenant", "acme", victim.ID)), &revoked)
	if revoked.ID != victim.ID || revoked.RevokedAt == nil {
		t.Fatalf("key revoke printed %+v", revoked)
	}
	c := openCore(t, dir)
	if _, err := c.Authenticate(context.Background(), victim.Key); err == nil {
		t.Error("the revoked key still authenticates")
	}
	for _, k := range []string{admin.Key, member.Key, other.Key} {
		if _, err := c.Authenticate(context.Background(), k); err != nil {
			t.Errorf("a key not revoked no longer authenticates: %v", err)
		}
	}
	a := auditActions(t, dir, "acme", admin.Key)
	for _, want := range []string{"operator api_key.create api_key:" + admin.ID + " cli", "key:" + admin.ID + " api_key.revoke api_key:" + victim.ID + " cli"} {
		if !slices.Contains(a, want) {
			t.Errorf("acme's audit chain %q lacks %q", a, want)
		}
	}
}

// plan set changes the fields given and keeps the others, creates a plan
// only from every field, applies the API's bounds, and is audited in the
// platform's chain.
func TestPlanListSet(t *testing.T) {
	t.Setenv("BULKHEAD_ADMIN_TOKEN", "")
	dir := dataDir(t)
	var plans []tenant.Plan
	json.Unmarshal([]byte(mustRun(t, dir, "plan", "list")), &plans)
	if len(plans) != len(tenant.DefaultPlans) || !slices.Contains(plans, tenant.DefaultPlans[0]) {
		t.Fatalf("plan list = %+v, want the default plans", plans)
	}

	var got tenant.Plan
	json.Unmarshal([]byte(mustRun(t, dir, "plan", "set", "free", "--rate", "2.5", "--max-bytes", "1024")), &got)
	want := tenant.DefaultPlans[0] // free
	want.RatePerSec, want.MaxBytes = 2.5, 1024
	if got != want {
		t.Errorf("plan set free = %+v, want %+v", got, want)
	}

	failsWith(t, dir, "--burst, --max-inflight, --weight, --max-records, --max-bytes", "plan", "set", "gold", "--rate", "1")
	failsWith(t, dir, "weight", "plan", "set", "free", "--weight", "0")
	failsWith(t, dir, "burst", "plan", "set", "free", "--burst", "-1")
	failsWith(t, dir, "plan names", "plan", "set", "Gold", "--rate", "1", "--burst", "1", "--max-inflight", "0", "--weight", "1", "--max-records", "0", "--max-bytes", "0")
	failsWith(t, dir, "invalid argument", "plan", "set", "free", "--rate", "fast")

	mustRun(t, dir, "plan", "set", "gold", "--rate", "50", "--burst", "100", "--max-inflight", "8", "--weight", "2", "--max-records", "0", "--max-bytes", "0")
	json.Unmarshal([]byte(mustRun(t, dir, "plan", "list")), &plans)
	i := slices.IndexFunc(plans, func(p tenant.Plan) bool { return p.Name == "gold" })
	if i < 0 || plans[i] != (tenant.Plan{Name: "gold", RatePerSec: 50, Burst: 100, MaxInflight: 8, Weight: 2}) {
		t.Errorf("plan list after creating gold = %+v", plans)
	}
	mustRun(t, dir, "tenant", "create", "--slug", "acme", "--plan", "gold")

	a := auditActions(t, dir, "", "")
	if !slices.Contains(a, "operator plan.put plan:free cli") || !slices.Contains(a, "operator plan.put plan:gold cli") {
		t.Errorf("the platform's audit chain %q lacks the plans' changes", a)
	}
}

// user create takes the password from a file or stdin (never a flag),
// and the user signs in with it. The operator creates users but neither
// lists nor changes them; with an owner's key in BULKHEAD_TENANT_KEY,
// set-role finds users by email or id and keeps an owner, and the audit
// chain names who did what.
func TestUserCommands(t *testing.T) {
	t.Setenv("BULKHEAD_ADMIN_TOKEN", "")
	t.Setenv("BULKHEAD_TENANT_KEY", "")
	dir := dataDir(t)
	mustRun(t, dir, "tenant", "create", "--slug", "acme")
	pwFile := filepath.Join(t.TempDir(), "pw")
	os.WriteFile(pwFile, []byte("correct horse battery\n"), 0o600)

	var ada struct{ ID, Email, Role string }
	json.Unmarshal([]byte(mustRun(t, dir, "user", "create", "--tenant", "acme", "--email", " Ada@Example.com", "--role", "owner", "--password-file", pwFile)), &ada)
	if ada.ID == "" || ada.Email != "ada@example.com" || ada.Role != "owner" {
		t.Fatalf("user create printed %+v", ada)
	}
	var stdout, stderr bytes.Buffer
	if code := mainWith([]string{"--data", dir, "user", "create", "--tenant", "acme", "--email", "bob@example.com", "--role", "member"},
		strings.NewReader("stdin password 1\r\nignored\n"), &stdout, &stderr); code != 0 {
		t.Fatalf("user create with the password on stdin = exit %d: %s", code, stderr.String())
	}
	c := openCore(t, dir)
	for _, l := range []core.LoginParams{{Email: "ada@example.com", Password: "correct horse battery"}, {Email: "bob@example.com", Password: "stdin password 1"}} {
		if _, err := c.Login(context.Background(), "acme", l, "test"); err != nil {
			t.Errorf("%s cannot sign in with the password given: %v", l.Email, err)
		}
	}

	failsWith(t, dir, "unknown flag: --password", "user", "create", "--tenant", "acme", "--email", "eve@example.com", "--role", "admin", "--password", "secret-secret")
	failsWith(t, dir, "no password", "user", "create", "--tenant", "acme", "--email", "eve@example.com", "--role", "admin", "--password-file", "-")
	failsWith(t, dir, "password", "user", "create", "--tenant", "acme", "--email", "eve@example.com", "--role", "admin", "--password-file", os.DevNull)
	short := filepath.Join(t.TempDir(), "short")
	os.WriteFile(short, []byte("short"), 0o600)
	failsWith(t, dir, "password", "user", "create", "--tenant", "acme", "--email", "eve@example.com", "--role", "admin", "--password-file", short)
	failsWith(t, dir, "role", "user", "create", "--tenant", "acme", "--email", "eve@example.com", "--role", "god", "--password-file", pwFile)
	failsWith(t, dir, "email", "user", "create", "--tenant", "acme", "--email", "ada@example.com", "--role", "admin", "--password-file", pwFile)
	failsWith(t, dir, "BULKHEAD_TENANT_KEY", "user", "list", "--tenant", "acme")
	failsWith(t, dir, "BULKHEAD_TENANT_KEY", "user", "set-role", "--tenant", "acme", "bob@example.com", "admin")

	// Under a break-glass grant the operator reads the users, and still
	// changes nothing.
	ctx := context.Background()
	ctl, _ := c.Control(core.Operator(), "test")
	opScope, err := c.Scope(ctx, core.Operator(), "acme", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ctl.GrantBreakGlass(ctx, opScope, core.BreakGlassParams{Reason: "support case", Minutes: 5}); err != nil {
		t.Fatal(err)
	}
	if out := mustRun(t, dir, "user", "list", "--tenant", "acme"); !strings.Contains(out, "bob@example.com") {
		t.Errorf("user list under break-glass printed %s", out)
	}
	failsWith(t, dir, "BULKHEAD_TENANT_KEY", "user", "set-role", "--tenant", "acme", "bob@example.com", "admin")

	var owner struct{ ID, Key string }
	json.Unmarshal([]byte(mustRun(t, dir, "key", "create", "--tenant", "acme", "--role", "owner")), &owner)
	t.Setenv("BULKHEAD_TENANT_KEY", owner.Key)
	var users []struct{ ID, Email, Role string }
	json.Unmarshal([]byte(mustRun(t, dir, "user", "list", "--tenant", "acme")), &users)
	if len(users) != 2 || users[0].Email != "ada@example.com" || users[1].Email != "bob@example.com" {
		t.Fatalf("user list = %+v", users)
	}
	bob := users[1].ID

	if out := mustRun(t, dir, "user", "set-role", "--tenant", "acme", "BOB@example.com", "admin"); !strings.Contains(out, `"role": "admin"`) {
		t.Errorf("set-role by email printed %s", out)
	}
	failsWith(t, dir, "last owner", "user", "set-role", "--tenant", "acme", ada.ID, "admin")
	mustRun(t, dir, "user", "set-role", "--tenant", "acme", bob, "owner")
	if out := mustRun(t, dir, "user", "set-role", "--tenant", "acme", ada.ID, "viewer"); !strings.Contains(out, `"role": "viewer"`) {
		t.Errorf("set-role by id printed %s", out)
	}
	failsWith(t, dir, "has no user", "user", "set-role", "--tenant", "acme", "eve@example.com", "admin")
	failsWith(t, dir, "has no user", "user", "set-role", "--tenant", "acme", "00000000-0000-4000-8000-000000000000", "admin")
	failsWith(t, dir, "role", "user", "set-role", "--tenant", "acme", bob, "god")

	a := auditActions(t, dir, "acme", owner.Key)
	for _, want := range []string{"operator user.create user:" + ada.ID + " cli", "key:" + owner.ID + " user.update user:" + bob + " cli"} {
		if !slices.Contains(a, want) {
			t.Errorf("acme's audit chain %q lacks %q", a, want)
		}
	}
}

// Administrative commands refuse a data directory without a database
// rather than making an empty one, and say where they looked and how to
// name the right one; migrate creates it, and then they work.
func TestAdminCommandsRefuseNoStore(t *testing.T) {
	t.Setenv("BULKHEAD_ADMIN_TOKEN", "")
	t.Setenv("BULKHEAD_TENANT_KEY", "")
	t.Setenv("BULKHEAD_DATA", "")
	t.Setenv("BULKHEAD_DATABASE_URL", "")
	dir := filepath.Join(t.TempDir(), "data")
	db := filepath.Join(dir, "bulkhead.db")
	for _, args := range [][]string{
		{"tenant", "list"},
		{"tenant", "create", "--slug", "acme"},
		{"key", "list", "--tenant", "acme"},
		{"plan", "list"},
		{"user", "list", "--tenant", "acme"},
		{"user", "create", "--tenant", "acme", "--email", "ada@example.com", "--role", "owner"}, // before asking for a password
		{"audit", "verify", "--platform"},
		{"keys", "rotate-kek"},
	} {
		code, _, errOut := run(t, dir, args...)
		if code == 0 {
			t.Errorf("bulkhead %s on a directory without a database succeeded", strings.Join(args, " "))
		}
		for _, want := range []string{db, "--data", "BULKHEAD_DATA", "--database", "BULKHEAD_DATABASE_URL"} {
			if !strings.Contains(errOut, want) {
				t.Errorf("bulkhead %s: stderr %q does not name %q", strings.Join(args, " "), errOut, want)
			}
		}
	}
	failsWith(t, dir, filepath.Join(dir, "keys"), "keys", "rotate-signing")
	// On PostgreSQL the data directory still holds the platform's keys:
	// refused before any connection is tried.
	failsWith(t, dir, filepath.Join(dir, "keys"), "--database", "postgres://nobody@127.0.0.1:1/none", "tenant", "list")
	other := filepath.Join(t.TempDir(), "other.db")
	failsWith(t, dir, other, "--database", "sqlite:"+other, "tenant", "list")
	if _, err := os.Stat(dir); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the refused commands left %s behind (%v)", dir, err)
	}
	if _, err := os.Stat(other); !errors.Is(err, fs.ErrNotExist) {
		t.Fatalf("the refused command made %s (%v)", other, err)
	}

	// The default, ./bulkhead-data, is named as such.
	t.Chdir(t.TempDir())
	var stdout, stderr bytes.Buffer
	if code := Main([]string{"tenant", "list"}, &stdout, &stderr); code == 0 || !strings.Contains(stderr.String(), filepath.Join("bulkhead-data", "bulkhead.db")) {
		t.Errorf("tenant list without --data = exit %d, stderr %q", code, stderr.String())
	}

	if out := mustRun(t, dir, "migrate"); !strings.Contains(out, "migrated") {
		t.Errorf("migrate printed %q", out)
	}
	if out := mustRun(t, dir, "tenant", "list"); strings.TrimSpace(out) != "null" && strings.TrimSpace(out) != "[]" {
		t.Errorf("tenant list of a new store printed %q", out)
	}
}
