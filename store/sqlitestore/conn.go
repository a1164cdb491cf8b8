package sqlitestore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"sync"
)

// conn is one SQLite connection and the statements prepared on it. The
// statements of the hot paths are prepared once per connection and reused,
// keyed by their SQL text (see prepare). The text of filtered listings
// varies without bound, so only the most recent maxDynamic of those are
// kept: a client that repeats a query shape (the same filter with other
// values, which are bound parameters) skips parsing and planning it.
type conn struct {
	sc *sql.Conn
	// cache is false only in benchmarks that measure what the cache saves.
	cache bool

	mu       sync.Mutex
	stmts    map[string]*sql.Stmt
	dynamic  map[string]*sql.Stmt
	dynOrder []string // dynamic's keys, oldest first
}

// maxDynamic bounds the listing statements a connection keeps prepared.
const maxDynamic = 64

func newConn(sc *sql.Conn, cache bool) *conn {
	return &conn{sc: sc, cache: cache, stmts: make(map[string]*sql.Stmt), dynamic: make(map[string]*sql.Stmt)}
}

// prepare returns the cached statement for query, preparing it on first use.
// query must be one of the package's fixed statements.
func (c *conn) prepare(ctx context.Context, query string) (*sql.Stmt, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if s, ok := c.stmts[query]; ok {
		return s, nil
	}
	// Prepare on a context that cannot be cancelled: the statement outlives
	// the call that happened to prepare it first.
	s, err := c.sc.PrepareContext(context.WithoutCancel(ctx), query)
	if err != nil {
		return nil, err
	}
	c.stmts[query] = s
	return s, nil
}

// exec runs a fixed statement.
func (c *conn) exec(ctx context.Context, query string, args ...any) (sql.Result, error) {
	if !c.cache {
		return c.sc.ExecContext(ctx, query, args...)
	}
	s, err := c.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.ExecContext(ctx, args...)
}

// query runs a fixed query.
func (c *conn) query(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if !c.cache {
		return c.sc.QueryContext(ctx, query, args...)
	}
	s, err := c.prepare(ctx, query)
	if err != nil {
		return nil, err
	}
	return s.QueryContext(ctx, args...)
}

// queryRow runs a fixed query expected to return at most one row.
func (c *conn) queryRow(ctx context.Context, query string, args ...any) row {
	if !c.cache {
		return row{r: c.sc.QueryRowContext(ctx, query, args...)}
	}
	s, err := c.prepare(ctx, query)
	if err != nil {
		return row{err: err}
	}
	return row{r: s.QueryRowContext(ctx, args...)}
}

// queryDynamic runs a query whose text varies (a filtered listing), from
// the connection's bounded cache of such statements.
func (c *conn) queryDynamic(ctx context.Context, query string, args ...any) (*sql.Rows, error) {
	if !c.cache {
		return c.sc.QueryContext(ctx, query, args...)
	}
	c.mu.Lock()
	s, ok := c.dynamic[query]
	if !ok {
		var err error
		if s, err = c.sc.PrepareContext(context.WithoutCancel(ctx), query); err != nil {
			c.mu.Unlock()
			return nil, err
		}
		if len(c.dynOrder) == maxDynamic {
			// A connection runs one statement at a time, so the oldest is
			// not in use.
			old := c.dynOrder[0]
			c.dynOrder = c.dynOrder[1:]
			c.dynamic[old].Close()
			delete(c.dynamic, old)
		}
		c.dynamic[query] = s
		c.dynOrder = append(c.dynOrder, query)
	}
	c.mu.Unlock()
	return s.QueryContext(ctx, args...)
}

// close closes the statements and the connection.
func (c *conn) close() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for q, s := range c.stmts {
		errs = append(errs, s.Close())
		delete(c.stmts, q)
	}
	for q, s := range c.dynamic {
		errs = append(errs, s.Close())
		delete(c.dynamic, q)
	}
	c.dynOrder = nil
	errs = append(errs, c.sc.Close())
	return errors.Join(errs...)
}

// discard closes c and its driver connection, which may be in a state no
// later user must inherit, such as inside a transaction whose ROLLBACK
// failed. close alone would hand the driver connection back to the
// sql.DB's idle pool, from which the next Conn would take it as it is.
func (c *conn) discard() {
	c.mu.Lock()
	defer c.mu.Unlock()
	// The statements first, while their connection is open.
	for q, s := range c.stmts {
		s.Close()
		delete(c.stmts, q)
	}
	for q, s := range c.dynamic {
		s.Close()
		delete(c.dynamic, q)
	}
	c.dynOrder = nil
	c.sc.Raw(func(any) error { return driver.ErrBadConn }) // database/sql closes a connection reported bad
	c.sc.Close()
}

// row is *sql.Row that can also carry a prepare error.
type row struct {
	r   *sql.Row
	err error
}

func (r row) Scan(dest ...any) error {
	if r.err != nil {
		return r.err
	}
	return r.r.Scan(dest...)
}

// pool is a database's reader connections. Each connection keeps its own
// prepared statements, which is why the pool hands out long-lived conns
// rather than letting database/sql pick one per statement. Connections are
// opened on demand, up to the pool's size.
type pool struct {
	db     *sql.DB
	cache  bool
	sem    chan struct{} // one token per connection in use
	closed chan struct{}
	err    error // returned by get after close; set before closed is closed

	mu   sync.Mutex
	idle []*conn
}

func newPool(db *sql.DB, size int, cache bool) *pool {
	return &pool{db: db, cache: cache, sem: make(chan struct{}, size), closed: make(chan struct{})}
}

// get returns an idle connection or opens one, waiting while all are busy.
func (p *pool) get(ctx context.Context) (*conn, error) {
	select {
	case <-p.closed:
		return nil, p.err
	default:
	}
	select {
	case p.sem <- struct{}{}:
	case <-p.closed:
		return nil, p.err
	case <-ctx.Done():
		return nil, ctx.Err()
	}
	select {
	case <-p.closed: // select picked the token although close had begun
		<-p.sem
		return nil, p.err
	default:
	}
	p.mu.Lock()
	if n := len(p.idle); n > 0 {
		c := p.idle[n-1]
		p.idle = p.idle[:n-1]
		p.mu.Unlock()
		return c, nil
	}
	p.mu.Unlock()
	sc, err := p.db.Conn(ctx)
	if err != nil {
		<-p.sem
		return nil, wrap(err, "sqlitestore: open read connection")
	}
	return newConn(sc, p.cache), nil
}

// put returns c to the pool, or discards it if it is broken.
func (p *pool) put(c *conn, broken bool) {
	if broken {
		c.discard()
	} else {
		p.mu.Lock()
		p.idle = append(p.idle, c)
		p.mu.Unlock()
	}
	<-p.sem
}

// close waits for every connection in use to be returned, then closes them
// all and the database handle. Later calls to get return err.
func (p *pool) close(err error) error {
	p.err = err
	close(p.closed)
	for range cap(p.sem) {
		p.sem <- struct{}{}
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	var errs []error
	for _, c := range p.idle {
		errs = append(errs, c.close())
	}
	p.idle = nil
	errs = append(errs, p.db.Close())
	return errors.Join(errs...)
}
