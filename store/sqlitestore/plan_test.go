package sqlitestore

import (
	"context"
	"encoding/json"
	"fmt"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/internal/recsql"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// planCase is a listing and the declared index its plan must use.
type planCase struct {
	name  string
	p     store.ListRecordsParams
	index []string // the index's fields
	// sorted says the index cannot give the listing's order, which the
	// plan may then sort.
	sorted bool
}

// planCases are listings that an index on their field serves: equality,
// ranges and prefixes on it, under the default order or its own, and
// orders by it (both ways, and from a cursor).
func planCases(collection store.CollectionName) []planCase {
	s, n := []string{"s"}, []string{"-n"}
	cmp := func(field string, op filter.Op, v filter.Value) filter.Expr {
		return &filter.Cmp{Field: field, Op: op, Value: v}
	}
	str := func(x string) filter.Value { return filter.Value{Kind: filter.String, Str: x} }
	num := func(x float64) filter.Value { return filter.Value{Kind: filter.Number, Num: x} }
	list := func(f filter.Expr, o filter.Order, after *store.RecordKey) store.ListRecordsParams {
		return store.ListRecordsParams{Collection: collection, Filter: f, Order: o, After: after, Limit: 20}
	}
	byS, byN, byID := filter.Order{Field: "s"}, filter.Order{Field: "n"}, filter.Order{Field: filter.FieldID}
	return []planCase{
		{"StringEq", list(cmp("s", filter.Eq, str("s001")), filter.Order{}, nil), s, true},
		{"StringEqByID", list(cmp("s", filter.Eq, str("s001")), byID, nil), s, true},
		{"StringEqByItself", list(cmp("s", filter.Eq, str("s001")), byS, nil), s, false},
		{"StringRange", list(cmp("s", filter.Gt, str("s4")), byS, nil), s, false},
		{"StringRangeAnd", list(&filter.And{Terms: []filter.Expr{cmp("s", filter.Ge, str("s1")), cmp("s", filter.Lt, str("s2"))}},
			filter.Order{Field: "s", Desc: true}, nil), s, false},
		{"Prefix", list(cmp("s", filter.Prefix, str("s00")), filter.Order{}, nil), s, true},
		{"PrefixByItself", list(cmp("s", filter.Prefix, str("s00")), byS, nil), s, false},
		{"PrefixAfter", list(cmp("s", filter.Prefix, str("s0")), byS, &store.RecordKey{Rank: 3, Str: "s050", ID: "r0050"}), s, false},
		{"NumberEq", list(cmp("n", filter.Eq, num(5)), filter.Order{}, nil), n, true},
		{"NumberRange", list(cmp("n", filter.Ge, num(90)), byN, nil), n, false},
		{"NumberRangeDesc", list(cmp("n", filter.Lt, num(3)), filter.Order{Field: "n", Desc: true}, nil), n, false},
		{"Order", list(nil, byS, nil), s, false},
		{"OrderDesc", list(nil, filter.Order{Field: "s", Desc: true}, nil), s, false},
		{"OrderOfDescIndex", list(nil, byN, nil), n, false},
		{"OrderAfter", list(nil, byS, &store.RecordKey{Rank: 3, Str: "s250", ID: "r0250"}), s, false},
	}
}

// planRecords is the data of record i of the plan tests.
func planRecords(i int) string { return fmt.Sprintf(`{"s":"s%03d","n":%d,"u":%d}`, i%500, i%97, i) }

// TestIndexPlans proves from SQLite's query plans that declared indexes
// serve the listings they should, for pooled and silo tenants: EXPLAIN
// QUERY PLAN names the index.
func TestIndexPlans(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "bulkhead.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	const collection = "items"
	indexes := []store.Index{{Fields: []string{"s"}}, {Fields: []string{"-n"}}, {Fields: []string{"u"}, Unique: true}}
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		t.Run(string(iso), func(t *testing.T) {
			var tid tenant.ID
			// Two tenants, so that the pooled table holds another's records.
			for range 2 {
				tid = tenant.ID(uuid.NewString())
				_, err := s.CreateTenant(ctx, &store.CreateTenantParams{ID: tid, Slug: tenant.Slug("p-" + string(tid)[:8]), Name: "P",
					Plan: tenant.DefaultPlan, Isolation: iso, CreatedAt: time.Now()}, nil, func(tx store.Tx) error {
					if _, err := tx.PutCollection(ctx, &store.Collection{Name: collection, Indexes: indexes}); err != nil {
						return err
					}
					for i := range 2000 {
						r := &store.Record{Collection: collection, ID: store.RecordID(fmt.Sprintf("r%04d", i)), Version: 1,
							Data: json.RawMessage(planRecords(i)), CreatedAt: time.UnixMicro(int64(i)), UpdatedAt: time.UnixMicro(int64(i))}
						if err := tx.CreateRecord(ctx, r); err != nil {
							return err
						}
					}
					return nil
				})
				if err != nil {
					t.Fatal(err)
				}
				if err := s.BuildIndexes(ctx, tid, collection); err != nil {
					t.Fatal(err)
				}
			}
			d, _, err := s.route(ctx, tid)
			if err != nil {
				t.Fatal(err)
			}
			for _, tc := range planCases(collection) {
				orders, _ := filter.ParseIndexFields(tc.index)
				physical := recsql.PhysicalName(tid, collection, orders, false)
				l, err := recsql.List(dialect{}, &tc.p, (&tx{tid: string(tid)}).scope(collection))
				if err != nil {
					t.Fatal(err)
				}
				plan := explainSQLite(t, d, l.Page)
				lines := strings.Split(plan, "\n")
				i := slices.IndexFunc(lines, func(l string) bool {
					return strings.Contains(l, "USING INDEX "+physical) || strings.Contains(l, "USING COVERING INDEX "+physical)
				})
				switch {
				case i < 0:
					t.Errorf("%s: the plan does not use the index on %v (%s):\n%s", tc.name, tc.index, physical, plan)
				case tc.p.Filter != nil && !strings.Contains(lines[i], "<expr>"):
					// The index search names the key expressions it
					// constrains, beyond tenant_id and collection.
					t.Errorf("%s: the index on %v does not take the listing's condition:\n%s", tc.name, tc.index, plan)
				case !tc.sorted && strings.Contains(plan, "TEMP B-TREE"):
					t.Errorf("%s: the plan sorts what the index on %v orders:\n%s", tc.name, tc.index, plan)
				}
			}
		})
	}
}

// explainSQLite returns the query plan of q on a reader of d, one step a
// line.
func explainSQLite(t *testing.T, d *database, q *filter.Query) string {
	t.Helper()
	var lines []string
	err := d.read(context.Background(), func(c *conn) error {
		rows, err := c.queryDynamic(context.Background(), "EXPLAIN QUERY PLAN "+q.String(), q.Args()...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			var id, parent, unused int
			var detail string
			if err := rows.Scan(&id, &parent, &unused, &detail); err != nil {
				return err
			}
			lines = append(lines, detail)
		}
		return rows.Err()
	})
	if err != nil {
		t.Fatalf("EXPLAIN QUERY PLAN: %v", err)
	}
	return strings.Join(lines, "\n")
}

// TestDeleteTenantDropsIndexes shows that deleting a pooled tenant drops
// its physical indexes from the main file, and only its own.
func TestDeleteTenantDropsIndexes(t *testing.T) {
	ctx := context.Background()
	s, err := Open(filepath.Join(t.TempDir(), "bulkhead.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	var ids []tenant.ID
	for range 2 {
		id := tenant.ID(uuid.NewString())
		ids = append(ids, id)
		_, err := s.CreateTenant(ctx, &store.CreateTenantParams{ID: id, Slug: tenant.Slug("d-" + string(id)[:8]), Name: "D",
			Plan: tenant.DefaultPlan, Isolation: tenant.Pooled, CreatedAt: time.Now()}, nil, func(tx store.Tx) error {
			_, err := tx.PutCollection(ctx, &store.Collection{Name: "items", Indexes: []store.Index{{Fields: []string{"s"}}, {Fields: []string{"u"}, Unique: true}}})
			return err
		})
		if err == nil {
			err = s.BuildIndexes(ctx, id, "items")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	count := func(id tenant.ID) int {
		var n int
		err := s.main.read(ctx, func(c *conn) error {
			return c.sc.QueryRowContext(ctx, `SELECT count(*) FROM sqlite_schema WHERE type = 'index' AND substr(name, 1, length(?1)) = ?1`,
				recsql.TenantPrefix(id)).Scan(&n)
		})
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count(ids[0]) != 2 || count(ids[1]) != 2 {
		t.Fatalf("before the deletion: %d and %d physical indexes, want 2 each", count(ids[0]), count(ids[1]))
	}
	if err := s.DeleteTenant(ctx, ids[0], nil); err != nil {
		t.Fatal(err)
	}
	if n := count(ids[0]); n != 0 {
		t.Errorf("the deleted tenant keeps %d physical indexes", n)
	}
	if n := count(ids[1]); n != 2 {
		t.Errorf("the other tenant has %d physical indexes, want 2", n)
	}
}
