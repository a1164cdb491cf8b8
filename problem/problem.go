// Package problem implements RFC 9457 problem details, the body of every
// bulkhead error response, with stable machine-readable codes.
package problem

import (
	"encoding/json"
	"net/http"
	"strconv"
)

// Code is a stable machine-readable error code. Clients branch on it; its
// values never change meaning.
type Code string

// The codes bulkhead answers with.
const (
	CodeInvalidRequest       Code = "invalid_request"        // 400: a field or parameter is malformed
	CodeInvalidJSON          Code = "invalid_json"           // 400: the body is not valid JSON
	CodeJSONTooDeep          Code = "json_too_deep"          // 400: JSON nested deeper than the limit
	CodeUnknownField         Code = "unknown_field"          // 400: a control-plane body has a field we do not know
	CodeInvalidFilter        Code = "invalid_filter"         // 400: the filter parameter does not parse
	CodeInvalidCursor        Code = "invalid_cursor"         // 400: the cursor is forged, stale or from another query
	CodeInvalidSchema        Code = "invalid_schema"         // 400: a collection's JSON Schema does not compile
	CodeUnsupported          Code = "unsupported"            // 400: a feature this server does not offer (yet)
	CodeCredentialsInQuery   Code = "credentials_in_query"   // 400: a credential was sent in the URL's query
	CodeEncryptedField       Code = "encrypted_field"        // 400: the operation needs an encrypted field in clear (order, range, index)
	CodeUnauthorized         Code = "unauthorized"           // 401: missing or invalid credential
	CodeInvalidCredentials   Code = "invalid_credentials"    // 401: login or refresh refused
	CodeForbidden            Code = "forbidden"              // 403: the credential lacks the permission
	CodeTenantSuspended      Code = "tenant_suspended"       // 403: the tenant is suspended
	CodeCredentialSuspended  Code = "credential_suspended"   // 403: automatic containment suspended the credential
	CodeQuotaExceeded        Code = "quota_exceeded"         // 403: the write would exceed the plan's records or bytes
	CodeNotFound             Code = "not_found"              // 404: no such resource, or not yours
	CodeMethodNotAllowed     Code = "method_not_allowed"     // 405
	CodeConflict             Code = "conflict"               // 409: a unique name is taken
	CodeJobFinished          Code = "job_finished"           // 409: the job has finished; it cannot be cancelled
	CodePreconditionFailed   Code = "precondition_failed"    // 412: If-Match does not match the version
	CodeRequestTimeout       Code = "request_timeout"        // 408: the body did not arrive in time
	CodePayloadTooLarge      Code = "payload_too_large"      // 413: the body exceeds the limit
	CodeUnsupportedMediaType Code = "unsupported_media_type" // 415: the body is not JSON
	CodeSchemaViolation      Code = "schema_violation"       // 422: the record fails its collection's schema
	CodeIdempotencyKeyReused Code = "idempotency_key_reused" // 422: same Idempotency-Key, different request
	CodeRateLimited          Code = "rate_limited"           // 429: over the tenant's or credential's request rate
	CodeConcurrencyLimited   Code = "concurrency_limited"    // 429: over the tenant's requests in flight
	CodeInternal             Code = "internal"               // 500: our fault; details are in the log only
	CodeUnavailable          Code = "unavailable"            // 503: the database cannot serve now
	CodeOverloaded           Code = "overloaded"             // 503: shed: the request could not start in time
	CodeKeysUnavailable      Code = "keys_unavailable"       // 503: the tenant's encryption keys cannot be had now (KEK or KMS)
	CodeInsufficientStorage  Code = "insufficient_storage"   // 507: the database has no room for the write

	// Federated (OpenID Connect) login.
	CodeOIDCStateInvalid  Code = "oidc_state_invalid"  // 401: the callback's state is forged, stale, used, of another tenant or browser
	CodeOIDCLoginFailed   Code = "oidc_login_failed"   // 401: the provider refused, or its ID token fails verification
	CodeOIDCNoAccount     Code = "oidc_no_account"     // 403: no user is linked to the identity and none may be created
	CodeOIDCProviderError Code = "oidc_provider_error" // 422: the issuer's discovery document could not be fetched
)

// Codes of the second factor and of login protection.
const (
	CodeMFARequired           Code = "mfa_required"            // 401: the password was right; the login needs the TOTP (or a recovery) code too
	CodeMFAEnrollmentRequired Code = "mfa_enrollment_required" // 403: the token may only enrol its user in TOTP
	CodeLoginThrottled        Code = "login_throttled"         // 429: the account's logins are held back after failures; see Retry-After
)

// Codes of exports and restores.
const (
	CodeConfirmationRequired  Code = "confirmation_required"   // 400: a restore lacks confirm=<the tenant's slug>
	CodeArchiveInvalid        Code = "archive_invalid"         // 422: the archive does not verify (altered, cut off, another platform's)
	CodeArchiveTenantMismatch Code = "archive_tenant_mismatch" // 422: the archive is another tenant's
)

// TypeBase prefixes every problem type URI: the type of code c is
// TypeBase + string(c).
const TypeBase = "https://bulkhead.dev/problems/"

// FieldError describes one invalid field of a request.
type FieldError struct {
	// Field is the JSON path or parameter name, such as "slug" or "/address/zip".
	Field string `json:"field"`
	// Message says what is wrong, in words safe to show to the client.
	Message string `json:"message"`
}

// Details is an RFC 9457 problem. Everything in it is shown to the client, so
// it never carries internal error text, SQL or another tenant's name.
type Details struct {
	Type     string       `json:"type"`
	Title    string       `json:"title"`
	Status   int          `json:"status"`
	Detail   string       `json:"detail,omitempty"`
	Instance string       `json:"instance,omitempty"`
	Code     Code         `json:"code"`
	Errors   []FieldError `json:"errors,omitempty"`
	// Position is the byte offset of a filter syntax error.
	Position *int `json:"position,omitempty"`
	// RequestID lets a client quote the request to an operator.
	RequestID string `json:"request_id,omitempty"`

	header http.Header
}

// New returns a problem with the given status and code; detail is shown to
// the client.
func New(status int, code Code, detail string) *Details {
	return &Details{
		Type:   TypeBase + string(code),
		Title:  http.StatusText(status),
		Status: status,
		Detail: detail,
		Code:   code,
	}
}

// Error makes Details an error, so handlers can return it directly.
func (d *Details) Error() string { return string(d.Code) + ": " + d.Detail }

// WithHeader sets a response header to be sent with the problem, such as
// Retry-After. It returns d.
func (d *Details) WithHeader(key, value string) *Details {
	if d.header == nil {
		d.header = http.Header{}
	}
	d.header.Set(key, value)
	return d
}

// WithErrors attaches field errors. It returns d.
func (d *Details) WithErrors(errs ...FieldError) *Details {
	d.Errors = append(d.Errors, errs...)
	return d
}

// WithPosition attaches the offset of a syntax error. It returns d.
func (d *Details) WithPosition(pos int) *Details {
	d.Position = &pos
	return d
}

// Header returns the extra response headers set by WithHeader.
func (d *Details) Header() http.Header { return d.header }

// Write sends d as application/problem+json.
func (d *Details) Write(w http.ResponseWriter) {
	h := w.Header()
	for k, v := range d.header {
		h[k] = v
	}
	h.Set("Content-Type", "application/problem+json")
	body, err := json.Marshal(d)
	if err != nil { // cannot happen: every field marshals
		body = []byte(`{"type":"` + TypeBase + `internal","title":"Internal Server Error","status":500,"code":"internal"}`)
		d.Status = http.StatusInternalServerError
	}
	h.Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(d.Status)
	w.Write(body)
}
