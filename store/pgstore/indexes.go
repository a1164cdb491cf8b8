package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkheadhq/bulkhead/filter"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/internal/recsql"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Declared indexes. Each declaration is a row of collection_indexes (with
// row-level security, like every tenant table) and, once BuildIndexes has
// run, a partial index on the tenant's records table named after it
// (recsql.PhysicalName):
//
//	CREATE [UNIQUE] INDEX CONCURRENTLY bx_… ON <schema>.records (<key columns>)
//	WHERE tenant_id = '<tenant>'::uuid AND collection = '<name>' [AND <rank> BETWEEN 1 AND 3 …]
//
// The key columns are filter.IndexColumns': each field's sort key
// expressions, exactly as compiled filters and orders spell them, then id.
// The predicate keeps every other tenant's and collection's records out, so
// the index is one collection's and a unique index is unique within it
// only; in a silo schema, which holds one tenant, it names the collection
// only. Listings inline the same literals (see scopeSQL), so the planner
// can prove the predicate in generic plans too. A unique index's predicate
// also requires each data field's rank to be 1 to 3 (a boolean, number or
// string): records lacking a field, holding null there, or an object or
// array (which the sort key does not tell apart), are not in the index and
// never conflict; and an equality or range on the field implies the
// predicate, so the unique index serves queries as well.
//
// DDL privileges: the application role owns no table, by design, and
// PostgreSQL lets only a table's owner create or drop its indexes. So
// BuildIndexes runs its DDL on the owner role's pool, the connection the
// store already has for provisioning (Options.ProvisionURL), outside any
// transaction, as CONCURRENTLY requires; without that URL it fails. A
// SECURITY DEFINER function would let the application role run the DDL
// itself, but Open refuses such functions in the store's schemas, which is
// worth more. The declarations themselves are read and written by the
// application role, in tenant transactions under row-level security.
//
// A build CONCURRENTLY takes a lock that conflicts with no write (nor with
// reads): other tenants' writes to a pooled table go on while it runs. It
// waits for transactions already running on the table, and two builds on
// one table run one after the other.

const (
	// indexesJSON reads a collection's declarations (every state) as a
	// JSON array, inside the statement that reads the collection.
	indexesJSON = `(SELECT json_agg(json_build_object('physical', ci.physical, 'fields', ci.fields::json,
		'unique', ci.is_unique, 'position', ci.position, 'state', ci.state, 'error', ci.error))
		FROM collection_indexes ci WHERE ci.tenant_id = %s AND ci.collection = %s)`

	collectionColumns = `c.name, c.schema, c.created_at, c.updated_at, c.encrypted_fields, c.retention_seconds, c.retention_field`

	sqlInsertIndex = `INSERT INTO collection_indexes (tenant_id, collection, physical, fields, is_unique, position, state, error, created_at)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`
	sqlUpdateIndex = `UPDATE collection_indexes SET fields = $4, position = $5, state = $6, error = $7
		WHERE tenant_id = $1 AND collection = $2 AND physical = $3`
	sqlRemoveIndex = `UPDATE collection_indexes SET state = 'dropping', error = ''
		WHERE tenant_id = $1 AND collection = $2 AND physical = $3`
	sqlIndexRows = `SELECT physical, fields, is_unique, position, state, error FROM collection_indexes
		WHERE tenant_id = $1 AND collection = $2`
	sqlIndexFields = `SELECT fields FROM collection_indexes WHERE tenant_id = $1 AND collection = $2 AND physical = $3`
	// sqlIndexBuilt marks a declaration built (ready or failed), unless it
	// was removed (or removed and declared again) meanwhile.
	sqlIndexBuilt = `UPDATE collection_indexes SET state = $4, error = $5
		WHERE tenant_id = $1 AND collection = $2 AND physical = $3 AND state IN ('building', 'ready')`
	// sqlIndexDropped forgets a removed declaration once its physical index
	// is gone, unless it was declared again meanwhile.
	sqlIndexDropped = `DELETE FROM collection_indexes
		WHERE tenant_id = $1 AND collection = $2 AND physical = $3 AND state = 'dropping'`
	sqlCollectionExists = `SELECT 1 FROM collections WHERE tenant_id = $1 AND name = $2`
	sqlPendingBuilds    = `SELECT DISTINCT collection FROM collection_indexes
		WHERE tenant_id = $1 AND state IN ('building', 'dropping') ORDER BY 1`

	// sqlDeleteCollection deletes the collection, its records and its
	// declarations, which it marks dropping for BuildIndexes to drop their
	// physical indexes. The foreign key from records is checked at the end
	// of the statement, when the collection's records are gone too. It
	// reports whether the collection existed, how many declarations it
	// marked, and the records and bytes deleted, which the transaction
	// subtracts from the usage at its commit, as every write does.
	sqlDeleteCollection = `WITH del AS (
			DELETE FROM collections WHERE tenant_id = $1::uuid AND name = $2::text RETURNING 1),
		rec AS (
			DELETE FROM records WHERE tenant_id = $1::uuid AND collection = $2::text RETURNING octet_length(data) AS size),
		ix AS (
			UPDATE collection_indexes SET state = 'dropping', error = ''
			WHERE tenant_id = $1::uuid AND collection = $2::text AND state <> 'dropping' RETURNING 1)
		SELECT EXISTS (SELECT 1 FROM del), (SELECT count(*) FROM ix),
			(SELECT count(*) FROM rec), (SELECT coalesce(sum(size), 0) FROM rec)::bigint`

	// sqlPhysicalIndexes lists, as any role may read the catalog, the
	// indexes of table records in schema $1 whose names start with $2, and
	// whether each is valid (a failed CONCURRENTLY build leaves an invalid
	// one behind) with its predicate.
	sqlPhysicalIndexes = `SELECT c.relname, i.indisvalid, coalesce(pg_get_expr(i.indpred, i.indrelid), '')
		FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
		JOIN pg_class t ON t.oid = i.indrelid JOIN pg_namespace n ON n.oid = t.relnamespace
		WHERE n.nspname = $1 AND t.relname = 'records' AND starts_with(c.relname, $2)`
)

var (
	// sqlPutCollection inserts the collection or, if it exists, replaces
	// its schema, and reports which with its created_at, and the stored
	// declarations of its indexes (as they were before the statement; a
	// deleted collection's may still be there, dropping). The UPDATE sees
	// the statement's snapshot, so if a concurrent transaction inserted the
	// same name after it was taken, neither part returns a row and the
	// caller runs the statement again (with a new snapshot).
	sqlPutCollection = `WITH ins AS (
			INSERT INTO collections (tenant_id, name, schema, created_at, updated_at, encrypted_fields, retention_seconds, retention_field)
			VALUES ($1, $2, $3, $4, $5, $6, $7, $8) ON CONFLICT DO NOTHING RETURNING created_at),
		upd AS (
			UPDATE collections SET schema = $3, updated_at = $5, encrypted_fields = $6, retention_seconds = $7, retention_field = $8
			WHERE tenant_id = $1 AND name = $2 AND NOT EXISTS (SELECT 1 FROM ins) RETURNING created_at),
		ix AS (SELECT ` + fmt.Sprintf(indexesJSON, "$1", "$2") + ` AS indexes)
		SELECT created_at, true, (SELECT indexes FROM ix) FROM ins
		UNION ALL SELECT created_at, false, (SELECT indexes FROM ix) FROM upd`
	sqlGetCollection = `SELECT ` + collectionColumns + `, ` + fmt.Sprintf(indexesJSON, "c.tenant_id", "c.name") +
		` FROM collections c WHERE c.tenant_id = $1 AND c.name = $2`
	sqlListCollections = `SELECT ` + collectionColumns + `, ` + fmt.Sprintf(indexesJSON, "c.tenant_id", "c.name") +
		` FROM collections c WHERE c.tenant_id = $1 ORDER BY c.name`
)

// indexJSON is a declaration as indexesJSON spells it.
type indexJSON struct {
	Physical string   `json:"physical"`
	Fields   []string `json:"fields"`
	Unique   bool     `json:"unique"`
	Position int      `json:"position"`
	State    string   `json:"state"`
	Error    string   `json:"error"`
}

// decodeIndexRows reads indexesJSON's array; NULL is no declarations.
func decodeIndexRows(b []byte) ([]recsql.Row, error) {
	if b == nil {
		return nil, nil
	}
	var ixs []indexJSON
	if err := json.Unmarshal(b, &ixs); err != nil {
		return nil, fmt.Errorf("read index declarations: %w", err)
	}
	rows := make([]recsql.Row, 0, len(ixs))
	for _, ix := range ixs {
		rows = append(rows, recsql.Row{Physical: ix.Physical, Fields: ix.Fields, Unique: ix.Unique, Position: ix.Position,
			State: store.IndexState(ix.State), Error: ix.Error})
	}
	return rows, nil
}

func (t *tx) PutCollection(ctx context.Context, c *store.Collection) (bool, error) {
	unlock, err := t.begin(true)
	if err != nil {
		return false, err
	}
	defer unlock()
	decls, err := recsql.Declare(t.tid.id, c.Name, c.Indexes)
	if err != nil {
		return false, fmt.Errorf("put collection %q: %w", c.Name, err)
	}
	var created time.Time
	var inserted bool
	var stored []byte
	for attempt := 0; ; attempt++ {
		err := t.q.queryRow(ctx, sqlPutCollection, t.tid.arg, string(c.Name), jsonArg(c.Schema), c.CreatedAt, c.UpdatedAt,
			recsql.EncodeEncrypted(c.EncryptedFields), int64(c.Retention/time.Second), c.RetentionField).
			Scan(&created, &inserted, &stored)
		if isNotFound(err) && attempt < 2 {
			continue // raced with a concurrent insert; see sqlPutCollection
		}
		if isNotFound(err) {
			return false, fmt.Errorf("put collection %q: it keeps being created and deleted concurrently", c.Name)
		}
		if err != nil {
			return false, wrap(err, "put collection %q", c.Name)
		}
		break
	}
	if !inserted {
		c.CreatedAt = created
	}
	rows, err := decodeIndexRows(stored)
	if err != nil {
		return false, err
	}
	ch := recsql.Merge(rows, decls)
	for _, r := range ch.Remove {
		if _, err := t.q.exec(ctx, sqlRemoveIndex, t.tid.arg, string(c.Name), r.Physical); err != nil {
			return false, wrap(err, "remove index %q", r.Name())
		}
	}
	for _, r := range ch.Update {
		_, err := t.q.exec(ctx, sqlUpdateIndex, t.tid.arg, string(c.Name), r.Physical, recsql.EncodeFields(r.Fields),
			int32(r.Position), string(r.State), r.Error)
		if err != nil {
			return false, wrap(err, "update index %q", r.Name())
		}
	}
	for _, r := range ch.Insert {
		_, err := t.q.exec(ctx, sqlInsertIndex, t.tid.arg, string(c.Name), r.Physical, recsql.EncodeFields(r.Fields), r.Unique,
			int32(r.Position), string(r.State), r.Error, c.UpdatedAt)
		if err != nil {
			return false, wrap(err, "declare index %q", r.Name())
		}
	}
	return inserted, nil
}

func scanCollection(r scanner) (*store.Collection, error) {
	var c store.Collection
	var schema *string
	var indexes []byte
	var encrypted string
	var retention int64
	if err := r.Scan(&c.Name, &schema, &c.CreatedAt, &c.UpdatedAt, &encrypted, &retention, &c.RetentionField, &indexes); err != nil {
		return nil, err
	}
	c.Retention = time.Duration(retention) * time.Second
	var err error
	if c.EncryptedFields, err = recsql.DecodeEncrypted(encrypted); err != nil {
		return nil, err
	}
	if schema != nil {
		c.Schema = json.RawMessage(*schema)
	}
	rows, err := decodeIndexRows(indexes)
	if err != nil {
		return nil, err
	}
	c.Indexes = recsql.Indexes(rows)
	return &c, nil
}

func (t *tx) GetCollection(ctx context.Context, name store.CollectionName) (*store.Collection, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	c, err := scanCollection(t.q.queryRow(ctx, sqlGetCollection, t.tid.arg, string(name)))
	return c, wrap(err, "get collection %q", name)
}

func (t *tx) ListCollections(ctx context.Context) ([]*store.Collection, error) {
	unlock, err := t.begin(false)
	if err != nil {
		return nil, err
	}
	defer unlock()
	rows, err := t.q.query(ctx, sqlListCollections, t.tid.arg)
	if err != nil {
		return nil, wrap(err, "list collections")
	}
	defer rows.Close()
	var cs []*store.Collection
	for rows.Next() {
		c, err := scanCollection(rows)
		if err != nil {
			return nil, wrap(err, "list collections")
		}
		cs = append(cs, c)
	}
	return cs, wrap(rows.Err(), "list collections")
}

func (t *tx) DeleteCollection(ctx context.Context, name store.CollectionName) error {
	unlock, err := t.begin(true)
	if err != nil {
		return err
	}
	defer unlock()
	var deleted bool
	var removed, records, size int64
	if err := t.q.queryRow(ctx, sqlDeleteCollection, t.tid.arg, string(name)).Scan(&deleted, &removed, &records, &size); err != nil {
		return wrap(err, "delete collection %q", name)
	}
	if !deleted {
		return fmt.Errorf("delete collection %q: %w", name, store.ErrNotFound)
	}
	t.usage.add(-records, -size)
	return nil
}

// indexRows returns the stored declarations of collection, in every
// state.
func (t *tx) indexRows(ctx context.Context, collection store.CollectionName) ([]recsql.Row, error) {
	rows, err := t.q.query(ctx, sqlIndexRows, t.tid.arg, string(collection))
	if err != nil {
		return nil, wrap(err, "read indexes of collection %q", collection)
	}
	defer rows.Close()
	var out []recsql.Row
	for rows.Next() {
		var r recsql.Row
		var fields string
		var pos int32
		if err := rows.Scan(&r.Physical, &fields, &r.Unique, &pos, &r.State, &r.Error); err != nil {
			return nil, wrap(err, "read indexes of collection %q", collection)
		}
		r.Position = int(pos)
		if r.Fields, err = recsql.DecodeFields(fields); err != nil {
			return nil, err
		}
		out = append(out, r)
	}
	return out, wrap(rows.Err(), "read indexes of collection %q", collection)
}

// uniqueError returns the *store.UniqueError that err, the error of a
// guarded write to collection's records, stands for: a unique violation of
// one of its physical indexes, named by its declaration. It returns nil for
// any other error.
func (t *tx) uniqueError(ctx context.Context, collection store.CollectionName, err error) error {
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || pgErr.Code != codeUniqueViolation || !recsql.IsPhysicalName(pgErr.ConstraintName) {
		return nil
	}
	var fields string
	if err := t.q.queryRow(ctx, sqlIndexFields, t.tid.arg, string(collection), pgErr.ConstraintName).Scan(&fields); err != nil {
		return nil
	}
	names, err := recsql.DecodeFields(fields)
	if err != nil {
		return nil
	}
	return &store.UniqueError{Collection: collection, Index: strings.Join(names, ",")}
}

// errNoDDL is returned by BuildIndexes without Options.ProvisionURL.
var errNoDDL = errors.New("pgstore: building indexes needs Options.ProvisionURL, a connection of the owner role, which owns the tables")

// indexBuildLockKey is the advisory lock that BuildIndexes holds, so that
// builds run one at a time, across processes. Two CONCURRENTLY builds of
// expression or partial indexes wait for each other's snapshots, even on
// different tables, and PostgreSQL breaks the cycle by failing one with a
// deadlock; taking turns also keeps builds, which read whole tables, from
// piling up on the database.
const indexBuildLockKey int64 = 0x6268696e64657873 // "bhindexs"
// lockIndexBuilds takes the advisory lock of index builds on c, a
// connection of the owner role, and returns the function that releases it.
// It polls with pg_try_advisory_lock rather than wait in pg_advisory_lock:
// a session waiting for the lock would hold a snapshot, which the build
// holding the lock waits for, and PostgreSQL would report a deadlock.
func lockIndexBuilds(ctx context.Context, c *pgxpool.Conn) (unlock func(), err error) {
	pause := 10 * time.Millisecond
	for {
		var ok bool
		if err := c.QueryRow(ctx, "SELECT pg_try_advisory_lock($1)", indexBuildLockKey).Scan(&ok); err != nil {
			return nil, wrap(err, "pgstore: lock index builds")
		}
		if ok {
			break
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(pause):
		}
		pause = min(2*pause, time.Second)
	}
	return func() {
		if _, err := c.Exec(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", indexBuildLockKey); err != nil {
			c.Conn().Close(context.Background()) // closing the session releases the lock
		}
	}, nil
}

// physicalIndex is an index of the catalog.
type physicalIndex struct {
	name  string
	valid bool
	pred  string
}

// BuildIndexes builds the declared indexes of tid's collection in state
// building, CONCURRENTLY, and drops (CONCURRENTLY) the physical indexes of
// the collection that no live declaration names: those of removed
// declarations, whose rows it then forgets, and any left by a crash. A
// unique index that the records violate ends failed, with the reason, and
// its invalid leftover is dropped. Builds take turns, across processes (see
// indexBuildLockKey); a build interrupted by a crash or a cancelled ctx
// leaves the declaration building, and the next call drops the invalid
// leftover and builds again. A ready index whose physical index is missing
// or invalid is built again too.
//
// The DDL runs on the owner role's pool (see the comment at the top of
// this file): it returns an error without Options.ProvisionURL.
func (s *Store) BuildIndexes(ctx context.Context, id tenant.ID, collection store.CollectionName) error {
	tid, iso, err := s.resolve(ctx, id)
	if err != nil {
		return err
	}
	if s.prov == nil {
		return errNoDDL
	}
	c, err := s.acquire(ctx, s.prov)
	if err != nil {
		return err
	}
	defer c.Release()
	unlock, err := lockIndexBuilds(ctx, c)
	if err != nil {
		return err
	}
	defer unlock()

	// The declarations, read (and later updated) as the tenant.
	var rows []recsql.Row
	exists := false
	err = s.ReadTenant(ctx, id, func(stx store.Tx) error {
		t := stx.(*tx)
		var err error
		if rows, err = t.indexRows(ctx, collection); err != nil {
			return err
		}
		err = t.q.queryRow(ctx, sqlCollectionExists, t.tid.arg, string(collection)).Scan(new(int))
		exists = err == nil
		if isNotFound(err) {
			return nil
		}
		return wrap(err, "build indexes of collection %q", collection)
	})
	if err != nil {
		return err
	}
	schema := s.pooled
	if iso == tenant.Silo {
		schema = tid.siloSchema()
	}
	catalog, err := physicalIndexes(ctx, c.Conn(), schema, recsql.CollectionPrefix(tid.id, collection))
	if err != nil {
		return err
	}
	live := map[string]bool{}
	for _, r := range rows {
		if r.State != recsql.StateDropping {
			live[r.Physical] = true
		}
	}
	for _, ix := range catalog {
		if live[ix.name] || iso != tenant.Silo && !strings.Contains(ix.pred, string(tid.id)) {
			continue
		}
		if err := dropIndex(ctx, c.Conn(), schema, ix.name); err != nil {
			return err
		}
	}
	for _, r := range rows {
		if r.State != recsql.StateDropping {
			continue
		}
		// Its physical index is gone (dropped just now, or never built).
		err := s.InTenant(ctx, id, func(stx store.Tx) error {
			t := stx.(*tx)
			_, err := t.q.exec(ctx, sqlIndexDropped, t.tid.arg, string(collection), r.Physical)
			return wrap(err, "forget index %q", r.Name())
		})
		if err != nil {
			return err
		}
	}
	for _, r := range rows {
		i := slices.IndexFunc(catalog, func(ix physicalIndex) bool { return ix.name == r.Physical })
		invalid := i >= 0 && !catalog[i].valid
		// A ready index whose physical index is gone or invalid (dropped
		// by hand, say) is built again too.
		if r.State != store.IndexBuilding && !(r.State == store.IndexReady && (i < 0 || invalid)) {
			continue
		}
		state, reason, err := s.buildIndex(ctx, c.Conn(), tid, iso, schema, collection, &r, invalid)
		if err != nil {
			return err
		}
		err = s.InTenant(ctx, id, func(stx store.Tx) error {
			t := stx.(*tx)
			_, err := t.q.exec(ctx, sqlIndexBuilt, t.tid.arg, string(collection), r.Physical, string(state), reason)
			return wrap(err, "mark index %q %s", r.Name(), state)
		})
		if err != nil {
			return err
		}
	}
	if !exists {
		return fmt.Errorf("build indexes: collection %q: %w", collection, store.ErrNotFound)
	}
	return nil
}

// buildIndex builds r's physical index in schema on c, a connection of the
// owner role outside any transaction. It returns the declaration's new
// state: ready, or failed with the reason when the records violate a
// unique index or cannot be indexed. It returns an error, leaving the
// declaration building, when the database or ctx failed.
func (s *Store) buildIndex(ctx context.Context, c *pgx.Conn, tid tenantID, iso tenant.Isolation, schema string,
	collection store.CollectionName, r *recsql.Row, invalid bool) (store.IndexState, string, error) {
	if invalid { // left by a build that failed or was interrupted
		if err := dropIndex(ctx, c, schema, r.Physical); err != nil {
			return "", "", err
		}
	}
	ddl, err := createIndexSQL(tid.id, collection, iso, schema, r)
	if err != nil {
		return "", "", err
	}
	_, err = c.Exec(ctx, ddl)
	if err == nil {
		return store.IndexReady, "", nil
	}
	// CONCURRENTLY leaves an invalid index behind when it fails, which a
	// unique one would go on enforcing on new writes: drop it.
	if derr := dropIndex(context.WithoutCancel(ctx), c, schema, r.Physical); derr != nil {
		s.log.Warn("pgstore: drop the invalid index of a failed build", "index", r.Physical, "err", derr)
	}
	var pgErr *pgconn.PgError
	switch {
	case !errors.As(err, &pgErr) || errors.Is(interpretError(err), store.ErrUnavailable) || ctx.Err() != nil:
		return "", "", wrap(err, "build index %q of collection %q", r.Name(), collection)
	case pgErr.Code == codeUniqueViolation:
		return store.IndexFailed, recsql.DuplicatesReason, nil
	case pgErr.Code == codeProgramLimitExceeded:
		return store.IndexFailed, "a record holds a value too long to index", nil
	}
	s.log.Error("pgstore: index build failed", "index", r.Physical, "err", err)
	return store.IndexFailed, "the index could not be built (" + pgErr.Code + ")", nil
}

// createIndexSQL is the statement that builds r's physical index in
// schema.
func createIndexSQL(tid tenant.ID, collection store.CollectionName, iso tenant.Isolation, schema string, r *recsql.Row) (string, error) {
	orders, err := r.Orders()
	if err != nil {
		return "", err
	}
	if !recsql.IsPhysicalName(r.Physical) || !recsql.Inlinable(tid, collection) {
		return "", fmt.Errorf("pgstore: index %q of collection %q cannot be built", r.Physical, collection)
	}
	where := scopeSQL(tid, collection)
	if iso == tenant.Silo {
		where = "collection = " + filter.Literal(string(collection))
	}
	d := dialect{}
	conds := []string{where}
	kind := "INDEX"
	if r.Unique {
		conds = append(conds, filter.UniqueConditions(d, orders)...)
		kind = "UNIQUE INDEX"
	}
	return "CREATE " + kind + " CONCURRENTLY IF NOT EXISTS " + ident(r.Physical) + " ON " + ident(schema, "records") +
		" (" + strings.Join(filter.IndexColumns(d, orders, r.Unique), ", ") + ") WHERE " + strings.Join(conds, " AND "), nil
}

// physicalIndexes lists the indexes on schema's records whose names start
// with prefix.
func physicalIndexes(ctx context.Context, c *pgx.Conn, schema, prefix string) ([]physicalIndex, error) {
	rows, _ := c.Query(ctx, sqlPhysicalIndexes, schema, prefix)
	var out []physicalIndex
	err := forEach(rows, func(r pgx.Rows) error {
		var ix physicalIndex
		if err := r.Scan(&ix.name, &ix.valid, &ix.pred); err != nil {
			return err
		}
		out = append(out, ix)
		return nil
	})
	return out, wrap(err, "pgstore: list physical indexes")
}

// dropIndex drops a physical index CONCURRENTLY, if it exists, on c, a
// connection of the owner role outside any transaction.
func dropIndex(ctx context.Context, c *pgx.Conn, schema, name string) error {
	if !recsql.IsPhysicalName(name) {
		return fmt.Errorf("pgstore: %q is not a physical index name", name)
	}
	_, err := c.Exec(ctx, "DROP INDEX CONCURRENTLY IF EXISTS "+ident(schema, name))
	return wrap(err, "pgstore: drop index %s", name)
}

// dropTenantIndexes drops the physical indexes of deleted pooled tenant
// tid, whose records are gone. It is best effort: an index left behind
// holds no entry and serves nothing.
func (s *Store) dropTenantIndexes(ctx context.Context, tid tenantID) {
	if s.prov == nil {
		return
	}
	c, err := s.acquire(ctx, s.prov)
	if err != nil {
		s.log.Warn("pgstore: drop the indexes of a deleted tenant", "tenant", tid.id, "err", err)
		return
	}
	defer c.Release()
	unlock, err := lockIndexBuilds(ctx, c)
	if err != nil {
		s.log.Warn("pgstore: drop the indexes of a deleted tenant", "tenant", tid.id, "err", err)
		return
	}
	defer unlock()
	catalog, err := physicalIndexes(ctx, c.Conn(), s.pooled, recsql.TenantPrefix(tid.id))
	for _, ix := range catalog {
		if err == nil && strings.Contains(ix.pred, string(tid.id)) {
			err = dropIndex(ctx, c.Conn(), s.pooled, ix.name)
		}
	}
	if err != nil {
		s.log.Warn("pgstore: drop the indexes of a deleted tenant", "tenant", tid.id, "err", err)
	}
}

// PendingIndexBuilds lists the collections with a declaration building or
// dropping, across all tenants. Row-level security lets no statement read
// several tenants' declarations, so it asks each tenant in turn as that
// tenant: pooled tenants in batches, one read-only transaction whose
// statements set each tenant before reading its rows, and silo tenants
// each in a ReadTenant of its own.
func (s *Store) PendingIndexBuilds(ctx context.Context) ([]store.IndexBuild, error) {
	type tenantRow struct {
		id  tenant.ID
		iso tenant.Isolation
	}
	var tenants []tenantRow
	err := s.ReadPlatform(ctx, func(ptx store.PlatformTx) error {
		q := ptx.(*platformTx).q
		rows, err := q.query(ctx, `SELECT id::text, isolation FROM bulkhead.tenants ORDER BY id`)
		if err != nil {
			return wrap(err, "list tenants")
		}
		return wrap(forEach(rows, func(r pgx.Rows) error {
			var t tenantRow
			if err := r.Scan(&t.id, &t.iso); err != nil {
				return err
			}
			tenants = append(tenants, t)
			return nil
		}), "list tenants")
	})
	if err != nil {
		return nil, err
	}
	var out []store.IndexBuild
	var pooled []tenantID
	for _, t := range tenants {
		tid, err := parseTenantID(t.id)
		if err != nil {
			continue
		}
		if t.iso == tenant.Pooled {
			pooled = append(pooled, tid)
			continue
		}
		err = s.ReadTenant(ctx, t.id, func(stx store.Tx) error {
			cols, err := pendingCollections(ctx, stx.(*tx).q, tid)
			for _, col := range cols {
				out = append(out, store.IndexBuild{Tenant: t.id, Collection: col})
			}
			return err
		})
		var pgErr *pgconn.PgError
		switch {
		case errors.Is(err, store.ErrNotFound):
		case errors.As(err, &pgErr) && (pgErr.Code == codeUndefinedTable || pgErr.Code == codeInvalidSchemaName):
			// Deleted meanwhile: its schema went after the transaction
			// saw its row.
		case err != nil:
			return nil, err
		}
	}
	const batch = 200
	for len(pooled) > 0 {
		chunk := pooled[:min(batch, len(pooled))]
		pooled = pooled[len(chunk):]
		builds, err := s.pendingPooled(ctx, chunk)
		if err != nil {
			return nil, err
		}
		out = append(out, builds...)
	}
	slices.SortFunc(out, func(a, b store.IndexBuild) int {
		return strings.Compare(string(a.Tenant)+"\x00"+string(a.Collection), string(b.Tenant)+"\x00"+string(b.Collection))
	})
	return out, nil
}

func pendingCollections(ctx context.Context, q *txn, tid tenantID) ([]store.CollectionName, error) {
	rows, err := q.query(ctx, sqlPendingBuilds, tid.arg)
	if err != nil {
		return nil, wrap(err, "list pending index builds")
	}
	var cols []store.CollectionName
	err = forEach(rows, func(r pgx.Rows) error {
		var c store.CollectionName
		if err := r.Scan(&c); err != nil {
			return err
		}
		cols = append(cols, c)
		return nil
	})
	return cols, wrap(err, "list pending index builds")
}

// pendingPooled reads the pending builds of pooled tenants tids in one
// read-only transaction and one round trip: each tenant's statement runs
// with the tenant set for row-level security, as in its own transactions.
func (s *Store) pendingPooled(ctx context.Context, tids []tenantID) ([]store.IndexBuild, error) {
	c, err := s.acquire(ctx, s.pool)
	if err != nil {
		return nil, err
	}
	defer c.Release()
	ptx, err := c.BeginTx(ctx, readOnly)
	if err != nil {
		return nil, wrap(err, "pgstore: begin transaction")
	}
	defer ptx.Rollback(context.WithoutCancel(ctx))
	b := &pgx.Batch{}
	for _, tid := range tids {
		b.Queue(sqlTenantConfig, string(tid.id), searchPath(s.pooled), "none", s.timeout)
		b.Queue(sqlPendingBuilds, tid.arg)
	}
	br := ptx.SendBatch(ctx, b)
	defer br.Close()
	var out []store.IndexBuild
	for _, tid := range tids {
		if _, err := br.Exec(); err != nil {
			return nil, wrap(err, "pgstore: configure transaction")
		}
		rows, err := br.Query()
		if err != nil {
			return nil, wrap(err, "list pending index builds")
		}
		err = forEach(rows, func(r pgx.Rows) error {
			var col store.CollectionName
			if err := r.Scan(&col); err != nil {
				return err
			}
			out = append(out, store.IndexBuild{Tenant: tid.id, Collection: col})
			return nil
		})
		if err != nil {
			return nil, wrap(err, "list pending index builds")
		}
	}
	return out, nil
}
