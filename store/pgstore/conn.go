package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

const (
	// sqlTenantCheck and sqlTenantCheckLock confirm, inside the
	// transaction, that the tenant exists and which isolation it has. The
	// locking form holds the tenant's row against DeleteTenant until the
	// transaction ends, so that no write lands after its purge. They run as
	// the application role, before the switch to a silo role, which cannot
	// read the control plane.
	sqlTenantCheck     = `SELECT isolation FROM bulkhead.tenants WHERE id = $1`
	sqlTenantCheckLock = `SELECT isolation FROM bulkhead.tenants WHERE id = $1 FOR KEY SHARE`
	// sqlTenantConfig confines the transaction: the tenant for row-level
	// security, the schema its tables are found in, the silo role (or
	// 'none', the application role itself) and the statement timeout (NULL
	// keeps the server's). Every setting is local to the transaction.
	sqlTenantConfig = `SELECT set_config('bulkhead.tenant_id', $1, true), set_config('search_path', $2, true),
		set_config('role', $3, true), set_config('statement_timeout', coalesce($4, current_setting('statement_timeout')), true)`
	// sqlPlatformConfig sets up a control-plane transaction. It names no
	// tenant, and clears any tenant a session-level SET may have left on
	// the connection.
	sqlPlatformConfig = `SELECT set_config('bulkhead.tenant_id', '', true),
		set_config('statement_timeout', coalesce($1, current_setting('statement_timeout')), true)`
)

// endTimeout bounds COMMIT and ROLLBACK, which run even after the caller's
// context ends: once fn has returned, the outcome is reported truthfully.
const endTimeout = 30 * time.Second

// scope is what confines a tenant transaction: the tenant, the isolation
// its statements are routed for, and whether the tenant check locks.
type scope struct {
	s    *Store
	tid  tenantID
	iso  tenant.Isolation
	lock bool
}

// queue adds the tenant check and the settings for sc.iso to b.
func (sc *scope) queue(b *pgx.Batch, timeout any) {
	if sc.lock {
		b.Queue(sqlTenantCheckLock, sc.tid.arg)
	} else {
		b.Queue(sqlTenantCheck, sc.tid.arg)
	}
	schema, role := sc.s.pooled, "none"
	if sc.iso == tenant.Silo {
		schema, role = sc.tid.siloSchema(), sc.tid.siloRole()
	}
	b.Queue(sqlTenantConfig, string(sc.tid.id), searchPath(schema), role, timeout)
}

// txn is one transaction on one connection. It begins lazily: BEGIN, the
// tenant check and the settings that confine the transaction travel in one
// batch with the transaction's first statement, so that they cost no round
// trip of their own (round trips, not RLS, dominate the cost of a short
// transaction). A transaction whose function runs no statement never
// begins at all.
//
// A txn is not safe for concurrent use; the Tx wrapping it serializes
// callers.
type txn struct {
	conn    *pgx.Conn
	log     *slog.Logger
	opts    pgx.TxOptions
	scope   *scope // nil in a control-plane transaction
	timeout any    // statement_timeout for set_config, or nil
	tx      pgx.Tx // nil until begun
	// usage is what the tenant transaction's writes changed in its
	// usage; nil in a control-plane or read-only transaction.
	usage *pendingUsage
	// deferred are writes not sent yet; see defer_. They go with the next
	// statement or with COMMIT.
	deferred []deferred
	// err, once set, is returned by every later statement and by finish:
	// the transaction failed to begin (its tenant is gone, say) and will
	// not commit.
	err error
}

// started returns a txn for a transaction that the caller has already
// begun on tx, with its settings applied.
func started(tx pgx.Tx, timeout any, log *slog.Logger) *txn {
	return &txn{conn: tx.Conn(), log: log, tx: tx, timeout: timeout}
}

// begin sends BEGIN, the prelude and first as one batch and returns the
// batch positioned at first's first statement's result; the caller reads
// the results and closes the batch. If the tenant turns out to have another
// isolation than the route assumed (it was deleted and created again, by
// another process), begin rolls back and retries once with the right
// settings: nothing of fn's has run yet, since first holds fn's first
// statements.
func (q *txn) begin(ctx context.Context, first ...queued) (pgx.BatchResults, error) {
	for attempt := 0; ; attempt++ {
		b := &pgx.Batch{}
		b.BeginTx(q.opts)
		if q.scope != nil {
			q.scope.queue(b, q.timeout)
		} else {
			b.Queue(sqlPlatformConfig, q.timeout)
		}
		for _, f := range first {
			b.Queue(f.sql, f.args...)
		}
		br := q.conn.SendBatch(ctx, b)
		tx := br.Tx()
		// A transaction that failed to begin never begins: its later
		// statements and finish return the same error, so that fn cannot
		// go on to commit its other writes in a transaction of their own.
		fail := func(err error) (pgx.BatchResults, error) {
			br.Close()
			q.rollback(ctx, tx)
			q.err = err
			return nil, err
		}
		if _, err := br.Exec(); err != nil {
			return fail(wrap(err, "pgstore: begin transaction"))
		}
		if sc := q.scope; sc != nil {
			var iso tenant.Isolation
			if err := br.QueryRow().Scan(&iso); err != nil {
				err = wrap(err, "tenant %s", sc.tid.id)
				if errors.Is(err, store.ErrNotFound) {
					sc.s.forget(sc.tid.id)
				}
				return fail(err)
			}
			if iso != sc.iso {
				q.log.Info("pgstore: tenant isolation changed since it was cached; retrying",
					"tenant", sc.tid.id, "was", sc.iso, "now", iso)
				sc.s.remember(sc.tid.id, iso)
				sc.iso = iso
				if attempt == 0 {
					br.Close()
					q.rollback(ctx, tx)
					continue
				}
				return fail(fmt.Errorf("pgstore: tenant %s changed isolation while a transaction began", sc.tid.id))
			}
		}
		if _, err := br.Exec(); err != nil {
			return fail(wrap(err, "pgstore: configure transaction"))
		}
		q.tx = tx
		return br, nil
	}
}

// queued is a statement and its arguments.
type queued struct {
	sql  string
	args []any
}

// deferred is a write whose caller does not wait for its result: see
// txn.deferred.
type deferred struct {
	queued
	// check reads the statement's result from the batch it was sent in.
	check func(br pgx.BatchResults) error
}

// exec runs a statement that returns no rows.
func (q *txn) exec(ctx context.Context, sql string, args ...any) (pgconn.CommandTag, error) {
	if q.err != nil {
		return pgconn.CommandTag{}, q.err
	}
	if q.tx != nil && len(q.deferred) > 0 && len(args) == 0 {
		// pgx runs a statement without arguments in the simple protocol,
		// which takes several statements in one text (DDL); a batch
		// would not.
		if err := q.flush(ctx); err != nil {
			return pgconn.CommandTag{}, err
		}
	}
	if q.tx != nil && len(q.deferred) == 0 {
		return q.tx.Exec(ctx, sql, args...)
	}
	br, err := q.batch(ctx, queued{sql: sql, args: args})
	if err != nil {
		return pgconn.CommandTag{}, err
	}
	tag, err := br.Exec()
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	return tag, err
}

// batch sends stmts as one batch, the transaction's first if it has not
// begun, after any deferred writes, and returns the batch positioned at the
// first of stmts' results. The caller reads every result in order and
// closes the batch.
func (q *txn) batch(ctx context.Context, stmts ...queued) (pgx.BatchResults, error) {
	if q.err != nil {
		return nil, q.err
	}
	if q.tx == nil {
		return q.begin(ctx, stmts...)
	}
	b := &pgx.Batch{}
	ds := q.deferred
	q.deferred = nil
	for _, d := range ds {
		b.Queue(d.sql, d.args...)
	}
	for _, st := range stmts {
		b.Queue(st.sql, st.args...)
	}
	br := q.tx.SendBatch(ctx, b)
	if err := q.checkDeferred(br, ds); err != nil {
		br.Close()
		return nil, err
	}
	return br, nil
}

// defer_ queues a write to be sent in the batch of the transaction's next
// statement, or with its COMMIT, instead of on a round trip of its own. Only
// writes that cannot fail in a way their caller must learn of at once may
// be deferred, and they must raise an error (aborting the transaction)
// rather than fail quietly: COMMIT may follow them in the same batch. A
// deferred write that fails fails the transaction: its error is returned by
// the statement it travelled with and by finish.
func (q *txn) defer_(d deferred) { q.deferred = append(q.deferred, d) }

// flush sends the deferred writes in a batch of their own.
func (q *txn) flush(ctx context.Context) error {
	b := &pgx.Batch{}
	ds := q.deferred
	q.deferred = nil
	for _, d := range ds {
		b.Queue(d.sql, d.args...)
	}
	br := q.tx.SendBatch(ctx, b)
	err := q.checkDeferred(br, ds)
	if cerr := br.Close(); err == nil && cerr != nil {
		err = wrap(cerr, "pgstore: deferred write")
		q.err = err
	}
	return err
}

// checkDeferred reads the results of the deferred writes ds, the first
// statements of br. A failure fails the transaction.
func (q *txn) checkDeferred(br pgx.BatchResults, ds []deferred) error {
	for _, d := range ds {
		if err := d.check(br); err != nil {
			q.err = err
			return err
		}
	}
	return nil
}

// query runs a statement that returns rows. The caller closes them.
func (q *txn) query(ctx context.Context, sql string, args ...any) (pgx.Rows, error) {
	if q.err != nil {
		return nil, q.err
	}
	if q.tx != nil && len(q.deferred) == 0 {
		return q.tx.Query(ctx, sql, args...)
	}
	br, err := q.batch(ctx, queued{sql: sql, args: args})
	if err != nil {
		return nil, err
	}
	rows, err := br.Query()
	if err != nil {
		br.Close()
		return nil, err
	}
	return &batchRows{Rows: rows, br: br}, nil
}

// queryRow runs a statement expected to return at most one row; Scan
// returns pgx.ErrNoRows if it returns none.
func (q *txn) queryRow(ctx context.Context, sql string, args ...any) pgx.Row {
	rows, err := q.query(ctx, sql, args...)
	return &row{rows: rows, err: err}
}

// The savepoint of txn.guarded. Statements run one at a time on a txn, so
// one name serves.
const (
	sqlSavepoint  = "SAVEPOINT bulkhead_guard"
	sqlRelease    = "RELEASE SAVEPOINT bulkhead_guard"
	sqlRollbackTo = "ROLLBACK TO SAVEPOINT bulkhead_guard"
)

// guarded runs a statement that returns one row, read by scan, inside a
// savepoint, so that if the statement fails (a unique index refuses a
// record) only the statement is undone and the transaction goes on, as
// store.Tx promises for the errors it documents. SAVEPOINT, the statement
// and RELEASE travel in one batch: one round trip, and one more to roll
// back to the savepoint if the statement failed. It returns the
// statement's error.
func (q *txn) guarded(ctx context.Context, scan func(pgx.Row) error, sql string, args ...any) error {
	if q.err != nil {
		return q.err
	}
	b := &pgx.Batch{}
	if q.tx == nil {
		// Begin with the savepoint as the transaction's first statement.
		if _, err := q.exec(ctx, sqlSavepoint); err != nil {
			return err
		}
	} else {
		b.Queue(sqlSavepoint)
	}
	b.Queue(sql, args...)
	b.Queue(sqlRelease)
	br := q.tx.SendBatch(ctx, b)
	if b.Len() == 3 {
		if _, err := br.Exec(); err != nil {
			br.Close()
			return err
		}
	}
	err := scan(br.QueryRow())
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) {
		// The statement ran (ErrNoRows only says it returned no row).
		_, rerr := br.Exec()
		if cerr := br.Close(); rerr == nil {
			rerr = cerr
		}
		if rerr != nil {
			return rerr
		}
		return err
	}
	br.Close()
	// The simple protocol: in a failed transaction, the server refuses to
	// prepare statements, which pgx would do first.
	_, rerr := q.tx.Conn().PgConn().Exec(context.WithoutCancel(ctx), sqlRollbackTo+"; "+sqlRelease).ReadAll()
	if rerr != nil {
		return fmt.Errorf("pgstore: roll back to savepoint: %w (after %w)", rerr, err)
	}
	return err
}

// finish ends the transaction after its function returned fnErr: it
// commits if fnErr is nil and rolls back otherwise. A tenant transaction
// that never began still checks that its tenant exists, so that InTenant
// reports a missing tenant whatever fn did.
func (q *txn) finish(ctx context.Context, fnErr error) error {
	switch {
	case q.err != nil:
		if q.tx != nil {
			q.rollback(ctx, q.tx)
		}
		return q.err
	case fnErr != nil:
		if q.tx != nil {
			q.rollback(ctx, q.tx)
		}
		return fnErr
	case q.tx == nil:
		if q.scope == nil {
			return nil
		}
		return q.scope.s.checkTenant(ctx, q.conn, q.scope.tid)
	}
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
	defer cancel()
	if u := q.usage; len(q.deferred) > 0 || u != nil && u.changed() {
		return q.commitBatch(ctx)
	}
	if err := q.tx.Commit(ctx); err != nil {
		if errors.Is(err, pgx.ErrTxCommitRollback) {
			return errCommitRollback
		}
		return wrap(err, "pgstore: commit")
	}
	return nil
}

// errCommitRollback is returned by a commit that rolled back instead.
var errCommitRollback = errors.New("pgstore: commit: a statement of the transaction failed, so it was rolled back")

// commitBatch commits with one batch: the deferred writes, then what the
// tenant transaction changed in the usage row, added to it (pendingUsage),
// then COMMIT. So the row is locked for the commit's round trip only. A
// transaction that changed the usage and does not hold the tenant's audit
// head yet takes it first, in the same batch, so that a writer that checked
// the usage against its quota while holding the head (see tx.Usage) sees no
// other change to it before its commit.
func (q *txn) commitBatch(ctx context.Context) error {
	if q.conn.PgConn().TxStatus() == 'E' {
		// A statement failed and aborted the transaction: COMMIT would
		// roll back.
		q.rollback(ctx, q.tx)
		return errCommitRollback
	}
	b := &pgx.Batch{}
	ds := q.deferred
	q.deferred = nil
	for _, d := range ds {
		b.Queue(d.sql, d.args...)
	}
	if u := q.usage; u != nil && u.changed() {
		if !u.head.locked {
			b.Queue(tenantAuditSQL.lockHead, u.tid)
		}
		b.Queue(sqlAddUsage, u.tid, u.records, u.bytes)
	}
	b.Queue("COMMIT")
	br := q.tx.SendBatch(ctx, b)
	err := q.checkDeferred(br, ds)
	for range b.Len() - len(ds) {
		if err != nil {
			break
		}
		_, err = br.Exec()
	}
	if cerr := br.Close(); err == nil {
		err = cerr
	}
	if q.conn.PgConn().TxStatus() != 'I' {
		// A statement before COMMIT failed, so COMMIT did not run: the
		// transaction is open and aborted.
		q.rollback(ctx, q.tx)
	}
	return wrap(err, "pgstore: commit")
}

// rollback ends tx, even if ctx has ended. A failure is only logged: a
// connection that cannot roll back is broken, and the pool discards
// connections released inside a transaction, which ends it.
func (q *txn) rollback(ctx context.Context, tx pgx.Tx) {
	ctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), endTimeout)
	defer cancel()
	if err := tx.Rollback(ctx); err != nil && !errors.Is(err, pgx.ErrTxClosed) {
		q.log.Warn("pgstore: roll back", "err", err)
	}
}

// batchRows are the rows of a statement sent in a batch: closing them also
// closes the batch, which makes the connection usable again.
type batchRows struct {
	pgx.Rows
	br     pgx.BatchResults
	closed bool
	err    error
}

func (r *batchRows) Next() bool {
	if r.Rows.Next() {
		return true
	}
	r.Close()
	return false
}

func (r *batchRows) Close() {
	if r.closed {
		return
	}
	r.closed = true
	r.Rows.Close()
	r.err = r.br.Close()
}

func (r *batchRows) Err() error {
	if err := r.Rows.Err(); err != nil {
		return err
	}
	return r.err
}

// row is pgx.Row over rows that may have failed to start.
type row struct {
	rows pgx.Rows
	err  error
}

func (r *row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	defer r.rows.Close()
	if !r.rows.Next() {
		if err := r.rows.Err(); err != nil {
			return err
		}
		return pgx.ErrNoRows
	}
	if err := r.rows.Scan(dest...); err != nil {
		return err
	}
	r.rows.Close()
	return r.rows.Err()
}
