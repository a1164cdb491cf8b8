package pgstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// These tests prove isolation in the database itself: they run raw SQL as
// the application role, not through the store, and show that row-level
// security, the grants and the role attributes hold even for queries the
// store would never send.

var base = time.Date(2025, 3, 14, 15, 9, 26, 535897000, time.UTC)

// createTenant creates a tenant of isolation iso through s.
func createTenant(t testing.TB, s *Store, iso tenant.Isolation) tenant.ID {
	t.Helper()
	id := uuid.NewString()
	_, err := s.CreateTenant(context.Background(), &store.CreateTenantParams{ID: tenant.ID(id), Slug: tenant.Slug("t-" + id[:8]),
		Name: "Tenant " + id[:8], Plan: tenant.DefaultPlan, Isolation: iso, CreatedAt: base}, nil, nil)
	if err != nil {
		t.Fatalf("CreateTenant(%s) = %v", iso, err)
	}
	return tenant.ID(id)
}

// populate writes a row into every tenant table of tid through s.
func populate(t testing.TB, s *Store, tid tenant.ID) {
	t.Helper()
	ctx := context.Background()
	err := s.InTenant(ctx, tid, func(tx store.Tx) error {
		things := &store.Collection{Name: "things", Indexes: []store.Index{{Fields: []string{"owner"}}}, CreatedAt: base, UpdatedAt: base}
		if _, err := tx.PutCollection(ctx, things); err != nil {
			return err
		}
		errs := []error{
			tx.CreateRecord(ctx, &store.Record{Collection: "things", ID: "r1", Version: 1,
				Data: json.RawMessage(`{"owner":"` + string(tid) + `"}`), CreatedAt: base, UpdatedAt: base}),
			tx.CreateUser(ctx, &store.User{ID: "u1", Email: "u1@example.com", PasswordHash: "h", Role: tenant.Owner, CreatedAt: base, UpdatedAt: base}),
			tx.CreateAPIKey(ctx, &store.APIKey{ID: "k1", Name: "k", Role: tenant.Admin, Hash: []byte("h"), CreatedBy: "u1", CreatedAt: base}),
			tx.CreateRefreshToken(ctx, &store.RefreshToken{ID: "t1", UserID: "u1", Family: "f1", Hash: []byte("h"), ExpiresAt: base, CreatedAt: base}),
			tx.PutIdempotency(ctx, &store.Idempotency{Key: "i1", RequestHash: []byte("q"), Response: []byte("r"), CreatedAt: base}),
			tx.CreateContainment(ctx, &store.Containment{ID: "c1", Kind: store.ContainSuspended, Subject: "api_key:k1", Reason: "r", Count: 1, CreatedBy: "system", CreatedAt: base}),
			tx.PutOIDCConfig(ctx, &store.OIDCConfig{Issuer: "https://idp.example", ClientID: "c", SealedSecret: []byte("s"), DefaultRole: tenant.Viewer, CreatedAt: base, UpdatedAt: base}),
			tx.CreateIdentityLink(ctx, &store.IdentityLink{Issuer: "https://idp.example", Subject: "s1", UserID: "u1", CreatedAt: base}),
			tx.PutMFA(ctx, &store.MFA{UserID: "u1", Secret: []byte("s"), CreatedAt: base}),
			tx.ConfirmMFA(ctx, "u1", base, 1, []*store.RecoveryCode{{ID: "c1", Hash: []byte("h")}}),
			tx.LockLogin(ctx, "s1", base, "test"),
			tx.RememberLoginAddress(ctx, "u1", "192.0.2.1", base, 10),
			tx.PutAuthPolicy(ctx, &store.AuthPolicy{MFARequiredRole: tenant.Admin, UpdatedAt: base}),
			tx.CreateBreakGlass(ctx, &store.BreakGlass{ID: "g1", Reason: "r", Actor: "operator", CreatedAt: base, ExpiresAt: base.Add(time.Hour)}),
			tx.CreateJob(ctx, &store.Job{ID: "j1", Kind: "k", State: store.JobQueued, Args: []byte(`{}`), CreatedAt: base, UpdatedAt: base}),
		}
		if _, _, err := tx.AuditHead(ctx); err != nil {
			return err
		}
		errs = append(errs,
			tx.AppendAudit(ctx, &store.AuditEntry{Seq: 1, Time: base, Actor: "a", Action: "x", Resource: "r", RequestID: "q", Outcome: "success", Hash: []byte("h")}),
			tx.PutAuditCheckpoint(ctx, &store.AuditCheckpoint{Seq: 1, Hash: []byte("h"), KeyID: "k", Signature: []byte("s"), Time: base}),
			tx.PutAuditRetention(ctx, &store.AuditRetention{Keep: time.Hour, UpdatedBy: "u1", UpdatedAt: base}))
		errs = append(errs, tx.CutAudit(ctx, &store.AuditCut{Seq: 1, Hash: []byte("h"), KeyID: "k", Signature: []byte("s"), Time: base}))
		return errors.Join(errs...)
	})
	if err != nil {
		t.Fatalf("populate %s: %v", tid, err)
	}
}

// rawInserts insert one row into each tenant table of schema %[1]s for
// tenant $1, with names no populated row uses.
var rawInserts = map[string]string{
	"users":              `INSERT INTO %[1]s.users (tenant_id, id, email, password_hash, role, created_at, updated_at) VALUES ($1, 'raw', 'raw@example.com', 'h', 'viewer', now(), now())`,
	"api_keys":           `INSERT INTO %[1]s.api_keys (tenant_id, id, name, role, hash, created_by, created_at) VALUES ($1, 'raw', 'raw', 'viewer', '\x00', 'raw', now())`,
	"refresh_tokens":     `INSERT INTO %[1]s.refresh_tokens (tenant_id, id, user_id, family, hash, expires_at, created_at) VALUES ($1, 'raw', 'raw', 'raw', '\x00', now(), now())`,
	"collections":        `INSERT INTO %[1]s.collections (tenant_id, name, created_at, updated_at) VALUES ($1, 'raw', now(), now())`,
	"collection_indexes": `INSERT INTO %[1]s.collection_indexes (tenant_id, collection, physical, fields, is_unique, position, state, error, created_at) VALUES ($1, 'raw', 'raw', '["a"]', false, 0, 'building', '', now())`,
	"records":            `INSERT INTO %[1]s.records (tenant_id, collection, id, version, data, created_at, updated_at) VALUES ($1, 'things', 'raw', 1, '{}', now(), now())`,
	"idempotency_keys":   `INSERT INTO %[1]s.idempotency_keys (tenant_id, key, created_at) VALUES ($1, 'raw', now())`,
	"audit_log":          `INSERT INTO %[1]s.audit_log (tenant_id, seq, time, actor, action, resource, request_id, outcome) VALUES ($1, 1000, now(), 'a', 'a', 'r', 'q', 'o')`,
	"audit_checkpoints":  `INSERT INTO %[1]s.audit_checkpoints (tenant_id, seq, key_id, time) VALUES ($1, 1000, 'k', now())`,
	"audit_heads":        `INSERT INTO %[1]s.audit_heads (tenant_id, seq) VALUES ($1, 1000) ON CONFLICT (tenant_id) DO UPDATE SET seq = 1000`,
	"containments":       `INSERT INTO %[1]s.containments (tenant_id, id, kind, subject, reason, count, created_by, created_at) VALUES ($1, 'raw', 'flagged', 'api_key:raw', 'r', 1, 'system', now())`,
	"oidc_configs":       `INSERT INTO %[1]s.oidc_configs (tenant_id, issuer, client_id, client_secret, default_role, jit, created_at, updated_at) VALUES ($1, 'https://i', 'c', 's', 'viewer', false, now(), now()) ON CONFLICT (tenant_id) DO NOTHING`,
	"identity_links":     `INSERT INTO %[1]s.identity_links (tenant_id, issuer, subject, user_id, created_at) VALUES ($1, 'https://i', 'raw', 'u1', now())`,
	"break_glass":        `INSERT INTO %[1]s.break_glass (tenant_id, id, reason, actor, created_at, expires_at) VALUES ($1, 'raw', 'raw', 'operator', now(), now())`,
	"audit_retention":    `INSERT INTO %[1]s.audit_retention (tenant_id, keep_seconds, updated_by, updated_at) VALUES ($1, 60, 'raw', now()) ON CONFLICT (tenant_id) DO UPDATE SET keep_seconds = 61`,
	"audit_cuts":         `INSERT INTO %[1]s.audit_cuts (tenant_id, seq, hash, key_id, signature, time) VALUES ($1, 1000, '\x00', 'k', '\x00', now())`,
	"jobs":               `INSERT INTO %[1]s.jobs (tenant_id, id, kind, state, args, created_at, updated_at) VALUES ($1, 'raw', 'k', 'queued', '\x00', now(), now())`,
	"usage":              `INSERT INTO %[1]s.usage (tenant_id, records, bytes) VALUES ($1, 1000, 1000) ON CONFLICT (tenant_id) DO UPDATE SET records = 1000`,
	"user_mfa":           `INSERT INTO %[1]s.user_mfa (tenant_id, user_id, secret, last_step, created_at) VALUES ($1, 'raw', '\x00', 0, now())`,
	"recovery_codes":     `INSERT INTO %[1]s.recovery_codes (tenant_id, user_id, id, hash) VALUES ($1, 'raw', 'raw', '\x00')`,
	"login_throttle":     `INSERT INTO %[1]s.login_throttle (tenant_id, subject, failures, last_failure_at, locked_until, reason) VALUES ($1, 'raw', 0, now(), now(), '')`,
	"login_addresses":    `INSERT INTO %[1]s.login_addresses (tenant_id, user_id, addr, last_seen) VALUES ($1, 'raw', 'raw', now())`,
	"auth_policy":        `INSERT INTO %[1]s.auth_policy (tenant_id, mfa_required_role, updated_at) VALUES ($1, 'admin', now()) ON CONFLICT (tenant_id) DO UPDATE SET mfa_required_role = 'owner'`,
}

// mayUpdate reports whether the application role has UPDATE on a tenant
// table; UPDATE on the others is refused before row-level security looks.
func mayUpdate(table string) bool {
	for _, g := range tenantTableGrants {
		if g.table == table {
			return slices.Contains(g.privs, "UPDATE")
		}
	}
	panic("no table " + table)
}

// sqlState returns err's SQLSTATE, or "" if it has none.
func sqlState(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Code
	}
	return ""
}

// inTx runs fn in a transaction on c that is always rolled back, after
// setting bulkhead.tenant_id locally to tid unless tid is empty.
func inTx(t *testing.T, c *pgx.Conn, tid tenant.ID, fn func(tx pgx.Tx)) {
	t.Helper()
	ctx := context.Background()
	tx, err := c.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback(ctx)
	if tid != "" {
		if _, err := tx.Exec(ctx, "SELECT set_config('bulkhead.tenant_id', $1, true)", string(tid)); err != nil {
			t.Fatal(err)
		}
	}
	fn(tx)
}

// mustFail runs stmt in a savepoint of tx and checks that it fails with
// SQLSTATE code and a message containing msg.
func mustFail(t *testing.T, tx pgx.Tx, code, msg, stmt string, args ...any) {
	t.Helper()
	ctx := context.Background()
	sp, err := tx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Rollback(ctx)
	_, err = sp.Exec(ctx, stmt, args...)
	if sqlState(err) != code || !strings.Contains(err.Error(), msg) {
		t.Errorf("%s\n= %v, want SQLSTATE %s (%s)", firstLine(stmt), err, code, msg)
	}
}

// mustAffect runs stmt in a savepoint of tx and checks how many rows it
// affected.
func mustAffect(t *testing.T, tx pgx.Tx, want int64, stmt string, args ...any) {
	t.Helper()
	ctx := context.Background()
	sp, err := tx.Begin(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer sp.Rollback(ctx)
	tag, err := sp.Exec(ctx, stmt, args...)
	if err != nil || tag.RowsAffected() != want {
		t.Errorf("%s\n= %v rows, %v; want %d rows", firstLine(stmt), tag.RowsAffected(), err, want)
	}
}

func firstLine(s string) string { l, _, _ := strings.Cut(s, "\n"); return l }

func count(t *testing.T, q interface {
	QueryRow(context.Context, string, ...any) pgx.Row
}, stmt string, args ...any) int64 {
	t.Helper()
	var n int64
	if err := q.QueryRow(context.Background(), stmt, args...).Scan(&n); err != nil {
		t.Fatalf("%s = %v", firstLine(stmt), err)
	}
	return n
}

// rlsBundle is a database with two populated pooled tenants and two
// populated silo tenants, and a raw connection of the application role.
type rlsBundle struct {
	db         *testDB
	s          *Store
	a, b       tenant.ID // pooled
	siloA      tenant.ID
	siloB      tenant.ID
	app        *pgx.Conn
	ctx        context.Context
	siloSchema func(tenant.ID) string
	siloRole   func(tenant.ID) string
}

func setupRLS(t *testing.T) *rlsBundle {
	t.Helper()
	d := newTestDB(t, t, true)
	s := openStore(t, d, nil)
	b := &rlsBundle{db: d, s: s, ctx: context.Background()}
	b.a, b.b = createTenant(t, s, tenant.Pooled), createTenant(t, s, tenant.Pooled)
	b.siloA, b.siloB = createTenant(t, s, tenant.Silo), createTenant(t, s, tenant.Silo)
	for _, tid := range []tenant.ID{b.a, b.b, b.siloA, b.siloB} {
		populate(t, s, tid)
	}
	b.app = connect(t, d.appURL(t))
	b.siloSchema = func(id tenant.ID) string { tid, _ := parseTenantID(id); return tid.siloSchema() }
	b.siloRole = func(id tenant.ID) string { tid, _ := parseTenantID(id); return tid.siloRole() }
	return b
}

func TestPostgresRLS(t *testing.T) {
	superURL(t)
	t.Parallel()
	b := setupRLS(t)
	ctx := b.ctx

	// With no tenant set, every tenant table reads empty and takes no
	// write: inserts fail and updates and deletes find nothing. The same
	// holds after another transaction on the connection set a tenant
	// locally, when the setting exists as ''.
	t.Run("NoTenant", func(t *testing.T) {
		for round := range 2 {
			if round == 1 {
				inTx(t, b.app, b.a, func(pgx.Tx) {})
			}
			var setting *string
			b.app.QueryRow(ctx, "SELECT current_setting('bulkhead.tenant_id', true)").Scan(&setting)
			if round == 1 && (setting == nil || *setting != "") {
				t.Errorf("after a transaction set it locally, bulkhead.tenant_id = %v, want ''", setting)
			}
			for _, table := range tenantTables {
				q := fmt.Sprintf("SELECT count(*) FROM bulkhead.%s", table)
				if n := count(t, b.app, q); n != 0 {
					t.Errorf("no tenant: %s = %d, want 0", q, n)
				}
				inTx(t, b.app, "", func(tx pgx.Tx) {
					if n := count(t, tx, q); n != 0 {
						t.Errorf("no tenant, in a transaction: %s = %d, want 0", q, n)
					}
					mustFail(t, tx, "42501", "row-level security", fmt.Sprintf(rawInserts[table], "bulkhead"), string(b.a))
					if mayUpdate(table) {
						mustAffect(t, tx, 0, fmt.Sprintf("UPDATE bulkhead.%s SET tenant_id = tenant_id", table))
					} else {
						mustFail(t, tx, "42501", "permission denied", fmt.Sprintf("UPDATE bulkhead.%s SET tenant_id = tenant_id", table))
					}
					mustAffect(t, tx, 0, fmt.Sprintf("DELETE FROM bulkhead.%s", table))
				})
			}
		}
	})

	// With tenant A set, B's rows are invisible and out of reach: inserting
	// a row of B's, or moving a row of A's to B, violates the policy.
	t.Run("OtherTenant", func(t *testing.T) {
		for _, table := range tenantTables {
			inTx(t, b.app, b.a, func(tx pgx.Tx) {
				if n := count(t, tx, fmt.Sprintf("SELECT count(*) FROM bulkhead.%s WHERE tenant_id = $1", table), string(b.a)); n == 0 {
					t.Errorf("tenant A sees none of its own rows in %s: the test would pass vacuously", table)
				}
				if n := count(t, tx, fmt.Sprintf("SELECT count(*) FROM bulkhead.%s WHERE tenant_id <> $1", table), string(b.a)); n != 0 {
					t.Errorf("tenant A sees %d rows of other tenants in %s", n, table)
				}
				mustFail(t, tx, "42501", "new row violates row-level security policy", fmt.Sprintf(rawInserts[table], "bulkhead"), string(b.b))
				if mayUpdate(table) {
					mustFail(t, tx, "42501", "new row violates row-level security policy",
						fmt.Sprintf("UPDATE bulkhead.%s SET tenant_id = $1", table), string(b.b))
					mustAffect(t, tx, 0, fmt.Sprintf("UPDATE bulkhead.%s SET tenant_id = tenant_id WHERE tenant_id = $1", table), string(b.b))
				} else {
					mustFail(t, tx, "42501", "permission denied", fmt.Sprintf("UPDATE bulkhead.%s SET tenant_id = $1", table), string(b.b))
				}
				mustAffect(t, tx, 0, fmt.Sprintf("DELETE FROM bulkhead.%s WHERE tenant_id = $1", table), string(b.b))
			})
		}
		// A's own writes work, so the refusals above are the policy's.
		inTx(t, b.app, b.a, func(tx pgx.Tx) {
			mustAffect(t, tx, 1, fmt.Sprintf(rawInserts["collections"], "bulkhead"), string(b.a))
		})
	})

	// The application role cannot turn row-level security off.
	t.Run("CannotDisable", func(t *testing.T) {
		inTx(t, b.app, b.a, func(tx pgx.Tx) {
			if _, err := tx.Exec(ctx, "SET LOCAL row_security = off"); err != nil {
				t.Fatal(err)
			}
			mustFail(t, tx, "42501", "row-level security", "SELECT count(*) FROM bulkhead.records")
		})
		inTx(t, b.app, "", func(tx pgx.Tx) {
			for _, table := range []string{"records", "users", "usage"} {
				for _, stmt := range []string{
					"ALTER TABLE bulkhead.%s DISABLE ROW LEVEL SECURITY",
					"ALTER TABLE bulkhead.%s NO FORCE ROW LEVEL SECURITY",
					"DROP POLICY tenant_isolation ON bulkhead.%s",
					"ALTER POLICY tenant_isolation ON bulkhead.%s USING (true)",
					"CREATE POLICY open ON bulkhead.%s USING (true)",
				} {
					mustFail(t, tx, "42501", "must be owner", fmt.Sprintf(stmt, table))
				}
				mustFail(t, tx, "42501", "permission denied", fmt.Sprintf("TRUNCATE bulkhead.%s", table))
			}
			mustFail(t, tx, "42501", "permission denied", "SET ROLE "+ident(b.db.Owner))
			mustFail(t, tx, "42501", "permission denied", "SELECT set_config('role', $1, false)", b.db.Owner)
		})
	})

	// The application role can create no role, schema or table.
	t.Run("NoDDL", func(t *testing.T) {
		inTx(t, b.app, "", func(tx pgx.Tx) {
			mustFail(t, tx, "42501", "permission denied", "CREATE ROLE "+ident(b.db.App+"_x"))
			mustFail(t, tx, "42501", "permission denied", "CREATE SCHEMA evil")
			mustFail(t, tx, "42501", "permission denied", "CREATE TABLE bulkhead.evil (id int)")
			mustFail(t, tx, "42501", "permission denied", "CREATE TABLE public.evil (id int)")
			mustFail(t, tx, "42501", "permission denied", "CREATE TEMP TABLE evil (id int)")
			mustFail(t, tx, "42501", "permission denied", "CREATE VIEW bulkhead.evil AS SELECT 1")
			mustFail(t, tx, "42501", "", "GRANT "+ident(b.db.Owner)+" TO "+ident(b.db.App))
		})
	})

	// A silo tenant's role reaches its own schema only: not the pooled
	// tables, not another silo's schema. Without switching to it, the
	// application role reaches no silo schema at all.
	t.Run("Silo", func(t *testing.T) {
		schemaA, schemaB := b.siloSchema(b.siloA), b.siloSchema(b.siloB)
		for _, table := range tenantTables {
			inTx(t, b.app, b.siloA, func(tx pgx.Tx) {
				mustFail(t, tx, "42501", "permission denied for schema "+schemaA, fmt.Sprintf("SELECT count(*) FROM %s.%s", schemaA, table))
			})
			inTx(t, b.app, b.siloA, func(tx pgx.Tx) {
				if _, err := tx.Exec(ctx, "SELECT set_config('role', $1, true)", b.siloRole(b.siloA)); err != nil {
					t.Fatal(err)
				}
				if n := count(t, tx, fmt.Sprintf("SELECT count(*) FROM %s.%s", schemaA, table)); n == 0 {
					t.Errorf("silo A's role sees none of its rows in %s: the test would pass vacuously", table)
				}
				mustFail(t, tx, "42501", "permission denied for schema bulkhead", fmt.Sprintf("SELECT count(*) FROM bulkhead.%s", table))
				mustFail(t, tx, "42501", "permission denied for schema "+schemaB, fmt.Sprintf("SELECT count(*) FROM %s.%s", schemaB, table))
				// Row-level security binds inside the silo schema too.
				mustFail(t, tx, "42501", "new row violates row-level security policy", fmt.Sprintf(rawInserts[table], schemaA), string(b.siloB))
				mustFail(t, tx, "42501", "must be owner", fmt.Sprintf("ALTER TABLE %s.%s NO FORCE ROW LEVEL SECURITY", schemaA, table))
			})
			inTx(t, b.app, b.siloB, func(tx pgx.Tx) {
				// Silo A's role with silo B's tenant set sees nothing.
				if _, err := tx.Exec(ctx, "SELECT set_config('role', $1, true)", b.siloRole(b.siloA)); err != nil {
					t.Fatal(err)
				}
				if n := count(t, tx, fmt.Sprintf("SELECT count(*) FROM %s.%s", schemaA, table)); n != 0 {
					t.Errorf("silo A's schema shows %d rows of %s to tenant B", n, table)
				}
			})
		}
		inTx(t, b.app, b.siloA, func(tx pgx.Tx) {
			if _, err := tx.Exec(ctx, "SELECT set_config('role', $1, true)", b.siloRole(b.siloA)); err != nil {
				t.Fatal(err)
			}
			mustFail(t, tx, "42501", "permission denied", "CREATE TABLE "+schemaA+".evil (id int)")
			// SET ROLE is checked against the session's role, the
			// application role, which may switch to any silo role: the
			// store picks the role, and row-level security still binds
			// the tenant. With tenant A set, silo B's role sees nothing
			// in B's schema.
			if _, err := tx.Exec(ctx, "SELECT set_config('role', $1, true)", b.siloRole(b.siloB)); err != nil {
				t.Fatal(err)
			}
			for _, table := range tenantTables {
				if n := count(t, tx, fmt.Sprintf("SELECT count(*) FROM %s.%s", schemaB, table)); n != 0 {
					t.Errorf("silo B's schema shows %d rows of %s to tenant A", n, table)
				}
			}
		})
	})
}

// TestPostgresSessionSetting shows that a tenant set with a session-level
// SET on one of the store's connections does not reach any store
// transaction that later runs on it: every store transaction sets the
// tenant locally, a control-plane one to the empty string. (A raw
// transaction that set nothing would see it, which is why the store never
// uses SET.)
func TestPostgresSessionSetting(t *testing.T) {
	superURL(t)
	t.Parallel()
	d := newTestDB(t, t, true)
	s := openStore(t, d, &Options{MaxConns: 1})
	ctx := context.Background()
	a, b, empty := createTenant(t, s, tenant.Pooled), createTenant(t, s, tenant.Pooled), createTenant(t, s, tenant.Pooled)
	populate(t, s, a)
	populate(t, s, b)

	// With one connection in the pool, every transaction below runs on
	// the connection this SET lands on.
	c, err := s.pool.Acquire(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Exec(ctx, "SET bulkhead.tenant_id = '"+string(a)+"'"); err != nil {
		t.Fatal(err)
	}
	pid := c.Conn().PgConn().PID()
	if n := count(t, c, "SELECT count(*) FROM bulkhead.records"); n != 1 {
		t.Fatalf("the session-level SET shows %d records to raw SQL, want A's 1", n)
	}
	c.Release()

	probe := func(q *txn, want string) {
		t.Helper()
		var got string
		var backend uint32
		if err := q.queryRow(ctx, "SELECT current_setting('bulkhead.tenant_id'), pg_backend_pid()").Scan(&got, &backend); err != nil {
			t.Fatal(err)
		}
		if got != want || backend != pid {
			t.Errorf("bulkhead.tenant_id = %q on backend %d, want %q on %d", got, backend, want, pid)
		}
	}
	for range 3 {
		for _, tid := range []tenant.ID{b, empty} {
			err := s.ReadTenant(ctx, tid, func(stx store.Tx) error {
				probe(stx.(*tx).q, string(tid))
				page, err := stx.ListRecords(ctx, &store.ListRecordsParams{Collection: "things", Limit: 10})
				if err != nil {
					return err
				}
				for _, r := range page.Records {
					if !strings.Contains(string(r.Data), string(tid)) {
						t.Errorf("tenant %s sees %s", tid, r.Data)
					}
				}
				return nil
			})
			if err != nil {
				t.Fatal(err)
			}
		}
		err := s.ReadPlatform(ctx, func(ptx store.PlatformTx) error {
			probe(ptx.(*platformTx).q, "")
			return nil
		})
		if err != nil {
			t.Fatal(err)
		}
	}
}

// TestPostgresInterleaved runs 10,000 transactions of three tenants (and
// of no tenant) over a pool of two connections, interleaved by eight
// goroutines, committing some and rolling back others. Each transaction
// sets its tenant locally and checks that it sees exactly that setting and
// only that tenant's rows: no setting survives into the next transaction
// on a connection.
func TestPostgresInterleaved(t *testing.T) {
	superURL(t)
	t.Parallel()
	d := newTestDB(t, t, true)
	s := openStore(t, d, nil)
	tenants := []tenant.ID{createTenant(t, s, tenant.Pooled), createTenant(t, s, tenant.Pooled), createTenant(t, s, tenant.Pooled), ""}
	for _, tid := range tenants[:3] {
		populate(t, s, tid)
	}
	pool := rawPool(t, d.appURL(t), 2)
	ctx := context.Background()
	const goroutines, perGoroutine = 8, 1250
	var wg sync.WaitGroup
	errs := make(chan error, goroutines)
	for g := range goroutines {
		wg.Go(func() {
			for i := range perGoroutine {
				tid := tenants[(g+i)%len(tenants)]
				if err := checkedTx(ctx, pool, tid, i%3 == 0); err != nil {
					errs <- fmt.Errorf("goroutine %d, transaction %d (tenant %q): %w", g, i, tid, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
}

// checkedTx runs one transaction for tid (none if empty) in one batch and
// checks what it sees.
func checkedTx(ctx context.Context, pool interface {
	SendBatch(context.Context, *pgx.Batch) pgx.BatchResults
}, tid tenant.ID, commit bool) error {
	b := &pgx.Batch{}
	b.BeginTx(pgx.TxOptions{})
	if tid != "" {
		b.Queue("SELECT set_config('bulkhead.tenant_id', $1, true)", string(tid))
	}
	b.Queue("SELECT coalesce(current_setting('bulkhead.tenant_id', true), '')")
	b.Queue(`SELECT (SELECT count(*) FROM bulkhead.records), (SELECT count(*) FROM bulkhead.users),
		(SELECT count(*) FROM bulkhead.records WHERE tenant_id::text IS DISTINCT FROM $1)`, string(tid))
	br := pool.SendBatch(ctx, b)
	tx := br.Tx()
	defer tx.Rollback(ctx)
	err := func() error {
		defer br.Close()
		if _, err := br.Exec(); err != nil {
			return err
		}
		if tid != "" {
			if _, err := br.Exec(); err != nil {
				return err
			}
		}
		var setting string
		if err := br.QueryRow().Scan(&setting); err != nil {
			return err
		}
		if setting != string(tid) {
			return fmt.Errorf("bulkhead.tenant_id = %q", setting)
		}
		var records, users, others int64
		if err := br.QueryRow().Scan(&records, &users, &others); err != nil {
			return err
		}
		want := int64(1)
		if tid == "" {
			want = 0
		}
		if records != want || users != want || others != 0 {
			return fmt.Errorf("sees %d records, %d users, %d records of other tenants; want %d, %d, 0", records, users, others, want, want)
		}
		return nil
	}()
	if err != nil {
		return err
	}
	if commit {
		return tx.Commit(ctx)
	}
	return tx.Rollback(ctx)
}
