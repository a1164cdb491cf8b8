package jobs

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"io/fs"
	"net/url"
	"os"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgxpool"
	"github.com/riverqueue/river"
	"github.com/riverqueue/river/riverdriver"
	"github.com/riverqueue/river/riverdriver/riverpgxv5"
	"github.com/riverqueue/river/riverdriver/riversqlite"
	"github.com/riverqueue/river/rivermigrate"
	"github.com/riverqueue/river/rivertype"
	_ "modernc.org/sqlite" // the SQLite driver the store uses
)

// Schema is the PostgreSQL schema of River's tables.
const Schema = "bulkhead_jobs"

// client adapts River's client, of either driver, to queue.
type client[TTx any] struct {
	c       *river.Client[TTx]
	closeDB func() error
}

func (c *client[TTx]) insert(ctx context.Context, args riverArgs, opts *river.InsertOpts) (int64, error) {
	res, err := c.c.Insert(ctx, args, opts)
	if err != nil {
		return 0, err
	}
	return res.Job.ID, nil
}

func (c *client[TTx]) cancel(ctx context.Context, id int64) (*rivertype.JobRow, error) {
	return c.c.JobCancel(ctx, id)
}

func (c *client[TTx]) get(ctx context.Context, id int64) (*rivertype.JobRow, error) {
	return c.c.JobGet(ctx, id)
}

func (c *client[TTx]) start(ctx context.Context) error         { return c.c.Start(ctx) }
func (c *client[TTx]) stop(ctx context.Context) error          { return c.c.Stop(ctx) }
func (c *client[TTx]) stopAndCancel(ctx context.Context) error { return c.c.StopAndCancel(ctx) }
func (c *client[TTx]) close() error                            { return c.closeDB() }

// migrate brings River's schema up to date.
func migrate[TTx any](ctx context.Context, driver riverdriver.Driver[TTx], schema string) error {
	m, err := rivermigrate.New(driver, &rivermigrate.Config{Schema: schema})
	if err != nil {
		return err
	}
	if _, err := m.Migrate(ctx, rivermigrate.DirectionUp, nil); err != nil {
		return fmt.Errorf("migrate River's schema: %w", err)
	}
	return nil
}

// openSQLite opens River's own SQLite file at path. River runs many things
// at once, which SQLite's single writer would turn into "database is
// locked": one connection serializes them (riversqlite's advice). Commits
// are synced (synchronous=FULL), so an acknowledged job survives a crash.
func openSQLite(ctx context.Context, path string, rc *river.Config) (queue, error) {
	q := url.Values{}
	for _, p := range []string{"journal_mode(WAL)", "synchronous(FULL)", "busy_timeout(10000)", "foreign_keys(ON)"} {
		q.Add("_pragma", p)
	}
	q.Set("_txlock", "immediate")
	// Jobs name tenants and carry their arguments: the file is the
	// process user's only, like the store's. SQLite gives the -wal and
	// -shm files the database file's mode.
	if err := createPrivateFile(path); err != nil {
		return nil, err
	}
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, err
	}
	db.SetMaxOpenConns(1)
	driver := riversqlite.New(db)
	if err := migrate(ctx, driver, ""); err != nil {
		db.Close()
		return nil, err
	}
	rc.PollOnly = true // SQLite cannot notify
	c, err := river.NewClient(driver, rc)
	if err != nil {
		db.Close()
		return nil, err
	}
	return &client[*sql.Tx]{c: c, closeDB: db.Close}, nil
}

// openPostgres connects to River's tables in schema Schema of the
// database at databaseURL, migrating them first: as the owner role of
// migrateURL if given, else as the application role itself, which finds
// them up to date if bulkhead migrate made them.
func openPostgres(ctx context.Context, databaseURL, migrateURL string, rc *river.Config) (queue, error) {
	pool, err := pgxpool.New(ctx, databaseURL)
	if err != nil {
		return nil, err
	}
	if err := migrateApp(ctx, pool, migrateURL); err != nil {
		pool.Close()
		return nil, err
	}
	rc.Schema = Schema
	c, err := river.NewClient(riverpgxv5.New(pool), rc)
	if err != nil {
		pool.Close()
		return nil, err
	}
	return &client[pgx.Tx]{c: c, closeDB: func() error { pool.Close(); return nil }}, nil
}

func migrateApp(ctx context.Context, app *pgxpool.Pool, migrateURL string) error {
	if migrateURL != "" {
		var role string
		if err := app.QueryRow(ctx, "SELECT current_user").Scan(&role); err != nil {
			return err
		}
		return MigratePostgres(ctx, migrateURL, role)
	}
	var exists bool
	if err := app.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_namespace WHERE nspname = $1)", Schema).Scan(&exists); err != nil {
		return err
	}
	if !exists {
		if _, err := app.Exec(ctx, "CREATE SCHEMA "+Schema); err != nil {
			return fmt.Errorf("River's schema %s does not exist and the application role cannot create it: "+
				"run bulkhead migrate, or give the owner role's URL (--provision-url): %w", Schema, err)
		}
	}
	if err := migrate(ctx, riverpgxv5.New(app), Schema); err != nil {
		return fmt.Errorf("%w (run bulkhead migrate, or give the owner role's URL with --provision-url)", err)
	}
	return nil
}

// MigratePostgres creates schema Schema in the database of ownerURL,
// creates or upgrades River's tables in it with rivermigrate, and grants
// appRole their use. It connects as the owner role and is idempotent;
// bulkhead migrate runs it beside pgstore.Migrate.
func MigratePostgres(ctx context.Context, ownerURL, appRole string) error {
	owner, err := pgxpool.New(ctx, ownerURL)
	if err != nil {
		return err
	}
	defer owner.Close()
	if _, err := owner.Exec(ctx, "CREATE SCHEMA IF NOT EXISTS "+Schema); err != nil {
		return fmt.Errorf("create schema %s: %w", Schema, err)
	}
	if err := migrate(ctx, riverpgxv5.New(owner), Schema); err != nil {
		return err
	}
	id := pgx.Identifier{appRole}.Sanitize()
	for _, s := range []string{
		"GRANT USAGE ON SCHEMA " + Schema + " TO " + id,
		"GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA " + Schema + " TO " + id,
		"GRANT USAGE, SELECT, UPDATE ON ALL SEQUENCES IN SCHEMA " + Schema + " TO " + id,
		"GRANT EXECUTE ON ALL FUNCTIONS IN SCHEMA " + Schema + " TO " + id,
	} {
		if _, err := owner.Exec(ctx, s); err != nil {
			return fmt.Errorf("grant %s River's tables: %w", appRole, err)
		}
	}
	return nil
}

// createPrivateFile creates the empty file path with mode 0600, whatever
// the umask, unless it exists.
func createPrivateFile(path string) error {
	f, err := os.OpenFile(path, os.O_RDWR|os.O_CREATE|os.O_EXCL, 0o600)
	if errors.Is(err, fs.ErrExist) {
		return nil
	}
	if err != nil {
		return err
	}
	err = f.Chmod(0o600)
	return errors.Join(err, f.Close())
}
