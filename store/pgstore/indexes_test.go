package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"

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
	// unique says the index is the unique one.
	unique bool
	// cond says the listing's filter (or cursor) must be a condition of
	// the index scan; sorted says the plan may sort, the index not giving
	// the listing's order.
	cond, sorted bool
}

// planCases are listings that an index on their field serves: equality,
// ranges and prefixes on it, under the default order or its own, orders by
// it (both ways, and from a cursor), and equality on a field with a unique
// index, which serves queries too.
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
	byS, byN := filter.Order{Field: "s"}, filter.Order{Field: "n"}
	return []planCase{
		{"StringEq", list(cmp("s", filter.Eq, str("s001")), filter.Order{}, nil), s, false, true, true},
		{"StringEqByID", list(cmp("s", filter.Eq, str("s001")), filter.Order{Field: filter.FieldID}, nil), s, false, true, true},
		{"StringEqByItself", list(cmp("s", filter.Eq, str("s001")), byS, nil), s, false, true, false},
		{"StringRange", list(cmp("s", filter.Gt, str("s4")), byS, nil), s, false, true, false},
		{"StringRangeAnd", list(&filter.And{Terms: []filter.Expr{cmp("s", filter.Ge, str("s1")), cmp("s", filter.Lt, str("s2"))}},
			filter.Order{Field: "s", Desc: true}, nil), s, false, true, false},
		{"Prefix", list(cmp("s", filter.Prefix, str("s00")), filter.Order{}, nil), s, false, true, true},
		{"PrefixByItself", list(cmp("s", filter.Prefix, str("s00")), byS, nil), s, false, true, false},
		{"PrefixAfter", list(cmp("s", filter.Prefix, str("s0")), byS, &store.RecordKey{Rank: 3, Str: "s050", ID: "r0050"}), s, false, true, false},
		{"NumberEq", list(cmp("n", filter.Eq, num(5)), filter.Order{}, nil), n, false, true, true},
		{"NumberRange", list(cmp("n", filter.Ge, num(90)), byN, nil), n, false, true, false},
		{"Order", list(nil, byS, nil), s, false, false, false},
		{"OrderDesc", list(nil, filter.Order{Field: "s", Desc: true}, nil), s, false, false, false},
		{"OrderOfDescIndex", list(nil, byN, nil), n, false, false, false},
		{"OrderAfter", list(nil, byS, &store.RecordKey{Rank: 3, Str: "s250", ID: "r0250"}), s, false, true, false},
		{"UniqueEq", list(cmp("u", filter.Eq, num(42)), filter.Order{}, nil), []string{"u"}, true, true, true},
	}
}

// checkPlan reports, with t.Errorf, a plan that does not scan index
// physical as tc requires.
func checkPlan(t *testing.T, tc planCase, physical, plan string) {
	t.Helper()
	lines := strings.Split(plan, "\n")
	i := slices.IndexFunc(lines, func(l string) bool { return isIndexScan(l, physical) })
	switch {
	case i < 0:
		t.Errorf("%s: the plan does not scan the index on %v (%s):\n%s", tc.name, tc.index, physical, plan)
	case tc.cond && (i+1 == len(lines) || !strings.Contains(lines[i+1], "Index Cond:") || !strings.Contains(lines[i+1], "bulkhead_keys.")):
		t.Errorf("%s: the index on %v does not take the listing's condition:\n%s", tc.name, tc.index, plan)
	case !tc.sorted && strings.Contains(plan, "Sort"):
		t.Errorf("%s: the plan sorts what the index on %v orders:\n%s", tc.name, tc.index, plan)
	}
}

// planRecord is record i of the plan tests.
func planRecord(collection store.CollectionName, i int) *store.Record {
	return &store.Record{Collection: collection, ID: store.RecordID(fmt.Sprintf("r%04d", i)), Version: 1,
		Data:      json.RawMessage(fmt.Sprintf(`{"s":"s%03d","n":%d,"u":%d}`, i%500, i%97, i)),
		CreatedAt: base.Add(time.Duration(i) * time.Second), UpdatedAt: base}
}

// isIndexScan reports whether an EXPLAIN line scans index name.
func isIndexScan(line, name string) bool {
	for _, scan := range []string{"Index Scan using ", "Index Scan Backward using ", "Index Only Scan using ",
		"Index Only Scan Backward using ", "Bitmap Index Scan on "} {
		if strings.Contains(line, scan+name+" ") || strings.HasSuffix(line, scan+name) {
			return true
		}
	}
	return false
}

// TestPostgresIndexPlans proves from PostgreSQL's plans that declared
// indexes serve the listings they should, pooled and silo, as the store
// runs them: through its transactions as the application role (a silo
// role for a silo tenant), with the statements listRecords sends. The
// tables are analyzed, and sequential scans are off in the transaction, so
// that the planner's choice does not hinge on the size of the test data;
// the statements alone decide whether an index can be used. One case also
// runs as a generic plan, which proves that the partial indexes'
// predicates follow from the statement's own literals, not from bound
// values.
func TestPostgresIndexPlans(t *testing.T) {
	superURL(t)
	t.Parallel()
	ctx := context.Background()
	d := newTestDB(t, t, true)
	s := openStore(t, d, nil)
	const collection = "items"
	indexes := []store.Index{{Fields: []string{"s"}}, {Fields: []string{"-n"}}, {Fields: []string{"u"}, Unique: true}}
	fill := func(tid tenant.ID) {
		err := s.InTenant(ctx, tid, func(tx store.Tx) error {
			if _, err := tx.PutCollection(ctx, &store.Collection{Name: collection, Indexes: indexes, CreatedAt: base, UpdatedAt: base}); err != nil {
				return err
			}
			for i := range 3000 {
				if err := tx.CreateRecord(ctx, planRecord(collection, i)); err != nil {
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
	other := createTenant(t, s, tenant.Pooled) // its records share the pooled table
	fill(other)
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		id := createTenant(t, s, iso)
		fill(id)
		tid, _ := parseTenantID(id)
		schema := "bulkhead"
		if iso == tenant.Silo {
			schema = tid.siloSchema()
		}
		superExec(t, d.ownerURL(t), "ANALYZE "+ident(schema, "records"))
		t.Run(string(iso), func(t *testing.T) {
			for _, tc := range planCases(collection) {
				orders, _ := filter.ParseIndexFields(tc.index)
				physical := recsql.PhysicalName(id, collection, orders, tc.unique)
				l, err := listQuery(tid, &tc.p)
				if err != nil {
					t.Fatal(err)
				}
				checkPlan(t, tc, physical, explainPostgres(t, s, id, l.Page, false))
			}
			// A generic plan, as a prepared statement gets after a few runs.
			p := store.ListRecordsParams{Collection: collection, Filter: &filter.Cmp{Field: "s", Op: filter.Eq,
				Value: filter.Value{Kind: filter.String, Str: "s001"}}, Order: filter.Order{Field: "s"}, Limit: 20}
			l, _ := listQuery(tid, &p)
			orders, _ := filter.ParseIndexFields([]string{"s"})
			physical := recsql.PhysicalName(id, collection, orders, false)
			checkPlan(t, planCase{name: "GenericPlan", index: []string{"s"}, cond: true}, physical, explainPostgres(t, s, id, l.Page, true))
		})
	}
}

// explainPostgres returns the plan of q in a read transaction of tenant
// id, with sequential scans off. generic plans q as a prepared statement
// with plan_cache_mode = force_generic_plan.
func explainPostgres(t *testing.T, s *Store, id tenant.ID, q *filter.Query, generic bool) string {
	t.Helper()
	ctx := context.Background()
	var lines []string
	err := s.ReadTenant(ctx, id, func(stx store.Tx) error {
		tx := stx.(*tx)
		if _, err := tx.q.exec(ctx, "SET LOCAL enable_seqscan = off"); err != nil {
			return err
		}
		sql, args := "EXPLAIN "+q.String(), q.Args()
		if generic {
			if _, err := tx.q.exec(ctx, "SET LOCAL plan_cache_mode = force_generic_plan"); err != nil {
				return err
			}
			if _, err := tx.q.exec(ctx, "PREPARE bulkhead_plan_test AS "+q.String()); err != nil {
				return err
			}
			defer tx.q.exec(ctx, "DEALLOCATE bulkhead_plan_test")
			var lits []string
			for _, a := range args {
				lits = append(lits, sqlLiteral(t, a))
			}
			sql, args = "EXPLAIN EXECUTE bulkhead_plan_test("+strings.Join(lits, ", ")+")", nil
		}
		rows, err := tx.q.query(ctx, sql, args...)
		if err != nil {
			return err
		}
		return forEach(rows, func(r pgx.Rows) error {
			var line string
			if err := r.Scan(&line); err != nil {
				return err
			}
			lines = append(lines, line)
			return nil
		})
	})
	if err != nil {
		t.Fatalf("EXPLAIN: %v", err)
	}
	return strings.Join(lines, "\n")
}

// sqlLiteral writes a test's argument as an SQL literal.
func sqlLiteral(t *testing.T, v any) string {
	switch v := v.(type) {
	case string:
		return filter.Literal(v)
	case int64:
		return strconv.FormatInt(v, 10)
	case int32:
		return strconv.FormatInt(int64(v), 10)
	case float64:
		return strconv.FormatFloat(v, 'g', -1, 64)
	case pgtype.UUID:
		return filter.Literal(fmt.Sprintf("%x-%x-%x-%x-%x", v.Bytes[0:4], v.Bytes[4:6], v.Bytes[6:8], v.Bytes[8:10], v.Bytes[10:16]))
	}
	t.Fatalf("no literal for %T", v)
	return ""
}

// TestPostgresBuildDoesNotBlockWrites builds one tenant's index while
// other tenants write to the same pooled table, and to a silo table. A
// transaction that started before the build holds it back: CREATE INDEX
// CONCURRENTLY waits for every transaction older than its last phase. So
// the build is provably running, waiting, all the while the other tenants'
// writes go on; they must all complete before the old transaction ends and
// lets the build finish. No clock is involved: only the order of events.
func TestPostgresBuildDoesNotBlockWrites(t *testing.T) {
	superURL(t)
	t.Parallel()
	ctx := context.Background()
	d := newTestDB(t, t, true)
	s := openStore(t, d, nil)
	building := createTenant(t, s, tenant.Pooled)
	neighbours := []tenant.ID{createTenant(t, s, tenant.Pooled), createTenant(t, s, tenant.Silo)}
	for _, id := range append([]tenant.ID{building}, neighbours...) {
		err := s.InTenant(ctx, id, func(tx store.Tx) error {
			_, err := tx.PutCollection(ctx, &store.Collection{Name: "items", CreatedAt: base, UpdatedAt: base})
			for i := range 500 {
				if err == nil {
					err = tx.CreateRecord(ctx, planRecord("items", i))
				}
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
	err := s.InTenant(ctx, building, func(tx store.Tx) error {
		_, err := tx.PutCollection(ctx, &store.Collection{Name: "items", Indexes: []store.Index{{Fields: []string{"s"}}, {Fields: []string{"u"}, Unique: true}},
			CreatedAt: base, UpdatedAt: base})
		return err
	})
	if err != nil {
		t.Fatal(err)
	}

	// The old transaction: a snapshot, taken before the build starts.
	old := connect(t, d.adminURL(t))
	if _, err := old.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ"); err != nil {
		t.Fatal(err)
	}
	if _, err := old.Exec(ctx, "SELECT count(*) FROM bulkhead.records"); err != nil {
		t.Fatal(err)
	}
	built := make(chan error, 1)
	go func() { built <- s.BuildIndexes(ctx, building, "items") }()

	// Wait until the build waits for the old transaction.
	watch := connect(t, d.adminURL(t))
	for waiting := false; !waiting; {
		select {
		case err := <-built:
			t.Fatalf("BuildIndexes returned %v while an older transaction was open", err)
		case <-time.After(20 * time.Millisecond):
		case <-t.Context().Done():
			t.Fatal(t.Context().Err())
		}
		err := watch.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_stat_activity
			WHERE datname = current_database() AND query LIKE 'CREATE %INDEX CONCURRENTLY%' AND wait_event_type = 'Lock')`).Scan(&waiting)
		if err != nil {
			t.Fatal(err)
		}
	}

	// The neighbours write, each write in its own transaction, from
	// several goroutines.
	var wg sync.WaitGroup
	for n, id := range neighbours {
		for w := range 4 {
			wg.Go(func() {
				for i := range 25 {
					rid := store.RecordID(fmt.Sprintf("w%d-%d", w, i))
					err := s.InTenant(ctx, id, func(tx store.Tx) error {
						r := &store.Record{Collection: "items", ID: rid, Version: 1, Data: json.RawMessage(`{"s":"new","u":1}`), CreatedAt: base, UpdatedAt: base}
						if err := tx.CreateRecord(ctx, r); err != nil {
							return err
						}
						_, err := tx.UpdateRecord(ctx, &store.UpdateRecordParams{Collection: "items", ID: rid, Data: json.RawMessage(`{"s":"newer"}`), UpdatedAt: base})
						return err
					})
					if err != nil {
						t.Errorf("neighbour %d: write during the build: %v", n, err)
						return
					}
				}
			})
		}
	}
	// The building tenant's own writes to the collection go on too.
	wg.Go(func() {
		err := s.InTenant(ctx, building, func(tx store.Tx) error {
			return tx.CreateRecord(ctx, &store.Record{Collection: "items", ID: "during", Version: 1, Data: json.RawMessage(`{"s":"during"}`), CreatedAt: base, UpdatedAt: base})
		})
		if err != nil {
			t.Errorf("the building tenant's write during the build: %v", err)
		}
	})
	wg.Wait()
	select {
	case err := <-built:
		t.Fatalf("BuildIndexes returned %v before the old transaction ended: the test proved nothing", err)
	default:
	}
	if _, err := old.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	if err := <-built; err != nil {
		t.Fatalf("BuildIndexes = %v", err)
	}
	err = s.ReadTenant(ctx, building, func(tx store.Tx) error {
		c, err := tx.GetCollection(ctx, "items")
		if err != nil {
			return err
		}
		for _, ix := range c.Indexes {
			if ix.State != store.IndexReady {
				t.Errorf("index %s is %s after the build", ix.Name(), ix.State)
			}
		}
		page, err := tx.ListRecords(ctx, &store.ListRecordsParams{Collection: "items", Filter: &filter.Cmp{Field: "s", Op: filter.Eq,
			Value: filter.Value{Kind: filter.String, Str: "during"}}, Limit: 10})
		if err == nil && len(page.Records) != 1 {
			t.Errorf("the record written during the build is listed %d times through the index, want once", len(page.Records))
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range neighbours {
		err := s.ReadTenant(ctx, id, func(tx store.Tx) error {
			u, err := tx.Usage(ctx)
			if err == nil && u.Records != 500+4*25 {
				t.Errorf("neighbour holds %d records, want %d", u.Records, 500+4*25)
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestPostgresDeleteTenantDropsIndexes shows that deleting a pooled tenant
// drops its physical indexes from the shared table, and only its own.
func TestPostgresDeleteTenantDropsIndexes(t *testing.T) {
	superURL(t)
	t.Parallel()
	ctx := context.Background()
	d := newTestDB(t, t, true)
	s := openStore(t, d, nil)
	gone, kept := createTenant(t, s, tenant.Pooled), createTenant(t, s, tenant.Pooled)
	for _, id := range []tenant.ID{gone, kept} {
		err := s.InTenant(ctx, id, func(tx store.Tx) error {
			_, err := tx.PutCollection(ctx, &store.Collection{Name: "items", Indexes: []store.Index{{Fields: []string{"s"}}, {Fields: []string{"u"}, Unique: true}},
				CreatedAt: base, UpdatedAt: base})
			return err
		})
		if err == nil {
			err = s.BuildIndexes(ctx, id, "items")
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	c := connect(t, d.adminURL(t))
	count := func(id tenant.ID) int {
		var n int
		err := c.QueryRow(ctx, `SELECT count(*) FROM pg_indexes WHERE schemaname = 'bulkhead' AND tablename = 'records' AND starts_with(indexname, $1)`,
			recsql.TenantPrefix(id)).Scan(&n)
		if err != nil {
			t.Fatal(err)
		}
		return n
	}
	if count(gone) != 2 || count(kept) != 2 {
		t.Fatalf("before the deletion: %d and %d physical indexes, want 2 each", count(gone), count(kept))
	}
	if err := s.DeleteTenant(ctx, gone, nil); err != nil {
		t.Fatal(err)
	}
	if n := count(gone); n != 0 {
		t.Errorf("the deleted tenant keeps %d physical indexes", n)
	}
	if n := count(kept); n != 2 {
		t.Errorf("the other tenant has %d physical indexes, want 2", n)
	}
}

// TestPostgresBuildAfterCrash leaves what a build interrupted by a crash
// leaves, an invalid index under the declaration's name, and shows that
// the next BuildIndexes drops it and builds the index anew.
func TestPostgresBuildAfterCrash(t *testing.T) {
	superURL(t)
	t.Parallel()
	ctx := context.Background()
	d := newTestDB(t, t, true)
	s := openStore(t, d, nil)
	id := createTenant(t, s, tenant.Pooled)
	k := store.Index{Fields: []string{"k"}, Unique: true}
	err := s.InTenant(ctx, id, func(tx store.Tx) error {
		if _, err := tx.PutCollection(ctx, &store.Collection{Name: "tags", Indexes: []store.Index{k}, CreatedAt: base, UpdatedAt: base}); err != nil {
			return err
		}
		for _, rid := range []store.RecordID{"t1", "t2"} {
			err := tx.CreateRecord(ctx, &store.Record{Collection: "tags", ID: rid, Version: 1, Data: json.RawMessage(`{"k":"x"}`), CreatedAt: base, UpdatedAt: base})
			if err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	// The interrupted build: CONCURRENTLY failed, leaving an invalid index.
	orders, _ := filter.ParseIndexFields(k.Fields)
	row := &recsql.Row{Physical: recsql.PhysicalName(id, "tags", orders, true), Fields: k.Fields, Unique: true}
	ddl, err := createIndexSQL(id, "tags", tenant.Pooled, "bulkhead", row)
	if err != nil {
		t.Fatal(err)
	}
	owner := connect(t, d.ownerURL(t))
	if _, err := owner.Exec(ctx, ddl); err == nil {
		t.Fatal("building the unique index over duplicates succeeded")
	}
	valid := func() (exists, valid bool) {
		err := owner.QueryRow(ctx, `SELECT count(*) > 0, coalesce(bool_and(indisvalid), false) FROM pg_index WHERE indexrelid = to_regclass($1)`,
			"bulkhead."+row.Physical).Scan(&exists, &valid)
		if err != nil {
			t.Fatal(err)
		}
		return exists, valid
	}
	if exists, ok := valid(); !exists || ok {
		t.Fatalf("after the failed build, the index exists %v, valid %v; want an invalid leftover", exists, ok)
	}
	err = s.InTenant(ctx, id, func(tx store.Tx) error {
		_, err := tx.DeleteRecord(ctx, "tags", "t2", 0)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if err := s.BuildIndexes(ctx, id, "tags"); err != nil {
		t.Fatalf("BuildIndexes = %v", err)
	}
	if exists, ok := valid(); !exists || !ok {
		t.Errorf("after BuildIndexes, the index exists %v, valid %v; want a valid one", exists, ok)
	}
	// A ready index whose physical index went missing is built again.
	if _, err := owner.Exec(ctx, "DROP INDEX bulkhead."+row.Physical); err != nil {
		t.Fatal(err)
	}
	if err := s.BuildIndexes(ctx, id, "tags"); err != nil {
		t.Fatalf("BuildIndexes = %v", err)
	}
	if exists, ok := valid(); !exists || !ok {
		t.Errorf("after BuildIndexes of a ready index dropped by hand, the index exists %v, valid %v; want a valid one", exists, ok)
	}
	err = s.InTenant(ctx, id, func(tx store.Tx) error {
		c, err := tx.GetCollection(ctx, "tags")
		if err != nil {
			return err
		}
		if len(c.Indexes) != 1 || c.Indexes[0].State != store.IndexReady {
			t.Errorf("indexes = %+v, want k ready", c.Indexes)
		}
		err = tx.CreateRecord(ctx, &store.Record{Collection: "tags", ID: "t3", Version: 1, Data: json.RawMessage(`{"k":"x"}`), CreatedAt: base, UpdatedAt: base})
		var ue *store.UniqueError
		if !errors.As(err, &ue) || ue.Index != "k" {
			t.Errorf("CreateRecord(duplicate) = %v, want a *store.UniqueError of index k", err)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

// TestPostgresLeakproofWarning shows that Open warns while the key
// functions are not leakproof, and that declared indexes then still serve
// orders.
func TestPostgresLeakproofWarning(t *testing.T) {
	superURL(t)
	t.Parallel()
	ctx := context.Background()
	d := newTestDB(t, t, true)
	superExec(t, d.adminURL(t), strings.ReplaceAll(LeakproofSQL, " LEAKPROOF;", " NOT LEAKPROOF;"))
	var logs strings.Builder
	var mu sync.Mutex
	s := openStore(t, d, &Options{MaxConns: 4, Logger: slog.New(slog.NewTextHandler(writerFunc(func(p []byte) (int, error) {
		mu.Lock()
		defer mu.Unlock()
		return logs.Write(p)
	}), nil))})
	mu.Lock()
	warned := strings.Contains(logs.String(), "not LEAKPROOF")
	mu.Unlock()
	if !warned {
		t.Errorf("Open logged %q, want a warning that the key functions are not leakproof", logs.String())
	}
	id := createTenant(t, s, tenant.Pooled)
	tid, _ := parseTenantID(id)
	err := s.InTenant(ctx, id, func(tx store.Tx) error {
		if _, err := tx.PutCollection(ctx, &store.Collection{Name: "items", Indexes: []store.Index{{Fields: []string{"s"}}}, CreatedAt: base, UpdatedAt: base}); err != nil {
			return err
		}
		for i := range 500 {
			if err := tx.CreateRecord(ctx, planRecord("items", i)); err != nil {
				return err
			}
		}
		return nil
	})
	if err == nil {
		err = s.BuildIndexes(ctx, id, "items")
	}
	if err != nil {
		t.Fatal(err)
	}
	orders, _ := filter.ParseIndexFields([]string{"s"})
	physical := recsql.PhysicalName(id, "items", orders, false)
	p := store.ListRecordsParams{Collection: "items", Order: filter.Order{Field: "s"}, Limit: 20}
	l, _ := listQuery(tid, &p)
	checkPlan(t, planCase{name: "OrderWithoutLeakproof", index: []string{"s"}}, physical, explainPostgres(t, s, id, l.Page, false))
}

type writerFunc func([]byte) (int, error)

func (f writerFunc) Write(p []byte) (int, error) { return f(p) }
