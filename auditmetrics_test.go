package bulkhead

import (
	"database/sql"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
)

// A verification that finds a tenant's audit chain tampered with counts in
// bulkhead_audit_verify_failures_total{chain="tenant"}, without a tenant
// label; one that finds the chain whole counts nothing.
func TestAuditVerifyFailureMetric(t *testing.T) {
	const token = "test-operator-token-0123"
	dir := t.TempDir()
	app, err := New(Config{DataDir: dir, AdminToken: token, Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()
	do := func(method, path, body string) string {
		t.Helper()
		r, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		b, _ := io.ReadAll(res.Body)
		if res.StatusCode >= 300 {
			t.Fatalf("%s %s = %d %s", method, path, res.StatusCode, b)
		}
		return string(b)
	}
	metric := func(chain string) string {
		t.Helper()
		for _, line := range strings.Split(do("GET", "/metrics", ""), "\n") {
			if rest, ok := strings.CutPrefix(line, `bulkhead_audit_verify_failures_total{chain="`+chain+`"} `); ok {
				return rest
			}
		}
		t.Fatalf("/metrics has no bulkhead_audit_verify_failures_total{chain=%q}", chain)
		return ""
	}
	do("POST", "/v1/tenants", `{"slug":"acme","name":"Acme"}`)
	do("POST", "/v1/tenants/acme/api-keys", `{"name":"k","role":"admin"}`)
	if v := do("GET", "/v1/tenants/acme/audit/verify", ""); !strings.Contains(v, `"ok":true`) {
		t.Fatalf("verify of an intact chain = %s", v)
	}
	if got := metric("tenant"); got != "0" {
		t.Errorf("after an intact verification, tenant failures = %s, want 0", got)
	}

	db, err := sql.Open("sqlite", filepath.Join(dir, "bulkhead.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	if _, err := db.Exec(`UPDATE audit_log SET actor = 'operator:forged' WHERE seq = 2 AND tenant_id != 'platform'`); err != nil {
		t.Fatal(err)
	}
	if v := do("GET", "/v1/tenants/acme/audit/verify", ""); !strings.Contains(v, `"ok":false`) {
		t.Fatalf("verify of a tampered chain = %s", v)
	}
	if got := metric("tenant"); got != "1" {
		t.Errorf("after a broken verification, tenant failures = %s, want 1", got)
	}
	if got := metric("platform"); got != "0" {
		t.Errorf("platform failures = %s, want 0", got)
	}
	if m := do("GET", "/metrics", ""); strings.Contains(m, `bulkhead_audit_verify_failures_total{chain="tenant",tenant`) {
		t.Errorf("the audit failure metric carries a tenant label")
	}
}
