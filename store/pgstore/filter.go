package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"time"

	"github.com/jackc/pgx/v5/pgtype"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/internal/recsql"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// dialect is PostgreSQL's filter.Dialect. A data key's sort key reads the
// jsonb copy of the record (column doc) with the functions of schema
// bulkhead_keys (see the migration that creates them): types are strict
// (jsonb_typeof), numbers compare as float8 (IEEE doubles, as in SQLite,
// not numeric) and strings bytewise (COLLATE "C", code point order for
// UTF-8).
type dialect struct{}

var _ filter.Dialect = dialect{}

// Placeholder casts each parameter to its type, which the statement's text
// then fixes whatever value is bound.
func (dialect) Placeholder(n int, v any) string {
	var typ string
	switch v.(type) {
	case string:
		typ = "text"
	case float64:
		typ = "float8"
	case int32:
		typ = "int"
	case int64:
		typ = "bigint"
	case time.Time:
		typ = "timestamptz"
	case pgtype.UUID:
		typ = "uuid"
	default:
		panic(fmt.Sprintf("pgstore: no SQL type for a parameter of type %T", v))
	}
	return "$" + strconv.Itoa(n) + "::" + typ
}

func (dialect) Time(t time.Time) any { return t }

func (dialect) Bool(b bool) string { return strconv.FormatBool(b) }

func (dialect) Num(f float64) string { return strconv.FormatFloat(f, 'f', -1, 64) + "::float8" }

// DataKey applies the key functions to the record's object and the key,
// whose name is a literal, as an index on the expressions needs.
func (dialect) DataKey(field string) filter.Key {
	args := "(doc, " + filter.Literal(field) + ")"
	return filter.Key{
		Rank: "bulkhead_keys.rank" + args,
		Num:  "bulkhead_keys.num" + args,
		Txt:  "bulkhead_keys.txt" + args + ` COLLATE "C"`,
	}
}

// Contains uses strpos, which is case-sensitive; LIKE would also need its
// wildcards escaped.
func (dialect) Contains(s, sub string) string { return "strpos(" + s + ", " + sub + ") > 0" }

func (dialect) HasPrefix(s, prefix string) string { return "starts_with(" + s + ", " + prefix + ")" }

// scopeSQL is the condition of a statement on tid's collection, with both
// inlined as literals. The predicates of pooled physical indexes hold the
// same terms, and PostgreSQL uses a partial index only where it can prove
// the predicate from the query's own conditions, which a bound parameter
// does not allow in a generic plan.
func scopeSQL(tid tenant.ID, collection store.CollectionName) string {
	return "tenant_id = " + filter.Literal(string(tid)) + "::uuid AND collection = " + filter.Literal(string(collection))
}

// recordScope confines a statement to collection of tid, inlining both when
// they are valid (as every collection the API names is), else binding
// them.
func recordScope(tid tenantID, collection store.CollectionName) recsql.Scope {
	if recsql.Inlinable(tid.id, collection) {
		lit := scopeSQL(tid.id, collection)
		return func(q *filter.Query) { q.SQL(lit) }
	}
	return func(q *filter.Query) {
		q.SQL("tenant_id = ", q.Param(tid.arg), " AND collection = ", q.Param(string(collection)))
	}
}

// listRecords runs one page of a listing (see recsql.List), and its count
// if asked for.
func (t *tx) listRecords(ctx context.Context, p *store.ListRecordsParams) (*store.RecordPage, error) {
	l, err := listQuery(t.tid, p)
	if err != nil {
		return nil, err
	}
	page := &store.RecordPage{Records: make([]*store.Record, 0, min(p.Limit, 64)), Total: -1}
	if l.Count != nil {
		if err := t.q.queryRow(ctx, l.Count.String(), l.Count.Args()...).Scan(&page.Total); err != nil {
			return nil, wrap(err, "count records")
		}
	}
	rows, err := t.q.query(ctx, l.Page.String(), l.Page.Args()...)
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
		dest := []any{&r.ID, &r.Version, &data, &r.CreatedAt, &r.UpdatedAt}
		next = store.RecordKey{}
		var rank int32
		if l.Key.Data {
			dest = append(dest, &rank, &next.Num, &next.Str)
		}
		if err := rows.Scan(dest...); err != nil {
			return nil, wrap(err, "list records")
		}
		r.Data = data
		next.Rank = int(rank)
		next.ID = r.ID
		switch l.Key.Order.Field {
		case filter.FieldCreatedAt:
			next.Time = r.CreatedAt
		case filter.FieldUpdatedAt:
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

// listQuery builds the statements of one page of a listing of tid's
// records.
func listQuery(tid tenantID, p *store.ListRecordsParams) (*recsql.Listing, error) {
	if p == nil {
		return nil, errors.New("pgstore: list records: nil params")
	}
	return recsql.List(dialect{}, p, recordScope(tid, p.Collection))
}
