package httpapi

import (
	"net/http/httptest"
	"testing"
	"time"

	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"

	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/internal/observe"
)

// Tracing modes of tracingBench.
const (
	tracingOff       = "off"
	tracingOn        = "on"        // every request sampled
	tracingUnsampled = "unsampled" // on, but no request sampled
)

// tracingBench is the full API with a fair scheduler (so that the queue
// step runs) and tracing as mode says, its spans batched to an exporter
// that discards them; get sends a GET of the fixture's record.
func tracingBench(b *testing.B, mode string) (get func()) {
	sched, err := fairq.New(fairq.Config{Slots: 4})
	if err != nil {
		b.Fatal(err)
	}
	cfg := benchConfig{admission: Admission{Scheduler: sched}}
	switch mode {
	case tracingOn:
		cfg.tracing = observe.NewTracing(sdktrace.WithBatcher(tracetest.NewNoopExporter()))
	case tracingUnsampled:
		cfg.tracing = observe.NewTracing(sdktrace.WithBatcher(tracetest.NewNoopExporter()), sdktrace.WithSampler(sdktrace.NeverSample()))
	}
	if cfg.tracing != nil {
		b.Cleanup(func() { cfg.tracing.Shutdown(b.Context()) })
	}
	f := newBenchFixture(b, cfg)
	req := httptest.NewRequest("GET", f.recordPath, nil)
	req.Header.Set("Authorization", "Bearer "+f.key)
	return func() { serve(b, f.h, req, 200) }
}

// BenchmarkGetRecordTracing is a GET of a record through the full handler
// with tracing off, on, and on but sampling no request. The Ratio
// sub-benchmark alternates the three in one loop and reports the times
// of the other two relative to off as the metrics "on/off" and
// "unsampled/off".
//
//	go test ./internal/httpapi -run '^$' -bench 'GetRecordTracing' -benchmem
//
// "off" runs first, and is the one to compare with BenchmarkGetRecord of
// an older commit: once any tracing exists in the process, the span
// helpers look at the request's context before returning (no allocation,
// a few nanoseconds), which later "off" runs, and Ratio's, then pay too.
func BenchmarkGetRecordTracing(b *testing.B) {
	for _, mode := range []string{tracingOff, tracingOn, tracingUnsampled} {
		b.Run(mode, func(b *testing.B) {
			get := tracingBench(b, mode)
			b.ReportAllocs()
			for b.Loop() {
				get()
			}
		})
	}
	b.Run("Ratio", func(b *testing.B) {
		off, on, unsampled := tracingBench(b, tracingOff), tracingBench(b, tracingOn), tracingBench(b, tracingUnsampled)
		var toff, ton, tun time.Duration
		for b.Loop() {
			t0 := time.Now()
			off()
			t1 := time.Now()
			on()
			t2 := time.Now()
			unsampled()
			toff += t1.Sub(t0)
			ton += t2.Sub(t1)
			tun += time.Since(t2)
		}
		b.ReportMetric(float64(ton)/float64(toff), "on/off")
		b.ReportMetric(float64(tun)/float64(toff), "unsampled/off")
	})
}
