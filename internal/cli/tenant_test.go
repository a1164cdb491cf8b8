package cli

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"testing"

	"github.com/bulkheadhq/bulkhead"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// adminScope opens the App on dir and returns a tenant admin's scope on
// slug (made through an API key the operator issues), closing the App when
// the test ends.
func adminScope(t *testing.T, dir string, slug tenant.Slug) (*core.Scope, func()) {
	t.Helper()
	app, err := bulkhead.New(bulkhead.Config{DataDir: dir, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	c := app.Core()
	op, err := c.Scope(ctx, core.Operator(), slug, "test")
	if err != nil {
		t.Fatal(err)
	}
	k, err := op.CreateAPIKey(ctx, core.CreateAPIKeyParams{Name: "admin", Role: tenant.Admin})
	if err != nil {
		t.Fatal(err)
	}
	p, err := c.Authenticate(ctx, k.Key)
	if err != nil {
		t.Fatal(err)
	}
	sc, err := c.Scope(ctx, p, slug, "test")
	if err != nil {
		t.Fatal(err)
	}
	return sc, func() { app.Close() }
}

// TestTenantExportRestore: the operator exports a tenant with an encrypted
// field to a file and restores it into a new tenant: the new tenant's
// records are the old one's, their encrypted field opens under the new
// tenant's keys (the seal binds the tenant, so it was sealed again) and
// answers equality filters; a file with a flipped byte creates no tenant.
func TestTenantExportRestore(t *testing.T) {
	t.Setenv("BULKHEAD_ADMIN_TOKEN", "")
	t.Setenv("BULKHEAD_KEK", "")
	t.Setenv("BULKHEAD_KMS", "")
	dir := dataDir(t)
	ctx := context.Background()
	mustRun(t, dir, "tenant", "create", "--slug", "acme")
	sc, done := adminScope(t, dir, "acme")
	if _, err := sc.PutCollection(ctx, "people", core.PutCollectionParams{EncryptedFields: []string{"ssn"}}); err != nil {
		t.Fatal(err)
	}
	for i := range 20 {
		if _, err := sc.CreateRecord(ctx, "people", fmt.Appendf(nil, `{"n":%d,"ssn":"ssn-%d"}`, i, i), nil); err != nil {
			t.Fatal(err)
		}
	}
	before, err := sc.ListRecords(ctx, "people", core.ListQuery{Limit: 100, Order: "id"})
	if err != nil {
		t.Fatal(err)
	}
	done()

	file := filepath.Join(dir, "acme.bhar")
	var m struct {
		Tenant string `json:"tenant"`
		Parts  []struct {
			Part  string `json:"part"`
			Count int64  `json:"count"`
		} `json:"parts"`
	}
	json.Unmarshal([]byte(mustRun(t, dir, "tenant", "export", "--tenant", "acme", "--out", file)), &m)
	if len(m.Parts) < 2 || m.Parts[1].Part != "records" || m.Parts[1].Count != 20 {
		t.Fatalf("export printed %+v, want 20 records", m)
	}
	arc, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(arc, []byte("ssn-7")) {
		t.Fatal("the archive holds plaintext")
	}

	// A flipped byte: refused, and no tenant is created.
	bad := bytes.Clone(arc)
	bad[len(bad)/2] ^= 1
	badFile := filepath.Join(dir, "bad.bhar")
	os.WriteFile(badFile, bad, 0o600)
	if code, _, errOut := run(t, dir, "tenant", "restore", "--from", badFile, "--slug", "broken"); code == 0 {
		t.Fatalf("restore of a tampered archive succeeded: %s", errOut)
	}
	mustRun(t, dir, "tenant", "create", "--slug", "other")
	if code, _, _ := run(t, dir, "tenant", "restore", "--from", file, "--slug", "wrong-source", "--tenant", "other"); code == 0 {
		t.Fatal("restore with --tenant naming another source succeeded")
	}
	var list []struct{ Slug string }
	json.Unmarshal([]byte(mustRun(t, dir, "tenant", "list")), &list)
	for _, tn := range list {
		if tn.Slug == "broken" || tn.Slug == "wrong-source" {
			t.Errorf("a refused restore created tenant %s", tn.Slug)
		}
	}

	var out struct {
		Tenant  struct{ ID, Slug string }
		Restore struct {
			Records int64  `json:"records"`
			SHA256  string `json:"sha256"`
		}
	}
	json.Unmarshal([]byte(mustRun(t, dir, "tenant", "restore", "--from", file, "--slug", "acme-copy", "--isolation", "silo")), &out)
	if out.Tenant.Slug != "acme-copy" || out.Restore.Records != 20 {
		t.Fatalf("restore printed %+v", out)
	}
	sc, done = adminScope(t, dir, "acme-copy")
	defer done()
	after, err := sc.ListRecords(ctx, "people", core.ListQuery{Limit: 100, Order: "id"})
	if err != nil {
		t.Fatalf("records of the new tenant: %v", err)
	}
	if len(after.Items) != len(before.Items) {
		t.Fatalf("new tenant has %d records, want %d", len(after.Items), len(before.Items))
	}
	for i := range before.Items {
		if b, a := before.Items[i], after.Items[i]; b.ID != a.ID || !bytes.Equal(b.Data, a.Data) {
			t.Errorf("record %d: %s %s, want %s %s", i, a.ID, a.Data, b.ID, b.Data)
		}
	}
	found, err := sc.ListRecords(ctx, "people", core.ListQuery{Limit: 10, Filter: `ssn = "ssn-7"`})
	if err != nil || len(found.Items) != 1 {
		t.Errorf("filter on the encrypted field in the new tenant: %v, %v", found, err)
	}
	v, err := sc.VerifyAudit(ctx)
	if err != nil || !v.OK {
		t.Errorf("the new tenant's chain: %+v, %v", v, err)
	}
}
