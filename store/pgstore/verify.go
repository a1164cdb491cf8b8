package pgstore

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"github.com/jackc/pgx/v5/pgxpool"
)

// roleFacts describes the role a pool connects as.
type roleFacts struct {
	name          string
	super         bool
	bypassRLS     bool
	createRole    bool
	inherit       bool
	serverVersion int
	encoding      string
	database      string
}

const sqlRoleFacts = `SELECT r.rolname, r.rolsuper, r.rolbypassrls, r.rolcreaterole, r.rolinherit,
	current_setting('server_version_num')::int, current_setting('server_encoding'), current_database()
	FROM pg_roles r WHERE r.rolname = current_user`

func readRoleFacts(ctx context.Context, pool *pgxpool.Pool) (*roleFacts, error) {
	var f roleFacts
	err := pool.QueryRow(ctx, sqlRoleFacts).Scan(&f.name, &f.super, &f.bypassRLS, &f.createRole, &f.inherit,
		&f.serverVersion, &f.encoding, &f.database)
	if err != nil {
		return nil, wrap(err, "pgstore: connect")
	}
	return &f, nil
}

// Catalog queries of verifyApp. $1 is the pattern of silo schema names.
const (
	// sqlBypassMembers lists the roles with superuser or BYPASSRLS that the
	// current role is a member of (other than itself), which it could
	// switch to.
	sqlBypassMembers = `SELECT rolname, rolsuper FROM pg_roles
		WHERE (rolsuper OR rolbypassrls) AND rolname <> current_user AND pg_has_role(current_user, oid, 'MEMBER')
		ORDER BY rolname`
	sqlSchemaOwner = `SELECT pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname = 'bulkhead'`
	sqlVersion     = `SELECT coalesce(max(version_id), 0) FROM bulkhead.goose_db_version WHERE is_applied`
	// sqlOwned lists the objects of the store's schemas (the schemas
	// included) that the current role owns or can act as the owner of.
	sqlOwned = `SELECT 'schema', nspname, '', pg_get_userbyid(nspowner) FROM pg_namespace
		WHERE (nspname IN ('bulkhead', 'bulkhead_keys') OR nspname ~ $1) AND pg_has_role(current_user, nspowner, 'MEMBER')
		UNION ALL
		SELECT CASE c.relkind WHEN 'v' THEN 'view' WHEN 'm' THEN 'materialized view' WHEN 'S' THEN 'sequence' ELSE 'table' END,
			n.nspname, c.relname, pg_get_userbyid(c.relowner)
		FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE (n.nspname = 'bulkhead' OR n.nspname ~ $1) AND c.relkind IN ('r', 'p', 'v', 'm', 'S', 'f')
			AND pg_has_role(current_user, c.relowner, 'MEMBER')
		UNION ALL
		SELECT 'function', n.nspname, p.proname, pg_get_userbyid(p.proowner)
		FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE (n.nspname IN ('bulkhead', 'bulkhead_keys') OR n.nspname ~ $1) AND pg_has_role(current_user, p.proowner, 'MEMBER')
		ORDER BY 2, 3`
	// sqlUnsafeObjects lists views that run with their owner's rights
	// (without security_invoker) and SECURITY DEFINER functions in the
	// store's schemas: either could read tenant rows with privileges the
	// current role does not have. The one exception is each tenant
	// schema's audit_cut, and only with the body this build's migration
	// gives it ($2; see tenantschema/00013_retention.sql).
	sqlUnsafeObjects = `SELECT 'view', n.nspname, c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE (n.nspname = 'bulkhead' OR n.nspname ~ $1) AND c.relkind IN ('v', 'm')
			AND NOT coalesce(array_to_string(c.reloptions, ',') ~ 'security_invoker=(true|on|1|yes)', false)
		UNION ALL
		SELECT 'function', n.nspname, p.proname FROM pg_proc p JOIN pg_namespace n ON n.oid = p.pronamespace
		WHERE (n.nspname IN ('bulkhead', 'bulkhead_keys') OR n.nspname ~ $1) AND p.prosecdef
			AND NOT (n.nspname <> 'bulkhead_keys' AND p.proname = 'audit_cut' AND p.pronargs = 0 AND p.prosrc = $2)
		ORDER BY 2, 3`
	// sqlTenantTables describes every tenant table ($2) of every tenant
	// schema, pooled and silo: whether it exists, has row-level security
	// enabled and forced, and a policy.
	sqlTenantTables = `SELECT n.nspname, t.name, c.oid IS NOT NULL, coalesce(c.relrowsecurity, false),
			coalesce(c.relforcerowsecurity, false), EXISTS (SELECT 1 FROM pg_policy p WHERE p.polrelid = c.oid)
		FROM pg_namespace n CROSS JOIN unnest($2::text[]) AS t(name)
		LEFT JOIN pg_class c ON c.relnamespace = n.oid AND c.relname = t.name AND c.relkind = 'r'
		WHERE n.nspname = 'bulkhead' OR n.nspname ~ $1
		ORDER BY 1, 2`
	// sqlMissingPrivileges lists the privileges ($2: table names, $3:
	// comma-separated privileges) that the current role lacks on tables of
	// schema bulkhead.
	sqlMissingPrivileges = `SELECT t.name, p.priv
		FROM unnest($1::text[], $2::text[]) AS t(name, privs)
		CROSS JOIN LATERAL unnest(string_to_array(t.privs, ',')) AS p(priv)
		LEFT JOIN pg_class c ON c.relname = t.name AND c.relnamespace = 'bulkhead'::regnamespace
		WHERE c.oid IS NULL OR NOT has_table_privilege(current_user, c.oid, p.priv)
		ORDER BY 1, 2`
	// sqlMissingFunctions lists the key functions ($1, with their
	// arguments) that do not exist or that the current role may not
	// execute.
	sqlMissingFunctions = `SELECT f FROM unnest($1::text[]) AS f
		WHERE to_regprocedure('bulkhead_keys.' || f) IS NULL
			OR NOT has_schema_privilege('bulkhead_keys', 'USAGE')
			OR NOT has_function_privilege(to_regprocedure('bulkhead_keys.' || f), 'EXECUTE')
		ORDER BY 1`
	// sqlCreatePrivileges reports whether the current role may create
	// schemas in the database or objects in schema bulkhead or
	// bulkhead_keys.
	sqlCreatePrivileges = `SELECT has_database_privilege(current_database(), 'CREATE'),
		has_schema_privilege('bulkhead', 'CREATE') OR coalesce(has_schema_privilege(to_regnamespace('bulkhead_keys'), 'CREATE'), false)`
	// sqlSilos describes every silo schema: whether its role exists,
	// whether the current role may switch to it, and whether the current
	// role can use the schema without switching.
	sqlSilos = `SELECT n.nspname, r.oid IS NOT NULL, coalesce(pg_has_role(current_user, r.oid, 'MEMBER'), false),
			has_schema_privilege(current_user, n.oid, 'USAGE')
		FROM pg_namespace n LEFT JOIN pg_roles r ON r.rolname = 'bulkhead_' || n.nspname
		WHERE n.nspname ~ $1
		ORDER BY 1`
)

// problems collects what verification finds wrong, each as one error.
type problems []error

func (p *problems) add(format string, args ...any) {
	*p = append(*p, fmt.Errorf("pgstore: "+format, args...))
}

func (p problems) err() error { return errors.Join(p...) }

// tableName names a tenant table in messages: bare in the pooled schema
// ("table records"), qualified in a silo schema.
func tableName(schema, table string) string {
	if schema == schemaName {
		return table
	}
	return schema + "." + table
}

// verifyApp checks that the role pool connects as is one that row-level
// security binds, with what the store needs and nothing that would let it
// escape. See Open.
func verifyApp(ctx context.Context, pool *pgxpool.Pool) (*roleFacts, error) {
	f, err := readRoleFacts(ctx, pool)
	if err != nil {
		return nil, err
	}
	var p problems
	role := f.name
	if f.super {
		p.add("role %s is a superuser; row-level security would not bind it", role)
	}
	if f.bypassRLS {
		p.add("role %s has BYPASSRLS; row-level security would not bind it", role)
	}
	if f.createRole {
		p.add("role %s has CREATEROLE; it could grant itself the owner role and turn row-level security off", role)
	}
	if f.inherit {
		p.add("role %s has INHERIT; it would hold every silo tenant's privileges without switching to the tenant's role (ALTER ROLE %s NOINHERIT)", role, role)
	}
	if f.encoding != "UTF8" {
		p.add("database %s has encoding %s; the store needs UTF8", f.database, f.encoding)
	}
	rows, _ := pool.Query(ctx, sqlBypassMembers)
	err = forEach(rows, func(r pgx.Rows) error {
		var other string
		var super bool
		if err := r.Scan(&other, &super); err != nil {
			return err
		}
		if super {
			p.add("role %s is a member of %s, a superuser; row-level security would not bind it", role, other)
		} else {
			p.add("role %s is a member of %s, which has BYPASSRLS; row-level security would not bind it", role, other)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: verify role %s: %w", role, err)
	}

	var schemaOwner string
	err = pool.QueryRow(ctx, sqlSchemaOwner).Scan(&schemaOwner)
	if errors.Is(err, pgx.ErrNoRows) {
		p.add("schema bulkhead does not exist in database %s: run Migrate (bulkhead migrate) as the owner role first", f.database)
		return nil, p.err()
	}
	if err != nil {
		return nil, fmt.Errorf("pgstore: verify schema: %w", err)
	}

	var version int64
	err = pool.QueryRow(ctx, sqlVersion).Scan(&version)
	var pgErr *pgconn.PgError
	switch {
	case errors.As(err, &pgErr) && pgErr.Code == codeInsufficientPrivilege:
		p.add("role %s cannot read the schema version (%s): run Migrate with appRole %s", role, versionTable, role)
	case errors.As(err, &pgErr) && pgErr.Code == "42P01":
		p.add("schema bulkhead has no schema version table: run Migrate (bulkhead migrate) as the owner role")
	case err != nil:
		return nil, fmt.Errorf("pgstore: verify schema version: %w", err)
	case version < latestVersion:
		p.add("the database schema is at version %d, this build needs %d: run Migrate (bulkhead migrate)", version, latestVersion)
	case version > latestVersion:
		p.add("the database schema is at version %d, newer than this build's %d: upgrade bulkhead", version, latestVersion)
	}

	owned := map[string][]string{} // owner -> objects
	var owners []string
	rows, _ = pool.Query(ctx, sqlOwned, siloSchemaPattern)
	err = forEach(rows, func(r pgx.Rows) error {
		var kind, schema, name, owner string
		if err := r.Scan(&kind, &schema, &name, &owner); err != nil {
			return err
		}
		what := kind + " " + tableName(schema, name)
		if kind == "schema" {
			what = "schema " + schema
		}
		if owned[owner] == nil {
			owners = append(owners, owner)
		}
		owned[owner] = append(owned[owner], what)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: verify ownership: %w", err)
	}
	for _, owner := range owners {
		if owner == role {
			p.add("role %s owns %s; row-level security does not bind a table's owner unless forced, and an owner can turn it off: connect as the application role", role, list(owned[owner]))
		} else {
			p.add("role %s can act as %s, the owner of %s, and so turn row-level security off", role, owner, list(owned[owner]))
		}
	}

	rows, _ = pool.Query(ctx, sqlUnsafeObjects, siloSchemaPattern, auditCutSource)
	err = forEach(rows, func(r pgx.Rows) error {
		var kind, schema, name string
		if err := r.Scan(&kind, &schema, &name); err != nil {
			return err
		}
		if kind == "view" {
			p.add("view %s runs with its owner's privileges; the store's schemas allow views only WITH (security_invoker)", tableName(schema, name))
		} else {
			p.add("function %s is SECURITY DEFINER; the store's schemas allow none", tableName(schema, name))
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: verify views and functions: %w", err)
	}

	rows, _ = pool.Query(ctx, sqlTenantTables, siloSchemaPattern, tenantTables)
	err = forEach(rows, func(r pgx.Rows) error {
		var schema, table string
		var exists, enabled, forced, policy bool
		if err := r.Scan(&schema, &table, &exists, &enabled, &forced, &policy); err != nil {
			return err
		}
		name := tableName(schema, table)
		switch {
		case !exists:
			p.add("table %s does not exist: run Migrate (bulkhead migrate)", name)
		case !enabled:
			p.add("table %s does not ENABLE ROW LEVEL SECURITY", name)
		case !forced:
			p.add("table %s does not FORCE ROW LEVEL SECURITY", name)
		case !policy:
			p.add("table %s has no row-level security policy", name)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: verify row-level security: %w", err)
	}

	var tables, privs []string
	for _, g := range tenantTableGrants {
		tables, privs = append(tables, g.table), append(privs, strings.Join(g.pooled(), ","))
	}
	for _, g := range platformTableGrants {
		tables, privs = append(tables, g.table), append(privs, strings.Join(g.privs, ","))
	}
	rows, _ = pool.Query(ctx, sqlMissingPrivileges, tables, privs)
	err = forEach(rows, func(r pgx.Rows) error {
		var table, priv string
		if err := r.Scan(&table, &priv); err != nil {
			return err
		}
		p.add("role %s lacks %s on table %s: run Migrate with appRole %s", role, priv, table, role)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: verify privileges: %w", err)
	}

	rows, _ = pool.Query(ctx, sqlMissingFunctions, keyFunctions)
	err = forEach(rows, func(r pgx.Rows) error {
		var fn string
		if err := r.Scan(&fn); err != nil {
			return err
		}
		p.add("role %s cannot execute function bulkhead_keys.%s: run Migrate", role, fn)
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: verify privileges: %w", err)
	}

	var createDB, createSchema bool
	if err := pool.QueryRow(ctx, sqlCreatePrivileges).Scan(&createDB, &createSchema); err != nil {
		return nil, fmt.Errorf("pgstore: verify privileges: %w", err)
	}
	if createDB {
		p.add("role %s may create schemas in database %s (REVOKE CREATE ON DATABASE %s FROM %s)", role, f.database, f.database, role)
	}
	if createSchema {
		p.add("role %s may create objects in schema bulkhead or bulkhead_keys", role)
	}

	rows, _ = pool.Query(ctx, sqlSilos, siloSchemaPattern)
	err = forEach(rows, func(r pgx.Rows) error {
		var schema string
		var roleExists, member, usage bool
		if err := r.Scan(&schema, &roleExists, &member, &usage); err != nil {
			return err
		}
		siloRole := "bulkhead_" + schema
		switch {
		case !roleExists:
			p.add("silo schema %s has no role %s", schema, siloRole)
		case !member:
			p.add("role %s cannot switch to silo role %s: run Migrate with appRole %s", role, siloRole, role)
		}
		if usage {
			p.add("role %s can use silo schema %s without switching to its role %s", role, schema, siloRole)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("pgstore: verify silo schemas: %w", err)
	}
	if err := p.err(); err != nil {
		return nil, err
	}
	return f, nil
}

// verifyOwner checks that the provisioning pool connects as the role that
// owns the store's schema and can create roles, and not as the application
// role.
func verifyOwner(ctx context.Context, pool *pgxpool.Pool, app *roleFacts) error {
	f, err := readRoleFacts(ctx, pool)
	if err != nil {
		return fmt.Errorf("pgstore: Options.ProvisionURL: %w", err)
	}
	var p problems
	if f.name == app.name {
		p.add("Options.ProvisionURL connects as %s, the application role; it must connect as the owner role", f.name)
		return p.err()
	}
	if f.database != app.database {
		p.add("Options.ProvisionURL connects to database %s, the store to %s", f.database, app.database)
	}
	var owner string
	if err := pool.QueryRow(ctx, sqlSchemaOwner).Scan(&owner); err != nil {
		return fmt.Errorf("pgstore: Options.ProvisionURL: verify schema owner: %w", err)
	}
	if owner != f.name {
		p.add("Options.ProvisionURL connects as %s, but schema bulkhead is owned by %s; it must connect as the owner role", f.name, owner)
	}
	if !f.createRole && !f.super {
		p.add("role %s (Options.ProvisionURL) lacks CREATEROLE, which creating silo tenants' roles needs", f.name)
	}
	return p.err()
}

// list joins names for a message, eliding all but the first ten.
func list(names []string) string {
	if len(names) > 10 {
		return strings.Join(names[:10], ", ") + fmt.Sprintf(" and %d more", len(names)-10)
	}
	return strings.Join(names, ", ")
}

// forEach calls fn for each of rows and closes them.
func forEach(rows pgx.Rows, fn func(pgx.Rows) error) error {
	defer rows.Close()
	for rows.Next() {
		if err := fn(rows); err != nil {
			return err
		}
	}
	return rows.Err()
}
