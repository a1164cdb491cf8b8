package httpapi

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/changefeed"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// twoNodes starts two API servers on one database, each with its own Core
// and caches that would keep what they learned for an hour: only the change
// feed can tell one node of the other's changes. On PostgreSQL each node
// has its own LISTEN/NOTIFY feed; on SQLite they share an in-process one.
// opts adjust both nodes' Core configuration.
func twoNodes(t *testing.T, opts ...func(*core.Config)) (a, b *testBundle) {
	t.Helper()
	dir := t.TempDir()
	var shared changefeed.Feed
	if !postgresBackend() {
		shared = changefeed.NewLocal()
	}
	node := func() *testBundle {
		var feed changefeed.Feed = shared
		first := openTestStore(t, dir) // makes the database on PostgreSQL
		if feed == nil {
			v, _ := pgDatabases.Load(dir)
			ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			pg, err := changefeed.NewPostgres(ctx, v.(*pgtest.Database).AppURL(t), nil)
			if err != nil {
				t.Fatalf("changefeed: %v", err)
			}
			feed = pg
			t.Cleanup(func() { pg.Close() })
		}
		return setupStore(t, dir, first, func(c *core.Config) {
			c.Feed = feed
			c.CacheLife = time.Hour
			for _, o := range opts {
				o(c)
			}
		})
	}
	return node(), node()
}

// eventually polls until cond holds, failing the test only if it never
// does; it returns how long it took, for the log.
func eventually(t *testing.T, what string, cond func() bool) time.Duration {
	t.Helper()
	start := time.Now()
	for range 1000 {
		if cond() {
			return time.Since(start)
		}
		time.Sleep(5 * time.Millisecond)
	}
	t.Fatalf("%s: never happened", what)
	return 0
}

// TestChangeFeedAcrossNodes: a key revoked, a tenant suspended or a plan
// changed through one node is refused or applied on the other, whose
// caches would otherwise serve the old answer for an hour.
func TestChangeFeedAcrossNodes(t *testing.T) {
	t.Parallel()
	a, b := twoNodes(t)
	a.tenant("acme", tenant.Pooled)
	admin := a.apiKey("acme", tenant.Admin)
	doomed := a.apiKey("acme", tenant.Member)
	a.collection("acme", admin, "notes", nil)
	records := tpath("acme", "collections", "notes", "records")
	// Node b learns both keys and the tenant.
	b.must(200, "GET", records, admin, nil)
	b.must(200, "GET", records, doomed, nil)

	id := doomed[strings.Index(doomed, "_")+1:]
	id = id[strings.Index(id, "_")+1:]
	id = id[:strings.LastIndex(id, "_")]
	a.must(204, "DELETE", tpath("acme", "api-keys", id), admin, nil)
	d := eventually(t, "the revoked key refused on the other node", func() bool {
		return b.do("GET", records, doomed, nil).Status == 401
	})
	t.Logf("revoked key refused on the other node after %s", d)
	b.must(200, "GET", records, admin, nil) // the tenant's other key works on

	a.must(200, "PATCH", "/v1/tenants/acme", a.admin, map[string]any{"status": "suspended"})
	d = eventually(t, "the suspended tenant refused on the other node", func() bool {
		r := b.do("GET", records, admin, nil)
		return r.Status == 403 && r.Code(t) == "tenant_suspended"
	})
	t.Logf("suspended tenant refused on the other node after %s", d)
	a.must(200, "PATCH", "/v1/tenants/acme", a.admin, map[string]any{"status": "active"})
	eventually(t, "the resumed tenant served on the other node", func() bool {
		return b.do("GET", records, admin, nil).Status == 200
	})

	// A slug that named no tenant on b is found once a creates it.
	b.mustProblem(404, "not_found", "GET", "/v1/tenants/globex", b.admin, nil)
	a.tenant("globex", tenant.Pooled)
	eventually(t, "a tenant created on the other node found", func() bool {
		return b.do("GET", "/v1/tenants/globex", b.admin, nil).Status == 200
	})
}
