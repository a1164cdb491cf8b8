package pgstore

import (
	"context"
	"slices"
	"strings"
	"sync"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/jackc/pgx/v5"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// catalogSnapshot is everything Migrate controls, read as the superuser:
// schemas, relations, columns, policies, privileges, memberships and the
// applied versions.
func catalogSnapshot(t *testing.T, d *testDB) []string {
	t.Helper()
	c := connect(t, d.adminURL(t))
	var out []string
	for _, q := range []string{
		`SELECT nspname || ' owner=' || pg_get_userbyid(nspowner) || ' acl=' || coalesce(nspacl::text, '')
			FROM pg_namespace WHERE nspname = 'bulkhead' OR nspname ~ '` + siloSchemaPattern + `' ORDER BY 1`,
		`SELECT n.nspname || '.' || c.relname || ' kind=' || c.relkind::text || ' owner=' || pg_get_userbyid(c.relowner) ||
			' rls=' || c.relrowsecurity || ' force=' || c.relforcerowsecurity || ' acl=' || coalesce(c.relacl::text, '')
			FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE n.nspname = 'bulkhead' OR n.nspname ~ '` + siloSchemaPattern + `' ORDER BY 1`,
		`SELECT n.nspname || '.' || c.relname || '.' || a.attname || ' ' || format_type(a.atttypid, a.atttypmod) ||
			' collation=' || coalesce((SELECT collname FROM pg_collation WHERE oid = a.attcollation), '')
			FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
			WHERE (n.nspname = 'bulkhead' OR n.nspname ~ '` + siloSchemaPattern + `') AND a.attnum > 0 AND NOT a.attisdropped ORDER BY 1`,
		`SELECT p.polrelid::regclass::text || ' ' || p.polname || ' using=' || pg_get_expr(p.polqual, p.polrelid) ||
			' check=' || pg_get_expr(p.polwithcheck, p.polrelid) FROM pg_policy p ORDER BY 1`,
		`SELECT r.rolname || ' member=' || m.rolname FROM pg_auth_members am
			JOIN pg_roles r ON r.oid = am.roleid JOIN pg_roles m ON m.oid = am.member
			WHERE r.rolname LIKE 'bulkhead\_t\_%' ORDER BY 1`,
		`SELECT version_id::text || ' ' || is_applied FROM bulkhead.goose_db_version ORDER BY id`,
		`SELECT name || ' ' || rate_per_sec FROM bulkhead.plans ORDER BY 1`,
	} {
		rows, _ := c.Query(context.Background(), q)
		lines, err := pgx.CollectRows(rows, pgx.RowTo[string])
		if err != nil {
			t.Fatalf("%s: %v", q, err)
		}
		out = append(out, lines...)
	}
	return out
}

func TestPostgresMigrate(t *testing.T) {
	superURL(t)
	t.Parallel()
	ctx := context.Background()

	// A second Migrate, with silo tenants in place, changes nothing.
	t.Run("Idempotent", func(t *testing.T) {
		t.Parallel()
		d := newTestDB(t, t, true)
		s := openStore(t, d, nil)
		createTenant(t, s, tenant.Silo)
		createTenant(t, s, tenant.Pooled)
		before := catalogSnapshot(t, d)
		if err := Migrate(ctx, d.ownerURL(t), d.App); err != nil {
			t.Fatalf("second Migrate = %v", err)
		}
		if diff := cmp.Diff(before, catalogSnapshot(t, d)); diff != "" {
			t.Errorf("second Migrate changed the catalog (-before +after):\n%s", diff)
		}
		if !slices.ContainsFunc(before, func(l string) bool { return strings.HasPrefix(l, "t_") }) {
			t.Error("the snapshot holds no silo schema: the test would pass vacuously")
		}
	})

	// The application role holds exactly what tenantTableGrants and
	// platformTableGrants list on schema bulkhead, and each silo role
	// exactly tenantTableGrants' privileges on its own schema.
	t.Run("ExactGrants", func(t *testing.T) {
		t.Parallel()
		d := newTestDB(t, t, true)
		s := openStore(t, d, nil)
		tid, _ := parseTenantID(createTenant(t, s, tenant.Silo))
		c := connect(t, d.adminURL(t))
		grants := func(role string) []string {
			rows, _ := c.Query(ctx, `SELECT table_schema || '.' || table_name || ' ' || privilege_type
				FROM information_schema.role_table_grants WHERE grantee = $1 ORDER BY 1`, role)
			got, err := pgx.CollectRows(rows, pgx.RowTo[string])
			if err != nil {
				t.Fatal(err)
			}
			return got
		}
		var want []string
		for _, g := range platformTableGrants {
			for _, p := range g.privs {
				want = append(want, "bulkhead."+g.table+" "+p)
			}
		}
		for _, g := range tenantTableGrants {
			for _, p := range g.pooled() {
				want = append(want, "bulkhead."+g.table+" "+p)
			}
		}
		slices.Sort(want)
		if diff := cmp.Diff(want, grants(d.App)); diff != "" {
			t.Errorf("application role's table privileges (-want +got):\n%s", diff)
		}
		want = nil
		for _, g := range tenantTableGrants {
			for _, p := range g.privs {
				want = append(want, tid.siloSchema()+"."+g.table+" "+p)
			}
		}
		slices.Sort(want)
		if diff := cmp.Diff(want, grants(tid.siloRole())); diff != "" {
			t.Errorf("silo role's table privileges (-want +got):\n%s", diff)
		}
		// Every role may use the key functions, and none may create in
		// their schema.
		for _, role := range []string{d.App, tid.siloRole()} {
			for _, f := range keyFunctions {
				var exec, usage, create bool
				err := c.QueryRow(ctx, `SELECT has_function_privilege($1, $2, 'EXECUTE'), has_schema_privilege($1, $3, 'USAGE'),
					has_schema_privilege($1, $3, 'CREATE')`, role, keySchema+"."+f, keySchema).Scan(&exec, &usage, &create)
				if err != nil {
					t.Fatal(err)
				}
				if !exec || !usage || create {
					t.Errorf("%s on %s: EXECUTE %v, USAGE %v, CREATE %v; want true, true, false", role, f, exec, usage, create)
				}
			}
		}
		var schemaPrivs string
		err := c.QueryRow(ctx, `SELECT has_schema_privilege($1, 'bulkhead', 'USAGE')::text || has_schema_privilege($1, 'bulkhead', 'CREATE')::text ||
			has_schema_privilege($2, $3, 'USAGE')::text || has_schema_privilege($2, $3, 'CREATE')::text ||
			has_schema_privilege($2, 'bulkhead', 'USAGE')::text || has_schema_privilege($1, $3, 'USAGE')::text`,
			d.App, tid.siloRole(), tid.siloSchema()).Scan(&schemaPrivs)
		if err != nil {
			t.Fatal(err)
		}
		if schemaPrivs != "truefalsetruefalsefalsefalse" {
			t.Errorf("schema privileges = %s; want USAGE without CREATE on its own schema only, for each role", schemaPrivs)
		}
	})

	// Migrates running at once take turns.
	t.Run("Concurrent", func(t *testing.T) {
		t.Parallel()
		d := newTestDB(t, t, false)
		var wg sync.WaitGroup
		for range 3 {
			wg.Go(func() {
				if err := Migrate(ctx, d.ownerURL(t), d.App); err != nil {
					t.Errorf("Migrate = %v", err)
				}
			})
		}
		wg.Wait()
		openStore(t, d, nil)
	})

	t.Run("BadAppRole", func(t *testing.T) {
		t.Parallel()
		d := newTestDB(t, t, false)
		for _, tc := range []struct{ role, want string }{
			{"no_such_role_" + strings.TrimPrefix(d.Name, "bulkhead_test_"), "does not exist"},
			{d.Owner, "must not be the owner role"},
		} {
			if err := Migrate(ctx, d.ownerURL(t), tc.role); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Migrate(%q) = %v, want an error containing %q", tc.role, err, tc.want)
			}
		}
	})
}
