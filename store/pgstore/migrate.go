package pgstore

import (
	"context"
	"database/sql"
	"embed"
	"fmt"
	"io/fs"
	"log/slog"
	"path"
	"sort"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/stdlib"
	"github.com/pressly/goose/v3"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// The schema is versioned with goose. migrations/ holds the control plane's
// SQL migrations, which goose reads from the embedded files. tenantschema/
// holds the tenant tables' migrations, which are not goose files: each
// becomes a Go migration (of the version in its name) that applies it to
// the pooled schema and to every silo schema in one transaction, and
// CreateTenant applies them all to a new silo schema. Versions count
// across both directories. Migrations only go up.
//
//go:embed migrations/*.sql tenantschema/*.sql
var migrationFiles embed.FS

// versionTable is goose's version table, in schema bulkhead.
const versionTable = "goose_db_version"

// plansVersion is the Go migration that seeds tenant.DefaultPlans.
const plansVersion = 2

// migrateLockKey is the advisory lock Migrate holds, so that two Migrates
// run one after the other.
const migrateLockKey int64 = 0x62686d6967726174 // "bhmigrat"

// tenantMigration is one file of tenantschema/.
type tenantMigration struct {
	version int64
	name    string
	sql     string
}

// tenantMigrations are the files of tenantschema/, in version order, and
// latestVersion the highest version of either directory.
var tenantMigrations, latestVersion = mustLoadMigrations()

func mustLoadMigrations() ([]tenantMigration, int64) {
	seen := map[int64]string{plansVersion: "seed plans"}
	latest := int64(plansVersion)
	version := func(name string) int64 {
		num, _, ok := strings.Cut(name, "_")
		v, err := strconv.ParseInt(num, 10, 64)
		if !ok || err != nil || v < 1 || !strings.HasSuffix(name, ".sql") {
			panic(fmt.Sprintf("pgstore: bad migration file name %q", name))
		}
		if other, ok := seen[v]; ok {
			panic(fmt.Sprintf("pgstore: migrations %q and %q have the same version", name, other))
		}
		seen[v] = name
		latest = max(latest, v)
		return v
	}
	platform, err := fs.ReadDir(migrationFiles, "migrations")
	if err != nil {
		panic(err)
	}
	for _, e := range platform {
		version(e.Name())
	}
	entries, err := fs.ReadDir(migrationFiles, "tenantschema")
	if err != nil {
		panic(err)
	}
	var ms []tenantMigration
	for _, e := range entries {
		b, err := migrationFiles.ReadFile(path.Join("tenantschema", e.Name()))
		if err != nil {
			panic(err)
		}
		ms = append(ms, tenantMigration{version: version(e.Name()), name: e.Name(), sql: string(b)})
	}
	sort.Slice(ms, func(i, j int) bool { return ms[i].version < ms[j].version })
	return ms, latest
}

// Migrate brings the database at ownerURL up to this build's schema and
// gives appRole exactly the privileges the store needs. It connects as the
// owner role, which must be able to create schemas in the database (it
// owns it, or has CREATE on it) and roles (CREATEROLE, for silo tenants);
// everything Migrate creates belongs to that role. appRole must exist and
// be another role (see the package documentation for the one-time setup).
//
// Migrate is idempotent: on a current database it changes nothing but
// re-applies the grants, which leaves them as they were. Concurrent calls
// run one after the other. Each migration runs in its own transaction;
// tenant-table migrations apply to the pooled schema and every silo schema
// in that transaction, so a failure leaves the database at the last
// version that succeeded.
func Migrate(ctx context.Context, ownerURL string, appRole string) error {
	cfg, err := pgx.ParseConfig(ownerURL)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	if cfg.RuntimeParams["application_name"] == "" {
		cfg.RuntimeParams["application_name"] = "bulkhead migrate"
	}
	db := stdlib.OpenDB(*cfg)
	defer db.Close()
	conn, err := db.Conn(ctx)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: connect: %w", err)
	}
	defer conn.Close()
	if _, err := conn.ExecContext(ctx, "SELECT pg_advisory_lock($1)", migrateLockKey); err != nil {
		return fmt.Errorf("pgstore: migrate: lock: %w", err)
	}
	defer conn.ExecContext(context.WithoutCancel(ctx), "SELECT pg_advisory_unlock($1)", migrateLockKey)

	var owner string
	var appExists, appSuper bool
	var serverVersion int
	err = conn.QueryRowContext(ctx, `SELECT current_user, current_setting('server_version_num')::int,
		EXISTS (SELECT 1 FROM pg_roles WHERE rolname = $1),
		coalesce((SELECT rolsuper OR rolbypassrls FROM pg_roles WHERE rolname = $1), false)`, appRole).
		Scan(&owner, &serverVersion, &appExists, &appSuper)
	switch {
	case err != nil:
		return fmt.Errorf("pgstore: migrate: %w", err)
	case !appExists:
		return fmt.Errorf("pgstore: migrate: application role %q does not exist (see the package documentation for the one-time setup)", appRole)
	case appRole == owner:
		return fmt.Errorf("pgstore: migrate: the application role %q must not be the owner role that runs Migrate", appRole)
	case appSuper:
		return fmt.Errorf("pgstore: migrate: application role %q is a superuser or has BYPASSRLS; row-level security would not bind it", appRole)
	}

	if _, err := conn.ExecContext(ctx, "CREATE SCHEMA IF NOT EXISTS "+ident(schemaName)); err != nil {
		return fmt.Errorf("pgstore: migrate: create schema %s: %w", schemaName, err)
	}
	var schemaOwner string
	if err := conn.QueryRowContext(ctx, sqlSchemaOwner).Scan(&schemaOwner); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	if schemaOwner != owner {
		return fmt.Errorf("pgstore: migrate: schema %s is owned by %s; run Migrate as that role", schemaName, schemaOwner)
	}

	platformFS, err := fs.Sub(migrationFiles, "migrations")
	if err != nil {
		return err
	}
	goMigrations := []*goose.Migration{
		goose.NewGoMigration(plansVersion, &goose.GoFunc{RunTx: seedPlans}, nil),
	}
	for _, m := range tenantMigrations {
		goMigrations = append(goMigrations, goose.NewGoMigration(m.version, &goose.GoFunc{RunTx: m.apply}, nil))
	}
	provider, err := goose.NewProvider(goose.DialectPostgres, db, platformFS,
		goose.WithTableName(schemaName+"."+versionTable),
		goose.WithDisableGlobalRegistry(true),
		goose.WithGoMigrations(goMigrations...),
		goose.WithSlog(slog.New(slog.DiscardHandler)),
	)
	if err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	if _, err := provider.Up(ctx); err != nil {
		return fmt.Errorf("pgstore: migrate: %w", err)
	}
	if err := grant(ctx, conn, appRole, serverVersion); err != nil {
		return fmt.Errorf("pgstore: migrate: grant privileges to %s: %w", appRole, err)
	}
	return nil
}

// seedPlans inserts tenant.DefaultPlans, once.
func seedPlans(ctx context.Context, tx *sql.Tx) error {
	for _, p := range tenant.DefaultPlans {
		_, err := tx.ExecContext(ctx, `INSERT INTO bulkhead.plans (`+planColumns+`) VALUES ($1, $2, $3, $4, $5, $6, $7)
			ON CONFLICT (name) DO NOTHING`, planArgs(&p)...)
		if err != nil {
			return fmt.Errorf("seed plan %q: %w", p.Name, err)
		}
	}
	return nil
}

// apply applies m to the pooled schema and every silo schema, holding the
// provisioning lock so that no silo is created or dropped meanwhile.
func (m tenantMigration) apply(ctx context.Context, tx *sql.Tx) error {
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", schemaLockKey); err != nil {
		return err
	}
	schemas, err := siloSchemas(ctx, tx)
	if err != nil {
		return err
	}
	for _, schema := range append([]string{schemaName}, schemas...) {
		if _, err := tx.ExecContext(ctx, sqlSetSearchPath, searchPath(schema)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, m.sql); err != nil {
			return fmt.Errorf("%s in schema %s: %w", m.name, schema, err)
		}
	}
	return nil
}

type querier interface {
	QueryContext(ctx context.Context, query string, args ...any) (*sql.Rows, error)
}

// siloSchemas returns the names of the silo schemas.
func siloSchemas(ctx context.Context, q querier) ([]string, error) {
	rows, err := q.QueryContext(ctx, `SELECT nspname FROM pg_namespace WHERE nspname ~ $1 ORDER BY 1`, siloSchemaPattern)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var schemas []string
	for rows.Next() {
		var s string
		if err := rows.Scan(&s); err != nil {
			return nil, err
		}
		schemas = append(schemas, s)
	}
	return schemas, rows.Err()
}

// grant gives appRole exactly the privileges of platformTableGrants and
// tenantTableGrants in schema bulkhead, and every silo role exactly its
// own, in one transaction. Each REVOKE ALL and GRANT pair replaces what the
// role held, so running it again changes nothing.
func grant(ctx context.Context, conn *sql.Conn, appRole string, serverVersion int) (err error) {
	tx, err := conn.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer func() {
		if err != nil {
			tx.Rollback()
		}
	}()
	if _, err := tx.ExecContext(ctx, "SELECT pg_advisory_xact_lock($1)", schemaLockKey); err != nil {
		return err
	}
	var b strings.Builder
	app := ident(appRole)
	b.WriteString("REVOKE ALL ON SCHEMA " + ident(schemaName) + " FROM PUBLIC, " + app + ";\n")
	b.WriteString("GRANT USAGE ON SCHEMA " + ident(schemaName) + " TO " + app + ";\n")
	b.WriteString("REVOKE ALL ON ALL TABLES IN SCHEMA " + ident(schemaName) + " FROM PUBLIC, " + app + ";\n")
	b.WriteString("REVOKE ALL ON ALL SEQUENCES IN SCHEMA " + ident(schemaName) + " FROM PUBLIC, " + app + ";\n")
	b.WriteString("REVOKE ALL ON ALL FUNCTIONS IN SCHEMA " + ident(schemaName) + " FROM PUBLIC, " + app + ";\n")
	for _, g := range platformTableGrants {
		b.WriteString(grantSQL(schemaName, g.table, appRole, g.privs))
	}
	for _, g := range tenantTableGrants {
		b.WriteString(grantSQL(schemaName, g.table, appRole, g.pooled()))
	}
	b.WriteString(functionSQL(schemaName, appRole))
	schemas, err := siloSchemas(ctx, tx)
	if err != nil {
		return err
	}
	for _, schema := range schemas {
		role := "bulkhead_" + schema
		b.WriteString("REVOKE ALL ON SCHEMA " + ident(schema) + " FROM " + app + ";\n")
		b.WriteString("REVOKE ALL ON ALL TABLES IN SCHEMA " + ident(schema) + " FROM PUBLIC, " + app + ";\n")
		b.WriteString(siloRoleSQL(schema, role, appRole, serverVersion))
	}
	if _, err := tx.ExecContext(ctx, b.String()); err != nil {
		return err
	}
	return tx.Commit()
}
