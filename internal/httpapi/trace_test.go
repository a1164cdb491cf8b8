package httpapi

import (
	"fmt"
	"log/slog"
	"strings"
	"testing"
	"time"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/internal/observe"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// tracedBundle is a server whose spans go to an in-memory exporter as
// each ends, with a fair scheduler so that transactions queue.
func tracedBundle(t *testing.T, opts ...func(*Config)) (*testBundle, *tracetest.InMemoryExporter) {
	t.Helper()
	exp := tracetest.NewInMemoryExporter()
	tr := observe.NewTracing(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tr.Shutdown(t.Context()) })
	sched, err := fairq.New(fairq.Config{Slots: 4})
	if err != nil {
		t.Fatal(err)
	}
	b := setup(t, append(opts, withAdmission(Admission{Scheduler: sched}), func(c *Config) { c.Tracing = tr })...)
	return b, exp
}

// traceOf waits (with a generous bound: the server ends a request's span
// after writing the answer) for the server span of the request that
// carried traceparent tp, and returns every span of that trace.
func traceOf(t *testing.T, exp *tracetest.InMemoryExporter, tid trace.TraceID) tracetest.SpanStubs {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		var spans tracetest.SpanStubs
		root := false
		for _, s := range exp.GetSpans() {
			if s.SpanContext.TraceID() == tid {
				spans = append(spans, s)
				root = root || s.SpanKind == trace.SpanKindServer
			}
		}
		if root {
			return spans
		}
		if time.Now().After(deadline) {
			t.Fatalf("no server span of trace %s among %d spans", tid, len(exp.GetSpans()))
		}
		time.Sleep(5 * time.Millisecond)
	}
}

// traceparent returns a W3C traceparent header of a sampled caller's span
// with the given trace number, and the trace's and span's IDs.
func traceparent(n int) (string, trace.TraceID, trace.SpanID) {
	tid, _ := trace.TraceIDFromHex(fmt.Sprintf("%032x", 0xb0b0000+n))
	sid, _ := trace.SpanIDFromHex(fmt.Sprintf("%016x", 0xca11e0+n))
	return "00-" + tid.String() + "-" + sid.String() + "-01", tid, sid
}

func attrOf(s tracetest.SpanStub, key attribute.Key) (attribute.Value, bool) {
	for _, kv := range s.Attributes {
		if kv.Key == key {
			return kv.Value, true
		}
	}
	return attribute.Value{}, false
}

// mentions reports whether any attribute or event of the spans mentions
// one of words.
func mentions(spans tracetest.SpanStubs, words ...string) string {
	for _, s := range spans {
		kvs := append([]attribute.KeyValue(nil), s.Attributes...)
		for _, e := range s.Events {
			kvs = append(kvs, e.Attributes...)
		}
		for _, kv := range kvs {
			v := kv.Value.String()
			for _, w := range words {
				if strings.Contains(v, w) {
					return fmt.Sprintf("span %s: %s=%s", s.Name, kv.Key, v)
				}
			}
		}
		for _, w := range words {
			if strings.Contains(s.Name, w) || strings.Contains(s.Status.Description, w) {
				return fmt.Sprintf("span %s (status %q)", s.Name, s.Status.Description)
			}
		}
	}
	return ""
}

// One request produces the request path's span tree under the caller's
// trace: the server span (a child of the caller's span in traceparent),
// and below it authenticate, scope, admit, queue, store and, within the
// store span of a write, the audit append. Every span after scoping names
// the tenant by ID and slug, and no span of the trace names another
// tenant.
func TestTracingSpanTree(t *testing.T) {
	logs := &lockedBuffer{}
	b, exp := tracedBundle(t, func(c *Config) { c.Logger = observe.NewLogger(logs, slog.LevelInfo) })
	acme := b.tenant("acme", tenant.Pooled)
	globex := b.tenant("globex", tenant.Pooled)
	acmeKey := b.apiKey("acme", tenant.Admin)
	globexKey := b.apiKey("globex", tenant.Admin)
	b.collection("acme", acmeKey, "notes", nil)
	b.collection("globex", globexKey, "notes", nil)
	b.createRecord("globex", globexKey, "notes", map[string]any{"title": "globex's"})

	tp, tid, caller := traceparent(1)
	r := b.must(201, "POST", "/v1/tenants/acme/collections/notes/records", acmeKey, map[string]any{"title": "hello"}, "traceparent", tp)
	var rec record
	r.JSON(t, &rec)
	spans := traceOf(t, exp, tid)

	byName := map[string]tracetest.SpanStub{}
	for _, s := range spans {
		byName[s.Name] = s
	}
	root, ok := byName["POST /v1/tenants/{tenant}/collections/{collection}/records"]
	if !ok {
		t.Fatalf("no server span named after the route among %v", names(spans))
	}
	if root.Parent.SpanID() != caller || !root.Parent.IsRemote() {
		t.Errorf("server span's parent = %v, want the caller's span %v", root.Parent.SpanID(), caller)
	}
	if v, _ := attrOf(root, "http.route"); v.AsString() != "/v1/tenants/{tenant}/collections/{collection}/records" {
		t.Errorf("http.route = %q", v.AsString())
	}
	if v, _ := attrOf(root, "http.response.status_code"); v.AsInt64() != 201 {
		t.Errorf("http.response.status_code = %d, want 201", v.AsInt64())
	}
	if v, _ := attrOf(root, observe.AttrRequestID); v.AsString() != r.Header.Get("X-Request-Id") {
		t.Errorf("bulkhead.request.id = %q, want the X-Request-Id %q", v.AsString(), r.Header.Get("X-Request-Id"))
	}
	parentOf := map[string]string{
		"bulkhead.authenticate": root.Name,
		"bulkhead.scope":        root.Name,
		"bulkhead.admit":        root.Name,
		"bulkhead.queue":        root.Name,
		"bulkhead.store":        root.Name,
		"bulkhead.audit":        root.Name,
	}
	for name, parent := range parentOf {
		s, ok := byName[name]
		if !ok {
			t.Errorf("no span %s among %v", name, names(spans))
			continue
		}
		if s.Parent.SpanID() != byName[parent].SpanContext.SpanID() {
			t.Errorf("span %s is not a child of %s", name, parent)
		}
	}
	// The append runs inside the write's transaction (the span of the
	// transaction is its sibling: core's callbacks keep the request's
	// context).
	audit, inTx := byName["bulkhead.audit"], false
	for _, s := range spans {
		if s.Name == "bulkhead.store" && !audit.StartTime.Before(s.StartTime) && !audit.EndTime.After(s.EndTime) {
			inTx = true
		}
	}
	if !inTx {
		t.Errorf("the audit span is not within a store span")
	}
	// The tenant is known from scoping on: the server span and every span
	// started after it carry its ID and slug.
	for _, name := range []string{root.Name, "bulkhead.admit", "bulkhead.queue", "bulkhead.store", "bulkhead.audit"} {
		s := byName[name]
		id, _ := attrOf(s, observe.AttrTenantID)
		slug, _ := attrOf(s, observe.AttrTenantSlug)
		if id.AsString() != string(acme) || slug.AsString() != "acme" {
			t.Errorf("span %s: tenant %q %q, want %s acme", name, id.AsString(), slug.AsString(), acme)
		}
	}
	if v, _ := attrOf(byName["bulkhead.audit"], "bulkhead.audit.action"); v.AsString() != "record.create" {
		t.Errorf("bulkhead.audit.action = %q, want record.create", v.AsString())
	}
	if m := mentions(spans, string(globex), "globex"); m != "" {
		t.Errorf("acme's trace mentions globex: %s", m)
	}
	// The request's log line names its trace.
	logged := false
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"request_id":"`+r.Header.Get("X-Request-Id")+`"`) {
			logged = strings.Contains(line, `"trace_id":"`+tid.String()+`"`)
			if !logged {
				t.Errorf("the request's log line does not name trace %s: %s", tid, line)
			}
		}
	}
	if !logged {
		t.Errorf("no log line of request %s", r.Header.Get("X-Request-Id"))
	}

	// A read has no audit span, and names the same tenant.
	tp, tid, _ = traceparent(2)
	b.must(200, "GET", "/v1/tenants/acme/collections/notes/records/"+rec.ID, acmeKey, nil, "traceparent", tp)
	spans = traceOf(t, exp, tid)
	if got := strings.Join(names(spans), ","); strings.Contains(got, "bulkhead.audit") || !strings.Contains(got, "bulkhead.store") {
		t.Errorf("a read's spans are %s", got)
	}
	if m := mentions(spans, string(globex), "globex"); m != "" {
		t.Errorf("acme's read mentions globex: %s", m)
	}
}

// globex's key used on acme's path is answered 404, and its trace says
// nothing of acme: no tenant attribute, no slug, no ID, not even in the
// recorded error. The failure is recorded on the scope span, by its code.
func TestTracingCrossTenantSaysNothing(t *testing.T) {
	b, exp := tracedBundle(t)
	acme := b.tenant("acme", tenant.Pooled)
	b.tenant("globex", tenant.Pooled)
	acmeKey := b.apiKey("acme", tenant.Admin)
	globexKey := b.apiKey("globex", tenant.Admin)
	b.collection("acme", acmeKey, "notes", nil)
	rec := b.createRecord("acme", acmeKey, "notes", map[string]any{"title": "secret"})

	tp, tid, _ := traceparent(3)
	b.mustProblem(404, "not_found", "GET", "/v1/tenants/acme/collections/notes/records/"+rec.ID, globexKey, nil, "traceparent", tp)
	spans := traceOf(t, exp, tid)
	if m := mentions(spans, string(acme), "acme", rec.ID); m != "" {
		t.Errorf("globex's refused request's trace mentions acme: %s", m)
	}
	var scope *tracetest.SpanStub
	for i, s := range spans {
		if _, ok := attrOf(s, observe.AttrTenantID); ok && s.Name != "bulkhead.store" {
			t.Errorf("span %s names a tenant", s.Name)
		}
		if s.Name == "bulkhead.scope" {
			scope = &spans[i]
		}
	}
	if scope == nil {
		t.Fatal("no scope span")
	}
	if v, _ := attrOf(*scope, observe.AttrErrorType); scope.Status.Code != codes.Error || v.AsString() != "not_found" {
		t.Errorf("the scope span does not record the refusal: status %v, error.type %q", scope.Status, v.AsString())
	}
}

// Without a traceparent a request starts a trace of its own; a server
// error marks the server span failed, a client error does not.
func TestTracingNewTraceAndStatus(t *testing.T) {
	b, exp := tracedBundle(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	exp.Reset()
	b.mustProblem(404, "not_found", "GET", "/v1/tenants/acme/collections/nosuch/records/x", key, nil)
	deadline := time.Now().Add(10 * time.Second)
	for {
		for _, s := range exp.GetSpans() {
			if s.SpanKind != trace.SpanKindServer {
				continue
			}
			if s.Parent.IsValid() {
				t.Errorf("server span has a parent %v without traceparent", s.Parent.SpanID())
			}
			if s.Status.Code == codes.Error {
				t.Errorf("a 404 marks the server span failed")
			}
			if v, _ := attrOf(s, observe.AttrErrorType); v.AsString() != "not_found" {
				t.Errorf("the server span's error.type = %q, want the problem code not_found", v.AsString())
			}
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("no server span")
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func names(spans tracetest.SpanStubs) []string {
	var n []string
	for _, s := range spans {
		n = append(n, s.Name)
	}
	return n
}

// A server without Tracing starts no span: a caller's trace context in
// the request does not make it record one.
func TestTracingOffRecordsNothing(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	// Tracing exists in the process (another server's), so that only the
	// server's own setting keeps its requests untraced.
	tr := observe.NewTracing(sdktrace.WithSyncer(exp))
	t.Cleanup(func() { tr.Shutdown(t.Context()) })
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	b.collection("acme", key, "notes", nil)
	tp, _, _ := traceparent(4)
	r := b.must(201, "POST", "/v1/tenants/acme/collections/notes/records", key, map[string]any{"title": "x"}, "traceparent", tp)
	if got := len(exp.GetSpans()); got != 0 {
		t.Errorf("%d spans recorded with tracing off", got)
	}
	if r.Header.Get("traceparent") != "" {
		t.Errorf("answer carries traceparent")
	}
}

// A refused request's spans name the error by its problem code alone: a
// schema violation's answer quotes the value refused, and the trace holds
// neither the answer's detail nor the value.
func TestTracingErrorsWithoutMessages(t *testing.T) {
	b, exp := tracedBundle(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	b.collection("acme", key, "codes", map[string]any{"type": "object",
		"properties": map[string]any{"code": map[string]any{"type": "string", "pattern": "^x"}}})
	const value = "pii-marker-8731"
	tp, tid, _ := traceparent(5)
	r := b.do("POST", "/v1/tenants/acme/collections/codes/records", key, map[string]any{"code": value}, "traceparent", tp)
	if r.Status != 422 || !strings.Contains(string(r.Body), value) {
		t.Fatalf("want a 422 whose detail quotes the value; got %d %s", r.Status, r.Body)
	}
	spans := traceOf(t, exp, tid)
	if m := mentions(spans, value); m != "" {
		t.Errorf("the trace quotes the refused value: %s", m)
	}
	failed := 0
	for _, s := range spans {
		if v, ok := attrOf(s, observe.AttrErrorType); ok {
			failed++
			if v.AsString() != "schema_violation" {
				t.Errorf("span %s: error.type %q, want schema_violation", s.Name, v.AsString())
			}
		}
	}
	if failed == 0 {
		t.Error("no span names the error")
	}
}
