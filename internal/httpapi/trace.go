package httpapi

import (
	"net/http"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"

	"github.com/bulkheadhq/bulkhead/internal/observe"
)

// Spans name an error by the problem code it is answered with.
func init() {
	observe.ClassifySpanErrors(func(err error) string { return string(problemFor(err).Code) })
}

// traceContext reads and writes W3C traceparent and tracestate headers.
var traceContext propagation.TraceContext

// serverSpan is the option of request spans, made once.
var serverSpan = []trace.SpanStartOption{trace.WithSpanKind(trace.SpanKindServer)}

// startSpan starts the request's server span, continuing the caller's
// trace when the request carries a traceparent header, and returns the
// request with the span in its context. With tracing off it returns r and
// a nil span, doing nothing else.
func (s *Server) startSpan(r *http.Request, rt *Route, label string, rq *request) (*http.Request, trace.Span) {
	if s.tracer == nil {
		return r, nil
	}
	ctx := traceContext.Extract(r.Context(), propagation.HeaderCarrier(r.Header))
	ctx, span := s.tracer.Start(ctx, label, serverSpan...)
	if !span.IsRecording() { // not sampled
		return r.WithContext(ctx), nil
	}
	span.SetAttributes(
		attribute.String("http.request.method", r.Method),
		observe.AttrRequestID.String(rq.id),
	)
	if rt.Method != "" {
		span.SetAttributes(attribute.String("http.route", rt.Pattern))
	}
	return r.WithContext(ctx), span
}

// spanError names the error a request is answered with on its span, by
// its problem code (never its message, which may quote the request).
func spanError(span trace.Span, err error) {
	if span != nil {
		span.SetAttributes(observe.AttrErrorType.String(observe.SpanErrorType(err)))
	}
}

// endSpan ends the request's span with its status: a server error (5xx)
// marks the span failed, as OpenTelemetry's HTTP conventions say of server
// spans.
func endSpan(span trace.Span, rw *responseWriter) {
	if span == nil {
		return
	}
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	span.SetAttributes(attribute.Int("http.response.status_code", status))
	if status >= 500 {
		span.SetStatus(codes.Error, http.StatusText(status))
	}
	span.End()
}

// spanTenant names the request's tenant on its span and the spans started
// after it; it does nothing with tracing off.
func (s *Server) spanTenant(r *http.Request, rq *request) *http.Request {
	if s.tracer == nil {
		return r
	}
	t := rq.scope.Tenant()
	ctx := observe.WithSpanTenant(r.Context(), string(t.ID), string(t.Slug))
	if ctx == r.Context() {
		return r
	}
	return r.WithContext(ctx)
}
