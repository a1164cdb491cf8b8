package sqlitestore

import (
	"context"
	"embed"
	"fmt"
	"io/fs"
	"path"
	"strconv"
	"strings"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// migrationFiles holds the schema, one file per version, named
// NNNN_<scope>.sql. Scope "platform" applies to the main file only; scope
// "tenant" applies to the main file (pooled tenants) and every silo file.
// Versions count across both scopes, so a file's PRAGMA user_version is the
// last version it has seen, applied or skipped by scope.
//
//go:embed migrations/*.sql
var migrationFiles embed.FS

type migration struct {
	version  int
	platform bool // main file only
	name     string
	sql      string
}

// migrations is the parsed, ordered content of migrationFiles.
var migrations = mustLoadMigrations()

func mustLoadMigrations() []migration {
	entries, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		panic(err)
	}
	var ms []migration
	for i, e := range entries { // ReadDir sorts by name
		base := strings.TrimSuffix(e.Name(), ".sql")
		num, scope, ok := strings.Cut(base, "_")
		v, err := strconv.Atoi(num)
		if !ok || err != nil || v != i+1 || (scope != "platform" && scope != "tenant") {
			panic(fmt.Sprintf("sqlitestore: bad migration file name %q", e.Name()))
		}
		b, err := migrationFiles.ReadFile(path.Join("migrations", e.Name()))
		if err != nil {
			panic(err)
		}
		ms = append(ms, migration{version: v, platform: scope == "platform", name: e.Name(), sql: string(b)})
	}
	return ms
}

// plansMigration is the version that creates the plans table; the
// default plans are seeded in the same transaction.
const plansMigration = 1

// migrate brings the file on c up to the latest schema in one IMMEDIATE
// transaction, so concurrent openers of the same file serialize and a
// failure leaves the file as it was. It is a no-op when the file is current.
func migrate(ctx context.Context, c *conn, main bool) (err error) {
	if _, err := c.sc.ExecContext(ctx, "BEGIN IMMEDIATE"); err != nil {
		return fmt.Errorf("begin migration: %w", err)
	}
	defer func() {
		if err != nil {
			c.sc.ExecContext(context.WithoutCancel(ctx), "ROLLBACK")
		}
	}()
	var current int
	if err := c.sc.QueryRowContext(ctx, "PRAGMA user_version").Scan(&current); err != nil {
		return fmt.Errorf("read schema version: %w", err)
	}
	latest := migrations[len(migrations)-1].version
	if current > latest {
		return fmt.Errorf("schema version %d is newer than this build's %d", current, latest)
	}
	if current == latest {
		_, err := c.sc.ExecContext(ctx, "COMMIT")
		return err
	}
	for _, m := range migrations[current:] {
		if m.platform && !main {
			continue
		}
		if _, err := c.sc.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("apply migration %s: %w", m.name, err)
		}
		if m.version == plansMigration {
			if err := seedPlans(ctx, c); err != nil {
				return err
			}
		}
	}
	// PRAGMA takes no bind parameters; latest is a constant of this build.
	if _, err := c.sc.ExecContext(ctx, "PRAGMA user_version = "+strconv.Itoa(latest)); err != nil {
		return fmt.Errorf("set schema version: %w", err)
	}
	if _, err := c.sc.ExecContext(ctx, "COMMIT"); err != nil {
		return fmt.Errorf("commit migration: %w", err)
	}
	return nil
}

func seedPlans(ctx context.Context, c *conn) error {
	for _, p := range tenant.DefaultPlans {
		if _, err := c.sc.ExecContext(ctx, sqlPutPlan, planArgs(&p)...); err != nil {
			return fmt.Errorf("seed plan %q: %w", p.Name, err)
		}
	}
	return nil
}
