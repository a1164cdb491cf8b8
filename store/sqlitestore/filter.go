package sqlitestore

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
// parameters (?1, ?2, …), so that a value used twice, such as a JSON path,
// is bound once. Nothing from the filter or the order ever becomes SQL text.
type query struct {
	sb   strings.Builder
	args []any
}

// param binds v and returns its placeholder.
func (q *query) param(v any) string {
	q.args = append(q.args, v)
	return "?" + strconv.Itoa(len(q.args))
}

func (q *query) sql(fragments ...string) {
	for _, f := range fragments {
		q.sb.WriteString(f)
	}
}

// dataField is the syntax of a top-level data key in a filter or an order
// (see package filter). It keeps JSON path syntax out of the paths built
// from field names, although they are bound as parameters anyway.
var dataField = regexp.MustCompile(`^[A-Za-z_][A-Za-z0-9_]{0,63}$`)

// jsonPath is the SQLite JSON path of top-level key field.
func jsonPath(field string) string { return `$."` + field + `"` }

func syntaxError(pos int, format string, args ...any) error {
	return &filter.SyntaxError{Pos: pos, Msg: fmt.Sprintf(format, args...)}
}

// where appends e as a condition that is never NULL: every comparison
// yields 0 or 1, so NOT is an exact negation, as the != rule of package
// filter requires.
func (q *query) where(e filter.Expr) error {
	switch e := e.(type) {
	case nil:
		q.sql("1")
	case *filter.And:
		if e == nil {
			q.sql("1")
			return nil
		}
		return q.terms(e.Terms, " AND ", "1")
	case *filter.Or:
		if e == nil {
			q.sql("0")
			return nil
		}
		return q.terms(e.Terms, " OR ", "0")
	case *filter.Cmp:
		if e == nil {
			return syntaxError(0, "empty comparison")
		}
		return q.cmp(e)
	default:
		return fmt.Errorf("sqlitestore: unknown filter expression %T", e)
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
var sqlOps = map[filter.Op]string{filter.Gt: ">", filter.Ge: ">=", filter.Lt: "<", filter.Le: "<="}

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
	path := q.param(jsonPath(c.Field))
	// typ is never NULL: a missing key reads as JSON null, which the
	// language treats alike. Comparisons test the value first, wrapped in
	// coalesce so that they too are never NULL, and the type second: the
	// type test is needed for strictness (json_extract gives 1 for true,
	// and JSON text for objects and arrays), but only runs for rows whose
	// value already matched, which halves the JSON work of a scan.
	typ := "coalesce(json_type(data, " + path + "), 'null')"
	val := "json_extract(data, " + path + ")"
	switch c.Op {
	case filter.Eq, filter.Ne:
		var eq string
		switch v.Kind {
		case filter.Null:
			eq = typ + " = 'null'"
		case filter.Bool:
			if v.Bool {
				eq = typ + " = 'true'"
			} else {
				eq = typ + " = 'false'"
			}
		case filter.Number:
			eq = "(coalesce(CAST(" + val + " AS REAL) = " + q.param(v.Num) + ", 0) AND " + typ + " IN ('integer', 'real'))"
		case filter.String:
			eq = "(coalesce(" + val + " = " + q.param(v.Str) + ", 0) AND " + typ + " = 'text')"
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
			q.sql("(coalesce(CAST(", val, " AS REAL) ", sqlOps[c.Op], " ", q.param(v.Num), ", 0) AND ", typ, " IN ('integer', 'real'))")
		case filter.String:
			q.sql("(coalesce(", val, " ", sqlOps[c.Op], " ", q.param(v.Str), ", 0) AND ", typ, " = 'text')")
		default:
			return syntaxError(c.Pos, "%s needs a number or string literal", c.Op)
		}
	case filter.Contains:
		if v.Kind != filter.String {
			return syntaxError(c.Pos, "~ needs a string literal")
		}
		// instr is case-sensitive; LIKE is not.
		q.sql("(coalesce(instr(", val, ", ", q.param(v.Str), ") > 0, 0) AND ", typ, " = 'text')")
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
			q.sql("(id = ", q.param(v.Str), ")")
		case filter.Ne:
			q.sql("(id != ", q.param(v.Str), ")")
		case filter.Gt, filter.Ge, filter.Lt, filter.Le:
			q.sql("(id ", sqlOps[c.Op], " ", q.param(v.Str), ")")
		case filter.Contains:
			q.sql("(instr(id, ", q.param(v.Str), ") > 0)")
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
	us := v.Time.UnixMicro() // floor
	exact := v.Time.Nanosecond()%1000 == 0
	switch c.Op {
	case filter.Eq:
		if !exact {
			q.sql("0")
			return nil
		}
		q.sql("(", col, " = ", q.param(us), ")")
	case filter.Ne:
		if !exact {
			q.sql("1")
			return nil
		}
		q.sql("(", col, " != ", q.param(us), ")")
	case filter.Gt, filter.Ge:
		op := sqlOps[c.Op]
		if !exact {
			op = ">"
		}
		q.sql("(", col, " ", op, " ", q.param(us), ")")
	case filter.Lt, filter.Le:
		op := sqlOps[c.Op]
		if !exact {
			op = "<="
		}
		q.sql("(", col, " ", op, " ", q.param(us), ")")
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
// the value SQL compared and sorted by: the next page's row-value
// comparison continues precisely after it, ties included.
func (t *tx) listRecords(ctx context.Context, p *store.ListRecordsParams) (*store.RecordPage, error) {
	if p == nil {
		return nil, errors.New("sqlitestore: list records: nil params")
	}
	if p.Limit < 1 {
		return nil, fmt.Errorf("sqlitestore: list records: limit must be at least 1, got %d", p.Limit)
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
			return nil, syntaxError(0, "invalid order field %q", p.Order.Field)
		}
	}
	cmpOp, dir := " > ", ""
	if p.Order.Desc {
		cmpOp, dir = " < ", " DESC"
	}

	var q query
	var key []string // the sort key's columns, most significant first
	q.sql("SELECT id, version, data, created_at, updated_at")
	switch kind {
	case orderData:
		path := q.param(jsonPath(p.Order.Field))
		typ := "json_type(data, " + path + ")"
		val := "json_extract(data, " + path + ")"
		q.sql(", k_rank, k_num, k_txt FROM (SELECT id, version, data, created_at, updated_at",
			", CASE ", typ,
			" WHEN 'true' THEN 1 WHEN 'false' THEN 1 WHEN 'integer' THEN 2 WHEN 'real' THEN 2",
			" WHEN 'text' THEN 3 WHEN 'array' THEN 4 WHEN 'object' THEN 4 ELSE 0 END AS k_rank",
			// Numbers sort as REAL, the type of RecordKey.Num, so the
			// key returned compares exactly as the row was sorted.
			", CASE ", typ,
			" WHEN 'true' THEN 1.0 WHEN 'integer' THEN CAST(", val, " AS REAL) WHEN 'real' THEN ", val,
			" ELSE 0.0 END AS k_num",
			", CASE ", typ, " WHEN 'text' THEN ", val, " ELSE '' END AS k_txt",
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
	q.sql(" WHERE tenant_id = ", q.param(t.tid), " AND collection = ", q.param(string(p.Collection)))
	if p.Filter != nil {
		q.sql(" AND ")
		if err := q.where(p.Filter); err != nil {
			return nil, err
		}
	}
	if kind == orderData {
		q.sql(") WHERE 1")
	}
	if a := p.After; a != nil {
		var after []any
		switch kind {
		case orderData:
			after = []any{int64(a.Rank), a.Num, a.Str, string(a.ID)}
		case orderCreatedAt, orderUpdatedAt:
			after = []any{a.Time.UnixMicro(), string(a.ID)}
		case orderID:
			after = []any{string(a.ID)}
		}
		q.sql(" AND (", strings.Join(key, ", "), ")", cmpOp, "(")
		for i, v := range after {
			if i > 0 {
				q.sql(", ")
			}
			q.sql(q.param(v))
		}
		q.sql(")")
	}
	q.sql(" ORDER BY ")
	for i, k := range key {
		if i > 0 {
			q.sql(", ")
		}
		q.sql(k, dir)
	}
	// One row more than the page tells whether another page follows.
	q.sql(" LIMIT ", q.param(p.Limit+1))

	rows, err := t.c.queryDynamic(ctx, q.sb.String(), q.args...)
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
		var created, updated int64
		dest := []any{&r.ID, &r.Version, &data, &created, &updated}
		next = store.RecordKey{}
		if kind == orderData {
			dest = append(dest, &next.Rank, &next.Num, &next.Str)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, wrap(err, "list records")
		}
		r.Data = data
		r.CreatedAt, r.UpdatedAt = fromMicros(created), fromMicros(updated)
		next.ID = r.ID
		switch kind {
		case orderCreatedAt:
			next.Time = r.CreatedAt
		case orderUpdatedAt:
			next.Time = r.UpdatedAt
		}
		page.Records = append(page.Records, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "list records")
	}
	return page, nil
}
