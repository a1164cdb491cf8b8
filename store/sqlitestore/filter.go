package sqlitestore

import (
	"context"
	"errors"
	"strconv"
	"time"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/internal/recsql"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// dialect is SQLite's filter.Dialect. A data key's sort key reads the
// record's JSON text with json_type and json_extract; strings compare with
// the BINARY collation, which for UTF-8 is code point order.
type dialect struct{}

var _ filter.Dialect = dialect{}

// Placeholder numbers parameters (?1, ?2, …), so that a value used twice,
// such as a prefix, is bound once.
func (dialect) Placeholder(n int, _ any) string { return "?" + strconv.Itoa(n) }

// Time is a time column's stored form: microseconds since the epoch.
func (dialect) Time(t time.Time) any { return t.UnixMicro() }

func (dialect) Bool(b bool) string {
	if b {
		return "1"
	}
	return "0"
}

func (dialect) Num(f float64) string { return strconv.FormatFloat(f, 'f', 1, 64) }

// DataKey computes the key from json_type, which is never NULL in these
// CASEs (a missing key's NULL takes the ELSE, as JSON null does). Numbers
// are REAL, the type of store.RecordKey.Num, so the key a page returns
// compares exactly as its row was sorted. The JSON path is a literal, as
// an index on the expressions needs.
func (dialect) DataKey(field string) filter.Key {
	path := filter.Literal(`$."` + field + `"`)
	typ := "json_type(data, " + path + ")"
	val := "json_extract(data, " + path + ")"
	return filter.Key{
		Rank: "CASE " + typ + " WHEN 'true' THEN 1 WHEN 'false' THEN 1 WHEN 'integer' THEN 2 WHEN 'real' THEN 2" +
			" WHEN 'text' THEN 3 WHEN 'array' THEN 4 WHEN 'object' THEN 4 ELSE 0 END",
		Num: "CASE " + typ + " WHEN 'true' THEN 1.0 WHEN 'integer' THEN CAST(" + val + " AS REAL) WHEN 'real' THEN " + val +
			" ELSE 0.0 END",
		Txt: "CASE " + typ + " WHEN 'text' THEN " + val + " ELSE '' END",
	}
}

// Contains uses instr, which is case-sensitive; LIKE is not.
func (dialect) Contains(s, sub string) string { return "instr(" + s + ", " + sub + ") > 0" }

func (dialect) HasPrefix(s, prefix string) string { return "instr(" + s + ", " + prefix + ") = 1" }

// scope confines a statement to collection of the transaction's tenant.
// Tenant and collection are inlined as literals when they are valid (as
// every tenant the store creates and every collection the API names is), so
// that the partial indexes of declared indexes, whose predicates name them,
// are seen to apply; else they are bound.
func (t *tx) scope(collection store.CollectionName) recsql.Scope {
	if recsql.Inlinable(tenant.ID(t.tid), collection) {
		lit := scopeSQL(tenant.ID(t.tid), collection)
		return func(q *filter.Query) { q.SQL(lit) }
	}
	return func(q *filter.Query) {
		q.SQL("tenant_id = ", q.Param(t.tid), " AND collection = ", q.Param(string(collection)))
	}
}

// scopeSQL is the condition of a statement on tid's collection, with both
// inlined. Index predicates hold the same terms.
func scopeSQL(tid tenant.ID, collection store.CollectionName) string {
	return "tenant_id = " + filter.Literal(string(tid)) + " AND collection = " + filter.Literal(string(collection))
}

// listRecords runs one page of a listing (see recsql.List), and its count
// if asked for.
func (t *tx) listRecords(ctx context.Context, p *store.ListRecordsParams) (*store.RecordPage, error) {
	if p == nil {
		return nil, errors.New("sqlitestore: list records: nil params")
	}
	l, err := recsql.List(dialect{}, p, t.scope(p.Collection))
	if err != nil {
		return nil, err
	}
	page := &store.RecordPage{Records: make([]*store.Record, 0, min(p.Limit, 64)), Total: -1}
	if l.Count != nil {
		if err := t.c.sc.QueryRowContext(ctx, l.Count.String(), l.Count.Args()...).Scan(&page.Total); err != nil {
			return nil, wrap(err, "count records")
		}
	}
	rows, err := t.c.queryDynamic(ctx, l.Page.String(), l.Page.Args()...)
	if err != nil {
		return nil, wrap(err, "list records")
	}
	defer rows.Close()
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
		if l.Key.Data {
			dest = append(dest, &next.Rank, &next.Num, &next.Str)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, wrap(err, "list records")
		}
		r.Data = data
		r.CreatedAt, r.UpdatedAt = fromMicros(created), fromMicros(updated)
		next.ID = r.ID
		switch l.Key.Order.Field {
		case filter.FieldCreatedAt:
			next.Time = r.CreatedAt
		case filter.FieldUpdatedAt:
			next.Time = r.UpdatedAt
		}
		page.Records = append(page.Records, r)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "list records")
	}
	return page, nil
}
