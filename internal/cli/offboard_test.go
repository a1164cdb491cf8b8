package cli

import (
	"encoding/json"
	"strings"
	"testing"
)

// tenant delete leaves the tenant deleting until its purge, tenant
// undelete cancels that, and --grace 0 purges at once.
func TestTenantDeleteUndelete(t *testing.T) {
	t.Setenv("BULKHEAD_ADMIN_TOKEN", "")
	dir := dataDir(t)
	mustRun(t, dir, "tenant", "create", "--slug", "acme")

	var deleting struct {
		Status  string
		PurgeAt string `json:"purge_at"`
	}
	if err := json.Unmarshal([]byte(mustRun(t, dir, "tenant", "delete", "--tenant", "acme", "--grace", "2d")), &deleting); err != nil {
		t.Fatal(err)
	}
	if deleting.Status != "deleting" || deleting.PurgeAt == "" {
		t.Fatalf("tenant delete --grace 2d printed %+v, want deleting with purge_at", deleting)
	}
	if out := mustRun(t, dir, "tenant", "undelete", "--tenant", "acme"); !strings.Contains(out, `"status": "active"`) || strings.Contains(out, "purge_at") {
		t.Errorf("tenant undelete printed %s, want active without purge_at", out)
	}
	if code, _, errOut := run(t, dir, "tenant", "undelete", "--tenant", "acme"); code == 0 || !strings.Contains(errOut, "not deleting") {
		t.Errorf("undelete of an active tenant = exit %d, %q; want a failure", code, errOut)
	}
	for _, args := range [][]string{
		{"tenant", "delete", "--tenant", "acme", "--grace", "1w"},
		{"tenant", "delete", "--tenant", "acme", "--grace", "367d"},
		{"tenant", "delete", "--grace", "1d"},
		{"tenant", "delete", "--tenant", "nobody", "--grace", "1d"},
	} {
		if code, _, errOut := run(t, dir, args...); code == 0 || errOut == "" {
			t.Errorf("bulkhead %s = exit %d, stderr %q; want a failure", strings.Join(args, " "), code, errOut)
		}
	}
	if out := mustRun(t, dir, "tenant", "delete", "--tenant", "acme", "--grace", "0"); !strings.Contains(out, `"status": "deleted"`) {
		t.Errorf("tenant delete --grace 0 printed %s", out)
	}
	if out := mustRun(t, dir, "tenant", "list"); strings.Contains(out, "acme") {
		t.Errorf("tenant list after the purge still shows acme: %s", out)
	}
}
