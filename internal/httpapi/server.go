// Package httpapi is bulkhead's HTTP API: the routes of openapi.json
// (served at /openapi.json; docs/api.md is the guide to them) and the one
// straight request path every request takes — authenticate, scope to the
// credential's tenant, admit, read the body, handle (each database
// transaction queued for a slot), answer (errors as problem+json) — with a
// log line and metrics for each request.
package httpapi

import (
	"cmp"
	"context"
	"log/slog"
	"net/http"
	"net/netip"
	"strings"
	"time"

	"go.opentelemetry.io/otel/trace"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/observe"
	"github.com/bulkheadhq/bulkhead/internal/ratelimit"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Config configures the API. Core and Store are required.
type Config struct {
	Core  *core.Core
	Store store.Store
	// Metrics receives request metrics and is served at /metrics. Defaults
	// to a new observe.Metrics.
	Metrics *observe.Metrics
	// Logger receives one line per request. Defaults to slog.Default().
	Logger *slog.Logger
	// MaxBodyBytes limits request bodies. Defaults to 1 MiB.
	MaxBodyBytes int64
	// MaxArchiveBytes limits the archive a restore uploads. Defaults to 16
	// GiB.
	MaxArchiveBytes int64
	// MaxJSONDepth limits the nesting of JSON bodies. Defaults to 64.
	MaxJSONDepth int
	// BodyTimeout bounds how long a request body may take to arrive once
	// the request is admitted; a slower body is answered 408. Defaults to
	// 10s.
	BodyTimeout time.Duration
	// WriteTimeout bounds how long writing a response may take; a client
	// that reads slower is cut off. Defaults to 20s.
	WriteTimeout time.Duration
	// Admission is per-tenant admission control; its zero value admits
	// everything.
	Admission Admission
	// TrustedProxies are the peers whose X-Forwarded-For header names the
	// client; from any other peer the header is ignored. Empty trusts none.
	TrustedProxies []netip.Prefix
	// PublicURL is the API's external base URL, such as
	// https://api.example.com: the redirect URIs of federated logins are
	// under it. Defaults to the scheme and Host of each request.
	PublicURL string
	// TLS says the API is served over HTTPS (by this process or a proxy in
	// front of it): answers then carry Strict-Transport-Security.
	TLS bool
	// Tracing, when not nil, gives each request a server span, with
	// children for its steps (see observe.StartSpan). Nil is tracing off.
	Tracing *observe.Tracing
}

// Server serves the API. It is safe for concurrent use.
type Server struct {
	core         *core.Core
	store        store.Store
	metrics      *observe.Metrics
	log          *slog.Logger
	maxBody      int64
	maxDepth     int
	bodyTimeout  time.Duration
	maxArchive   int64
	writeTimeout time.Duration
	mux          *http.ServeMux
	routes       []Route
	proxies      []netip.Prefix
	publicURL    string
	tls          bool
	tracer       trace.Tracer // nil: tracing off

	admission Admission
}

// Route is one operation of the API.
type Route struct {
	Method string
	// Pattern is the path in net/http.ServeMux syntax, which is also the
	// OpenAPI path syntax.
	Pattern string
	// Public routes take no credential.
	Public bool
	// AuthLimited public routes are held to Admission.AuthLimit per
	// tenant slug: login and refresh.
	AuthLimited bool
	// Operator routes are the control plane's: the request path refuses
	// every credential but the operator's (after scoping, so that another
	// tenant's slug is still a 404) and gives the handler rq.control.
	Operator bool
	// Body routes take a JSON body. The request path reads it, bounded in
	// size and time, before the handler runs, so that no database slot is
	// held while a client sends slowly.
	Body bool
	// WhileDeleting routes are those a deleting tenant's admins may still
	// use, to take their data with them (exports and their jobs): they
	// are scoped by core.ScopeWhileDeleting, every other route by
	// core.Scope, which refuses a deleting tenant's credentials.
	WhileDeleting bool
	// Stream routes take a body that is not JSON, which their handler
	// reads as a stream under its own limits (a restore's archive).
	Stream bool
	handle handlerFunc
}

// handlerFunc handles a request that has passed authentication and
// scoping. It returns an error instead of writing one.
type handlerFunc func(w http.ResponseWriter, r *http.Request, rq *request) error

// request is what the request path learned about a request before its
// handler runs.
type request struct {
	id        string
	principal *tenant.Principal // nil on public routes
	scope     *core.Scope       // set on routes under /v1/tenants/{tenant}
	control   *core.Control     // set on Operator routes
	body      []byte            // the JSON body of a Body route
	// decision is the rate limiter's, whose headers go with refusals.
	decision ratelimit.Decision
	// shed says the request was answered 503 by load shedding.
	shed bool
}

// New returns the API server.
func New(cfg Config) *Server {
	s := &Server{
		core:         cfg.Core,
		store:        cfg.Store,
		metrics:      cfg.Metrics,
		log:          cfg.Logger,
		maxBody:      cfg.MaxBodyBytes,
		maxDepth:     cfg.MaxJSONDepth,
		bodyTimeout:  cmp.Or(cfg.BodyTimeout, 10*time.Second),
		maxArchive:   cmp.Or(cfg.MaxArchiveBytes, 16<<30),
		writeTimeout: cmp.Or(cfg.WriteTimeout, 20*time.Second),
		mux:          http.NewServeMux(),
		proxies:      cfg.TrustedProxies,
		publicURL:    cfg.PublicURL,
		tls:          cfg.TLS,
		tracer:       cfg.Tracing.Tracer(),

		admission: cfg.Admission,
	}
	s.admission.setDefaults()
	if s.metrics == nil {
		s.metrics = observe.NewMetrics()
	}
	if s.log == nil {
		s.log = slog.Default()
	}
	if s.maxBody <= 0 {
		s.maxBody = 1 << 20
	}
	if s.maxDepth <= 0 {
		s.maxDepth = 64
	}
	s.routes = s.routeTable()
	paths := map[string]bool{}
	for _, rt := range s.routes {
		s.mux.Handle(rt.Method+" "+rt.Pattern, s.wrap(rt))
		if !paths[rt.Pattern] {
			// A pattern without a method matches only when no route of the
			// path has the request's method: that is a 405.
			paths[rt.Pattern] = true
			s.mux.Handle(rt.Pattern, s.wrap(Route{Pattern: rt.Pattern, Public: true, handle: s.methodNotAllowed}))
		}
	}
	s.mux.Handle("/", s.wrap(Route{Pattern: "/", Public: true, handle: notFound}))
	return s
}

// Routes returns the API's routes, for documentation and tests.
func (s *Server) Routes() []Route { return s.routes }

// ServeHTTP implements http.Handler.
func (s *Server) ServeHTTP(w http.ResponseWriter, r *http.Request) { s.mux.ServeHTTP(w, r) }

// wrap runs the request path for one route.
func (s *Server) wrap(rt Route) http.Handler {
	label := rt.Method + " " + rt.Pattern
	if rt.Method == "" {
		label = "other"
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		rq := &request{id: newRequestID()}
		r, span := s.startSpan(r, &rt, label, rq) // nil span: tracing off
		rw := &responseWriter{ResponseWriter: w, writeTimeout: s.writeTimeout}
		h := rw.Header()
		h.Set("X-Request-Id", rq.id)
		// Answers depend on the credential and may carry tenant data: no
		// cache may keep them or serve them to another credential. Routes
		// whose answers are public say so themselves.
		h["Cache-Control"] = cacheControlPrivate
		h["Vary"] = varyAuthorization
		s.setSecurityHeaders(h, r)
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				s.log.Error("panic", "request_id", rq.id, "route", label, "panic", v)
				if !rw.wrote {
					s.writeError(rw, r, rq, errPanic)
				}
			}
			s.finish(rw, r, rq, label, start)
			s.reportDenied(rw, r, rq)
			endSpan(span, rw)
		}()
		if err := s.serve(rw, r, rq, rt); err != nil {
			spanError(span, err)
			s.writeError(rw, r, rq, err)
		}
	})
}

// serve is the straight line: authenticate, scope, admit, read the body,
// handle. Public routes that take a password or a refresh token are
// admitted by their slug's login limit instead. Each database transaction
// of the handler waits for its own slot (see fairq.Store), so a slot is
// held only while the database works: never while the body arrives, nor
// while the response is written, however slow the client.
func (s *Server) serve(w http.ResponseWriter, r *http.Request, rq *request, rt Route) error {
	if err := s.checkQuery(r); err != nil {
		return err
	}
	r = r.WithContext(core.WithClient(r.Context(), clientAddr(r, s.proxies)))
	if rt.AuthLimited {
		if err := s.admitAuth(r); err != nil {
			return err
		}
	}
	if !rt.Public {
		ctx, span := observe.StartSpan(r.Context(), "bulkhead.authenticate")
		p, err := s.core.Authenticate(ctx, bearer(r))
		observe.EndSpan(span, err)
		if err != nil {
			return err
		}
		rq.principal = p
		if slug := r.PathValue("tenant"); slug != "" {
			scope := s.core.Scope
			if rt.WhileDeleting {
				scope = s.core.ScopeWhileDeleting
			}
			ctx, span := observe.StartSpan(r.Context(), "bulkhead.scope")
			rq.scope, err = scope(ctx, p, tenant.Slug(slug), rq.id)
			observe.EndSpan(span, err)
			if err != nil {
				return err
			}
			r = s.spanTenant(r, rq)
			if !p.IsOperator() {
				_, span := observe.StartSpan(r.Context(), "bulkhead.admit")
				ctx, done, err := s.admit(r, rq)
				observe.EndSpan(span, err)
				if err != nil {
					return err
				}
				defer done()
				r = r.WithContext(ctx)
				rq.scope.CountRequest() // the tenant's usage, flushed in the background
			}
		}
		if rt.Operator {
			if rq.control, err = s.core.Control(p, rq.id); err != nil {
				return err
			}
		}
	}
	if rt.Body {
		body, err := s.readBody(w, r)
		if err != nil {
			return err
		}
		rq.body = body
	}
	return rt.handle(w, r, rq)
}

func (s *Server) finish(rw *responseWriter, r *http.Request, rq *request, route string, start time.Time) {
	d := time.Since(start)
	status := rw.status
	if status == 0 {
		status = http.StatusOK
	}
	slug := ""
	var t store.Tenant
	if rq.scope != nil {
		t = rq.scope.Tenant()
		slug = string(t.Slug)
	}
	s.metrics.ObserveRequest(slug, route, status, d)
	if rq.scope != nil && rq.principal != nil && !rq.principal.IsOperator() {
		// The tenant's health counts its own credentials' requests, not the
		// operator's looking at it.
		s.metrics.Health.Record(string(t.ID), slug, status, rq.shed, d)
	}
	if !s.log.Enabled(r.Context(), slog.LevelInfo) {
		return
	}
	attrs := []slog.Attr{
		slog.String("request_id", rq.id),
		slog.String("method", r.Method),
		slog.String("route", route),
		slog.Int("status", status),
		slog.Float64("duration_ms", float64(d)/float64(time.Millisecond)),
	}
	if rq.scope != nil {
		attrs = append(attrs, slog.String("tenant", string(t.ID)), slog.String("tenant_slug", slug))
	}
	if rq.principal != nil {
		attrs = append(attrs, slog.String("actor", rq.principal.Actor()))
	}
	if s.tracer != nil {
		if sc := trace.SpanContextFromContext(r.Context()); sc.IsSampled() {
			attrs = append(attrs, slog.String("trace_id", sc.TraceID().String()))
		}
	}
	if rw.writeErr != nil {
		// The client stopped reading or went away before the whole
		// answer was written: its doing, not a failure of ours.
		attrs = append(attrs, slog.Bool("client_abort", true), slog.String("write_error", rw.writeErr.Error()))
	}
	s.log.LogAttrs(context.Background(), slog.LevelInfo, "request", attrs...)
}

// Header values every answer of their kind carries, shared: a header's
// slice is never changed in place (Set replaces it, Add appends to a full
// slice, which copies), so sharing them saves an allocation per answer.
var (
	cacheControlPrivate = []string{"private, no-store"}
	varyAuthorization   = []string{"Authorization"}
	contentTypeJSON     = []string{"application/json"}
)

// bearer returns the token of an "Authorization: Bearer" header.
func bearer(r *http.Request) string {
	h := r.Header.Get("Authorization")
	if len(h) > 7 && strings.EqualFold(h[:7], "bearer ") {
		return strings.TrimSpace(h[7:])
	}
	return ""
}

// responseWriter records the status for logs and metrics, and gives the
// writing of the answer its own deadline, set when the answer starts: a
// client that reads slowly is cut off after writeTimeout.
type responseWriter struct {
	http.ResponseWriter
	status       int
	wrote        bool
	writeTimeout time.Duration
	writeErr     error // the first failed write
}

func (w *responseWriter) WriteHeader(code int) {
	if !w.wrote {
		w.status, w.wrote = code, true
		w.startWriting()
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *responseWriter) Write(b []byte) (int, error) {
	if !w.wrote {
		w.status, w.wrote = http.StatusOK, true
		w.startWriting()
	}
	n, err := w.ResponseWriter.Write(b)
	if err != nil && w.writeErr == nil {
		w.writeErr = err
	}
	return n, err
}

func (w *responseWriter) startWriting() {
	if w.writeTimeout > 0 {
		// Not every ResponseWriter has deadlines (httptest's recorder has
		// none); then the server's WriteTimeout alone applies.
		_ = http.NewResponseController(w.ResponseWriter).SetWriteDeadline(time.Now().Add(w.writeTimeout))
	}
}

func (w *responseWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }
