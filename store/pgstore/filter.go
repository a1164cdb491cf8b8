package pgstore

import (
	"context"
	"errors"
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/store"
)

// query builds one SQL statement from fixed fragments and numbered bind
// parameters, each cast to its type, so that a value used twice (a field's
// key) is bound once. Nothing from the filter or the order ever becomes SQL
// text: field names are bound as jsonb keys.
type query struct {
	sb   strings.Builder
	args []any
	keys map[string]string // field name -> its parameter
}

// param binds v as a value of SQL type typ and returns its placeholder.
func (q *query) param(v any, typ string) string {
	q.args = append(q.args, v)
	return "$" + strconv.Itoa(len(q.args)) + "::" + typ
}

// key returns the parameter holding the data key field.
func (q *query) key(field string) string {
	if p, ok := q.keys[field]; ok {
		return p
	}
	if q.keys == nil {
		q.keys = make(map[string]string)
	}
	p := q.param(field, "text")
	q.keys[field] = p
	return p
}

func (q *query) sql(fragments ...string) {
	for _, f := range fragments {
		q.sb.WriteString(f)
	}
}

// dataField is the syntax of a top-level data key in a filter or an order
// (see package filter).
var dataField = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

func syntaxError(pos int, format string, args ...any) error {
	return &filter.SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// jsonValue is the JSON value of data key field: NULL if missing, a jsonb
// 'null' if JSON null.
func (q *query) jsonValue(field string) string { return "(doc -> " + q.key(field) + ")" }

// jsonText is the text of data key field's value (for a string, the string
// itself), in byte order.
func (q *query) jsonText(field string) string {
	return "((doc ->> " + q.key(field) + ") COLLATE \"C\")"
}

// jsonNumber is the value of data key field as a float8 if it is a JSON
// number, else NULL. Numbers compare as IEEE 754 doubles, as in sqlitestore
// and package filter: PostgreSQL's own numeric would tell 0.1 from the
// double nearest it. Beyond the range of float8 the conversion would fail,
// so numbers that overflow become ±Infinity and numbers that underflow 0,
// as IEEE 754 rounding (and SQLite) has it.
func (q *query) jsonNumber(field string) string {
	j := q.jsonValue(field)
	n := j + "::numeric"
	return "(CASE WHEN jsonb_typeof" + j + " = 'number' THEN CASE" +
		" WHEN " + n + " >= " + float8Over + " THEN 'Infinity'::float8" +
		" WHEN " + n + " <= -" + float8Over + " THEN '-Infinity'::float8" +
		" WHEN abs(" + n + ") <= " + float8Under + " THEN 0::float8" +
		" ELSE " + j + "::float8 END END)"
}

// where appends e as a condition that is never NULL: every comparison is
// wrapped in coalesce(…, false), so NOT is an exact negation, as the !=
// rule of package filter requires.
func (q *query) where(e filter.Expr) error {
	switch e := e.(type) {
	case nil:
		q.sql("true")
	case *filter.And:
		if e == nil {
			q.sql("true")
			return nil
		}
		return q.terms(e.Terms, " AND ", "true")
	case *filter.Or:
		if e == nil {
			q.sql("false")
			return nil
		}
		return q.terms(e.Terms, " OR ", "false")
	case *filter.Cmp:
		if e == nil {
			return syntaxError(0, "empty comparison")
		}
		return q.cmp(e)
	default:
		return fmt.Errorf("pgstore: unknown filter expression %T", e)
	}
	return nil
}

func (q *query) terms(terms []filter.Expr, op, empty string) error {
	if len(terms) == 0 {
		q.sql(empty)
		return nil
	}
	q.sql("(")
	for i, t := range terms {
		if i > 0 {
			q.sql(op)
		}
		if err := q.where(t); err != nil {
			return err
		}
	}
	q.sql(")")
	return nil
}

// sqlOps are the SQL spellings of the ordering operators.
var sqlOps = map[filter.Op]string{filter.Gt: " > ", filter.Ge: " >= ", filter.Lt: " < ", filter.Le: " <= "}

func (q *query) cmp(c *filter.Cmp) error {
	if filter.IsSystem(c.Field) {
		return q.systemCmp(c)
	}
	if !dataField.MatchString(c.Field) {
		return syntaxError(c.Pos, "invalid field name %q", c.Field)
	}
	v := c.Value
	if v.Kind == filter.Number && math.IsNaN(v.Num) {
		return syntaxError(c.Pos, "NaN is not a number literal")
	}
	isString := "jsonb_typeof" + q.jsonValue(c.Field) + " = 'string'"
	switch c.Op {
	case filter.Eq, filter.Ne:
		var eq string
		switch v.Kind {
		case filter.Null:
			eq = "coalesce(jsonb_typeof" + q.jsonValue(c.Field) + ", 'null') = 'null'"
		case filter.Bool:
			eq = "coalesce(" + q.jsonValue(c.Field) + " = '" + strconv.FormatBool(v.Bool) + "'::jsonb, false)"
		case filter.Number:
			eq = "coalesce(" + q.jsonNumber(c.Field) + " = " + q.param(v.Num, "float8") + ", false)"
		case filter.String:
			eq = "coalesce(" + isString + " AND " + q.jsonText(c.Field) + " = " + q.param(v.Str, "text") + ", false)"
		default:
			return syntaxError(c.Pos, "%s takes no %s literal", c.Field, v.Kind)
		}
		if c.Op == filter.Ne {
			q.sql("(NOT ", eq, ")")
		} else {
			q.sql("(", eq, ")")
		}
	case filter.Gt, filter.Ge, filter.Lt, filter.Le:
		switch v.Kind {
		case filter.Number:
			q.sql("coalesce(", q.jsonNumber(c.Field), sqlOps[c.Op], q.param(v.Num, "float8"), ", false)")
		case filter.String:
			q.sql("coalesce(", isString, " AND ", q.jsonText(c.Field), sqlOps[c.Op], q.param(v.Str, "text"), ", false)")
		default:
			return syntaxError(c.Pos, "%s needs a number or string literal", c.Op)
		}
	case filter.Contains:
		if v.Kind != filter.String {
			return syntaxError(c.Pos, "~ needs a string literal")
		}
		// strpos is case-sensitive; LIKE would also need its wildcards
		// escaped.
		q.sql("coalesce(", isString, " AND strpos(", q.jsonText(c.Field), ", ", q.param(v.Str, "text"), ") > 0, false)")
	default:
		return syntaxError(c.Pos, "unknown operator %q", c.Op)
	}
	return nil
}

// systemCmp compares a record column. The columns are NOT NULL, so these
// conditions are never NULL either.
func (q *query) systemCmp(c *filter.Cmp) error {
	v := c.Value
	if c.Field == filter.FieldID {
		if v.Kind != filter.String {
			return syntaxError(c.Pos, "id takes string literals only")
		}
		switch c.Op {
		case filter.Eq:
			q.sql("(id = ", q.param(v.Str, "text"), ")")
		case filter.Ne:
			q.sql("(id <> ", q.param(v.Str, "text"), ")")
		case filter.Gt, filter.Ge, filter.Lt, filter.Le:
			q.sql("(id", sqlOps[c.Op], q.param(v.Str, "text"), ")")
		case filter.Contains:
			q.sql("(strpos(id, ", q.param(v.Str, "text"), ") > 0)")
		default:
			return syntaxError(c.Pos, "unknown operator %q", c.Op)
		}
		return nil
	}
	col := "created_at"
	if c.Field == filter.FieldUpdatedAt {
		col = "updated_at"
	}
	if v.Kind != filter.Time {
		return syntaxError(c.Pos, "%s takes RFC 3339 time literals only", c.Field)
	}
	// Stored times are whole microseconds. A literal with a finer part lies
	// strictly between two of them: compare with the one below it.
	us := utcMicros(v.Time) // floor
	exact := v.Time.Nanosecond()%1000 == 0
	switch c.Op {
	case filter.Eq:
		if !exact {
			q.sql("false")
			return nil
		}
		q.sql("(", col, " = ", q.param(us, "timestamptz"), ")")
	case filter.Ne:
		if !exact {
			q.sql("true")
			return nil
		}
		q.sql("(", col, " <> ", q.param(us, "timestamptz"), ")")
	case filter.Gt, filter.Ge:
		op := sqlOps[c.Op]
		if !exact {
			op = " > "
		}
		q.sql("(", col, op, q.param(us, "timestamptz"), ")")
	case filter.Lt, filter.Le:
		op := sqlOps[c.Op]
		if !exact {
			op = " <= "
		}
		q.sql("(", col, op, q.param(us, "timestamptz"), ")")
	case filter.Contains:
		return syntaxError(c.Pos, "%s does not take ~", c.Field)
	default:
		return syntaxError(c.Pos, "unknown operator %q", c.Op)
	}
	return nil
}

// orderKind says which sort key an order uses.
type orderKind int

const (
	orderData orderKind = iota // (rank, number, text, id) of a data key
	orderCreatedAt
	orderUpdatedAt
	orderID
)

// listRecords runs one page of a listing. The sort key of each row is
// computed in SQL and returned with it, so the page's Next key is exactly
// the value SQL compared and sorted by: the next page's row comparison
// continues precisely after it, ties included.
func (t *tx) listRecords(ctx context.Context, p *store.ListRecordsParams) (*store.RecordPage, error) {
	q, kind, err := listQuery(t.tid, p)
	if err != nil {
		return nil, err
	}
	rows, err := t.q.query(ctx, q.sb.String(), q.args...)
	if err != nil {
		return nil, wrap(err, "list records")
	}
	defer rows.Close()
	page := &store.RecordPage{Records: make([]*store.Record, 0, min(p.Limit, 64))}
	var next store.RecordKey
	for rows.Next() {
		if len(page.Records) == p.Limit {
			k := next
			page.Next = &k
			break
		}
		r := &store.Record{Collection: p.Collection}
		var data []byte
		dest := []any{&r.ID, &r.Version, &data, &r.CreatedAt, &r.UpdatedAt}
		next = store.RecordKey{}
		var rank int32
		if kind == orderData {
			dest = append(dest, &rank, &next.Num, &next.Str)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, wrap(err, "list records")
		}
		r.Data = data
		next.Rank = int(rank)
		next.ID = r.ID
		switch kind {
		case orderCreatedAt:
			next.Time = r.CreatedAt
		case orderUpdatedAt:
			next.Time = r.UpdatedAt
		}
		page.Records = append(page.Records, r)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "list records")
	}
	return page, nil
}

// listQuery builds the statement of one page of a listing of tid's
// records: Limit+1 rows, so that one more than the page tells whether
// another page follows.
func listQuery(tid tenantID, p *store.ListRecordsParams) (*query, orderKind, error) {
	if p == nil {
		return nil, 0, errors.New("pgstore: list records: nil params")
	}
	if p.Limit < 1 {
		return nil, 0, fmt.Errorf("pgstore: list records: limit must be at least 1, got %d", p.Limit)
	}
	kind := orderData
	switch p.Order.Field {
	case "", filter.FieldCreatedAt:
		kind = orderCreatedAt
	case filter.FieldUpdatedAt:
		kind = orderUpdatedAt
	case filter.FieldID:
		kind = orderID
	default:
		if !dataField.MatchString(p.Order.Field) {
			return nil, 0, syntaxError(0, "invalid order field %q", p.Order.Field)
		}
	}
	cmpOp, dir := " > ", ""
	if p.Order.Desc {
		cmpOp, dir = " < ", " DESC"
	}

	q := &query{}
	var key []string // the sort key's columns, most significant first
	q.sql("SELECT id, version, data, created_at, updated_at")
	tenantID := q.param(tid.arg, "uuid")
	collection := q.param(string(p.Collection), "text")
	switch kind {
	case orderData:
		f := p.Order.Field
		typ := "jsonb_typeof" + q.jsonValue(f)
		q.sql(", k_rank, k_num, k_txt FROM (SELECT id, version, data, created_at, updated_at",
			", CASE ", typ, " WHEN 'boolean' THEN 1 WHEN 'number' THEN 2 WHEN 'string' THEN 3",
			" WHEN 'object' THEN 4 WHEN 'array' THEN 4 ELSE 0 END AS k_rank",
			", CASE ", typ, " WHEN 'boolean' THEN CASE WHEN ", q.jsonValue(f), " = 'true'::jsonb THEN 1::float8 ELSE 0::float8 END",
			" WHEN 'number' THEN ", q.jsonNumber(f), " ELSE 0::float8 END AS k_num",
			", (CASE ", typ, " WHEN 'string' THEN doc ->> ", q.key(f), " ELSE '' END) COLLATE \"C\" AS k_txt",
			" FROM records")
		key = []string{"k_rank", "k_num", "k_txt", "id"}
	case orderCreatedAt:
		q.sql(" FROM records")
		key = []string{"created_at", "id"}
	case orderUpdatedAt:
		q.sql(" FROM records")
		key = []string{"updated_at", "id"}
	case orderID:
		q.sql(" FROM records")
		key = []string{"id"}
	}
	q.sql(" WHERE tenant_id = ", tenantID, " AND collection = ", collection)
	if p.Filter != nil {
		q.sql(" AND ")
		if err := q.where(p.Filter); err != nil {
			return nil, 0, err
		}
	}
	if kind == orderData {
		q.sql(") r WHERE true")
	}
	if a := p.After; a != nil {
		var after []string
		switch kind {
		case orderData:
			after = []string{q.param(int32(a.Rank), "int"), q.param(a.Num, "float8"), q.param(a.Str, "text"), q.param(string(a.ID), "text")}
		case orderCreatedAt, orderUpdatedAt:
			after = []string{q.param(a.Time, "timestamptz"), q.param(string(a.ID), "text")}
		case orderID:
			after = []string{q.param(string(a.ID), "text")}
		}
		q.sql(" AND (", strings.Join(key, ", "), ")", cmpOp, "(", strings.Join(after, ", "), ")")
	}
	q.sql(" ORDER BY ")
	for i, k := range key {
		if i > 0 {
			q.sql(", ")
		}
		q.sql(k, dir)
	}
	q.sql(" LIMIT ", q.param(int64(p.Limit)+1, "bigint"))
	return q, kind, nil
}
