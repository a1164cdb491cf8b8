package core

import (
	"errors"
	"fmt"
)

// Errors of credentials and permissions. Callers map them, with *Error and
// the store's sentinels, to their answers; core itself speaks no protocol.
var (
	// ErrUnauthorized means the credential is missing, malformed, unknown,
	// expired or revoked.
	ErrUnauthorized = errors.New("unauthorized")
	// ErrInvalidCredentials means a login or refresh was refused.
	ErrInvalidCredentials = errors.New("invalid credentials")
	// ErrForbidden means the principal lacks the permission. Refusals that
	// can say which rule refused are *Error of KindForbidden, which match
	// ErrForbidden with errors.Is.
	ErrForbidden = errors.New("forbidden")
	// ErrTenantSuspended means the addressed tenant is suspended.
	ErrTenantSuspended = errors.New("tenant suspended")
	// ErrNoScope is returned by the operations of a Scope or Control that
	// was not made by Core.Scope or Core.Control, such as a zero value.
	ErrNoScope = errors.New("operation outside a scope")
)

// Kind classifies a refused request.
type Kind int

const (
	// KindInvalid: a field or parameter of the request is malformed.
	KindInvalid Kind = iota + 1
	// KindInvalidJSON: the body is not one valid JSON value.
	KindInvalidJSON
	// KindInvalidSchema: a collection's JSON Schema does not compile.
	KindInvalidSchema
	// KindSchemaViolation: a record fails its collection's schema.
	KindSchemaViolation
	// KindInvalidFilter: the filter does not parse or type-check.
	KindInvalidFilter
	// KindUnknownField: a filter or order names a field the collection's
	// schema cannot hold.
	KindUnknownField
	// KindInvalidCursor: the cursor is forged, stale or from another query.
	KindInvalidCursor
	// KindUnsupported: the server does not offer the feature.
	KindUnsupported
	// KindIdempotencyKeyReused: an Idempotency-Key came back with another
	// request.
	KindIdempotencyKeyReused
	// KindConflict: the change conflicts with what exists.
	KindConflict
	// KindQuotaExceeded: the write would take the tenant over its plan.
	KindQuotaExceeded
	// KindForbidden: the credential may not do this; Detail says which
	// rule refused it.
	KindForbidden
	// KindEncryptedField: the operation needs a field's value in clear
	// (an ordering, a range or substring filter, an index), and the field
	// is encrypted.
	KindEncryptedField
)

// Error is a refusal of a request for something the client can fix or must
// know. Its Detail is safe to show to the client.
type Error struct {
	Kind Kind
	// Field names the request field at fault, if one is.
	Field string
	// Detail says what is wrong.
	Detail string
	// Pos is the byte offset of a filter's fault (KindInvalidFilter,
	// KindUnknownField); -1 when there is none.
	Pos int
	// Violations lists a record's schema failures (KindSchemaViolation).
	Violations []Violation
}

// Violation is one failure of a record against its collection's schema.
type Violation struct {
	// Field is a JSON pointer into the record.
	Field   string
	Message string
}

func (e *Error) Error() string {
	if e.Field != "" {
		return fmt.Sprintf("%s: %s", e.Field, e.Detail)
	}
	return e.Detail
}

// Is lets errors.Is(err, ErrForbidden) match a forbidden Error.
func (e *Error) Is(target error) bool { return target == ErrForbidden && e.Kind == KindForbidden }

// invalid refuses one bad field.
func invalid(field, detail string) *Error {
	return &Error{Kind: KindInvalid, Field: field, Detail: detail, Pos: -1}
}

// refuse returns an Error of kind k.
func refuse(k Kind, detail string) *Error { return &Error{Kind: k, Detail: detail, Pos: -1} }

// forbidden refuses with the rule that decided.
func forbidden(reason string) *Error { return refuse(KindForbidden, reason) }
