// Package recsql is what the SQL backends (sqlitestore, pgstore) share
// about records beyond package filter's compiler: the statements of a
// listing, and the validation, naming and bookkeeping of declared indexes.
// Each backend supplies its filter.Dialect and runs the statements itself.
package recsql

import (
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// RecordColumns are the columns a listing selects, in the order backends
// scan them.
const RecordColumns = "id, version, data, created_at, updated_at"

// collectionName is the rule the API gives collection names. Names that
// match it may be inlined in SQL string literals; declared indexes need it,
// since their predicate names the collection.
var collectionName = regexp.MustCompile(`^[a-z][a-z0-9_]{0,62}$`)

// canonicalUUID is the form of tenant ids the stores create.
var canonicalUUID = regexp.MustCompile(`^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$`)

// Inlinable reports whether tid and collection may be written into SQL as
// literals: tid is a canonical UUID and collection follows the API's rule.
func Inlinable(tid tenant.ID, collection store.CollectionName) bool {
	return canonicalUUID.MatchString(string(tid)) && collectionName.MatchString(string(collection))
}

// Scope appends to q the condition that confines a statement to one
// tenant's collection, such as tenant_id = '…' AND collection = '…'.
type Scope func(q *filter.Query)

// Listing holds the statements of one page of a listing.
type Listing struct {
	// Page selects RecordColumns and, for a data key's order, the key's
	// rank, number and text, Limit+1 rows: one more than the page tells
	// whether another follows.
	Page *filter.Query
	Key  *filter.SortKey
	// Count counts the rows the filter matches; nil unless asked for.
	Count *filter.Query
}

// List builds the statements of the page p asks for, in dialect d, on the
// rows scope selects. Each row's sort key is computed in SQL and returned
// with it, so the page's Next key is exactly the value SQL compared and
// sorted by: the next page's row comparison continues precisely after it,
// ties included.
func List(d filter.Dialect, p *store.ListRecordsParams, scope Scope) (*Listing, error) {
	if p == nil {
		return nil, errors.New("list records: nil params")
	}
	if p.Limit < 1 {
		return nil, fmt.Errorf("list records: limit must be at least 1, got %d", p.Limit)
	}
	l := &Listing{Page: filter.NewQuery(d)}
	q := l.Page
	key, err := q.SortKey(p.Order, p.Filter)
	if err != nil {
		return nil, err
	}
	l.Key = key
	q.SQL("SELECT ", RecordColumns)
	if key.Data {
		q.SQL(", ", strings.Join(key.Exprs[:3], ", "))
	}
	q.SQL(" FROM records WHERE ")
	scope(q)
	if p.Filter != nil {
		q.SQL(" AND ")
		if err := q.Where(p.Filter); err != nil {
			return nil, err
		}
	}
	if a := p.After; a != nil {
		q.SQL(" AND ")
		q.After(key, &filter.Cursor{Rank: a.Rank, Num: a.Num, Str: a.Str, Time: a.Time, ID: string(a.ID)})
	}
	q.OrderBy(key)
	q.SQL(" LIMIT ", q.Param(int64(p.Limit)+1))
	if p.Count {
		c := filter.NewQuery(d)
		c.SQL("SELECT count(*) FROM records WHERE ")
		scope(c)
		if p.Filter != nil {
			c.SQL(" AND ")
			if err := c.Where(p.Filter); err != nil {
				return nil, err
			}
		}
		l.Count = c
	}
	return l, nil
}
