package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/bulkheadhq/bulkhead/internal/auth"
	"github.com/bulkheadhq/bulkhead/internal/contain"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/internal/observe"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/pgstore"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
	"github.com/bulkheadhq/bulkhead/store/sqlitestore"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// testBundle is a real bulkhead API served over loopback HTTP, on a real
// SQLite database in a temporary directory.
type testBundle struct {
	t     *testing.T
	srv   *httptest.Server
	core  *core.Core
	store store.Store
	// jobs is the node's job runner; nil when the test brought a queue
	// of its own.
	jobs *jobs.Runner
	// dir holds bulkhead.db and tenants/<id>.db, for tests that tamper with
	// the database directly.
	dir   string
	admin string
}

// fastPasswords keeps argon2id cheap in tests; production uses
// auth.DefaultPasswordParams.
var fastPasswords = auth.PasswordParams{Memory: 64, Time: 1, Threads: 1}

const testAdminToken = "bho_test-operator-token-0123456789"

// setup starts a server. opts may change its configuration, such as
// turning admission control on; by default it admits everything.
func setup(t *testing.T, opts ...func(*Config)) *testBundle {
	t.Helper()
	return setupIn(t, t.TempDir(), opts...)
}

// setupIn is setup on the database and keys in dir, so that two servers
// can share them like two nodes of one deployment.
//
// The store is SQLite in dir, or with BULKHEAD_TEST_BACKEND=postgres a
// PostgreSQL database of the test's own (one per dir), connected as the
// application role, so that every HTTP test runs on both backends.
func setupIn(t *testing.T, dir string, opts ...func(*Config)) *testBundle {
	t.Helper()
	return setupCore(t, dir, nil, opts...)
}

// setupCore is setupIn with coreOpt, if not nil, changing the Core's
// configuration.
func setupCore(t *testing.T, dir string, coreOpt func(*core.Config), opts ...func(*Config)) *testBundle {
	t.Helper()
	return setupStore(t, dir, openTestStore(t, dir), coreOpt, opts...)
}

// setupStore is setupCore on a store of the caller's, which it closes when
// the test ends.
func setupStore(t *testing.T, dir string, st store.Store, coreOpt func(*core.Config), opts ...func(*Config)) *testBundle {
	t.Helper()
	keys, err := keyring.Load(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatalf("load keys: %v", err)
	}
	var wrapped []*store.DataKey
	if err := st.ReadPlatform(context.Background(), func(tx store.PlatformTx) (err error) {
		wrapped, err = tx.ListDataKeys(context.Background(), "")
		return err
	}); err != nil {
		t.Fatalf("list data keys: %v", err)
	}
	kms, err := keyring.OpenLocal(keyring.LocalConfig{Dir: filepath.Join(dir, "keys"), WrappedKeysExist: len(wrapped) > 0})
	if err != nil {
		t.Fatalf("open KMS: %v", err)
	}
	log := slog.New(slog.NewTextHandler(io.Discard, nil))
	ccfg := core.Config{Store: st, Keys: keys, KMS: kms, AdminToken: testAdminToken, PasswordParams: fastPasswords, Logger: log,
		// Automatic containment is off unless a test turns it on
		// (containment_test.go): the attack suites probe far past its
		// limits on purpose, and would otherwise test it instead.
		Containment: &contain.Rules{}}
	cfg := Config{Store: st, Metrics: observe.NewMetrics(), Logger: log}
	for _, o := range opts {
		o(&cfg)
	}
	// Jobs run on a Runner of their own per node, on River beside the
	// store, their database work scheduled like the requests'.
	runner := openTestRunner(t, dir, st, cfg.Admission.Scheduler)
	ccfg.Jobs = runner
	if coreOpt != nil {
		coreOpt(&ccfg)
	}
	if ccfg.Jobs != runner {
		// The test brought a queue of its own. Two runners on one River
		// database would take each other's jobs, and this one knows no
		// kinds: it must not run.
		closeTestRunner(runner)
		runner = nil
	}
	c, err := core.New(ccfg)
	if err != nil {
		t.Fatalf("core.New: %v", err)
	}
	if runner != nil {
		startTestRunner(t, runner)
	}
	cfg.Core = c
	srv := httptest.NewServer(New(cfg))
	t.Cleanup(func() {
		srv.Close()
		if runner != nil {
			closeTestRunner(runner)
		}
		c.Close()
		st.Close()
	})
	return &testBundle{t: t, srv: srv, core: c, store: st, jobs: runner, dir: dir, admin: testAdminToken}
}

// postgresBackend reports whether the HTTP tests run on PostgreSQL.
func postgresBackend() bool { return os.Getenv("BULKHEAD_TEST_BACKEND") == "postgres" }

// pgDatabases maps a setupIn dir to its PostgreSQL database.
var pgDatabases sync.Map

func openTestStore(t testing.TB, dir string) store.Store {
	t.Helper()
	if !postgresBackend() {
		st, err := sqlitestore.Open(filepath.Join(dir, "bulkhead.db"), nil)
		if err != nil {
			t.Fatalf("open store: %v", err)
		}
		return st
	}
	var db *pgtest.Database
	if v, ok := pgDatabases.Load(dir); ok {
		db = v.(*pgtest.Database)
	} else {
		db = pgtest.New(t, t)
		if err := pgstore.Migrate(context.Background(), db.OwnerURL(t), db.App); err != nil {
			t.Fatalf("migrate: %v", err)
		}
		// As bulkhead migrate does: nodes then open the job queue as the
		// application role.
		if err := jobs.MigratePostgres(context.Background(), db.OwnerURL(t), db.App); err != nil {
			t.Fatalf("migrate the job queue: %v", err)
		}
		pgDatabases.Store(dir, db)
		t.Cleanup(func() { pgDatabases.Delete(dir) })
	}
	st, err := pgstore.Open(context.Background(), db.AppURL(t), &pgstore.Options{MaxConns: 8, ProvisionURL: db.OwnerURL(t)})
	if err != nil {
		t.Fatalf("open store: %v", err)
	}
	return st
}

// sqliteOnly skips a test that inspects or tampers with SQLite files.
func sqliteOnly(t *testing.T) {
	t.Helper()
	if postgresBackend() {
		t.Skip("inspects the SQLite files directly; the PostgreSQL store has its own database-level tests")
	}
}

// response is a finished HTTP exchange.
type response struct {
	Status int
	Header http.Header
	Body   []byte
}

// JSON decodes the body into v, failing the test if it is not JSON.
func (r *response) JSON(t *testing.T, v any) {
	t.Helper()
	if err := json.Unmarshal(r.Body, v); err != nil {
		t.Fatalf("decode %s: %v", r.Body, err)
	}
}

// Map decodes a JSON object body.
func (r *response) Map(t *testing.T) map[string]any {
	t.Helper()
	var m map[string]any
	r.JSON(t, &m)
	return m
}

// Code is the problem code of an error response, or "" for success bodies.
func (r *response) Code(t *testing.T) string {
	t.Helper()
	if r.Status < 400 {
		return ""
	}
	if ct := r.Header.Get("Content-Type"); ct != "application/problem+json" {
		t.Errorf("error response has Content-Type %q, want application/problem+json; body %s", ct, r.Body)
	}
	var p struct {
		Code string `json:"code"`
	}
	r.JSON(t, &p)
	return p.Code
}

// do sends a request. body may be nil, a string or []byte (sent as is), or
// any other value (sent as JSON). headers are name, value pairs.
func (b *testBundle) do(method, path, token string, body any, headers ...string) *response {
	b.t.Helper()
	var rd io.Reader
	switch v := body.(type) {
	case nil:
	case string:
		rd = strings.NewReader(v)
	case []byte:
		rd = bytes.NewReader(v)
	default:
		j, err := json.Marshal(v)
		if err != nil {
			b.t.Fatalf("encode body: %v", err)
		}
		rd = bytes.NewReader(j)
	}
	req, err := http.NewRequestWithContext(context.Background(), method, b.srv.URL+path, rd)
	if err != nil {
		b.t.Fatalf("new request: %v", err)
	}
	if rd != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	for i := 0; i+1 < len(headers); i += 2 {
		req.Header.Set(headers[i], headers[i+1])
	}
	res, err := b.srv.Client().Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	data, err := io.ReadAll(res.Body)
	if err != nil {
		b.t.Fatalf("read body: %v", err)
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: data}
}

// must sends a request and fails the test unless it answers want.
func (b *testBundle) must(want int, method, path, token string, body any, headers ...string) *response {
	b.t.Helper()
	r := b.do(method, path, token, body, headers...)
	if r.Status != want {
		b.t.Fatalf("%s %s = %d %s, want %d", method, path, r.Status, r.Body, want)
	}
	return r
}

// tenant creates a tenant as the operator and returns its id.
func (b *testBundle) tenant(slug string, iso tenant.Isolation) tenant.ID {
	b.t.Helper()
	var t struct {
		ID tenant.ID `json:"id"`
	}
	b.must(201, "POST", "/v1/tenants", b.admin, map[string]any{"slug": slug, "name": slug, "isolation": iso}).JSON(b.t, &t)
	return t.ID
}

// apiKey issues a key of role in the tenant, as the operator.
func (b *testBundle) apiKey(slug string, role tenant.Role) string {
	b.t.Helper()
	var k struct {
		Key string `json:"key"`
	}
	b.must(201, "POST", "/v1/tenants/"+slug+"/api-keys", b.admin, map[string]any{"name": string(role), "role": role}).JSON(b.t, &k)
	return k.Key
}

// collection creates a collection, optionally with a schema, using an admin
// key of the tenant.
func (b *testBundle) collection(slug, adminKey, name string, schema any) {
	b.t.Helper()
	body := map[string]any{}
	if schema != nil {
		body["schema"] = schema
	}
	b.must(200, "PUT", "/v1/tenants/"+slug+"/collections/"+name, adminKey, body)
}

// record is a record as the API returns it.
type record struct {
	ID        string         `json:"id"`
	Version   int64          `json:"version"`
	CreatedAt string         `json:"created_at"`
	UpdatedAt string         `json:"updated_at"`
	Data      map[string]any `json:"data"`
}

// createRecord stores data and returns the record.
func (b *testBundle) createRecord(slug, key, col string, data any) record {
	b.t.Helper()
	var r record
	b.must(201, "POST", "/v1/tenants/"+slug+"/collections/"+col+"/records", key, data).JSON(b.t, &r)
	return r
}

// userToken creates a user of role as the operator, logs in and returns the
// token pair.
func (b *testBundle) userToken(slug, email string, role tenant.Role) core.TokenPair {
	b.t.Helper()
	const password = "correct horse battery"
	b.must(201, "POST", "/v1/tenants/"+slug+"/users", b.admin, map[string]any{"email": email, "password": password, "role": role})
	var pair core.TokenPair
	b.must(200, "POST", "/v1/tenants/"+slug+"/auth/login", "", map[string]any{"email": email, "password": password}).JSON(b.t, &pair)
	return pair
}
