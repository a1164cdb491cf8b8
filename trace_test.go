package bulkhead

import (
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"

	coltrace "go.opentelemetry.io/proto/otlp/collector/trace/v1"
	tracepb "go.opentelemetry.io/proto/otlp/trace/v1"
	"google.golang.org/protobuf/proto"
)

// clearOTel empties every OTEL_* variable for the test.
func clearOTel(t *testing.T) {
	t.Helper()
	for _, kv := range os.Environ() {
		if k, _, _ := strings.Cut(kv, "="); strings.HasPrefix(k, "OTEL_") {
			t.Setenv(k, "")
		}
	}
}

// collector is a loopback OTLP/HTTP endpoint that keeps the spans it is
// sent.
type collector struct {
	mu       sync.Mutex
	spans    []*tracepb.Span
	services []string
	posts    int
}

func (c *collector) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != "POST" || r.URL.Path != "/v1/traces" || r.Header.Get("Content-Type") != "application/x-protobuf" {
		http.Error(w, "want POST /v1/traces of application/x-protobuf", http.StatusNotFound)
		return
	}
	body, err := io.ReadAll(r.Body)
	if err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	var req coltrace.ExportTraceServiceRequest
	if err := proto.Unmarshal(body, &req); err != nil {
		http.Error(w, err.Error(), http.StatusBadRequest)
		return
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.posts++
	for _, rs := range req.ResourceSpans {
		for _, a := range rs.GetResource().GetAttributes() {
			if a.Key == "service.name" {
				c.services = append(c.services, a.GetValue().GetStringValue())
			}
		}
		for _, ss := range rs.ScopeSpans {
			c.spans = append(c.spans, ss.Spans...)
		}
	}
	w.Header().Set("Content-Type", "application/x-protobuf")
	out, _ := proto.Marshal(&coltrace.ExportTraceServiceResponse{})
	w.Write(out)
}

// With OTEL_EXPORTER_OTLP_ENDPOINT set, the request path's spans reach an
// OTLP/HTTP collector by the time the App is closed, under service name
// "bulkhead", the tenant's spans naming it.
func TestTracingOTLPHTTP(t *testing.T) {
	var key string
	clearOTel(t)
	col := &collector{}
	cs := httptest.NewServer(col)
	defer cs.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", cs.URL)
	app, err := New(Config{DataDir: t.TempDir(), AdminToken: "test-operator-token-0123", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	if app.tracing == nil {
		t.Fatal("tracing is off with OTEL_EXPORTER_OTLP_ENDPOINT set")
	}
	srv := httptest.NewServer(app.Handler())
	req := func(method, path, token, body string) {
		t.Helper()
		r, _ := http.NewRequest(method, srv.URL+path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		r.Header.Set("Content-Type", "application/json")
		res, err := http.DefaultClient.Do(r)
		if err != nil {
			t.Fatal(err)
		}
		b, _ := io.ReadAll(res.Body)
		res.Body.Close()
		if res.StatusCode >= 300 {
			t.Fatalf("%s %s = %d %s", method, path, res.StatusCode, b)
		}
		if strings.HasSuffix(path, "/api-keys") {
			var k struct{ Key string }
			if err := json.Unmarshal(b, &k); err != nil {
				t.Fatal(err)
			}
			key = k.Key
		}
	}
	req("POST", "/v1/tenants", "test-operator-token-0123", `{"slug":"acme","name":"Acme"}`)
	req("POST", "/v1/tenants/acme/api-keys", "test-operator-token-0123", `{"name":"k","role":"admin"}`)
	req("PUT", "/v1/tenants/acme/collections/notes", key, `{}`)
	req("POST", "/v1/tenants/acme/collections/notes/records", key, `{"title":"hello"}`)
	srv.Close()
	if err := app.Close(); err != nil {
		t.Fatal(err)
	}

	col.mu.Lock()
	defer col.mu.Unlock()
	if col.posts == 0 {
		t.Fatal("the collector received nothing")
	}
	for _, s := range col.services {
		if s != "bulkhead" {
			t.Errorf("service.name = %q, want bulkhead", s)
		}
	}
	seen := map[string]bool{}
	for _, s := range col.spans {
		seen[s.Name] = true
		if s.Name != "POST /v1/tenants/{tenant}/collections/{collection}/records" {
			continue
		}
		slug := ""
		for _, a := range s.Attributes {
			if a.Key == "bulkhead.tenant.slug" {
				slug = a.GetValue().GetStringValue()
			}
		}
		if slug != "acme" {
			t.Errorf("the record's request span names tenant %q, want acme", slug)
		}
	}
	for _, name := range []string{"POST /v1/tenants/{tenant}/collections/{collection}/records", "bulkhead.authenticate",
		"bulkhead.scope", "bulkhead.admit", "bulkhead.queue", "bulkhead.store", "bulkhead.audit"} {
		if !seen[name] {
			t.Errorf("no span %s among those exported: %v", name, seen)
		}
	}
}

// With no OTEL_* variable set, the App creates no tracing: no exporter,
// no SDK provider behind the request path.
func TestTracingOffByDefault(t *testing.T) {
	clearOTel(t)
	app, err := New(Config{DataDir: t.TempDir(), AdminToken: "test-operator-token-0123", Logger: slog.New(slog.DiscardHandler)})
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close()
	if app.tracing != nil {
		t.Error("tracing is on with no OTEL_* variable set")
	}
}
