package filter

import (
	"fmt"
	"math"
	"regexp"
	"strings"
	"time"
	"unicode/utf8"
)

// Dialect is what the compiler needs to know of a store backend's SQL. The
// compiler owns the meaning of the language (which records a filter
// selects, how an order sorts them); a Dialect only spells the pieces.
//
// Every method returns SQL text. None of them ever sees a value of a filter
// other than as a bound parameter: the compiler binds literals with
// Placeholder. The only text a Dialect builds from input is a data key's
// name, inlined as a literal in the key's expressions by DataKey, and only
// after the compiler has checked it against DataField: an index on an
// expression serves a query only if the query holds the same expression,
// which a bound parameter is not.
type Dialect interface {
	// Placeholder returns the text of bind parameter n (counted from 1),
	// which holds v: a string, float64, int32 (a rank), int64, or a value
	// that Time returned.
	Placeholder(n int, v any) string
	// Time returns the value to bind for comparing a time column with t,
	// which has whole microseconds and is in UTC.
	Time(t time.Time) any
	// Bool returns the constant condition true or false.
	Bool(b bool) string
	// Num returns the constant f, 0 or 1, in the type of Key.Num.
	Num(f float64) string
	// DataKey returns the expressions of data key field's sort key. They
	// must be deterministic (an index may hold them), never NULL, and
	// differ for two fields only in the field's name.
	DataKey(field string) Key
	// Contains returns a condition, never NULL, that the text expression s
	// contains the text expression sub, case-sensitively.
	Contains(s, sub string) string
	// HasPrefix returns a condition, never NULL, that the text expression
	// s starts with the text expression prefix, case-sensitively.
	HasPrefix(s, prefix string) string
}

// Key is the SQL of a data key's typed sort key, as the package
// documentation defines it: Rank is an integer from 0 to 4, Num the
// number (a double; booleans 0 or 1; else 0) and Txt the string (else the
// empty string), compared by code point.
type Key struct {
	Rank, Num, Txt string
}

// DataField matches the data keys a filter, an order or an index may name
// (the field rule of the language, at most MaxFieldLength bytes). Names
// that match it are safe to inline in SQL string literals.
var DataField = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// Query builds one SQL statement from fixed fragments and numbered bind
// parameters. Its Where compiles a filter and its SortKey an order, with
// the same results on every Dialect.
type Query struct {
	d    Dialect
	sb   strings.Builder
	args []any
	keys map[string]Key
}

// NewQuery returns an empty statement in dialect d.
func NewQuery(d Dialect) *Query { return &Query{d: d} }

// SQL appends fixed text.
func (q *Query) SQL(fragments ...string) {
	for _, f := range fragments {
		q.sb.WriteString(f)
	}
}

// Param binds v and returns its placeholder.
func (q *Query) Param(v any) string {
	q.args = append(q.args, v)
	return q.d.Placeholder(len(q.args), v)
}

// String returns the statement's text.
func (q *Query) String() string { return q.sb.String() }

// Args returns the statement's bind parameters, in order.
func (q *Query) Args() []any { return q.args }

// key returns the sort key of data key field, which the caller checked.
func (q *Query) key(field string) Key {
	if k, ok := q.keys[field]; ok {
		return k
	}
	if q.keys == nil {
		q.keys = make(map[string]Key)
	}
	k := q.d.DataKey(field)
	q.keys[field] = k
	return k
}

func syntaxError(pos int, format string, args ...any) error {
	return &SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// Where appends e as a condition that is never NULL, so that NOT is an
// exact negation, as the != rule requires. A nil e selects everything. It
// checks what it compiles as Parse would, so that a tree built by hand
// cannot make invalid SQL: errors are *SyntaxError, but for an unknown
// Expr type.
//
// Data keys compare through their sort keys, the very expressions SortKey
// orders by and IndexColumns indexes, so that an index on a field serves
// its comparisons: f = "s" is Txt = "s" AND Rank = 3 AND Num = 0, f > 5 is
// Num > 5 AND Rank = 2, f = null is Rank = 0, f ^= "p" is the range p <=
// Txt < p' with an exact prefix test (see the package documentation).
func (q *Query) Where(e Expr) error {
	switch e := e.(type) {
	case nil:
		q.SQL(q.d.Bool(true))
	case *And:
		if e == nil {
			q.SQL(q.d.Bool(true))
			return nil
		}
		return q.terms(e.Terms, " AND ", true)
	case *Or:
		if e == nil {
			q.SQL(q.d.Bool(false))
			return nil
		}
		return q.terms(e.Terms, " OR ", false)
	case *Cmp:
		if e == nil {
			return syntaxError(0, "empty comparison")
		}
		return q.cmp(e)
	default:
		return fmt.Errorf("filter: unknown filter expression %T", e)
	}
	return nil
}

func (q *Query) terms(terms []Expr, op string, empty bool) error {
	if len(terms) == 0 {
		q.SQL(q.d.Bool(empty))
		return nil
	}
	q.SQL("(")
	for i, t := range terms {
		if i > 0 {
			q.SQL(op)
		}
		if err := q.Where(t); err != nil {
			return err
		}
	}
	q.SQL(")")
	return nil
}

// sqlOps are the SQL spellings of the ordering operators.
var sqlOps = map[Op]string{Gt: " > ", Ge: " >= ", Lt: " < ", Le: " <= "}

func (q *Query) cmp(c *Cmp) error {
	if IsSystem(c.Field) {
		return q.systemCmp(c)
	}
	if !DataField.MatchString(c.Field) {
		return syntaxError(c.Pos, "invalid field name %q", c.Field)
	}
	v := c.Value
	if v.Kind == Number && math.IsNaN(v.Num) {
		return syntaxError(c.Pos, "NaN is not a number literal")
	}
	k := q.key(c.Field)
	// The value's test comes first: without an index it rejects most rows
	// at the cost of one key expression.
	isNum := " AND " + k.Rank + " = 2"
	isStr := " AND " + k.Rank + " = 3 AND " + k.Num + " = " + q.d.Num(0)
	switch c.Op {
	case Eq, Ne:
		var eq string
		switch v.Kind {
		case Null:
			eq = k.Rank + " = 0"
		case Bool:
			one := 0.0
			if v.Bool {
				one = 1
			}
			eq = k.Rank + " = 1 AND " + k.Num + " = " + q.d.Num(one)
		case Number:
			eq = k.Num + " = " + q.Param(v.Num) + isNum
		case String:
			eq = k.Txt + " = " + q.Param(v.Str) + isStr
		default:
			return syntaxError(c.Pos, "%s takes no %s literal", c.Field, v.Kind)
		}
		if c.Op == Ne {
			q.SQL("(NOT (", eq, "))")
		} else {
			q.SQL("(", eq, ")")
		}
	case Gt, Ge, Lt, Le:
		switch v.Kind {
		case Number:
			q.SQL("(", k.Num, sqlOps[c.Op], q.Param(v.Num), isNum, ")")
		case String:
			q.SQL("(", k.Txt, sqlOps[c.Op], q.Param(v.Str), isStr, ")")
		default:
			return syntaxError(c.Pos, "%s needs a number or string literal", c.Op)
		}
	case Contains:
		if v.Kind != String {
			return syntaxError(c.Pos, "~ needs a string literal")
		}
		q.SQL("(", q.d.Contains(k.Txt, q.Param(v.Str)), " AND ", k.Rank, " = 3)")
	case Prefix:
		if v.Kind != String {
			return syntaxError(c.Pos, "^= needs a string literal")
		}
		if v.Str == "" {
			q.SQL("(", k.Rank, " = 3)")
			return nil
		}
		q.SQL("(", q.prefix(k.Txt, v.Str), isStr, ")")
	default:
		return syntaxError(c.Pos, "unknown operator %q", c.Op)
	}
	return nil
}

// prefix returns the condition that the text expression s starts with p,
// which is not empty: a range an index can serve, and the exact test.
func (q *Query) prefix(s, p string) string {
	lo := q.Param(p)
	cond := s + " >= " + lo
	if hi, ok := PrefixEnd(p); ok {
		cond += " AND " + s + " < " + q.Param(hi)
	}
	return cond + " AND " + q.d.HasPrefix(s, lo)
}

// PrefixEnd returns the least string greater, by code point, than every
// string that starts with p, and false if there is none (p is empty, holds
// only U+10FFFF, or is not valid UTF-8). The strings starting with p are
// then exactly those s with p <= s < end.
func PrefixEnd(p string) (string, bool) {
	if !utf8.ValidString(p) {
		return "", false
	}
	r := []rune(p)
	for len(r) > 0 {
		last := r[len(r)-1]
		if last < utf8.MaxRune {
			next := last + 1
			if next == 0xd800 { // surrogates are not characters
				next = 0xe000
			}
			r[len(r)-1] = next
			return string(r), true
		}
		r = r[:len(r)-1]
	}
	return "", false
}

// systemCmp compares a record column. The columns are NOT NULL, so these
// conditions are never NULL either.
func (q *Query) systemCmp(c *Cmp) error {
	v := c.Value
	if c.Field == FieldID {
		if v.Kind != String {
			return syntaxError(c.Pos, "id takes string literals only")
		}
		switch c.Op {
		case Eq:
			q.SQL("(id = ", q.Param(v.Str), ")")
		case Ne:
			q.SQL("(id <> ", q.Param(v.Str), ")")
		case Gt, Ge, Lt, Le:
			q.SQL("(id", sqlOps[c.Op], q.Param(v.Str), ")")
		case Contains:
			q.SQL("(", q.d.Contains("id", q.Param(v.Str)), ")")
		case Prefix:
			if v.Str == "" {
				q.SQL(q.d.Bool(true))
				return nil
			}
			q.SQL("(", q.prefix("id", v.Str), ")")
		default:
			return syntaxError(c.Pos, "unknown operator %q", c.Op)
		}
		return nil
	}
	col := FieldCreatedAt
	if c.Field == FieldUpdatedAt {
		col = FieldUpdatedAt
	}
	if v.Kind != Time {
		return syntaxError(c.Pos, "%s takes RFC 3339 time literals only", c.Field)
	}
	// Stored times are whole microseconds. A literal with a finer part lies
	// strictly between two of them: compare with the one below it.
	us := q.d.Time(time.UnixMicro(v.Time.UnixMicro()).UTC()) // floor
	exact := v.Time.Nanosecond()%1000 == 0
	switch c.Op {
	case Eq:
		if !exact {
			q.SQL(q.d.Bool(false))
			return nil
		}
		q.SQL("(", col, " = ", q.Param(us), ")")
	case Ne:
		if !exact {
			q.SQL(q.d.Bool(true))
			return nil
		}
		q.SQL("(", col, " <> ", q.Param(us), ")")
	case Gt, Ge:
		op := sqlOps[c.Op]
		if !exact {
			op = " > "
		}
		q.SQL("(", col, op, q.Param(us), ")")
	case Lt, Le:
		op := sqlOps[c.Op]
		if !exact {
			op = " <= "
		}
		q.SQL("(", col, op, q.Param(us), ")")
	case Contains, Prefix:
		return syntaxError(c.Pos, "%s does not take %s", c.Field, c.Op)
	default:
		return syntaxError(c.Pos, "unknown operator %q", c.Op)
	}
	return nil
}

// SortKey is the SQL of an order's total sort key (see the package
// documentation), most significant expression first: a data key's rank,
// number and text, then id; or a time column, then id; or id alone.
type SortKey struct {
	Order Order
	// Data says the order is by a data key.
	Data bool
	// Exprs are the key's expressions, each to be selected, compared and
	// sorted by as it is.
	Exprs []string
	// Pinned is how many leading Exprs the filter holds equal to a
	// constant on every row it selects (see SortKey); OrderBy leaves them
	// out.
	Pinned int
}

// SortKey returns the sort key of o for the rows that where (a listing's
// filter, or nil) selects. An empty Field is created_at.
//
// When where is, or is a conjunction of terms one of which is, a
// comparison on the data key o sorts by, that comparison pins leading
// parts of the key, which the compiled condition holds equal to constants:
// the rank (any comparison but !=), the number too (equality, or an
// ordering or prefix on a string), the text too (equality with a string). OrderBy then
// leaves them out, which sorts the selected rows exactly alike, and lets
// SQLite see that an index on the key, constrained to those constants,
// yields the rows in order (it recognizes a sort term held constant by the
// WHERE clause for plain columns only).
func (q *Query) SortKey(o Order, where Expr) (*SortKey, error) {
	k := &SortKey{Order: o}
	switch o.Field {
	case "", FieldCreatedAt:
		k.Order.Field = FieldCreatedAt
		k.Exprs = []string{FieldCreatedAt, FieldID}
	case FieldUpdatedAt:
		k.Exprs = []string{FieldUpdatedAt, FieldID}
	case FieldID:
		k.Exprs = []string{FieldID}
	default:
		if !DataField.MatchString(o.Field) {
			return nil, syntaxError(0, "invalid order field %q", o.Field)
		}
		dk := q.key(o.Field)
		k.Data = true
		k.Exprs = []string{dk.Rank, dk.Num, dk.Txt, FieldID}
		terms := []Expr{where}
		if a, ok := where.(*And); ok && a != nil {
			terms = a.Terms
		}
		for _, t := range terms {
			if c, ok := t.(*Cmp); ok && c != nil && c.Field == o.Field {
				k.Pinned = max(k.Pinned, pins(c))
			}
		}
	}
	return k, nil
}

// pins returns how many leading expressions of its field's sort key the
// compiled form of c holds constant.
func pins(c *Cmp) int {
	switch c.Op {
	case Ne:
		return 0
	case Eq:
		switch c.Value.Kind {
		case String:
			return 3
		case Bool, Number:
			return 2
		case Null:
			return 1
		}
	case Gt, Ge, Lt, Le:
		switch c.Value.Kind {
		case String:
			return 2
		case Number:
			return 1
		}
	case Contains:
		return 1
	case Prefix:
		if c.Value.Str == "" {
			return 1
		}
		return 2
	}
	return 0
}

// Cursor is a row's position under an order: the values of its sort key.
// Which fields are used depends on the order, as for store.RecordKey.
type Cursor struct {
	Rank int
	Num  float64
	Str  string
	Time time.Time
	ID   string
}

// After appends the condition that a row comes after c in k's order: a
// row comparison of k's expressions with c's values, and for a data key
// also a bound on the rank alone, which lets an index seek to the rank
// where the row comparison can start to hold.
func (q *Query) After(k *SortKey, c *Cursor) {
	op, rankOp := " > ", " >= "
	if k.Order.Desc {
		op, rankOp = " < ", " <= "
	}
	var vals []string
	switch {
	case k.Data:
		rank := q.Param(int32(c.Rank))
		vals = []string{rank, q.Param(c.Num), q.Param(c.Str), q.Param(c.ID)}
		q.SQL(k.Exprs[0], rankOp, rank, " AND ")
	case len(k.Exprs) == 2:
		vals = []string{q.Param(q.d.Time(c.Time)), q.Param(c.ID)}
	default:
		vals = []string{q.Param(c.ID)}
	}
	q.SQL("(", strings.Join(k.Exprs, ", "), ")", op, "(", strings.Join(vals, ", "), ")")
}

// OrderBy appends " ORDER BY" and k's expressions in k's direction, less
// the pinned ones.
func (q *Query) OrderBy(k *SortKey) {
	dir := ""
	if k.Order.Desc {
		dir = " DESC"
	}
	q.SQL(" ORDER BY ")
	for i, e := range k.Exprs[k.Pinned:] {
		if i > 0 {
			q.SQL(", ")
		}
		q.SQL(e, dir)
	}
}

// MaxIndexFields is the most fields an index may have. PostgreSQL allows
// 32 columns per index; a data key takes three.
const MaxIndexFields = 8

// ParseIndexFields parses the fields of an index declaration: each a field
// name as in a filter, a system field or a data key, optionally prefixed
// with "-" for descending order (never "+": each index has one spelling).
// There is at least one field, at most MaxIndexFields, none twice. It
// returns them as Orders.
func ParseIndexFields(fields []string) ([]Order, error) {
	if len(fields) == 0 {
		return nil, fmt.Errorf("an index needs at least one field")
	}
	if len(fields) > MaxIndexFields {
		return nil, fmt.Errorf("an index has at most %d fields", MaxIndexFields)
	}
	out := make([]Order, 0, len(fields))
	seen := make(map[string]bool, len(fields))
	for _, f := range fields {
		name, _ := strings.CutPrefix(f, "-")
		if !DataField.MatchString(name) {
			return nil, fmt.Errorf("index field %q is not a field name, optionally prefixed with \"-\"", f)
		}
		if seen[name] {
			return nil, fmt.Errorf("index field %q appears twice", name)
		}
		seen[name] = true
		out = append(out, Order{Field: name, Desc: len(name) < len(f)})
	}
	return out, nil
}

// IndexColumns returns the columns of an index on fields (as
// ParseIndexFields returns them), each with its direction: every field's
// sort key expressions (in parentheses, as PostgreSQL wants them; a system
// field's column as it is), then id in the last
// field's direction (unless the last field is id). Its entries are thus in
// the order a listing sorted by the first field uses, ties broken by the
// next fields, and an equality on the first fields leaves the rest in the
// order of the next field. A unique index gets the fields' expressions
// only, without id.
func IndexColumns(d Dialect, fields []Order, unique bool) []string {
	var cols []string
	dir := ""
	for _, f := range fields {
		dir = ""
		if f.Desc {
			dir = " DESC"
		}
		if IsSystem(f.Field) {
			cols = append(cols, f.Field+dir)
			continue
		}
		k := d.DataKey(f.Field)
		cols = append(cols, "("+k.Rank+")"+dir, "("+k.Num+")"+dir, "("+k.Txt+")"+dir)
	}
	if !unique && fields[len(fields)-1].Field != FieldID {
		cols = append(cols, FieldID+dir)
	}
	return cols
}

// UniqueConditions returns the conditions, to be joined with AND to a
// unique index's predicate, that keep a record out of the index when one
// of its data fields is missing or null, or holds an object or an array
// (which the sort key does not tell apart: ranks 0 and 4), so that such a
// record never conflicts. An equality or a range on a field implies its
// condition, so a planner that proves predicates can still use the index.
func UniqueConditions(d Dialect, fields []Order) []string {
	var conds []string
	for _, f := range fields {
		if !IsSystem(f.Field) {
			conds = append(conds, d.DataKey(f.Field).Rank+" BETWEEN 1 AND 3")
		}
	}
	return conds
}

// Literal quotes s as an SQL string literal. It is for names the caller
// has validated (a data key, a collection name, a tenant's UUID), which an
// index's predicate or expressions must hold as literals.
func Literal(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }
