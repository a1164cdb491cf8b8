// Package filter parses bulkhead's record query language — the filter and
// order parameters of a record listing — into a small syntax tree, and
// compiles that tree to parameterized SQL for the store backends, each of
// which describes its SQL in a Dialect. Values never become SQL text.
package filter

import (
	"fmt"
	"time"
)

// Expr is a parsed filter: *And, *Or or *Cmp.
type Expr interface{ isExpr() }

// And matches records that every term matches.
type And struct{ Terms []Expr }

// Or matches records that any term matches.
type Or struct{ Terms []Expr }

// Cmp compares one field with a literal.
type Cmp struct {
	// Field is a top-level key of the record's data, or one of the system
	// fields FieldID, FieldCreatedAt, FieldUpdatedAt.
	Field string
	Op    Op
	Value Value
	// Pos is the byte offset of the comparison in the source text.
	Pos int
}

func (*And) isExpr() {}
func (*Or) isExpr()  {}
func (*Cmp) isExpr() {}

// Op is a comparison operator.
type Op string

const (
	Eq       Op = "="
	Ne       Op = "!="
	Gt       Op = ">"
	Ge       Op = ">="
	Lt       Op = "<"
	Le       Op = "<="
	Contains Op = "~"  // substring of a string, case-sensitive
	Prefix   Op = "^=" // starts with a string, case-sensitive
)

// System fields: they name the record's own columns rather than keys of its
// data.
const (
	FieldID        = "id"
	FieldCreatedAt = "created_at"
	FieldUpdatedAt = "updated_at"
)

// IsSystem reports whether field names a record column rather than a data key.
func IsSystem(field string) bool {
	return field == FieldID || field == FieldCreatedAt || field == FieldUpdatedAt
}

// Kind is the type of a literal.
type Kind int

const (
	Null Kind = iota
	Bool
	Number
	String
	// Time is a string literal compared with created_at or updated_at; the
	// parser converts it from RFC 3339.
	Time
)

func (k Kind) String() string {
	switch k {
	case Null:
		return "null"
	case Bool:
		return "boolean"
	case Number:
		return "number"
	case String:
		return "string"
	case Time:
		return "time"
	}
	return fmt.Sprintf("Kind(%d)", int(k))
}

// Value is a literal. Only the field for its Kind is set.
type Value struct {
	Kind Kind
	Bool bool
	Num  float64
	Str  string
	Time time.Time
}

// Order is the sort order of a listing. The zero Order sorts by creation
// time, oldest first. Ties are always broken by record id in the same
// direction, so the order is total and cursors are stable.
type Order struct {
	// Field is a system field or a top-level data key; empty means created_at.
	Field string
	// Desc sorts in descending order.
	Desc bool
}

// SyntaxError reports a filter or order that does not parse or type-check.
type SyntaxError struct {
	// Pos is the byte offset in the source where the problem was found.
	Pos int
	// Msg says what is wrong; it is safe to show to clients.
	Msg string
}

func (e *SyntaxError) Error() string { return fmt.Sprintf("at position %d: %s", e.Pos, e.Msg) }
