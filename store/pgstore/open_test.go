package pgstore

import (
	"context"
	"strings"
	"testing"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// TestPostgresOpenRefuses checks that Open refuses every role and schema
// under which row-level security would not hold, and names the problem.
func TestPostgresOpenRefuses(t *testing.T) {
	superURL(t)
	t.Parallel()
	ctx := context.Background()
	for _, tc := range []struct {
		name string
		// break_ spoils d and returns the URL to open, or "" for the
		// application role's.
		break_ func(t *testing.T, d *testDB) string
		want   []string
	}{
		{"Superuser", func(t *testing.T, d *testDB) string { return d.adminURL(t) },
			[]string{"is a superuser; row-level security would not bind it"}},
		{"BypassRLS", func(t *testing.T, d *testDB) string {
			superExec(t, d.Super, "ALTER ROLE "+ident(d.App)+" BYPASSRLS")
			return ""
		}, []string{"role " + "%app" + " has BYPASSRLS; row-level security would not bind it"}},
		{"MemberOfBypassRLS", func(t *testing.T, d *testDB) string {
			r := d.role(t, "bypass", "NOLOGIN BYPASSRLS")
			superExec(t, d.Super, "GRANT "+ident(r)+" TO "+ident(d.App))
			return ""
		}, []string{"is a member of %prefix_bypass, which has BYPASSRLS"}},
		{"CreateRole", func(t *testing.T, d *testDB) string {
			superExec(t, d.Super, "ALTER ROLE "+ident(d.App)+" CREATEROLE")
			return ""
		}, []string{"role %app has CREATEROLE"}},
		{"Inherit", func(t *testing.T, d *testDB) string {
			superExec(t, d.Super, "ALTER ROLE "+ident(d.App)+" INHERIT")
			return ""
		}, []string{"role %app has INHERIT"}},
		{"OwnerRole", func(t *testing.T, d *testDB) string { return d.ownerURL(t) },
			[]string{"role %owner owns schema bulkhead, table api_keys", "role %owner has CREATEROLE"}},
		{"MemberOfOwner", func(t *testing.T, d *testDB) string {
			superExec(t, d.Super, "GRANT "+ident(d.Owner)+" TO "+ident(d.App))
			return ""
		}, []string{"role %app can act as %owner, the owner of schema bulkhead, table api_keys"}},
		{"NoForce", func(t *testing.T, d *testDB) string {
			superExec(t, d.ownerURL(t), "ALTER TABLE bulkhead.records NO FORCE ROW LEVEL SECURITY")
			return ""
		}, []string{"table records does not FORCE ROW LEVEL SECURITY"}},
		{"Disabled", func(t *testing.T, d *testDB) string {
			superExec(t, d.ownerURL(t), "ALTER TABLE bulkhead.users DISABLE ROW LEVEL SECURITY")
			return ""
		}, []string{"table users does not ENABLE ROW LEVEL SECURITY"}},
		{"NoPolicy", func(t *testing.T, d *testDB) string {
			superExec(t, d.ownerURL(t), "DROP POLICY tenant_isolation ON bulkhead.usage")
			return ""
		}, []string{"table usage has no row-level security policy"}},
		{"SiloNoForce", func(t *testing.T, d *testDB) string {
			tid, _ := parseTenantID(createTenant(t, openStore(t, d, nil), tenant.Silo))
			superExec(t, d.ownerURL(t), "ALTER TABLE "+tid.siloSchema()+".audit_log NO FORCE ROW LEVEL SECURITY")
			return ""
		}, []string{"table t_", ".audit_log does not FORCE ROW LEVEL SECURITY"}},
		{"MissingGrant", func(t *testing.T, d *testDB) string {
			superExec(t, d.ownerURL(t), "REVOKE INSERT ON bulkhead.records FROM "+ident(d.App))
			return ""
		}, []string{"role %app lacks INSERT on table records: run Migrate with appRole %app"}},
		{"MissingFunctionGrant", func(t *testing.T, d *testDB) string {
			superExec(t, d.ownerURL(t), "REVOKE EXECUTE ON FUNCTION bulkhead_keys.num(jsonb, text) FROM PUBLIC")
			return ""
		}, []string{"role %app cannot execute function bulkhead_keys.num(jsonb, text): run Migrate"}},
		{"CreateOnDatabase", func(t *testing.T, d *testDB) string {
			superExec(t, d.Super, "GRANT CREATE ON DATABASE "+ident(d.Name)+" TO "+ident(d.App))
			return ""
		}, []string{"role %app may create schemas in database"}},
		{"SecurityDefiner", func(t *testing.T, d *testDB) string {
			superExec(t, d.ownerURL(t), "CREATE FUNCTION bulkhead.peek() RETURNS bigint SECURITY DEFINER LANGUAGE sql AS 'SELECT count(*) FROM bulkhead.records'")
			return ""
		}, []string{"function peek is SECURITY DEFINER"}},
		{"View", func(t *testing.T, d *testDB) string {
			superExec(t, d.ownerURL(t), "CREATE VIEW bulkhead.all_records AS SELECT * FROM bulkhead.records",
				"GRANT SELECT ON bulkhead.all_records TO "+ident(d.App))
			return ""
		}, []string{"view all_records runs with its owner's privileges"}},
		{"OldSchema", func(t *testing.T, d *testDB) string {
			superExec(t, d.ownerURL(t), "DELETE FROM bulkhead.goose_db_version WHERE version_id = (SELECT max(version_id) FROM bulkhead.goose_db_version)")
			return ""
		}, []string{"the database schema is at version", "run Migrate"}},
		{"ProvisionAsApp", func(t *testing.T, d *testDB) string { return "provision=app" },
			[]string{"Options.ProvisionURL connects as %app, the application role"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			d := newTestDB(t, t, true)
			url := tc.break_(t, d)
			opts := &Options{ProvisionURL: d.ownerURL(t)}
			switch url {
			case "":
				url = d.appURL(t)
			case "provision=app":
				url, opts.ProvisionURL = d.appURL(t), d.appURL(t)
			}
			s, err := Open(ctx, url, opts)
			if err == nil {
				s.Close()
				t.Fatal("Open succeeded")
			}
			t.Logf("Open = %v", err)
			for _, w := range tc.want {
				w = strings.NewReplacer("%app", d.App, "%owner", d.Owner, "%prefix", strings.TrimSuffix(d.Owner, "_owner")).Replace(w)
				if !strings.Contains(err.Error(), w) {
					t.Errorf("Open = %v\nwant an error containing %q", err, w)
				}
			}
		})
	}

	t.Run("BeforeMigrate", func(t *testing.T) {
		t.Parallel()
		d := newTestDB(t, t, false)
		_, err := Open(ctx, d.appURL(t), nil)
		if err == nil || !strings.Contains(err.Error(), "schema bulkhead does not exist in database "+d.Name+": run Migrate") {
			t.Errorf("Open before Migrate = %v, want an error that says to run Migrate", err)
		}
	})

	// The setup the package documentation describes opens.
	t.Run("Accepts", func(t *testing.T) {
		t.Parallel()
		d := newTestDB(t, t, true)
		s := openStore(t, d, nil)
		if err := s.Ping(ctx); err != nil {
			t.Errorf("Ping = %v", err)
		}
	})
}
