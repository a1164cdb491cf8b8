package observe

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"testing"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace/noop"
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

// Tracing is off unless an OTEL_* variable turns it on, and the variables
// that turn it off win.
func TestTracingFromEnv(t *testing.T) {
	for _, tc := range []struct {
		name string
		env  map[string]string
		on   bool
		err  bool
	}{
		{name: "nothing set", env: nil},
		{name: "only a service name", env: map[string]string{"OTEL_SERVICE_NAME": "x"}},
		{name: "endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}, on: true},
		{name: "traces endpoint", env: map[string]string{"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://127.0.0.1:4318/v1/traces"}, on: true},
		{name: "grpc", env: map[string]string{"OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4317", "OTEL_EXPORTER_OTLP_PROTOCOL": "grpc"}, on: true},
		{name: "otlp exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp"}, on: true},
		{name: "console exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "console"}, on: true},
		{name: "none exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://127.0.0.1:4318"}},
		{name: "sdk disabled", env: map[string]string{"OTEL_SDK_DISABLED": "true", "OTEL_TRACES_EXPORTER": "otlp"}},
		{name: "unknown exporter", env: map[string]string{"OTEL_TRACES_EXPORTER": "zipkinn"}, err: true},
		{name: "unknown protocol", env: map[string]string{"OTEL_TRACES_EXPORTER": "otlp", "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL": "carrier-pigeon"}, err: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			clearOTel(t)
			t.Cleanup(func() { otel.SetTracerProvider(noop.NewTracerProvider()) })
			for k, v := range tc.env {
				t.Setenv(k, v)
			}
			tr, err := TracingFromEnv(t.Context(), nil)
			if (err != nil) != tc.err {
				t.Fatalf("err = %v, want error %v", err, tc.err)
			}
			if (tr != nil) != tc.on {
				t.Fatalf("tracing on = %v, want %v", tr != nil, tc.on)
			}
			_, sdk := otel.GetTracerProvider().(*sdktrace.TracerProvider)
			if sdk != tc.on {
				t.Errorf("global provider is the SDK's = %v, want %v", sdk, tc.on)
			}
			if err := tr.Shutdown(t.Context()); err != nil {
				t.Errorf("shutdown: %v", err)
			}
		})
	}
}

// Where no recording span is in the context — tracing off, or a trace not
// sampled — the span helpers return the context itself and allocate
// nothing, whether or not tracing exists elsewhere in the process.
func TestSpansOffAllocateNothing(t *testing.T) {
	check := func(when string) {
		ctx, errX := context.Background(), errors.New("x")
		allocs := testing.AllocsPerRun(100, func() {
			c, span := StartSpan(ctx, "bulkhead.test")
			c2, span2 := StartTenantSpan(c, "bulkhead.test", "t")
			c3 := WithSpanTenant(c2, "t", "acme")
			if c3 != ctx || span.IsRecording() || span2.IsRecording() {
				t.Fatalf("%s: a span was started", when)
			}
			EndSpan(span2, nil)
			EndSpan(span, errX)
		})
		if allocs != 0 {
			t.Errorf("%s: %v allocations per span, want 0", when, allocs)
		}
	}
	check("no tracing yet")
	tr := NewTracing(sdktrace.WithSampler(sdktrace.NeverSample()))
	defer tr.Shutdown(t.Context())
	check("tracing exists")
	// A trace that is not sampled starts no children.
	ctx, root := tr.Tracer().Start(context.Background(), "root")
	if root.IsRecording() {
		t.Fatal("NeverSample recorded")
	}
	if _, span := StartSpan(ctx, "child"); span.IsRecording() {
		t.Error("a child of an unsampled span records")
	}
}

// Children carry the tenant of WithSpanTenant; a tenant span of another
// tenant carries that tenant's ID only, never the request tenant's slug.
func TestSpanTenant(t *testing.T) {
	exp := tracetest.NewInMemoryExporter()
	tr := NewTracing(sdktrace.WithSyncer(exp))
	defer tr.Shutdown(t.Context())
	ctx, root := tr.Tracer().Start(context.Background(), "request")
	ctx = WithSpanTenant(ctx, "id-a", "acme")
	_, same := StartTenantSpan(ctx, "same", "id-a")
	EndSpan(same, nil)
	_, other := StartTenantSpan(ctx, "other", "id-b")
	EndSpan(other, errors.New("boom"))
	_, child := StartSpan(ctx, "child")
	EndSpan(child, nil)
	root.End()
	got := map[string]string{}
	for _, s := range exp.GetSpans() {
		var kv []string
		for _, a := range s.Attributes {
			kv = append(kv, string(a.Key)+"="+a.Value.String())
		}
		got[s.Name] = strings.Join(kv, " ")
		if s.Name == "other" && (s.Status.Code != codes.Error || s.Status.Description != "error" || len(s.Events) != 0) {
			t.Errorf("other's error not recorded by its class alone: %+v %+v", s.Status, s.Events)
		}
		if s.Name != "request" && s.Parent.SpanID() != root.SpanContext().SpanID() {
			t.Errorf("%s is not the request's child", s.Name)
		}
	}
	want := map[string]string{
		"request": "bulkhead.tenant.id=id-a bulkhead.tenant.slug=acme",
		"same":    "bulkhead.tenant.id=id-a bulkhead.tenant.slug=acme",
		"other":   "bulkhead.tenant.id=id-b error.type=error",
		"child":   "bulkhead.tenant.id=id-a bulkhead.tenant.slug=acme",
	}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("%s: attributes %q, want %q", name, got[name], w)
		}
	}
}

// An outgoing request through Transport in a traced request carries the
// trace in traceparent; with tracing off it carries none.
func TestTransportPropagates(t *testing.T) {
	clearOTel(t)
	got := make(chan string, 1)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		got <- r.Header.Get("traceparent")
	}))
	defer srv.Close()
	call := func(ctx context.Context) string {
		t.Helper()
		req, _ := http.NewRequestWithContext(ctx, "GET", srv.URL, nil)
		res, err := (&http.Client{Transport: Transport(http.DefaultTransport)}).Do(req)
		if err != nil {
			t.Fatal(err)
		}
		res.Body.Close()
		return <-got
	}
	if tp := call(context.Background()); tp != "" {
		t.Errorf("untraced request carries traceparent %q", tp)
	}

	t.Cleanup(func() {
		otel.SetTracerProvider(noop.NewTracerProvider())
		otel.SetTextMapPropagator(propagation.NewCompositeTextMapPropagator())
	})
	col := httptest.NewServer(http.HandlerFunc(func(http.ResponseWriter, *http.Request) {}))
	defer col.Close()
	t.Setenv("OTEL_EXPORTER_OTLP_ENDPOINT", col.URL)
	tr, err := TracingFromEnv(t.Context(), nil)
	if err != nil || tr == nil {
		t.Fatalf("TracingFromEnv = %v, %v", tr, err)
	}
	defer tr.Shutdown(t.Context())
	ctx, span := tr.Tracer().Start(context.Background(), "request")
	defer span.End()
	tp := call(ctx)
	if !strings.HasPrefix(tp, "00-"+span.SpanContext().TraceID().String()+"-") || !strings.HasSuffix(tp, "-01") {
		t.Errorf("traceparent = %q, want the request's trace %s, sampled", tp, span.SpanContext().TraceID())
	}
}

// BenchmarkStartSpanOff is what a span costs the request path with tracing
// off: StartSpan and EndSpan on a context with no recording span, before
// and after any tracing exists in the process.
func BenchmarkStartSpanOff(b *testing.B) {
	ctx := context.WithValue(context.Background(), spanTenantKey{}, "x") // a context chain to walk
	run := func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			_, span := StartSpan(ctx, "bulkhead.test")
			EndSpan(span, nil)
		}
	}
	b.Run("no-tracing", run)
	tr := NewTracing()
	defer tr.Shutdown(b.Context())
	b.Run("tracing-elsewhere", run)
}
