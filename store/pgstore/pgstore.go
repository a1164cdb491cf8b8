package pgstore

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"strconv"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgtype"
	"github.com/jackc/pgx/v5/pgxpool"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

var _ store.Store = (*Store)(nil)

// MaxConns returns the size of the application role's connection pool: how
// many transactions run at once before one waits for a connection.
func (s *Store) MaxConns() int { return int(s.pool.Config().MaxConns) }

// Options configures a Store. The zero value (or a nil *Options) means all
// defaults.
type Options struct {
	// MaxConns is the size of the application role's connection pool.
	// Defaults to the URL's pool_max_conns, else pgxpool's default of
	// max(4, runtime.NumCPU()).
	MaxConns int32
	// ProvisionURL is a connection URL of the owner role (the role that ran
	// Migrate). Creating and deleting silo tenants needs it, and so does
	// building declared indexes: schemas, roles and indexes are DDL that
	// the application role is deliberately unable to run. Without it,
	// pooled tenants work, CreateTenant or DeleteTenant of a silo tenant
	// and BuildIndexes return an error, and silo tenants that exist are
	// served either way. Defaults to none.
	ProvisionURL string
	// ProvisionMaxConns is the size of the owner role's pool. Defaults to
	// 2.
	ProvisionMaxConns int32
	// StatementTimeout limits each statement of a transaction, set with
	// set_config('statement_timeout', …, true) in the transaction itself.
	// Defaults to 30s; a negative value keeps the server's setting.
	StatementTimeout time.Duration
	// Logger receives failures that have no caller to return to. Defaults
	// to discarding.
	Logger *slog.Logger
}

func (o *Options) withDefaults() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	switch {
	case r.MaxConns < 0:
		return r, fmt.Errorf("pgstore: MaxConns must be >= 0, got %d", r.MaxConns)
	case r.ProvisionMaxConns < 0:
		return r, fmt.Errorf("pgstore: ProvisionMaxConns must be >= 0, got %d", r.ProvisionMaxConns)
	}
	if r.ProvisionMaxConns == 0 {
		r.ProvisionMaxConns = 2
	}
	if r.StatementTimeout == 0 {
		r.StatementTimeout = 30 * time.Second
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// Store is the PostgreSQL implementation of store.Store. It is safe for
// concurrent use. See the package documentation for its roles, its schema
// and how each transaction is confined.
type Store struct {
	opts    Options
	log     *slog.Logger
	pool    *pgxpool.Pool // the application role
	prov    *pgxpool.Pool // the owner role; nil without Options.ProvisionURL
	role    *roleFacts    // the application role, as Open verified it
	timeout any           // statement_timeout for set_config, or nil
	// pooled is the schema of the pooled tenants' tables: schemaName,
	// except in benchmarks that compare it with a copy without row-level
	// security.
	pooled string

	writers writers // each tenant's write transactions, one at a time

	mu        sync.Mutex
	closed    bool
	isolation map[tenant.ID]tenant.Isolation // route cache; see route
	epoch     uint64                         // bumped by DeleteTenant; see route
}

// Open connects to databaseURL, which must name the application role, and
// verifies that row-level security binds that role: it is no superuser,
// has no BYPASSRLS (nor CREATEROLE, nor INHERIT), is no member of a role
// that has, owns no table, schema or function of the store's schemas (nor
// can act as their owner), holds the privileges Migrate grants, and every
// tenant table, pooled or silo, has row-level security enabled, forced and
// with a policy. The schema must be at this build's version. Open returns
// an error that names each problem it found, and so refuses to open a store
// that would be isolated only by its own queries. nil opts means defaults.
//
// ctx bounds the connection and the checks only.
func Open(ctx context.Context, databaseURL string, opts *Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	pool, err := newPool(ctx, databaseURL, o.MaxConns, schemaName)
	if err != nil {
		return nil, fmt.Errorf("pgstore: %w", err)
	}
	role, err := verifyApp(ctx, pool)
	if err != nil {
		pool.Close()
		return nil, err
	}
	s := &Store{
		opts:      o,
		log:       o.Logger,
		pool:      pool,
		role:      role,
		pooled:    schemaName,
		isolation: make(map[tenant.ID]tenant.Isolation),
	}
	if ok, err := keysLeakproof(ctx, pool); err != nil {
		pool.Close()
		return nil, err
	} else if !ok {
		s.log.Warn("pgstore: the key functions are not LEAKPROOF, so declared indexes serve orders but not filters; " +
			"have a superuser run pgstore.LeakproofSQL once")
	}
	if o.StatementTimeout > 0 {
		s.timeout = strconv.FormatInt(max(o.StatementTimeout.Milliseconds(), 1), 10)
	}
	if o.ProvisionURL != "" {
		s.prov, err = newPool(ctx, o.ProvisionURL, o.ProvisionMaxConns, schemaName)
		if err != nil {
			pool.Close()
			return nil, fmt.Errorf("pgstore: Options.ProvisionURL: %w", err)
		}
		if err := verifyOwner(ctx, s.prov, role); err != nil {
			pool.Close()
			s.prov.Close()
			return nil, err
		}
	}
	return s, nil
}

// newPool returns a pool for url. Its connections return timestamps in UTC
// and have schema, the pooled schema, as their session search_path. That setting
// only serves the preparation of statements, which pgx sends ahead of a
// batch, before the batch's BEGIN and set_config: every transaction sets
// its own search_path locally, and PostgreSQL analyzes a prepared statement
// again whenever it runs under another search_path than it was planned
// with (so a statement prepared for the pooled schema runs against a silo
// tenant's tables in that tenant's transactions).
func newPool(ctx context.Context, url string, maxConns int32, schema string) (*pgxpool.Pool, error) {
	cfg, err := pgxpool.ParseConfig(url)
	if err != nil {
		return nil, err
	}
	if maxConns > 0 {
		cfg.MaxConns = maxConns
	}
	if cfg.ConnConfig.RuntimeParams["application_name"] == "" {
		cfg.ConnConfig.RuntimeParams["application_name"] = "bulkhead"
	}
	cfg.AfterConnect = func(ctx context.Context, c *pgx.Conn) error {
		c.TypeMap().RegisterType(&pgtype.Type{Name: "timestamptz", OID: pgtype.TimestamptzOID,
			Codec: &pgtype.TimestamptzCodec{ScanLocation: time.UTC}})
		_, err := c.Exec(ctx, "SET search_path = "+searchPath(schema))
		return err
	}
	return pgxpool.NewWithConfig(ctx, cfg)
}

// resolve checks a tenant ID and returns it parsed, with its isolation (see
// route): ErrNoTenant for the zero ID, ErrNotFound for one that is no
// canonical UUID or names no tenant.
func (s *Store) resolve(ctx context.Context, id tenant.ID) (tenantID, tenant.Isolation, error) {
	if id == "" {
		return tenantID{}, "", store.ErrNoTenant
	}
	tid, err := parseTenantID(id)
	if err != nil {
		return tenantID{}, "", err
	}
	iso, err := s.route(ctx, tid)
	return tid, iso, err
}

// route returns tid's isolation: cached, or read from its row. The cache
// only decides which settings a transaction's first batch carries; the
// transaction itself checks the row again (see txn.begin), so a stale entry
// (a tenant deleted, or deleted and created again with another isolation,
// by another process) costs a retry, never a wrong answer.
func (s *Store) route(ctx context.Context, tid tenantID) (tenant.Isolation, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return "", ErrClosed
	}
	iso, ok := s.isolation[tid.id]
	epoch := s.epoch
	s.mu.Unlock()
	if ok {
		return iso, nil
	}
	c, err := s.acquire(ctx, s.pool)
	if err != nil {
		return "", err
	}
	err = c.QueryRow(ctx, sqlTenantCheck, tid.arg).Scan(&iso)
	c.Release()
	if err != nil {
		return "", wrap(err, "tenant %s", tid.id)
	}
	s.mu.Lock()
	// Cache only if no tenant was deleted meanwhile: the row read may
	// belong to a tenant deleted since, whose entry must not return.
	if s.epoch == epoch {
		s.isolation[tid.id] = iso
	}
	s.mu.Unlock()
	return iso, nil
}

func (s *Store) remember(tid tenant.ID, iso tenant.Isolation) {
	s.mu.Lock()
	s.isolation[tid] = iso
	s.mu.Unlock()
}

func (s *Store) forget(tid tenant.ID) {
	s.mu.Lock()
	delete(s.isolation, tid)
	s.epoch++
	s.mu.Unlock()
}

// checkTenant reports whether tid still exists, for a transaction whose
// function ran no statement.
func (s *Store) checkTenant(ctx context.Context, c *pgx.Conn, tid tenantID) error {
	var iso tenant.Isolation
	if err := c.QueryRow(ctx, sqlTenantCheck, tid.arg).Scan(&iso); err != nil {
		err = wrap(err, "tenant %s", tid.id)
		if errors.Is(err, store.ErrNotFound) {
			s.forget(tid.id)
		}
		return err
	}
	s.remember(tid.id, iso)
	return nil
}

// acquire returns a connection of pool, or ErrClosed after Close.
func (s *Store) acquire(ctx context.Context, pool *pgxpool.Pool) (*pgxpool.Conn, error) {
	if s.isClosed() {
		return nil, ErrClosed
	}
	c, err := pool.Acquire(ctx)
	switch {
	case err == nil:
		return c, nil
	case s.isClosed(): // the pool closed while Acquire waited
		return nil, ErrClosed
	case ctx.Err() == nil && errors.Is(err, context.DeadlineExceeded):
		// Not the caller's deadline: the pool connects on a context of
		// its own, so this is the URL's connect_timeout, and the server
		// did not answer in time.
		return nil, fmt.Errorf("pgstore: acquire connection: %w: %w", store.ErrUnavailable, err)
	}
	return nil, wrap(err, "pgstore: acquire connection")
}

func (s *Store) isClosed() bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.closed
}

var (
	readWrite = pgx.TxOptions{IsoLevel: pgx.ReadCommitted, AccessMode: pgx.ReadWrite}
	// readOnly transactions see one snapshot, as ReadTenant and
	// ReadPlatform promise.
	readOnly = pgx.TxOptions{IsoLevel: pgx.RepeatableRead, AccessMode: pgx.ReadOnly}
)

// InTenant runs fn in one read-write transaction (READ COMMITTED) confined
// to tid: the transaction sets bulkhead.tenant_id for row-level security
// (and, for a silo tenant, switches to the tenant's role and schema), and
// every statement also names tid. The settings travel with fn's first
// statement, and a transaction in which fn runs no statement never begins.
//
// It returns ErrNoTenant if tid is zero and ErrNotFound if no such tenant
// exists (ids that are not canonical lower-case UUIDs included). fn is not
// called for a tenant this Store has never seen exist; if the tenant was
// deleted (by another process) since this Store last saw it, fn's first
// statement fails with ErrNotFound and InTenant returns ErrNotFound
// whatever fn returns. The tenant's row is locked against DeleteTenant
// until the transaction ends.
//
// In PostgreSQL a statement that fails aborts its transaction. The store
// detects the errors store.Tx documents (a taken id, a missing row, a stale
// version) without failing a statement, so fn may go on after them as with
// sqlitestore; after any other failure (a broken connection, a statement
// timeout) every later statement fails too and InTenant returns an error,
// having committed nothing, even if fn returns nil. Once fn has returned,
// COMMIT runs even if ctx has ended.
func (s *Store) InTenant(ctx context.Context, tid tenant.ID, fn func(tx store.Tx) error) error {
	return s.runTenant(ctx, tid, false, fn)
}

// ReadTenant runs fn in one read-only transaction (REPEATABLE READ READ
// ONLY) confined to tid, like InTenant: fn sees one snapshot, and the Tx's
// write methods return ErrReadOnly without touching the database.
func (s *Store) ReadTenant(ctx context.Context, tid tenant.ID, fn func(tx store.Tx) error) error {
	return s.runTenant(ctx, tid, true, fn)
}

func (s *Store) runTenant(ctx context.Context, id tenant.ID, ro bool, fn func(tx store.Tx) error) error {
	tid, iso, err := s.resolve(ctx, id)
	if err != nil {
		return err
	}
	if !ro {
		release, err := s.writers.acquire(ctx, id)
		if err != nil {
			return err
		}
		defer release()
	}
	c, err := s.acquire(ctx, s.pool)
	if err != nil {
		return err
	}
	// A connection released inside a transaction (fn panicked) is
	// discarded by the pool, which ends the transaction.
	defer c.Release()
	q := &txn{conn: c.Conn(), log: s.log, opts: readWrite, timeout: s.timeout, scope: &scope{s: s, tid: tid, iso: iso, lock: !ro}}
	if ro {
		q.opts = readOnly
	}
	t := newTx(q, tid, ro)
	err = fn(t)
	t.end()
	return q.finish(ctx, err)
}

// InPlatform runs fn in one read-write transaction (READ COMMITTED) on the
// control plane. It reaches no tenant data: it sets no tenant (and clears
// any tenant a session-level setting left on the connection), so row-level
// security shows it no tenant row.
func (s *Store) InPlatform(ctx context.Context, fn func(tx store.PlatformTx) error) error {
	return s.runPlatform(ctx, false, fn)
}

// ReadPlatform runs fn in one read-only transaction (REPEATABLE READ READ
// ONLY) on the control plane: fn sees one snapshot, and write methods
// return ErrReadOnly.
func (s *Store) ReadPlatform(ctx context.Context, fn func(tx store.PlatformTx) error) error {
	return s.runPlatform(ctx, true, fn)
}

func (s *Store) runPlatform(ctx context.Context, ro bool, fn func(tx store.PlatformTx) error) error {
	c, err := s.acquire(ctx, s.pool)
	if err != nil {
		return err
	}
	defer c.Release()
	q := &txn{conn: c.Conn(), log: s.log, opts: readWrite, timeout: s.timeout}
	if ro {
		q.opts = readOnly
	}
	t := newPlatformTx(q, ro)
	err = fn(t)
	t.end()
	return q.finish(ctx, err)
}

// Ping reports whether the database answers on the application role's
// pool. It returns store.ErrUnavailable (wrapped) if it does not.
func (s *Store) Ping(ctx context.Context) error {
	c, err := s.acquire(ctx, s.pool)
	if err != nil {
		return err
	}
	defer c.Release()
	return wrap(c.Ping(ctx), "pgstore: ping")
}

// Close waits for the transactions in progress, then closes every
// connection. Afterwards every method returns ErrClosed. Close is
// idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.pool.Close()
	if s.prov != nil {
		s.prov.Close()
	}
	return nil
}
