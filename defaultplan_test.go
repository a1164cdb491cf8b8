package bulkhead

import (
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
)

// A tenant created through the API without a plan gets Config.DefaultPlan;
// one that names a plan keeps it.
func TestDefaultPlan(t *testing.T) {
	const token = "test-operator-token-0123"
	app, err := New(Config{DataDir: t.TempDir(), AdminToken: token, Logger: slog.New(slog.DiscardHandler), DefaultPlan: "pro"})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	srv := httptest.NewServer(app.Handler())
	defer srv.Close()
	create := func(body string) string {
		t.Helper()
		r, _ := http.NewRequest("POST", srv.URL+"/v1/tenants", strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		defer res.Body.Close()
		var got struct{ Plan string }
		if err := json.NewDecoder(res.Body).Decode(&got); err != nil || res.StatusCode != http.StatusCreated {
			t.Fatalf("POST /v1/tenants %s = %d, %v", body, res.StatusCode, err)
		}
		return got.Plan
	}
	if plan := create(`{"slug":"acme","name":"Acme"}`); plan != "pro" {
		t.Errorf("a tenant created without a plan got %q, want the default plan pro", plan)
	}
	if plan := create(`{"slug":"globex","name":"Globex","plan":"free"}`); plan != "free" {
		t.Errorf("a tenant created with plan free got %q", plan)
	}
}

// A default plan that names no plan stops the server at start, naming the
// flag and the variable, before any tenant can be created on it.
func TestUnknownDefaultPlan(t *testing.T) {
	_, err := New(Config{DataDir: t.TempDir(), AdminToken: "test-operator-token-0123", Logger: slog.New(slog.DiscardHandler),
		DefaultPlan: "platinum"})
	if err == nil || !strings.Contains(err.Error(), "--default-plan") || !strings.Contains(err.Error(), "BULKHEAD_DEFAULT_PLAN") ||
		!strings.Contains(err.Error(), `"platinum"`) {
		t.Fatalf("New with an unknown default plan = %v, want an error naming --default-plan, BULKHEAD_DEFAULT_PLAN and the plan", err)
	}
}
