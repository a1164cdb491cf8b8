package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"math"
	"net/http"
	"sort"
	"strconv"
	"strings"

	"github.com/bulkheadhq/bulkhead/internal/breaker"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/internal/ratelimit"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/store"
)

var errPanic = errors.New("handler panicked")

// problemFor maps an error to the problem the client sees. Everything not
// recognised is a 500 whose cause goes to the log only.
func problemFor(err error) *problem.Details {
	var d *problem.Details
	var ce *core.Error
	var unique *store.UniqueError
	var limited *ratelimit.LimitedError
	var shed *fairq.ShedError
	var throttled *core.ThrottledError
	var open *breaker.OpenError
	switch {
	case errors.As(err, &d):
		return d
	case errors.As(err, &ce):
		return coreProblem(ce)
	case errors.As(err, &unique):
		return problem.New(http.StatusConflict, problem.CodeConflict,
			"a record with these values exists: unique index \""+unique.Index+"\" of collection \""+string(unique.Collection)+"\"")
	case errors.As(err, &limited):
		d := problem.New(http.StatusTooManyRequests, problem.CodeRateLimited, "over the rate limit; retry after Retry-After seconds").
			WithHeader("Retry-After", strconv.Itoa(limited.RetryAfterSeconds()))
		withRateLimitHeaders(d, limited.Decision)
		return d
	case errors.As(err, &throttled):
		return problem.New(http.StatusTooManyRequests, problem.CodeLoginThrottled,
			"the account's logins are held back after failed attempts; retry after Retry-After seconds").
			WithHeader("Retry-After", strconv.Itoa(throttled.RetryAfterSeconds()))
	case errors.Is(err, core.ErrMFARequired):
		return problem.New(http.StatusUnauthorized, problem.CodeMFARequired, "the login needs the TOTP code (or a recovery code) in totp")
	case errors.Is(err, core.ErrMFAEnrollmentRequired):
		return problem.New(http.StatusForbidden, problem.CodeMFAEnrollmentRequired,
			"this token may only enrol its user in TOTP (POST …/auth/totp, then …/auth/totp/verify); log in again afterwards")
	case errors.As(err, &shed):
		return problem.New(http.StatusServiceUnavailable, problem.CodeOverloaded,
			"the request could not start in time; retry later").
			WithHeader("Retry-After", strconv.Itoa(shed.RetryAfterSeconds()))
	case errors.Is(err, core.ErrKeysUnavailable):
		// Never a fallback to clear text: the operation waits for its keys.
		return problem.New(http.StatusServiceUnavailable, problem.CodeKeysUnavailable,
			"the tenant's encryption keys are unavailable now; retry after Retry-After seconds").
			WithHeader("Retry-After", "30")
	case errors.Is(err, core.ErrJobFinished):
		return problem.New(http.StatusConflict, problem.CodeJobFinished, "the job has finished; only a queued or running job can be cancelled")
	case errors.Is(err, core.ErrJobsUnavailable):
		return problem.New(http.StatusServiceUnavailable, problem.CodeUnavailable, "background jobs are unavailable on this server").
			WithHeader("Retry-After", "30")
	case errors.Is(err, core.ErrConfirmationRequired):
		return problem.New(http.StatusBadRequest, problem.CodeConfirmationRequired,
			"a restore replaces the tenant's collections and records: add confirm=<the tenant's slug> to the query").
			WithErrors(problem.FieldError{Field: "confirm", Message: "must be the tenant's slug"})
	case errors.Is(err, core.ErrArchiveTenantMismatch):
		return problem.New(http.StatusUnprocessableEntity, problem.CodeArchiveTenantMismatch,
			"the archive is another tenant's; nothing was changed")
	case errors.Is(err, core.ErrArchiveInvalid):
		return problem.New(http.StatusUnprocessableEntity, problem.CodeArchiveInvalid,
			"the archive does not verify (altered, cut off, or not made by this platform); nothing was changed")
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
	case errors.Is(err, core.ErrCredentialSuspended):
		return problem.New(http.StatusForbidden, problem.CodeCredentialSuspended,
			"the credential is suspended by automatic containment; a tenant administrator can lift it")
	case errors.Is(err, core.ErrTenantSuspended):
		return problem.New(http.StatusForbidden, problem.CodeTenantSuspended, "the tenant is suspended")
	case errors.Is(err, core.ErrTenantDeleting):
		return problem.New(http.StatusForbidden, problem.CodeTenantSuspended,
			"the tenant is suspended for deletion: only its admins may still export its data until the purge")
	case errors.Is(err, store.ErrIsolationUnavailable):
		return problem.New(http.StatusBadRequest, problem.CodeUnsupported,
			"this server cannot create or delete tenants of that isolation as it is configured")
	case errors.Is(err, store.ErrStorageFull):
		return problem.New(http.StatusInsufficientStorage, problem.CodeInsufficientStorage,
			"the database has no room for the write; nothing was written")
	case errors.Is(err, store.ErrUnavailable) && errors.As(err, &open):
		// The database's breaker is open: no call is tried until its
		// open period ends.
		return problem.New(http.StatusServiceUnavailable, problem.CodeUnavailable,
			"the database cannot serve now; retry after Retry-After seconds").
			WithHeader("Retry-After", strconv.Itoa(max(1, int(math.Ceil(open.RetryAfter.Seconds())))))
	case errors.Is(err, store.ErrUnavailable):
		return problem.New(http.StatusServiceUnavailable, problem.CodeUnavailable,
			"the database cannot serve now; retry after Retry-After seconds").
			WithHeader("Retry-After", "1")
	case errors.Is(err, context.DeadlineExceeded):
		return problem.New(http.StatusServiceUnavailable, problem.CodeUnavailable, "the request took too long; retry later").
			WithHeader("Retry-After", "1")
	}
	return problem.New(http.StatusInternalServerError, problem.CodeInternal, "internal error; quote the request_id to the operator")
}

// kinds maps each kind of core.Error to its status and code.
var kinds = map[core.Kind]struct {
	status int
	code   problem.Code
}{
	core.KindInvalid:              {http.StatusBadRequest, problem.CodeInvalidRequest},
	core.KindInvalidJSON:          {http.StatusBadRequest, problem.CodeInvalidJSON},
	core.KindInvalidSchema:        {http.StatusBadRequest, problem.CodeInvalidSchema},
	core.KindSchemaViolation:      {http.StatusUnprocessableEntity, problem.CodeSchemaViolation},
	core.KindInvalidFilter:        {http.StatusBadRequest, problem.CodeInvalidFilter},
	core.KindUnknownField:         {http.StatusBadRequest, problem.CodeUnknownField},
	core.KindInvalidCursor:        {http.StatusBadRequest, problem.CodeInvalidCursor},
	core.KindUnsupported:          {http.StatusBadRequest, problem.CodeUnsupported},
	core.KindIdempotencyKeyReused: {http.StatusUnprocessableEntity, problem.CodeIdempotencyKeyReused},
	core.KindConflict:             {http.StatusConflict, problem.CodeConflict},
	core.KindQuotaExceeded:        {http.StatusForbidden, problem.CodeQuotaExceeded},
	core.KindForbidden:            {http.StatusForbidden, problem.CodeForbidden},
	core.KindEncryptedField:       {http.StatusBadRequest, problem.CodeEncryptedField},
}

// coreProblem is the problem for a refusal of core's.
func coreProblem(e *core.Error) *problem.Details {
	k, ok := kinds[e.Kind]
	if !ok {
		k.status, k.code = http.StatusInternalServerError, problem.CodeInternal
	}
	d := problem.New(k.status, k.code, e.Detail)
	switch {
	case e.Kind == core.KindSchemaViolation:
		for _, v := range e.Violations {
			d.Errors = append(d.Errors, problem.FieldError{Field: v.Field, Message: v.Message})
		}
	case e.Field != "":
		// Every refusal that can name the field at fault does.
		d.WithErrors(problem.FieldError{Field: e.Field, Message: e.Detail})
	}
	if e.Pos >= 0 && (e.Kind == core.KindInvalidFilter || e.Kind == core.KindUnknownField || e.Kind == core.KindEncryptedField) {
		d.WithPosition(e.Pos)
	}
	return d
}

// statusClientClosed is nginx's "client closed request": logged and counted
// when the client went away before it could be answered. It is never sent.
const statusClientClosed = 499

// writeError answers with the problem for err. If the client went away
// (which also ends the request's context) there is nobody to answer,
// whatever else err says: the request is logged as a client abort, not as a
// failure of the server. A problem decided before that, such as a body that
// timed out, is still sent.
func (s *Server) writeError(w http.ResponseWriter, r *http.Request, rq *request, err error) {
	var d *problem.Details
	if !errors.As(err, &d) && (r.Context().Err() != nil || errors.Is(err, errClientGone)) {
		w.WriteHeader(statusClientClosed)
		return
	}
	d = problemFor(err)
	switch {
	case d.Code == problem.CodeOverloaded:
		s.metrics.Rejected("shed")
		rq.shed = true
		withRateLimitHeaders(d, rq.decision)
	case d.Status >= 500 && d.Status != http.StatusInternalServerError:
		// The database is down, restarting or full: the operator needs to
		// know, but it is no bug of ours.
		s.log.Warn("request failed", "request_id", rq.id, "method", r.Method, "path", r.URL.Path, "status", d.Status, "err", err)
	case d.Status >= 500:
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
