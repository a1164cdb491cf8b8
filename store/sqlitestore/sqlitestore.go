package sqlitestore

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/internal/recsql"
	"github.com/bulkheadhq/bulkhead/tenant"
)

var _ store.Store = (*Store)(nil)

// MaxConns returns Options.ReadConns: how many read transactions run at once
// on one database file before one waits for a connection. Write
// transactions queue for the single writer, which commits them together.
func (s *Store) MaxConns() int { return s.opts.ReadConns }

// Options configures a Store. The zero value (or a nil *Options) means all
// defaults.
type Options struct {
	// ReadConns is the number of read-only connections per database file
	// (the main file and each silo file), opened as needed. Defaults to
	// max(4, GOMAXPROCS).
	ReadConns int
	// BusyTimeout is how long a connection waits for a lock held by
	// another connection before failing with SQLITE_BUSY. Defaults to 5s.
	BusyTimeout time.Duration
	// MaxBatch caps how many write transactions one group commit holds.
	// Defaults to 128.
	MaxBatch int
	// MaxFileSize bounds each database file (the main file and each silo
	// file), in bytes, rounded down to whole 4 KiB pages: a write that would
	// grow a file past it fails with store.ErrStorageFull and writes
	// nothing, as when the disk is full. Zero, the default, means no bound
	// but the disk's.
	MaxFileSize int64
	// Logger receives failures that have no caller to return to, such as a
	// failed batch or a removed orphan file. Defaults to discarding.
	Logger *slog.Logger

	// noStmtCache turns off prepared-statement caching; for benchmarks.
	noStmtCache bool
	// testEnqueued is called after each write request joins a writer's
	// queue; for tests.
	testEnqueued func()
}

func (o *Options) withDefaults() (Options, error) {
	var r Options
	if o != nil {
		r = *o
	}
	switch {
	case r.ReadConns < 0:
		return r, fmt.Errorf("sqlitestore: ReadConns must be >= 0, got %d", r.ReadConns)
	case r.BusyTimeout < 0:
		return r, fmt.Errorf("sqlitestore: BusyTimeout must be >= 0, got %v", r.BusyTimeout)
	case r.MaxBatch < 0:
		return r, fmt.Errorf("sqlitestore: MaxBatch must be >= 0, got %d", r.MaxBatch)
	case r.MaxFileSize < 0 || r.MaxFileSize > 0 && r.MaxFileSize < 64*pageSize:
		return r, fmt.Errorf("sqlitestore: MaxFileSize must be 0 or at least %d, got %d", 64*pageSize, r.MaxFileSize)
	}
	if r.ReadConns == 0 {
		r.ReadConns = max(4, runtime.GOMAXPROCS(0))
	}
	if r.BusyTimeout == 0 {
		r.BusyTimeout = 5 * time.Second
	}
	if r.MaxBatch == 0 {
		r.MaxBatch = 128
	}
	if r.Logger == nil {
		r.Logger = slog.New(slog.DiscardHandler)
	}
	return r, nil
}

// Store is the SQLite implementation of store.Store. It is safe for
// concurrent use. See the package documentation for its files and its
// write path.
type Store struct {
	opts    Options
	log     *slog.Logger
	main    *database
	siloDir string

	mu        sync.Mutex
	closed    bool
	isolation map[tenant.ID]tenant.Isolation // tenants seen; isolation never changes
	epoch     uint64                         // bumped by DeleteTenant; see route

	siloMu sync.Mutex
	silos  map[tenant.ID]*database // open silo files; nil after Close
	busy   map[tenant.ID]bool      // ids being created or deleted
}

// Open opens the store whose main database file is path, creating it (and
// the tenants directory beside it) if needed and bringing every schema up to
// date. It creates files with mode 0600 and directories with 0700, and takes
// the group and other permissions off the store's existing files and the
// tenants directory, logging each change (see the package documentation).
// It removes silo files that no tenant row claims, left by a crash while a
// silo tenant was being provisioned or deleted. nil opts means defaults.
func Open(path string, opts *Options) (*Store, error) {
	o, err := opts.withDefaults()
	if err != nil {
		return nil, err
	}
	ctx := context.Background()
	siloDir := filepath.Join(filepath.Dir(path), "tenants")
	if err := prepareFiles(path, siloDir, o.Logger); err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", interpretError(err))
	}
	main, err := openDatabase(ctx, path, &o, true, true)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	s := &Store{
		opts:      o,
		log:       o.Logger,
		main:      main,
		siloDir:   siloDir,
		isolation: make(map[tenant.ID]tenant.Isolation),
		silos:     make(map[tenant.ID]*database),
		busy:      make(map[tenant.ID]bool),
	}
	if err := s.removeOrphans(ctx); err != nil {
		main.close(ErrClosed)
		return nil, fmt.Errorf("sqlitestore: %w", err)
	}
	return s, nil
}

// siloPath returns the file of silo tenant tid.
func (s *Store) siloPath(tid tenant.ID) (string, error) {
	// Only canonical IDs name a silo file: fixed length, lower case (so two
	// IDs never name one file on a case-insensitive file system), no path
	// syntax.
	if !tid.Valid() {
		return "", fmt.Errorf("sqlitestore: tenant id %q is not a canonical UUID", tid)
	}
	return filepath.Join(s.siloDir, string(tid)+".db"), nil
}

// removeSiloFiles removes a silo database and its WAL, shared-memory and
// journal files. Missing files are not an error.
func removeSiloFiles(path string) error {
	var errs []error
	for _, p := range append([]string{path}, suffixed(path, sidecars)...) {
		if err := os.Remove(p); err != nil && !errors.Is(err, fs.ErrNotExist) {
			errs = append(errs, err)
		}
	}
	return errors.Join(errs...)
}

// removeOrphans removes silo files without a silo tenant row: the remains of
// a crash between creating a silo file and inserting its row, or between
// deleting a row and removing its file.
func (s *Store) removeOrphans(ctx context.Context) error {
	entries, err := os.ReadDir(s.siloDir)
	if err != nil {
		return err
	}
	for _, e := range entries {
		id, ok := strings.CutSuffix(e.Name(), ".db")
		if !ok || e.IsDir() || !tenant.ID(id).Valid() {
			continue
		}
		var iso tenant.Isolation
		err := s.main.read(ctx, func(c *conn) error {
			return c.queryRow(ctx, sqlTenantIsolation, id).Scan(&iso)
		})
		if err := interpretError(err); err != nil && !errors.Is(err, store.ErrNotFound) {
			return fmt.Errorf("check silo file %s: %w", e.Name(), err)
		}
		if iso == tenant.Silo {
			continue
		}
		path := filepath.Join(s.siloDir, e.Name())
		s.log.Warn("sqlitestore: removing orphan silo file", "path", path, "tenant", id)
		if err := removeSiloFiles(path); err != nil {
			return fmt.Errorf("remove orphan silo file: %w", err)
		}
	}
	return nil
}

// route returns the database holding tid's data and tid's isolation, or
// ErrNotFound if no such tenant exists.
func (s *Store) route(ctx context.Context, tid tenant.ID) (*database, tenant.Isolation, error) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil, "", ErrClosed
	}
	iso, ok := s.isolation[tid]
	epoch := s.epoch
	s.mu.Unlock()
	if !ok {
		err := s.main.read(ctx, func(c *conn) error {
			return c.queryRow(ctx, sqlTenantIsolation, string(tid)).Scan(&iso)
		})
		if err != nil {
			return nil, "", wrap(err, "tenant %s", tid)
		}
		s.mu.Lock()
		// Cache only if no tenant was deleted meanwhile: the row read may
		// belong to a tenant deleted since, whose entry must not return.
		if s.epoch == epoch {
			s.isolation[tid] = iso
		}
		s.mu.Unlock()
	}
	if iso != tenant.Silo {
		return s.main, iso, nil
	}
	d, err := s.silo(ctx, tid)
	return d, iso, err
}

// silo returns silo tenant tid's database, opening it on first use.
func (s *Store) silo(ctx context.Context, tid tenant.ID) (*database, error) {
	s.siloMu.Lock()
	defer s.siloMu.Unlock()
	if s.silos == nil {
		return nil, ErrClosed
	}
	if d := s.silos[tid]; d != nil {
		return d, nil
	}
	if s.busy[tid] { // being deleted (or created, and so not yet existing)
		return nil, fmt.Errorf("tenant %s: %w", tid, store.ErrNotFound)
	}
	path, err := s.siloPath(tid)
	if err != nil {
		return nil, err
	}
	// Opening without create: a file that is gone means a deleted tenant,
	// and must not come back as an empty file.
	if _, err := os.Stat(path); errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("tenant %s: %w", tid, store.ErrNotFound)
	}
	d, err := openDatabase(ctx, path, &s.opts, false, false)
	if err != nil {
		return nil, fmt.Errorf("sqlitestore: tenant %s: %w", tid, err)
	}
	s.silos[tid] = d
	return d, nil
}

// InTenant runs fn in one read-write transaction confined to tid, as part
// of the next group commit of tid's database file. fn's statements are not
// interrupted when ctx ends (an interrupted statement could roll back the
// whole batch); if ctx ends before fn starts, fn does not run and InTenant
// returns ctx.Err(). A panic in fn is returned as an error.
//
// fn runs on the file's only writer, so it must not itself start a write
// (InTenant, InPlatform, CreateTenant, DeleteTenant) on the same file: that
// write would wait for the writer, which waits for fn. Reads are fine.
func (s *Store) InTenant(ctx context.Context, tid tenant.ID, fn func(tx store.Tx) error) error {
	if tid == "" {
		return store.ErrNoTenant
	}
	d, iso, err := s.route(ctx, tid)
	if err != nil {
		return err
	}
	return d.write(ctx, func(c *conn) error {
		if iso == tenant.Pooled {
			// A pooled tenant deleted after route looked it up must not
			// get rows again: check its row inside the transaction.
			var one int
			err := c.queryRow(context.WithoutCancel(ctx), sqlTenantExists, string(tid)).Scan(&one)
			if err != nil {
				return wrap(err, "tenant %s", tid)
			}
		}
		return runTx(c, tid, false, fn)
	})
}

// ReadTenant runs fn in a read-only snapshot of tid's data.
func (s *Store) ReadTenant(ctx context.Context, tid tenant.ID, fn func(tx store.Tx) error) error {
	if tid == "" {
		return store.ErrNoTenant
	}
	d, _, err := s.route(ctx, tid)
	if err != nil {
		return err
	}
	return d.read(ctx, func(c *conn) error {
		return runTx(c, tid, true, fn)
	})
}

// runTx runs fn with a Tx for tid on c and ends the Tx when fn returns.
func runTx(c *conn, tid tenant.ID, readOnly bool, fn func(tx store.Tx) error) error {
	t := &tx{c: c, tid: string(tid), readOnly: readOnly}
	defer t.ended.Store(true)
	return fn(t)
}

// InPlatform runs fn in one read-write transaction on the control plane,
// group-committed like InTenant, with the same rule against nested writes:
// the control plane shares the main file's writer with pooled tenants.
func (s *Store) InPlatform(ctx context.Context, fn func(tx store.PlatformTx) error) error {
	return s.main.write(ctx, func(c *conn) error {
		return runPlatformTx(c, false, fn)
	})
}

// ReadPlatform runs fn in a read-only snapshot of the control plane.
func (s *Store) ReadPlatform(ctx context.Context, fn func(tx store.PlatformTx) error) error {
	return s.main.read(ctx, func(c *conn) error {
		return runPlatformTx(c, true, fn)
	})
}

// platformChain is the tenant_id under which the platform's own audit chain
// is kept in the main file's audit tables. It is not a UUID, so no tenant
// can have it, and tenant purges never touch it.
const platformChain = "platform"

func runPlatformTx(c *conn, readOnly bool, fn func(tx store.PlatformTx) error) error {
	audit := &tx{c: c, tid: platformChain, readOnly: readOnly}
	t := &platformTx{c: c, readOnly: readOnly, AuditLog: audit}
	defer func() {
		t.ended.Store(true)
		audit.ended.Store(true)
	}()
	return fn(t)
}

// CreateTenant provisions a tenant. A pooled tenant's row and init's writes
// commit in one transaction of the main file. A silo tenant's file is
// created and init runs in it first; its row is inserted into the main file
// last, and if anything fails the file is removed again. A crash in between
// leaves a file without a row, which Open removes.
func (s *Store) CreateTenant(ctx context.Context, params *store.CreateTenantParams, initPlatform func(tx store.PlatformTx) error, init func(tx store.Tx) error) (*store.Tenant, error) {
	if err := validateCreate(params); err != nil {
		return nil, err
	}
	if init == nil {
		init = func(store.Tx) error { return nil }
	}
	if initPlatform == nil {
		initPlatform = func(store.PlatformTx) error { return nil }
	}
	created := fromMicros(params.CreatedAt.UnixMicro())
	t := &store.Tenant{
		ID:        params.ID,
		Slug:      params.Slug,
		Name:      params.Name,
		Plan:      params.Plan,
		Isolation: params.Isolation,
		Status:    tenant.Active,
		CreatedAt: created,
		UpdatedAt: created,
	}
	var err error
	if t.Isolation == tenant.Silo {
		err = s.createSilo(ctx, t, initPlatform, init)
	} else {
		err = s.main.write(ctx, func(c *conn) error {
			if err := insertTenant(context.WithoutCancel(ctx), c, t); err != nil {
				return err
			}
			if err := runPlatformTx(c, false, initPlatform); err != nil {
				return err
			}
			return runTx(c, t.ID, false, init)
		})
	}
	if err != nil {
		return nil, err
	}
	s.mu.Lock()
	s.isolation[t.ID] = t.Isolation
	s.mu.Unlock()
	return t, nil
}

func validateCreate(p *store.CreateTenantParams) error {
	switch {
	case !p.ID.Valid():
		return fmt.Errorf("sqlitestore: tenant id %q is not a canonical lower-case UUID", p.ID)
	case !p.Slug.Valid():
		return fmt.Errorf("sqlitestore: tenant slug %q does not match %s", p.Slug, tenant.SlugPattern)
	case !p.Isolation.Valid():
		return fmt.Errorf("sqlitestore: tenant isolation %q is not valid", p.Isolation)
	}
	return nil
}

func (s *Store) createSilo(ctx context.Context, t *store.Tenant, initPlatform func(tx store.PlatformTx) error, init func(tx store.Tx) error) (err error) {
	path, err := s.siloPath(t.ID)
	if err != nil {
		return err
	}
	s.siloMu.Lock()
	switch {
	case s.silos == nil:
		s.siloMu.Unlock()
		return ErrClosed
	case s.busy[t.ID] || s.silos[t.ID] != nil:
		s.siloMu.Unlock()
		return fmt.Errorf("tenant %s: %w", t.ID, store.ErrConflict)
	}
	s.busy[t.ID] = true
	s.siloMu.Unlock()
	defer func() {
		s.siloMu.Lock()
		delete(s.busy, t.ID)
		s.siloMu.Unlock()
	}()

	// Fail early, before making a file, on a taken id or slug or an unknown
	// plan. The final insert checks again in its own transaction.
	err = s.main.read(ctx, func(c *conn) error {
		if err := checkPlan(ctx, c, t.Plan); err != nil {
			return err
		}
		var one int
		err := c.queryRow(ctx, sqlTenantTaken, string(t.ID), string(t.Slug)).Scan(&one)
		if err == nil {
			return fmt.Errorf("tenant id or slug: %w", store.ErrConflict)
		}
		return ignoreNotFound(wrap(err, "check tenant %s", t.ID))
	})
	if err != nil {
		return err
	}
	// No row claims this id and no one else is creating or deleting it, so
	// any file at path is left over from a failed removal.
	if err := removeSiloFiles(path); err != nil {
		return wrap(err, "sqlitestore: remove stale silo file")
	}
	if err := createFile(path); err != nil {
		removeSiloFiles(path)
		return wrap(err, "sqlitestore: create silo file")
	}
	d, err := openDatabase(ctx, path, &s.opts, false, true)
	if err != nil {
		removeSiloFiles(path)
		return fmt.Errorf("sqlitestore: create silo file: %w", err)
	}
	keep := false
	defer func() {
		if !keep {
			d.close(ErrClosed)
			if rerr := removeSiloFiles(path); rerr != nil {
				s.log.Error("sqlitestore: remove silo file of failed tenant", "path", path, "err", rerr)
			}
		}
	}()
	err = d.write(ctx, func(c *conn) error {
		return runTx(c, t.ID, false, init)
	})
	if err != nil {
		return err
	}
	err = s.main.write(ctx, func(c *conn) error {
		if err := insertTenant(context.WithoutCancel(ctx), c, t); err != nil {
			return err
		}
		return runPlatformTx(c, false, initPlatform)
	})
	if err != nil {
		return err
	}
	keep = true
	s.siloMu.Lock()
	defer s.siloMu.Unlock()
	if s.silos == nil { // Close ran meanwhile; the tenant exists, its file is closed
		d.close(ErrClosed)
		return nil
	}
	s.silos[t.ID] = d
	return nil
}

// DeleteTenant removes the tenant's row and all its data in one transaction
// of the main file; a silo tenant's file is then closed, after the writes
// already queued for it, and removed. A crash before the removal leaves a
// file without a row, which Open removes.
func (s *Store) DeleteTenant(ctx context.Context, tid tenant.ID, fn func(tx store.PlatformTx) error) error {
	if tid == "" {
		return store.ErrNoTenant
	}
	s.siloMu.Lock()
	switch {
	case s.silos == nil:
		s.siloMu.Unlock()
		return ErrClosed
	case s.busy[tid]: // being created, so not there yet, or being deleted
		s.siloMu.Unlock()
		return fmt.Errorf("tenant %s: %w", tid, store.ErrNotFound)
	}
	s.busy[tid] = true
	s.siloMu.Unlock()
	defer func() {
		s.siloMu.Lock()
		delete(s.busy, tid)
		s.siloMu.Unlock()
	}()

	var iso tenant.Isolation
	err := s.main.purge(ctx, func(c *conn) error {
		ctx := context.WithoutCancel(ctx)
		if err := c.queryRow(ctx, sqlDeleteTenant, string(tid)).Scan(&iso); err != nil {
			return wrap(err, "delete tenant %s", tid)
		}
		// A silo tenant has no rows here, but purging costs little and
		// keeps one code path. A pooled tenant's declared indexes go too.
		if err := dropUndeclared(ctx, c, recsql.TenantPrefix(tid), tid, tenant.Pooled, nil); err != nil {
			return err
		}
		for _, q := range sqlPurgeTenant {
			if _, err := c.exec(ctx, q, string(tid)); err != nil {
				return wrap(err, "purge tenant %s", tid)
			}
		}
		if fn == nil {
			return nil
		}
		return runPlatformTx(c, false, fn)
	})
	if err != nil {
		return err
	}
	s.mu.Lock()
	delete(s.isolation, tid)
	s.epoch++
	s.mu.Unlock()
	if iso != tenant.Silo {
		return nil
	}
	s.siloMu.Lock()
	var d *database
	if s.silos != nil {
		d = s.silos[tid]
		delete(s.silos, tid)
	}
	s.siloMu.Unlock()
	if d != nil {
		if err := d.close(fmt.Errorf("tenant %s: %w", tid, store.ErrNotFound)); err != nil {
			s.log.Warn("sqlitestore: close silo file of deleted tenant", "tenant", tid, "err", err)
		}
	}
	path, err := s.siloPath(tid)
	if err != nil {
		return err
	}
	if err := removeSiloFiles(path); err != nil {
		return fmt.Errorf("sqlitestore: tenant %s deleted, but its file remains: %w", tid, err)
	}
	return nil
}

// Ping reports whether the main database answers.
func (s *Store) Ping(ctx context.Context) error {
	return s.main.read(ctx, func(c *conn) error {
		var one int
		return wrap(c.queryRow(ctx, "SELECT 1").Scan(&one), "sqlitestore: ping")
	})
}

// Close finishes the transactions queued or running, then closes every
// database file. Afterwards every method returns ErrClosed. Close is
// idempotent.
func (s *Store) Close() error {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return nil
	}
	s.closed = true
	s.mu.Unlock()
	s.siloMu.Lock()
	silos := s.silos
	s.silos = nil
	s.siloMu.Unlock()
	var errs []error
	for _, d := range silos {
		errs = append(errs, d.close(ErrClosed))
	}
	errs = append(errs, s.main.close(ErrClosed))
	return errors.Join(errs...)
}

// ignoreNotFound returns nil for an error matching store.ErrNotFound.
func ignoreNotFound(err error) error {
	if errors.Is(err, store.ErrNotFound) {
		return nil
	}
	return err
}
