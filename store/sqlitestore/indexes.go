package sqlitestore

import (
	"time"

	"context"
	"database/sql"
	"errors"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/internal/recsql"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Declared indexes. Each declaration is a row of collection_indexes and,
// once BuildIndexes has run, a partial index on records named after it
// (recsql.PhysicalName):
//
//	CREATE [UNIQUE] INDEX bx_… ON records (tenant_id, collection, <key columns>)
//	WHERE tenant_id = '<tenant>' AND collection = '<name>' [AND <rank> BETWEEN 1 AND 3 …]
//
// The key columns are filter.IndexColumns': each field's sort key
// expressions, as the compiled filters and orders spell them, then id. The
// predicate keeps other tenants' and collections' records out, so the
// index is one collection's (and a unique one unique within it only); a
// silo file's indexes name the collection only. The leading tenant_id and
// collection columns are constant within the index and cost a few bytes per
// entry, but without them SQLite's planner prefers the records_created_at
// index for the tenant and collection and sorts, even for an ORDER BY that
// the declared index serves with a LIMIT. A unique index's predicate also
// requires each data field's rank to be 1 to 3 (a boolean, number or
// string), so records lacking a field, holding null there, or an object or
// array (which the sort key does not tell apart) are not in it and never
// conflict.
//
// DDL is transactional in SQLite: a removed declaration's index is dropped
// in the transaction that removes it, so it stops being used and enforced
// at once; a new one is built by BuildIndexes in one write on the file's
// writer, which other writers of the file wait for.

const (
	sqlCollectionExists = `SELECT 1 FROM collections WHERE tenant_id = ? AND name = ?`
	indexColumns        = `physical, fields, is_unique, position, state, error`
	sqlIndexRows        = `SELECT ` + indexColumns + ` FROM collection_indexes WHERE tenant_id = ? AND collection = ?`
	sqlTenantIndexRows  = `SELECT collection, ` + indexColumns + ` FROM collection_indexes WHERE tenant_id = ?`
	sqlInsertIndex      = `INSERT INTO collection_indexes (tenant_id, collection, physical, fields, is_unique, position, state, error, created_at)
		VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`
	sqlUpdateIndex = `UPDATE collection_indexes SET fields = ?, position = ?, state = ?, error = ?
		WHERE tenant_id = ? AND collection = ? AND physical = ?`
	sqlDeleteIndex   = `DELETE FROM collection_indexes WHERE tenant_id = ? AND collection = ? AND physical = ?`
	sqlIndexBuilt    = `UPDATE collection_indexes SET state = ?, error = ? WHERE tenant_id = ? AND collection = ? AND physical = ? AND state = 'building'`
	sqlPendingBuilds = `SELECT DISTINCT tenant_id, collection FROM collection_indexes WHERE state = 'building'`
	sqlSiloTenants   = `SELECT id FROM tenants WHERE isolation = 'silo' ORDER BY id`
	// sqlPhysicalIndexes lists the indexes on records whose names start
	// with ?1, with their SQL.
	sqlPhysicalIndexes = `SELECT name, coalesce(sql, '') FROM sqlite_schema
		WHERE type = 'index' AND tbl_name = 'records' AND substr(name, 1, length(?1)) = ?1`

	sqlCollectionUsage      = `SELECT count(*), coalesce(sum(octet_length(data)), 0) FROM records WHERE tenant_id = ? AND collection = ?`
	sqlDeleteCollRecords    = `DELETE FROM records WHERE tenant_id = ? AND collection = ?`
	sqlDeleteCollIndexes    = `DELETE FROM collection_indexes WHERE tenant_id = ? AND collection = ?`
	sqlDeleteCollectionByID = `DELETE FROM collections WHERE tenant_id = ? AND name = ?`
)

func scanIndexRow(r scanner) (recsql.Row, error) {
	var row recsql.Row
	var fields string
	if err := r.Scan(&row.Physical, &fields, &row.Unique, &row.Position, &row.State, &row.Error); err != nil {
		return row, err
	}
	var err error
	row.Fields, err = recsql.DecodeFields(fields)
	return row, err
}

// indexRows returns the stored declarations of collection.
func (t *tx) indexRows(ctx context.Context, collection store.CollectionName) ([]recsql.Row, error) {
	return indexRows(ctx, t.c, t.tid, collection)
}

func indexRows(ctx context.Context, c *conn, tid string, collection store.CollectionName) ([]recsql.Row, error) {
	rows, err := c.query(ctx, sqlIndexRows, tid, string(collection))
	if err != nil {
		return nil, wrap(err, "read indexes of collection %q", collection)
	}
	defer rows.Close()
	var out []recsql.Row
	for rows.Next() {
		row, err := scanIndexRow(rows)
		if err != nil {
			return nil, wrap(err, "read indexes of collection %q", collection)
		}
		out = append(out, row)
	}
	return out, wrap(rows.Err(), "read indexes of collection %q", collection)
}

// dropIndex drops a physical index if it exists. The name is one the store
// made, which is checked before it becomes SQL text.
func dropIndex(ctx context.Context, c *conn, name string) error {
	if !recsql.IsPhysicalName(name) {
		return fmt.Errorf("sqlitestore: %q is not a physical index name", name)
	}
	_, err := c.sc.ExecContext(ctx, "DROP INDEX IF EXISTS "+name)
	return wrap(err, "drop index %s", name)
}

func (t *tx) PutCollection(ctx context.Context, c *store.Collection) (bool, error) {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return false, err
	}
	decls, err := recsql.Declare(tenant.ID(t.tid), c.Name, c.Indexes)
	if err != nil {
		return false, fmt.Errorf("put collection %q: %w", c.Name, err)
	}
	var created int64
	err = t.c.queryRow(ctx, sqlGetCollection, t.tid, string(c.Name)).Scan(new(string), new(sql.NullString), &created, new(int64), new(string), new(int64), new(string))
	inserted := false
	switch {
	case err == nil:
		_, err = t.c.exec(ctx, sqlUpdateColl, jsonArg(c.Schema), c.UpdatedAt.UnixMicro(), recsql.EncodeEncrypted(c.EncryptedFields),
			int64(c.Retention/time.Second), c.RetentionField, t.tid, string(c.Name))
		if err != nil {
			return false, wrap(err, "replace collection %q", c.Name)
		}
		c.CreatedAt = fromMicros(created)
	case errorsIsNotFound(err):
		_, err = t.c.exec(ctx, sqlInsertColl, t.tid, string(c.Name), jsonArg(c.Schema),
			c.CreatedAt.UnixMicro(), c.UpdatedAt.UnixMicro(), recsql.EncodeEncrypted(c.EncryptedFields),
			int64(c.Retention/time.Second), c.RetentionField)
		if err != nil {
			return false, wrap(err, "create collection %q", c.Name)
		}
		inserted = true
	default:
		return false, wrap(err, "put collection %q", c.Name)
	}
	rows, err := t.indexRows(ctx, c.Name)
	if err != nil {
		return false, err
	}
	ch := recsql.Merge(rows, decls)
	for _, r := range ch.Remove {
		if err := dropIndex(ctx, t.c, r.Physical); err != nil {
			return false, err
		}
		if _, err := t.c.exec(ctx, sqlDeleteIndex, t.tid, string(c.Name), r.Physical); err != nil {
			return false, wrap(err, "remove index %q", r.Name())
		}
	}
	for _, r := range ch.Update {
		_, err := t.c.exec(ctx, sqlUpdateIndex, recsql.EncodeFields(r.Fields), r.Position, string(r.State), r.Error,
			t.tid, string(c.Name), r.Physical)
		if err != nil {
			return false, wrap(err, "update index %q", r.Name())
		}
	}
	for _, r := range ch.Insert {
		_, err := t.c.exec(ctx, sqlInsertIndex, t.tid, string(c.Name), r.Physical, recsql.EncodeFields(r.Fields), r.Unique,
			r.Position, string(r.State), r.Error, c.UpdatedAt.UnixMicro())
		if err != nil {
			return false, wrap(err, "declare index %q", r.Name())
		}
	}
	return inserted, nil
}

func (t *tx) GetCollection(ctx context.Context, name store.CollectionName) (*store.Collection, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	c, err := scanCollection(t.c.queryRow(ctx, sqlGetCollection, t.tid, string(name)))
	if err != nil {
		return nil, wrap(err, "get collection %q", name)
	}
	rows, err := t.indexRows(ctx, name)
	if err != nil {
		return nil, err
	}
	c.Indexes = recsql.Indexes(rows)
	return c, nil
}

func (t *tx) ListCollections(ctx context.Context) ([]*store.Collection, error) {
	ctx, err := t.begin(ctx, false)
	if err != nil {
		return nil, err
	}
	rows, err := t.c.query(ctx, sqlListCollections, t.tid)
	cs, err := collect(rows, err, scanCollection, "list collections")
	if err != nil {
		return nil, err
	}
	rows, err = t.c.query(ctx, sqlTenantIndexRows, t.tid)
	if err != nil {
		return nil, wrap(err, "list indexes")
	}
	defer rows.Close()
	byCollection := map[store.CollectionName][]recsql.Row{}
	for rows.Next() {
		var name store.CollectionName
		row, err := scanIndexRow(rowWithFirst{rows, &name})
		if err != nil {
			return nil, wrap(err, "list indexes")
		}
		byCollection[name] = append(byCollection[name], row)
	}
	if err := rows.Err(); err != nil {
		return nil, wrap(err, "list indexes")
	}
	for _, c := range cs {
		c.Indexes = recsql.Indexes(byCollection[c.Name])
	}
	return cs, nil
}

// rowWithFirst scans a row's first column into first and the rest as
// another scanner's row.
type rowWithFirst struct {
	r     scanner
	first any
}

func (r rowWithFirst) Scan(dest ...any) error { return r.r.Scan(append([]any{r.first}, dest...)...) }

func (t *tx) DeleteCollection(ctx context.Context, name store.CollectionName) error {
	ctx, err := t.begin(ctx, true)
	if err != nil {
		return err
	}
	var one int
	if err := t.c.queryRow(ctx, sqlCollectionExists, t.tid, string(name)).Scan(&one); err != nil {
		return wrap(err, "delete collection %q", name)
	}
	var n, size int64
	if err := t.c.queryRow(ctx, sqlCollectionUsage, t.tid, string(name)).Scan(&n, &size); err != nil {
		return wrap(err, "delete collection %q", name)
	}
	if _, err := t.c.exec(ctx, sqlDeleteCollRecords, t.tid, string(name)); err != nil {
		return wrap(err, "delete records of collection %q", name)
	}
	rows, err := t.indexRows(ctx, name)
	if err != nil {
		return err
	}
	for _, r := range rows {
		if err := dropIndex(ctx, t.c, r.Physical); err != nil {
			return err
		}
	}
	if _, err := t.c.exec(ctx, sqlDeleteCollIndexes, t.tid, string(name)); err != nil {
		return wrap(err, "delete indexes of collection %q", name)
	}
	if _, err := t.c.exec(ctx, sqlDeleteCollectionByID, t.tid, string(name)); err != nil {
		return wrap(err, "delete collection %q", name)
	}
	if n == 0 {
		return nil
	}
	return t.addUsage(ctx, -n, -size)
}

var (
	// uniqueIndexName finds the index in SQLite's message for a unique
	// index with expressions (every index on a data field).
	uniqueIndexName = regexp.MustCompile(`UNIQUE constraint failed: index '([^']+)'`)
	// uniqueColumns finds the columns in SQLite's message for a unique
	// index on columns only (system fields only).
	uniqueColumns = regexp.MustCompile(`UNIQUE constraint failed: ((?:records\.[a-z_]+(?:, )?)+)`)
)

// uniqueError returns the *store.UniqueError that err, the error of a
// write to collection's records, stands for, or nil if it is not the
// violation of a declared unique index.
func (t *tx) uniqueError(ctx context.Context, collection store.CollectionName, err error) error {
	var coder interface{ Code() int }
	if !errors.As(err, &coder) || coder.Code() != codeConstraintUnique {
		return nil
	}
	msg := err.Error()
	var match func(r *recsql.Row) bool
	if m := uniqueIndexName.FindStringSubmatch(msg); m != nil {
		match = func(r *recsql.Row) bool { return r.Physical == m[1] }
	} else if m := uniqueColumns.FindStringSubmatch(msg); m != nil {
		cols := strings.Split(strings.ReplaceAll(m[1], "records.", ""), ", ")
		cols = slices.DeleteFunc(cols, func(c string) bool { return c == "tenant_id" || c == "collection" })
		match = func(r *recsql.Row) bool {
			orders, err := r.Orders()
			if err != nil || len(orders) != len(cols) {
				return false
			}
			for i, o := range orders {
				if !filter.IsSystem(o.Field) || o.Field != cols[i] {
					return false
				}
			}
			return true
		}
	} else {
		return nil
	}
	rows, rerr := t.indexRows(ctx, collection)
	if rerr != nil {
		return nil
	}
	for i := range rows {
		if r := &rows[i]; r.Unique && match(r) {
			return &store.UniqueError{Collection: collection, Index: r.Name()}
		}
	}
	return nil
}

// indexPredicate is the predicate of the physical indexes of tid's
// collection: the same terms as a listing's scope, less the tenant in a
// silo file, which holds one tenant only.
func indexPredicate(tid tenant.ID, collection store.CollectionName, iso tenant.Isolation) string {
	if iso == tenant.Silo {
		return "collection = " + filter.Literal(string(collection))
	}
	return scopeSQL(tid, collection)
}

// createIndexSQL is the statement that builds r's physical index.
func createIndexSQL(tid tenant.ID, collection store.CollectionName, iso tenant.Isolation, r *recsql.Row) (string, error) {
	orders, err := r.Orders()
	if err != nil {
		return "", err
	}
	if !recsql.IsPhysicalName(r.Physical) || !recsql.Inlinable(tid, collection) {
		return "", fmt.Errorf("sqlitestore: index %q of collection %q cannot be built", r.Physical, collection)
	}
	cols := append([]string{"tenant_id", "collection"}, filter.IndexColumns(dialect{}, orders, r.Unique)...)
	where := []string{indexPredicate(tid, collection, iso)}
	kind := "INDEX"
	if r.Unique {
		where = append(where, filter.UniqueConditions(dialect{}, orders)...)
		kind = "UNIQUE INDEX"
	}
	return "CREATE " + kind + " IF NOT EXISTS " + r.Physical + " ON records (" + strings.Join(cols, ", ") +
		") WHERE " + strings.Join(where, " AND "), nil
}

// BuildIndexes builds the declared indexes of tid's collection in state
// building and drops the physical indexes of the collection that no
// declaration names (left by a crash, or by a collection deleted and made
// again), all in one write on the writer of the tenant's file. A unique
// index that its records violate ends failed, with the reason.
func (s *Store) BuildIndexes(ctx context.Context, tid tenant.ID, collection store.CollectionName) error {
	if tid == "" {
		return store.ErrNoTenant
	}
	d, iso, err := s.route(ctx, tid)
	if err != nil {
		return err
	}
	exists := false
	err = d.write(ctx, func(c *conn) error {
		ctx := context.WithoutCancel(ctx)
		if iso == tenant.Pooled {
			var one int
			if err := c.queryRow(ctx, sqlTenantExists, string(tid)).Scan(&one); err != nil {
				return wrap(err, "tenant %s", tid)
			}
		}
		var one int
		err := c.queryRow(ctx, sqlCollectionExists, string(tid), string(collection)).Scan(&one)
		if err != nil && !errorsIsNotFound(err) {
			return wrap(err, "build indexes of collection %q", collection)
		}
		exists = err == nil
		rows, err := indexRows(ctx, c, string(tid), collection)
		if err != nil {
			return err
		}
		declared := map[string]bool{}
		for _, r := range rows {
			if r.State != recsql.StateDropping {
				declared[r.Physical] = true
			}
		}
		if err := dropUndeclared(ctx, c, recsql.CollectionPrefix(tid, collection), tid, iso, declared); err != nil {
			return err
		}
		var built []string
		for _, r := range rows {
			switch r.State {
			case recsql.StateDropping:
				if _, err := c.exec(ctx, sqlDeleteIndex, string(tid), string(collection), r.Physical); err != nil {
					return wrap(err, "remove index %q", r.Name())
				}
			case store.IndexBuilding:
				ok, err := buildIndex(ctx, c, tid, collection, iso, &r)
				if err != nil {
					return err
				}
				if ok {
					built = append(built, r.Physical)
				}
			}
		}
		return analyzeIndexes(ctx, c, built)
	})
	if err != nil {
		return err
	}
	if !exists {
		return fmt.Errorf("build indexes: collection %q: %w", collection, store.ErrNotFound)
	}
	return nil
}

// buildIndex builds r's physical index and marks r ready, or failed if the
// records violate it. It reports whether it built the index.
func buildIndex(ctx context.Context, c *conn, tid tenant.ID, collection store.CollectionName, iso tenant.Isolation, r *recsql.Row) (bool, error) {
	ddl, err := createIndexSQL(tid, collection, iso, r)
	if err != nil {
		return false, err
	}
	state, reason := store.IndexReady, ""
	if _, err := c.sc.ExecContext(ctx, ddl); err != nil {
		var coder interface{ Code() int }
		if !errors.As(err, &coder) || coder.Code() != codeConstraintUnique {
			return false, wrap(err, "build index %q of collection %q", r.Name(), collection)
		}
		// The failed statement built nothing; the transaction goes on.
		state, reason = store.IndexFailed, recsql.DuplicatesReason
	}
	_, err = c.exec(ctx, sqlIndexBuilt, string(state), reason, string(tid), string(collection), r.Physical)
	return state == store.IndexReady, wrap(err, "mark index %q %s", r.Name(), state)
}

// analysisLimit bounds the rows ANALYZE reads of each index: enough for
// the planner's estimates, cheap on a file of any size.
const analysisLimit = 1000

// analyzeIndexes gathers the planner's statistics (sqlite_stat1) for the
// indexes built, and for the built-in indexes of records that they compete
// with. SQLite keeps no statistics by itself, and without them it takes
// tenant_id = ? AND collection = ? for a handful of rows, so it would scan
// a collection in records_created_at order rather than sort the few
// records a declared index finds. The statistics commit with the index, and
// the file's readers load them with the schema that the index changed.
func analyzeIndexes(ctx context.Context, c *conn, built []string) error {
	if len(built) == 0 {
		return nil
	}
	if _, err := c.sc.ExecContext(ctx, "PRAGMA analysis_limit = "+strconv.Itoa(analysisLimit)); err != nil {
		return wrap(err, "set analysis limit")
	}
	for _, name := range append([]string{"sqlite_autoindex_records_1", "records_created_at", "records_updated_at"}, built...) {
		if _, err := c.sc.ExecContext(ctx, "ANALYZE "+name); err != nil {
			return wrap(err, "analyze index %s", name)
		}
	}
	return nil
}

// dropUndeclared drops the physical indexes on records whose names start
// with prefix, a tenant's or a collection's, except those in keep. In the
// main file an index is dropped only if its predicate names tid too, so
// that a hash collision could never drop another tenant's index.
func dropUndeclared(ctx context.Context, c *conn, prefix string, tid tenant.ID, iso tenant.Isolation, keep map[string]bool) error {
	rows, err := c.sc.QueryContext(ctx, sqlPhysicalIndexes, prefix)
	if err != nil {
		return wrap(err, "list physical indexes")
	}
	var drop []string
	for rows.Next() {
		var name, ddl string
		if err := rows.Scan(&name, &ddl); err != nil {
			rows.Close()
			return wrap(err, "list physical indexes")
		}
		if keep[name] || iso != tenant.Silo && !strings.Contains(ddl, filter.Literal(string(tid))) {
			continue
		}
		drop = append(drop, name)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return wrap(err, "list physical indexes")
	}
	for _, name := range drop {
		if err := dropIndex(ctx, c, name); err != nil {
			return err
		}
	}
	return nil
}

// PendingIndexBuilds lists the collections with an index in state
// building: the pooled tenants' from the main file, then each silo
// tenant's from its file (which it opens, as serving the tenant would).
func (s *Store) PendingIndexBuilds(ctx context.Context) ([]store.IndexBuild, error) {
	var out []store.IndexBuild
	var silos []tenant.ID
	pending := func(c *conn) error {
		rows, err := c.query(ctx, sqlPendingBuilds)
		if err != nil {
			return wrap(err, "list pending index builds")
		}
		defer rows.Close()
		for rows.Next() {
			var b store.IndexBuild
			if err := rows.Scan(&b.Tenant, &b.Collection); err != nil {
				return wrap(err, "list pending index builds")
			}
			out = append(out, b)
		}
		return wrap(rows.Err(), "list pending index builds")
	}
	err := s.main.read(ctx, func(c *conn) error {
		if err := pending(c); err != nil {
			return err
		}
		rows, err := c.query(ctx, sqlSiloTenants)
		if err != nil {
			return wrap(err, "list silo tenants")
		}
		defer rows.Close()
		for rows.Next() {
			var id tenant.ID
			if err := rows.Scan(&id); err != nil {
				return wrap(err, "list silo tenants")
			}
			silos = append(silos, id)
		}
		return wrap(rows.Err(), "list silo tenants")
	})
	if err != nil {
		return nil, err
	}
	for _, id := range silos {
		d, err := s.silo(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			continue // deleted meanwhile
		}
		if err != nil {
			return nil, err
		}
		if err := d.read(ctx, pending); err != nil && !errors.Is(err, store.ErrNotFound) {
			return nil, err
		}
	}
	sort.Slice(out, func(i, j int) bool {
		if out[i].Tenant != out[j].Tenant {
			return out[i].Tenant < out[j].Tenant
		}
		return out[i].Collection < out[j].Collection
	})
	return out, nil
}
