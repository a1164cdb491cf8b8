package httpapi

import (
	"encoding/json"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/secevent"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// grant is a break-glass grant as the API shows it.
type grant struct {
	ID        string     `json:"id"`
	Reason    string     `json:"reason"`
	Actor     string     `json:"actor"`
	CreatedAt time.Time  `json:"created_at"`
	ExpiresAt time.Time  `json:"expires_at"`
	EndedAt   *time.Time `json:"ended_at"`
	EndedBy   string     `json:"ended_by"`
	Active    bool       `json:"active"`
}

// operatorReads are the reads of a tenant's data the operator tries.
func operatorReads(slug, recordID string) []string {
	return []string{
		"/v1/tenants/" + slug + "/collections",
		"/v1/tenants/" + slug + "/collections/things",
		"/v1/tenants/" + slug + "/collections/things/records",
		"/v1/tenants/" + slug + "/collections/things/records/" + recordID,
		"/v1/tenants/" + slug + "/audit",
		"/v1/tenants/" + slug + "/users",
		"/v1/tenants/" + slug + "/usage",
	}
}

// countActions counts the entries of each action in a tenant's chain.
func countActions(entries []auditEntry) map[string]int {
	n := map[string]int{}
	for _, e := range entries {
		n[e.Action]++
	}
	return n
}

func TestBreakGlass(t *testing.T) {
	t.Parallel()
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		t.Run(string(iso), func(t *testing.T) {
			t.Parallel()
			clock := newManualClock()
			events := &bgEventRecorder{}
			b := setupCore(t, t.TempDir(), func(c *core.Config) { c.NowFunc = clock.Now; c.Events = events })
			b.tenant("acme", iso)
			b.tenant("globex", iso)
			adminA := b.apiKey("acme", tenant.Admin)
			adminB := b.apiKey("globex", tenant.Admin)
			b.collection("acme", adminA, "things", nil)
			b.collection("globex", adminB, "things", nil)
			recA := b.createRecord("acme", adminA, "things", map[string]any{"secret": "acme's"})
			recB := b.createRecord("globex", adminB, "things", map[string]any{"secret": "globex's"})
			readsA := operatorReads("acme", recA.ID)
			readsB := operatorReads("globex", recB.ID)

			// Without a grant the operator reads nothing of either tenant.
			for _, p := range append(readsA, readsB...) {
				b.mustProblem(403, problem.CodeForbidden, "GET", p, b.admin, nil)
			}
			// Nobody but the operator grants, and the body is checked.
			for _, tok := range []string{adminA, b.userToken("acme", "owner@example.com", tenant.Owner).AccessToken} {
				b.mustProblem(403, problem.CodeForbidden, "POST", "/v1/tenants/acme/break-glass", tok, map[string]any{"reason": "x", "minutes": 5})
			}
			b.mustProblem(404, problem.CodeNotFound, "POST", "/v1/tenants/acme/break-glass", adminB, map[string]any{"reason": "x", "minutes": 5})
			for _, body := range []any{
				map[string]any{"minutes": 5},
				map[string]any{"reason": "", "minutes": 5},
				map[string]any{"reason": strings.Repeat("r", core.MaxBreakGlassReason+1), "minutes": 5},
				map[string]any{"reason": "x"},
				map[string]any{"reason": "x", "minutes": 0},
				map[string]any{"reason": "x", "minutes": core.MaxBreakGlassMinutes + 1},
				map[string]any{"reason": "x", "minutes": 5, "tenant": "globex"},
			} {
				r := b.do("POST", "/v1/tenants/acme/break-glass", b.admin, body)
				if r.Status != 400 {
					t.Errorf("POST break-glass %v = %d %s, want 400", body, r.Status, r.Body)
				}
			}
			var none page[grant]
			b.must(200, "GET", "/v1/tenants/acme/break-glass", adminA, nil).JSON(t, &none)
			if len(none.Items) != 0 {
				t.Fatalf("grants after refused requests: %+v", none.Items)
			}

			// The operator grants itself 30 minutes on acme.
			var g grant
			r := b.must(201, "POST", "/v1/tenants/acme/break-glass", b.admin, map[string]any{"reason": "incident 42: data repair", "minutes": 30})
			r.JSON(t, &g)
			if g.ID == "" || g.Reason != "incident 42: data repair" || g.Actor != "operator" || !g.Active ||
				!g.ExpiresAt.Equal(g.CreatedAt.Add(30*time.Minute)) {
				t.Fatalf("grant = %+v", g)
			}

			// It reads acme's data, and nothing of globex's.
			for _, p := range readsA {
				b.must(200, "GET", p, b.admin, nil)
			}
			var got record
			b.must(200, "GET", readsA[3], b.admin, nil).JSON(t, &got)
			if got.Data["secret"] != "acme's" {
				t.Errorf("record read under break-glass = %v", got.Data)
			}
			for _, p := range readsB {
				b.mustProblem(403, problem.CodeForbidden, "GET", p, b.admin, nil)
			}
			// Writes stay refused.
			b.mustProblem(403, problem.CodeForbidden, "POST", "/v1/tenants/acme/collections/things/records", b.admin, map[string]any{"x": 1})
			b.mustProblem(403, problem.CodeForbidden, "PATCH", "/v1/tenants/acme/collections/things/records/"+recA.ID, b.admin, map[string]any{"x": 1})
			b.mustProblem(403, problem.CodeForbidden, "DELETE", "/v1/tenants/acme/collections/things/records/"+recA.ID, b.admin, nil)
			b.mustProblem(403, problem.CodeForbidden, "PUT", "/v1/tenants/acme/collections/other", b.admin, map[string]any{})
			b.mustProblem(403, problem.CodeForbidden, "DELETE", "/v1/tenants/acme/collections/things", b.admin, nil)
			b.mustProblem(403, problem.CodeForbidden, "GET", "/v1/tenants/acme/api-keys", b.admin, nil)

			// The tenant's admin sees the grant, and in its audit chain the
			// grant and one entry per request that read under it.
			b.core.Flush()
			var list page[grant]
			b.must(200, "GET", "/v1/tenants/acme/break-glass", adminA, nil).JSON(t, &list)
			if len(list.Items) != 1 || list.Items[0].ID != g.ID || !list.Items[0].Active {
				t.Errorf("grants the admin sees = %+v", list.Items)
			}
			b.mustProblem(403, problem.CodeForbidden, "GET", "/v1/tenants/acme/break-glass", b.apiKey("acme", tenant.Member), nil)
			var listB page[grant]
			b.must(200, "GET", "/v1/tenants/globex/break-glass", adminB, nil).JSON(t, &listB)
			if len(listB.Items) != 0 {
				t.Errorf("globex lists acme's grant: %+v", listB.Items)
			}
			entries := b.auditLog("acme", adminA)
			n := countActions(entries)
			if n["break_glass.grant"] != 1 {
				t.Errorf("break_glass.grant entries = %d, want 1", n["break_glass.grant"])
			}
			if want := len(readsA) + 1; n["break_glass.read"] != want { // the record read twice
				t.Errorf("break_glass.read entries = %d, want %d (one per request)", n["break_glass.read"], want)
			}
			for _, e := range entries {
				if e.Action == "break_glass.read" && (e.Actor != "operator" || !strings.Contains(e.Resource, g.ID) || e.RequestID == "") {
					t.Errorf("read entry = %+v, want the operator, the grant and the request", e)
				}
			}
			if countActions(b.auditLog("globex", adminB))["break_glass.read"] != 0 {
				t.Error("globex's chain records break-glass reads")
			}
			byAction := events.byAction()
			if e := byAction["break-glass-granted"]; len(e) != 1 || e[0].Tenant == "" || e[0].TenantSlug != "acme" ||
				e[0].Actor != "operator" || !strings.Contains(e[0].Reason, "incident 42") {
				t.Errorf("break-glass-granted events = %+v", e)
			}
			if n := len(byAction["break-glass-read"]); n != len(readsA)+1 {
				t.Errorf("break-glass-read events = %d, want %d", n, len(readsA)+1)
			}
			if v := b.verify("acme", adminA); !v.OK {
				t.Errorf("acme's chain does not verify after break-glass: %+v", v)
			}

			// At expiry (the clock's, not the wall's) it stops.
			clock.Advance(30*time.Minute + time.Second)
			for _, p := range readsA {
				b.mustProblem(403, problem.CodeForbidden, "GET", p, b.admin, nil)
			}
			b.must(200, "GET", "/v1/tenants/acme/break-glass", adminA, nil).JSON(t, &list)
			if len(list.Items) != 1 || list.Items[0].Active {
				t.Errorf("expired grant = %+v, want inactive", list.Items)
			}
			b.mustProblem(404, problem.CodeNotFound, "DELETE", "/v1/tenants/acme/break-glass/"+g.ID, b.admin, nil)

			// The operator ends a grant early; the admin cannot.
			var g2 grant
			b.must(201, "POST", "/v1/tenants/acme/break-glass", b.admin, map[string]any{"reason": "second look", "minutes": 240}).JSON(t, &g2)
			b.must(200, "GET", readsA[0], b.admin, nil)
			b.mustProblem(403, problem.CodeForbidden, "DELETE", "/v1/tenants/acme/break-glass/"+g2.ID, adminA, nil)
			b.mustProblem(404, problem.CodeNotFound, "DELETE", "/v1/tenants/globex/break-glass/"+g2.ID, b.admin, nil)
			b.must(204, "DELETE", "/v1/tenants/acme/break-glass/"+g2.ID, b.admin, nil)
			b.mustProblem(403, problem.CodeForbidden, "GET", readsA[0], b.admin, nil)
			b.mustProblem(404, problem.CodeNotFound, "DELETE", "/v1/tenants/acme/break-glass/"+g2.ID, b.admin, nil)
			b.core.Flush()
			if e := events.byAction()["break-glass-ended"]; len(e) != 1 || e[0].Target != "break_glass:"+g2.ID {
				t.Errorf("break-glass-ended events = %+v", e)
			}
			if n := countActions(b.auditLog("acme", adminA)); n["break_glass.end"] != 1 || n["break_glass.grant"] != 2 {
				t.Errorf("after the end: %v", n)
			}
			b.must(200, "GET", "/v1/tenants/acme/break-glass", b.admin, nil).JSON(t, &list)
			if len(list.Items) != 2 || list.Items[0].ID != g2.ID || list.Items[0].EndedAt == nil || list.Items[0].EndedBy != "operator" || list.Items[0].Active {
				raw, _ := json.Marshal(list.Items)
				t.Errorf("grants after the end = %s", raw)
			}
		})
	}
}

// A grant made or ended through one node applies on another sharing the
// database within the cache's age limit (here 1 s of the test's clock: the
// nodes' change feed is not linked).
func TestBreakGlassAcrossNodes(t *testing.T) {
	t.Parallel()
	clock := newManualClock()
	dir := t.TempDir()
	withClock := func(c *core.Config) { c.NowFunc = clock.Now }
	one := setupCore(t, dir, withClock)
	two := setupCore(t, dir, withClock)
	one.tenant("acme", tenant.Pooled)
	path := "/v1/tenants/acme/collections"
	two.mustProblem(403, problem.CodeForbidden, "GET", path, two.admin, nil) // node two caches "no grant"

	var g grant
	one.must(201, "POST", "/v1/tenants/acme/break-glass", one.admin, map[string]any{"reason": "incident", "minutes": 10}).JSON(t, &g)
	one.must(200, "GET", path, one.admin, nil)
	clock.Advance(1100 * time.Millisecond)
	two.must(200, "GET", path, two.admin, nil)

	one.must(204, "DELETE", "/v1/tenants/acme/break-glass/"+g.ID, one.admin, nil)
	one.mustProblem(403, problem.CodeForbidden, "GET", path, one.admin, nil)
	clock.Advance(1100 * time.Millisecond)
	two.mustProblem(403, problem.CodeForbidden, "GET", path, two.admin, nil)
}

// bgEventRecorder keeps the security events published.
type bgEventRecorder struct {
	mu     sync.Mutex
	events []secevent.Event
}

func (r *bgEventRecorder) Publish(e secevent.Event) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.events = append(r.events, e)
}

func (r *bgEventRecorder) byAction() map[string][]secevent.Event {
	r.mu.Lock()
	defer r.mu.Unlock()
	m := map[string][]secevent.Event{}
	for _, e := range r.events {
		m[e.Action] = append(m[e.Action], e)
	}
	return m
}
