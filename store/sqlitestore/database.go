package sqlitestore

import (
	"context"
	"database/sql"
	"errors"
	"net/url"
	"strconv"

	_ "modernc.org/sqlite" // registers driver "sqlite"
)

// database is one SQLite file: the main file or a silo tenant's file. It has
// one writer (a single connection behind a group-commit queue) and a pool of
// read-only connections for snapshot reads, which in WAL mode never wait for
// the writer.
type database struct {
	path    string
	wdb     *sql.DB
	w       *writer
	readers *pool
}

// pageSize is SQLite's default page size, which the store's files use.
const pageSize = 4096

// dsn is the data source name of path with the pragmas every connection
// gets. create allows SQLite to create the file; a silo file is created only
// while its tenant is provisioned, so that a late open of a deleted tenant's
// file fails instead of leaving an empty file behind.
func dsn(path string, o *Options, create, reader bool) string {
	mode := "rw"
	if create {
		mode = "rwc"
	}
	q := "mode=" + mode +
		"&_pragma=busy_timeout(" + strconv.FormatInt(o.BusyTimeout.Milliseconds(), 10) + ")" +
		"&_pragma=journal_mode(WAL)" +
		"&_pragma=synchronous(FULL)" +
		"&_pragma=foreign_keys(1)" +
		// Deleted content is overwritten, not left in free pages.
		"&_pragma=secure_delete(1)"
	if reader {
		q += "&_pragma=query_only(1)"
	} else if o.MaxFileSize > 0 {
		q += "&_pragma=max_page_count(" + strconv.FormatInt(o.MaxFileSize/pageSize, 10) + ")"
	}
	// A URI filename: escape the path so that '?', '#' and '%' in it are not
	// taken for URI syntax.
	return "file:" + (&url.URL{Path: path}).EscapedPath() + "?" + q
}

// openDatabase opens (and with create, creates) the file at path, brings
// its schema up to date and starts its writer. main says whether it is the
// main file, which also holds the platform tables.
func openDatabase(ctx context.Context, path string, o *Options, main, create bool) (*database, error) {
	wdb, err := sql.Open("sqlite", dsn(path, o, create, false))
	if err != nil {
		return nil, wrap(err, "open %s", path)
	}
	wdb.SetMaxOpenConns(1)
	wdb.SetMaxIdleConns(1)
	wdb.SetConnMaxLifetime(0)
	wdb.SetConnMaxIdleTime(0)
	sc, err := wdb.Conn(ctx)
	if err != nil {
		wdb.Close()
		return nil, wrap(err, "open %s", path)
	}
	wc := newConn(sc, !o.noStmtCache)
	if err := migrate(ctx, wc, main); err != nil {
		wc.close()
		wdb.Close()
		return nil, wrap(err, "migrate %s", path)
	}
	rdb, err := sql.Open("sqlite", dsn(path, o, false, true))
	if err != nil {
		wc.close()
		wdb.Close()
		return nil, wrap(err, "open %s", path)
	}
	rdb.SetMaxOpenConns(o.ReadConns)
	rdb.SetMaxIdleConns(o.ReadConns)
	rdb.SetConnMaxLifetime(0)
	rdb.SetConnMaxIdleTime(0)
	return &database{
		path:    path,
		wdb:     wdb,
		w:       newWriter(wc, o.MaxBatch, o.Logger, o.testEnqueued),
		readers: newPool(rdb, o.ReadConns, !o.noStmtCache),
	}, nil
}

// write runs fn in the next group-committed batch; see writer.do.
func (d *database) write(ctx context.Context, fn func(c *conn) error) error {
	return d.w.do(ctx, fn)
}

// purge is write for deletions that must leave the disk (see writer.doPurge).
func (d *database) purge(ctx context.Context, fn func(c *conn) error) error {
	return d.w.doPurge(ctx, fn)
}

// read runs fn in a read transaction on a reader connection: every query fn
// makes sees the same committed snapshot. A panic in fn propagates to the
// caller after the connection is discarded.
func (d *database) read(ctx context.Context, fn func(c *conn) error) error {
	c, err := d.readers.get(ctx)
	if err != nil {
		return err
	}
	broken := true
	defer func() { d.readers.put(c, broken) }()
	// A deferred BEGIN takes no lock and cannot wait, so it need not
	// watch ctx: that would cost a goroutine per read for nothing. The
	// statements of fn watch it.
	if _, err := c.exec(context.WithoutCancel(ctx), "BEGIN"); err != nil {
		return wrap(err, "sqlitestore: begin read")
	}
	err = fn(c)
	// A read transaction has nothing to commit; end it either way.
	if _, rerr := c.exec(context.Background(), "ROLLBACK"); rerr == nil {
		broken = false
	}
	return err
}

// close lets queued writes and running reads finish, then closes every
// connection. Reads and writes attempted afterwards get err.
func (d *database) close(err error) error {
	d.w.close(err)
	return errors.Join(d.w.c.close(), d.wdb.Close(), d.readers.close(err))
}
