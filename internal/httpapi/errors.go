package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/ratelimit"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/store"
)

var errPanic = errors.New("handler panicked")

// problemFor maps an error to the problem the client sees. Everything not
// recognised is a 500 whose cause goes to the log only.
func problemFor(err error) *problem.Details {
	var d *problem.Details
	var limited *ratelimit.LimitedError
	switch {
	case errors.As(err, &d):
		return d
	case errors.As(err, &limited):
		d := problem.New(http.StatusTooManyRequests, problem.CodeRateLimited, "over the rate limit; retry after Retry-After seconds").
			WithHeader("Retry-After", strconv.Itoa(limited.RetryAfterSeconds()))
		withRateLimitHeaders(d, limited.Decision)
		return d
	case errors.Is(err, store.ErrNotFound):
		return problem.New(http.StatusNotFound, problem.CodeNotFound, "resource not found")
	case errors.Is(err, store.ErrConflict):
		return problem.New(http.StatusConflict, problem.CodeConflict, "the resource conflicts with an existing one")
	case errors.Is(err, store.ErrVersionMismatch):
		return problem.New(http.StatusPreconditionFailed, problem.CodePreconditionFailed, "the resource's version does not match If-Match")
	case errors.Is(err, core.ErrUnauthorized):
		return problem.New(http.StatusUnauthorized, problem.CodeUnauthorized, "a valid bearer credential is required").
			WithHeader("WWW-Authenticate", `Bearer realm="bulkhead"`)
	case errors.Is(err, core.ErrInvalidCredentials):
		return problem.New(http.StatusUnauthorized, problem.CodeInvalidCredentials, "the credentials are not valid")
	case errors.Is(err, core.ErrForbidden):
		return problem.New(http.StatusForbidden, problem.CodeForbidden, "the credential does not allow this")
	case errors.Is(err, core.ErrTenantSuspended):
		return problem.New(http.StatusForbidden, problem.CodeTenantSuspended, "the tenant is suspended")
	case errors.Is(err, context.DeadlineExceeded):
		return problem.New(http.StatusServiceUnavailable, problem.CodeUnavailable, "the request took too long; retry later").
			WithHeader("Retry-After", "1")
	}
	return problem.New(http.StatusInternalServerError, problem.CodeInternal, "internal error; quote the request_id to the operator")
}

// writeError answers with the problem for err. If the client went away there
// is nobody to answer.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, rq *request, err error) {
	if errors.Is(err, context.Canceled) && r.Context().Err() != nil {
		w.WriteHeader(499) // nginx's "client closed request", for logs and metrics only
		return
	}
	d := problemFor(err)
	if d.Status >= 500 {
		s.log.Error("request failed", "request_id", rq.id, "method", r.Method, "path", r.URL.Path, "err", err)
	}
	d.Instance = r.URL.Path
	d.RequestID = rq.id
	d.Write(w)
}

func notFound(w http.ResponseWriter, r *http.Request, rq *request) error {
	return store.ErrNotFound
}

// methodNotAllowed answers a path that exists with a method it lacks.
func (s *Server) methodNotAllowed(w http.ResponseWriter, r *http.Request, rq *request) error {
	var methods []string
	for _, rt := range s.routes {
		if rt.Pattern == r.Pattern {
			methods = append(methods, rt.Method)
		}
	}
	sort.Strings(methods)
	return problem.New(http.StatusMethodNotAllowed, problem.CodeMethodNotAllowed, "this path does not take "+r.Method).
		WithHeader("Allow", strings.Join(methods, ", "))
}

func newRequestID() string {
	var b [12]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
