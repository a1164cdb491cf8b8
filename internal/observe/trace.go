package observe

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"os"
	"strings"
	"sync/atomic"

	"go.opentelemetry.io/contrib/exporters/autoexport"
	"go.opentelemetry.io/contrib/instrumentation/net/http/otelhttp"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/sdk/resource"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"
)

// TracerName is the instrumentation scope of bulkhead's spans.
const TracerName = "github.com/bulkheadhq/bulkhead"

// Span attribute keys bulkhead sets besides OpenTelemetry's HTTP ones.
const (
	AttrTenantID   = attribute.Key("bulkhead.tenant.id")
	AttrTenantSlug = attribute.Key("bulkhead.tenant.slug")
	AttrRequestID  = attribute.Key("bulkhead.request.id")
	// AttrErrorType is OpenTelemetry's error.type: the class of the error
	// a span failed with.
	AttrErrorType = attribute.Key("error.type")
)

// Tracing is a node's OpenTelemetry tracing: a tracer provider whose spans
// leave through an exporter. A nil *Tracing is tracing turned off, and its
// methods do nothing.
type Tracing struct {
	provider *sdktrace.TracerProvider
	tracer   trace.Tracer
}

// tracingOn is set once any Tracing exists in the process. Until then
// StartSpan returns at once, without looking at its context: with tracing
// off the request path pays one atomic load per span it would have
// started.
var tracingOn atomic.Bool

// TracingFromEnv sets up tracing as the standard OTEL_* variables say, or
// returns nil when they leave it off, which is the default. Tracing is on
// when OTEL_TRACES_EXPORTER is otlp or console, or when it is unset and
// OTEL_EXPORTER_OTLP_ENDPOINT or OTEL_EXPORTER_OTLP_TRACES_ENDPOINT is set;
// OTEL_TRACES_EXPORTER=none or OTEL_SDK_DISABLED=true turns it off. The
// exporter (OTLP over http/protobuf by default, or grpc, or the console)
// and its endpoint, headers and timeouts, the sampler (OTEL_TRACES_SAMPLER,
// OTEL_TRACES_SAMPLER_ARG), the batch processor (OTEL_BSP_*) and the
// resource (OTEL_SERVICE_NAME, default "bulkhead"; OTEL_RESOURCE_ATTRIBUTES)
// are read by the OpenTelemetry SDK from the same variables.
//
// The provider also becomes OpenTelemetry's global one, with W3C trace
// context as the global propagator, so that outgoing HTTP requests
// instrumented with it carry the request's trace. Export errors are logged
// to log at level warn.
func TracingFromEnv(ctx context.Context, log *slog.Logger) (*Tracing, error) {
	if !tracingWanted() {
		return nil, nil
	}
	exp, err := autoexport.NewSpanExporter(ctx)
	if err != nil {
		return nil, err
	}
	res, err := resource.New(ctx,
		resource.WithAttributes(attribute.String("service.name", "bulkhead")),
		resource.WithFromEnv(), // OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES win
		resource.WithTelemetrySDK(),
		resource.WithHost(),
		resource.WithProcessPID(),
	)
	if err != nil && !errors.Is(err, resource.ErrPartialResource) {
		_ = exp.Shutdown(ctx)
		return nil, err
	}
	t := NewTracing(sdktrace.WithBatcher(exp), sdktrace.WithResource(res))
	if log != nil {
		otel.SetErrorHandler(otel.ErrorHandlerFunc(func(err error) {
			log.Warn("tracing", "err", err)
		}))
	}
	otel.SetTracerProvider(t.provider)
	otel.SetTextMapPropagator(propagation.TraceContext{})
	return t, nil
}

// tracingWanted reports whether the environment turns tracing on.
func tracingWanted() bool {
	if strings.EqualFold(strings.TrimSpace(os.Getenv("OTEL_SDK_DISABLED")), "true") {
		return false
	}
	switch v := strings.ToLower(strings.TrimSpace(os.Getenv("OTEL_TRACES_EXPORTER"))); v {
	case "":
		return os.Getenv("OTEL_EXPORTER_OTLP_ENDPOINT") != "" || os.Getenv("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT") != ""
	case "none":
		return false
	default:
		// otlp, console, or a name the exporter refuses: an error at
		// start, not tracing silently off.
		return true
	}
}

// NewTracing returns tracing on a new SDK tracer provider built with opts,
// such as sdktrace.WithBatcher(exporter). It does not touch OpenTelemetry's
// globals: tests and benchmarks build theirs with it.
func NewTracing(opts ...sdktrace.TracerProviderOption) *Tracing {
	tp := sdktrace.NewTracerProvider(opts...)
	tracingOn.Store(true)
	return &Tracing{provider: tp, tracer: tp.Tracer(TracerName)}
}

// Tracer returns the tracer of request spans; nil when t is nil.
func (t *Tracing) Tracer() trace.Tracer {
	if t == nil {
		return nil
	}
	return t.tracer
}

// Shutdown exports the spans still buffered and stops the provider,
// waiting at most until ctx is done.
func (t *Tracing) Shutdown(ctx context.Context) error {
	if t == nil {
		return nil
	}
	return t.provider.Shutdown(ctx)
}

// Transport wraps base for outgoing requests, such as those to a tenant's
// OpenID provider: a request made in a traced request gets a client span
// and carries the trace to the server it calls in a W3C traceparent
// header. It uses OpenTelemetry's global provider and propagator, which
// TracingFromEnv sets; with tracing off it adds no header and records
// nothing.
func Transport(base http.RoundTripper) http.RoundTripper {
	return otelhttp.NewTransport(base)
}

// noopSpan is the span StartSpan returns when it starts none.
var noopSpan trace.Span = noop.Span{}

// StartSpan starts a span named name as a child of the recording span ctx
// carries, with the tenant attributes of WithSpanTenant, and returns it
// with a context carrying it. When ctx carries no recording span (tracing
// is off, or the trace is not sampled) it returns ctx itself and a span
// that does nothing, allocating nothing: callers build attributes only
// when span.IsRecording().
func StartSpan(ctx context.Context, name string) (context.Context, trace.Span) {
	if !tracingOn.Load() {
		return ctx, noopSpan
	}
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, noopSpan
	}
	ctx, span := parent.TracerProvider().Tracer(TracerName).Start(ctx, name)
	if t, ok := ctx.Value(spanTenantKey{}).(*spanTenant); ok {
		span.SetAttributes(t.attrs[:]...)
	}
	return ctx, span
}

// StartTenantSpan is StartSpan for work in the tenant whose ID is id,
// such as a transaction: the span names that tenant, and its slug when it
// is the one WithSpanTenant put in ctx.
func StartTenantSpan(ctx context.Context, name, id string) (context.Context, trace.Span) {
	if !tracingOn.Load() {
		return ctx, noopSpan
	}
	parent := trace.SpanFromContext(ctx)
	if !parent.IsRecording() {
		return ctx, noopSpan
	}
	ctx, span := parent.TracerProvider().Tracer(TracerName).Start(ctx, name)
	if t, ok := ctx.Value(spanTenantKey{}).(*spanTenant); ok && t.id == id {
		span.SetAttributes(t.attrs[:]...)
	} else {
		span.SetAttributes(AttrTenantID.String(id))
	}
	return ctx, span
}

// EndSpan ends span, marking it failed when err is not nil. The span
// names the error by its class only (attribute error.type, and the
// status's description; see ClassifySpanErrors), never by its message,
// which may quote a request's data: the log line of a failed request has
// that.
func EndSpan(span trace.Span, err error) {
	if !span.IsRecording() {
		return
	}
	if err != nil {
		t := SpanErrorType(err)
		span.SetAttributes(AttrErrorType.String(t))
		span.SetStatus(codes.Error, t)
	}
	span.End()
}

// spanErrorType classifies errors for spans; see ClassifySpanErrors.
var spanErrorType = func(error) string { return "error" }

// ClassifySpanErrors sets how EndSpan names an error: fn returns a short,
// stable class of it, such as the problem code it is answered with. It is
// meant to be called once, from an init function (package httpapi's); by
// default every error is "error".
func ClassifySpanErrors(fn func(error) string) { spanErrorType = fn }

// SpanErrorType returns the class of err that spans name it by.
func SpanErrorType(err error) string { return spanErrorType(err) }

type spanTenantKey struct{}

// spanTenant is the tenant of a request's spans, its attributes built once.
type spanTenant struct {
	id    string
	attrs [2]attribute.KeyValue
}

// WithSpanTenant names the tenant a request was scoped to on the span ctx
// carries and, through the returned context, on the spans started from it.
// When ctx carries no recording span it returns ctx, allocating nothing.
func WithSpanTenant(ctx context.Context, id, slug string) context.Context {
	if !tracingOn.Load() {
		return ctx
	}
	span := trace.SpanFromContext(ctx)
	if !span.IsRecording() {
		return ctx
	}
	t := &spanTenant{id: id, attrs: [2]attribute.KeyValue{AttrTenantID.String(id), AttrTenantSlug.String(slug)}}
	span.SetAttributes(t.attrs[:]...)
	return context.WithValue(ctx, spanTenantKey{}, t)
}
