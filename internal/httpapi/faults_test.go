package httpapi

import (
	"bytes"
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/store/pgstore"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
	"github.com/bulkheadhq/bulkhead/store/sqlitestore"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// noInternals checks that a fault's problem names nothing of its cause.
func noInternals(t *testing.T, r *response) {
	t.Helper()
	for _, s := range []string{"sqlite", "SQLSTATE", "pgstore", "pgx", "disk", "dial", "127.0.0.1", "connection"} {
		if bytes.Contains(r.Body, []byte(s)) {
			t.Errorf("the %d problem %s names %q", r.Status, r.Body, s)
		}
	}
}

// TestStorageFull: a write that finds the database full is answered 507
// insufficient_storage and leaves nothing behind; reads go on, and nothing
// acknowledged is lost. The full disk is SQLite's own (a database file at
// its MaxFileSize fails exactly as on a full disk).
func TestStorageFull(t *testing.T) {
	t.Parallel()
	if postgresBackend() {
		t.Skip("fills a SQLite file; PostgreSQL's disk_full cannot be provoked here, and pgstore's tests map it")
	}
	dir := t.TempDir()
	st, err := sqlitestore.Open(filepath.Join(dir, "bulkhead.db"), &sqlitestore.Options{MaxFileSize: 128 * 4096})
	if err != nil {
		t.Fatal(err)
	}
	b := setupStore(t, dir, st, nil)
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		slug := "full-" + string(iso)
		b.tenant(slug, iso)
		key := b.apiKey(slug, tenant.Admin)
		b.collection(slug, key, "notes", nil)
		filler := strings.Repeat("x", 16000)
		var acknowledged []string
		var full *response
		for i := 0; full == nil; i++ {
			if i > 1000 {
				t.Fatalf("%s: 1000 writes of 16 KB fit in a 512 KiB file", iso)
			}
			r := b.do("POST", tpath(slug, "collections", "notes", "records"), key, map[string]any{"i": i, "filler": filler})
			switch r.Status {
			case 201:
				var rec record
				r.JSON(t, &rec)
				acknowledged = append(acknowledged, rec.ID)
			default:
				full = r
			}
		}
		assertProblem(t, full, 507, problem.CodeInsufficientStorage)
		noInternals(t, full)
		for _, id := range acknowledged {
			b.must(200, "GET", tpath(slug, "collections", "notes", "records", id), key, nil)
		}
		if got := b.usage(slug, key).Records; got != int64(len(acknowledged)) {
			t.Errorf("%s: %d records after the full write, want the %d acknowledged", iso, got, len(acknowledged))
		}
	}
}

// TestDatabaseUnreachable: while PostgreSQL cannot be reached, every
// request that needs it is answered 503 unavailable with Retry-After (never
// 500), and /readyz says so; once it is back, the same server serves again
// and nothing acknowledged was lost.
func TestDatabaseUnreachable(t *testing.T) {
	t.Parallel()
	if !postgresBackend() {
		t.Skip("cuts the connection to PostgreSQL; SQLite's faults are covered by TestStorageFull and sqlitestore's tests")
	}
	db := pgtest.New(t, t)
	if err := pgstore.Migrate(context.Background(), db.OwnerURL(t), db.App); err != nil {
		t.Fatal(err)
	}
	target, err := url.Parse(db.Super)
	if err != nil {
		t.Fatal(err)
	}
	proxy := pgtest.NewProxy(t, target.Host)
	st, err := pgstore.Open(context.Background(), proxy.URL(db.AppURL(t)), &pgstore.Options{MaxConns: 4, ProvisionURL: db.OwnerURL(t)})
	if err != nil {
		t.Fatal(err)
	}
	b := setupStore(t, t.TempDir(), st, nil)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	b.collection("acme", key, "notes", nil)
	rec := b.createRecord("acme", key, "notes", map[string]any{"n": 1})
	b.userToken("acme", "ada@example.com", tenant.Member)

	for _, mode := range []pgtest.CutMode{pgtest.Reset, pgtest.Refuse} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) {
			bt := b.withT(t)
			proxy.Cut(mode)
			for _, c := range []struct {
				method, path, token string
				body                any
			}{
				{"GET", tpath("acme", "collections", "notes", "records", rec.ID), key, nil},
				{"POST", tpath("acme", "collections", "notes", "records"), key, map[string]any{"n": 2}},
				{"GET", tpath("acme", "collections", "notes", "records"), key, nil},
				{"POST", tpath("acme", "auth", "login"), "", map[string]any{"email": "ada@example.com", "password": "correct horse battery"}},
				{"GET", "/v1/tenants", b.admin, nil},
				{"POST", "/v1/tenants", b.admin, map[string]any{"slug": "late", "name": "Late"}},
				{"GET", "/readyz", "", nil},
			} {
				r := bt.do(c.method, c.path, c.token, c.body)
				assertProblem(t, r, 503, problem.CodeUnavailable)
				if r.Header.Get("Retry-After") == "" {
					t.Errorf("%s %s: 503 without Retry-After", c.method, c.path)
				}
				noInternals(t, r)
			}
			proxy.Restore()
			// A pooled connection that broke while idle may fail one more
			// request; then the server serves again.
			for give := time.Now().Add(hangGuard); bt.do("GET", "/readyz", "", nil).Status != 200; time.Sleep(10 * time.Millisecond) {
				if time.Now().After(give) {
					t.Fatal("the server did not become ready again")
				}
			}
			for range 8 { // more than the pool's connections
				bt.do("GET", tpath("acme", "usage"), key, nil)
			}
			bt.must(200, "GET", tpath("acme", "collections", "notes", "records", rec.ID), key, nil)
			if got := bt.usage("acme", key).Records; got != 1 {
				t.Errorf("%d records after the outage, want 1: the refused write must not have happened", got)
			}
		})
	}
}

// lockedBuffer is a log destination that tests read while the server
// writes.
type lockedBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.buf.String()
}

// TestClientAbort: a client that goes away before its body is complete is
// a client abort: logged at info with status 499, not an error of the
// server.
func TestClientAbort(t *testing.T) {
	t.Parallel()
	var logs lockedBuffer
	b := setup(t, func(c *Config) { c.Logger = slog.New(slog.NewJSONHandler(&logs, nil)) })
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	b.collection("acme", key, "notes", nil)
	c, err := net.Dial("tcp", strings.TrimPrefix(b.srv.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{\"n\":",
		tpath("acme", "collections", "notes", "records"), key)
	time.Sleep(50 * time.Millisecond) // let the server start reading the body; not a timing assertion
	c.Close()
	waitFor(t, "the aborted request logged", func() bool { return strings.Contains(logs.String(), `"status":499`) })
	for _, line := range strings.Split(logs.String(), "\n") {
		if strings.Contains(line, `"level":"ERROR"`) || strings.Contains(line, `"level":"WARN"`) {
			t.Errorf("a client abort was logged as %s", line)
		}
	}
}

// TestSiloWithoutProvisionURL: a PostgreSQL server without the owner role's
// URL answers a silo tenant's creation 400 unsupported, not 500, and
// creates nothing; pooled tenants are created as usual.
func TestSiloWithoutProvisionURL(t *testing.T) {
	pgtest.SuperURL(t)
	t.Parallel()
	db := pgtest.New(t, t)
	if err := pgstore.Migrate(context.Background(), db.OwnerURL(t), db.App); err != nil {
		t.Fatal(err)
	}
	st, err := pgstore.Open(context.Background(), db.AppURL(t), &pgstore.Options{MaxConns: 4})
	if err != nil {
		t.Fatal(err)
	}
	b := setupStore(t, t.TempDir(), st, nil)
	r := b.do("POST", "/v1/tenants", b.admin, map[string]any{"slug": "silo", "name": "Silo", "isolation": tenant.Silo})
	assertProblem(t, r, 400, problem.CodeUnsupported)
	noInternals(t, r)
	b.must(404, "GET", "/v1/tenants/silo", b.admin, nil)
	b.tenant("pooled", tenant.Pooled)
}
