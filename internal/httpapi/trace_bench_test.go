package httpapi

import (
	"net/http/httptest"
	"testing"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/internal/observe"
)

// BenchmarkGetRecordTracing is a GET of a record through the full handler,
// with a fair scheduler (so that the queue step runs), with tracing off and
// then on: every request sampled, its spans batched to an exporter that
// discards them. Run "off" in a process of its own to compare it with
// BenchmarkGetRecord/pooled of an older commit:
//
//	go test ./internal/httpapi -run '^$' -bench 'GetRecordTracing' -benchmem
//
// ("off" runs first: once any tracing exists in the process, the span
// helpers look at the context before returning, which "off" would then
// also pay.)
func BenchmarkGetRecordTracing(b *testing.B) {
	for _, on := range []bool{false, true} {
		name := "off"
		if on {
			name = "on"
		}
		b.Run(name, func(b *testing.B) {
			sched, err := fairq.New(fairq.Config{Slots: 4})
			if err != nil {
				b.Fatal(err)
			}
			cfg := benchConfig{admission: Admission{Scheduler: sched}}
			if on {
				cfg.tracing = observe.NewTracing(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
				b.Cleanup(func() { cfg.tracing.Shutdown(b.Context()) })
			}
			f := newBenchFixture(b, cfg)
			req := httptest.NewRequest("GET", f.recordPath, nil)
			req.Header.Set("Authorization", "Bearer "+f.key)
			b.ReportAllocs()
			for b.Loop() {
				serve(b, f.h, req, 200)
			}
		})
	}
}
