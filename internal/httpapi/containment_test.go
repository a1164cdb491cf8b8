package httpapi

import (
	"encoding/json"
	"net/netip"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bulkheadhq/bulkhead/internal/auth"
	"github.com/bulkheadhq/bulkhead/internal/contain"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/secevent"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// eventLog records the security events a Core publishes.
type eventLog struct {
	mu     sync.Mutex
	events []secevent.Event
}

func (l *eventLog) Publish(ev secevent.Event) {
	l.mu.Lock()
	l.events = append(l.events, ev)
	l.mu.Unlock()
}

func (l *eventLog) all() []secevent.Event {
	l.mu.Lock()
	defer l.mu.Unlock()
	return slices.Clone(l.events)
}

// containmentAPI is a containment action as the API lists it.
type containmentAPI struct {
	ID      string `json:"id"`
	Kind    string `json:"kind"`
	Subject string `json:"subject"`
	Reason  string `json:"reason"`
	Count   int64  `json:"count"`
	Active  bool   `json:"active"`
}

func setupContainment(t *testing.T, rules contain.Rules, opts ...func(*Config)) (*testBundle, *eventLog) {
	t.Helper()
	events := &eventLog{}
	b := setupCore(t, t.TempDir(), func(c *core.Config) {
		c.Containment = &rules
		c.Events = events
	}, opts...)
	return b, events
}

func (b *testBundle) containments(slug, token string) []containmentAPI {
	b.t.Helper()
	var p page[containmentAPI]
	b.must(200, "GET", "/v1/tenants/"+slug+"/containments", token, nil).JSON(b.t, &p)
	return p.Items
}

// comparable404 is what of a 404 must not differ between a probe and any
// other 404: status, the body but for instance and request_id, and the
// header names.
func comparable404(t *testing.T, r *response) string {
	t.Helper()
	p := assertProblem(t, r, 404, problem.CodeNotFound)
	var names []string
	for k := range r.Header {
		if k != "Date" && k != "Content-Length" {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	return p.Type + "|" + p.Title + "|" + p.Detail + "|" + string(p.Code) + "|" + strings.Join(names, ",")
}

// TestProbingKeyIsSuspended is the attack: a key of tenant A probes tenant
// B's slug and random record ids of its own tenant. Each probe is answered
// exactly like any 404; at the limit the key is suspended and every request
// with it refused; B's audit shows nothing, A's shows the denials and the
// containment; an admin of A lifts it and the key works again.
func TestProbingKeyIsSuspended(t *testing.T) {
	t.Parallel()
	b, events := setupContainment(t, contain.Rules{Probes: contain.Rule{Limit: 20, Window: time.Minute}})
	alphaID := b.tenant("alpha", tenant.Pooled)
	bravoID := b.tenant("bravo", tenant.Silo)
	adminA, adminB := b.apiKey("alpha", tenant.Admin), b.apiKey("bravo", tenant.Admin)
	probe := b.apiKey("alpha", tenant.Member)
	_, _, probeID, _ := auth.ParseAPIKey(probe)
	actor := "key:" + string(probeID)
	b.collection("alpha", adminA, "notes", nil)
	b.collection("bravo", adminB, "notes", nil)
	secret := b.createRecord("bravo", adminB, "notes", map[string]any{"s": "bravo's"})
	b.createRecord("alpha", probe, "notes", map[string]any{"s": "alpha's"})
	b.core.Flush()
	bravoBefore := b.auditLog("bravo", adminB)

	// A plain 404: the operator addressing a tenant that does not exist.
	want := comparable404(t, b.do("GET", "/v1/tenants/ghost-tenant/collections/notes/records/"+uuid.NewString(), b.admin, nil))
	paths := []func() string{
		func() string { return "/v1/tenants/bravo/collections/notes/records/" + secret.ID },
		func() string { return "/v1/tenants/alpha/collections/notes/records/" + uuid.NewString() },
		func() string { return "/v1/tenants/bravo/collections/notes" },
		func() string { return "/v1/tenants/bravo/users" },
	}
	for i := range 20 {
		path := paths[i%len(paths)]()
		r := b.do("GET", path, probe, nil)
		if r.Status != 404 {
			t.Fatalf("probe %d %s = %d %s, want 404", i, path, r.Status, r.Body)
		}
		if got := comparable404(t, r); got != want {
			t.Fatalf("probe %d answered\n%s\nwant the plain 404\n%s", i, got, want)
		}
		if i == 18 { // below the limit the key works
			b.must(200, "GET", "/v1/tenants/alpha/collections/notes/records", probe, nil)
		}
	}
	// Suspended: every request with the key is refused, its own data too.
	for _, path := range []string{"/v1/tenants/alpha/collections/notes/records", "/v1/tenants/bravo/collections/notes/records/" + secret.ID} {
		b.mustProblem(403, problem.CodeCredentialSuspended, "GET", path, probe, nil)
	}
	// Other credentials of the tenant are untouched.
	b.must(200, "GET", "/v1/tenants/alpha/collections/notes/records", adminA, nil)
	b.core.Flush()

	// B's audit chain is exactly what it was: no trace of A's probes.
	if bravoAfter := b.auditLog("bravo", adminB); len(bravoAfter) != len(bravoBefore) {
		t.Errorf("bravo's audit grew from %d to %d entries: %+v", len(bravoBefore), len(bravoAfter), bravoAfter[len(bravoBefore):])
	}
	if got := b.containments("bravo", adminB); len(got) != 0 {
		t.Errorf("bravo lists containments %+v, want none", got)
	}
	// A's chain shows the first denial, the rest counted in one entry, and
	// the suspension.
	var denied, repeated, suspended int
	for _, e := range b.auditLog("alpha", adminA) {
		switch {
		case e.Action == "access.denied" && e.Actor == actor && e.Outcome == "denied":
			denied++
		case e.Action == "access.denied_repeated" && e.Actor == actor && e.Resource == "requests:19":
			repeated++
		case e.Action == "containment.credential_suspended" && e.Resource == actor && e.Actor == "system":
			suspended++
		}
	}
	if denied != 1 || repeated != 1 || suspended != 1 {
		t.Errorf("alpha's audit has %d access.denied, %d access.denied_repeated (requests:19), %d suspensions of %s; want 1 each",
			denied, repeated, suspended, actor)
	}
	if v := b.verify("alpha", ""); !v.OK {
		t.Errorf("alpha's chain does not verify: %+v", v)
	}
	list := b.containments("alpha", adminA)
	if len(list) != 1 || list[0].Kind != "credential_suspended" || list[0].Subject != actor || !list[0].Active || list[0].Count != 20 {
		t.Fatalf("alpha's containments = %+v, want one active credential_suspended of %s with count 20", list, actor)
	}
	// The operator sees it too; a member does not.
	if got := b.containments("alpha", b.admin); len(got) != 1 {
		t.Errorf("operator lists %d containments, want 1", len(got))
	}
	member := b.apiKey("alpha", tenant.Member)
	b.mustProblem(403, problem.CodeForbidden, "DELETE", "/v1/tenants/alpha/containments/"+list[0].ID, member, nil)
	// B's admin cannot lift A's containment: another tenant's id is a 404.
	b.mustProblem(404, problem.CodeNotFound, "DELETE", "/v1/tenants/bravo/containments/"+list[0].ID, adminB, nil)
	b.mustProblem(403, problem.CodeCredentialSuspended, "GET", "/v1/tenants/alpha/collections/notes/records", probe, nil)

	// Lifted by A's admin: the key works again, and the lift is audited.
	b.must(204, "DELETE", "/v1/tenants/alpha/containments/"+list[0].ID, adminA, nil)
	b.must(200, "GET", "/v1/tenants/alpha/collections/notes/records", probe, nil)
	if e := b.lastAudit("alpha", adminA); e.Action != "containment.lift" || e.Resource != "containment:"+list[0].ID {
		t.Errorf("last audit entry = %+v, want containment.lift of %s", e, list[0].ID)
	}
	b.mustProblem(404, problem.CodeNotFound, "DELETE", "/v1/tenants/alpha/containments/"+list[0].ID, adminA, nil)
	if got := b.containments("alpha", adminA); len(got) != 1 || got[0].Active {
		t.Errorf("after lifting, containments = %+v, want one inactive", got)
	}

	// Events: the denials and the suspension in A, none of the probing
	// key's in B.
	b.core.Flush()
	seen := map[string]int{}
	for _, ev := range events.all() {
		if ev.Tenant == bravoID && (ev.Actor == actor || ev.Target == actor) {
			t.Errorf("event %s of the probing key published for bravo", ev.Action)
		}
		if ev.Tenant == alphaID {
			seen[ev.Action]++
		}
	}
	for _, action := range []string{"access.denied", "access.denied_repeated", "containment.credential_suspended", "containment.lift", "api_key.create"} {
		if seen[action] == 0 {
			t.Errorf("no %s event for alpha; events %v", action, seen)
		}
	}
}

// TestLockedAndSuspendedUsers: failed logins lock an account (the right
// password is then refused like a wrong one), a user's probes suspend their
// sessions and logins, and lifting restores both.
func TestLockedAndSuspendedUsers(t *testing.T) {
	t.Parallel()
	b, _ := setupContainment(t, contain.Rules{Probes: contain.Rule{Limit: 5, Window: time.Minute},
		Logins: contain.Rule{Limit: 3, Window: time.Minute}, LockFor: time.Hour})
	b.tenant("gamma", tenant.Pooled)
	admin := b.apiKey("gamma", tenant.Admin)
	const password = "correct horse battery"
	login := func(email, pw string) *response {
		return b.do("POST", "/v1/tenants/gamma/auth/login", "", map[string]any{"email": email, "password": pw})
	}

	// Locked after three failures.
	b.must(201, "POST", "/v1/tenants/gamma/users", admin, map[string]any{"email": "ada@example.com", "password": password, "role": "member"})
	for range 3 {
		assertProblem(t, login("ada@example.com", "wrong password!"), 401, problem.CodeInvalidCredentials)
	}
	b.core.Flush()
	assertProblem(t, login("ada@example.com", password), 401, problem.CodeInvalidCredentials)
	list := b.containments("gamma", admin)
	if len(list) != 1 || list[0].Kind != "account_locked" || !strings.HasPrefix(list[0].Subject, "user:") {
		t.Fatalf("containments = %+v, want one account_locked", list)
	}
	b.must(204, "DELETE", "/v1/tenants/gamma/containments/"+list[0].ID, admin, nil)
	b.must(200, "POST", "/v1/tenants/gamma/auth/login", "", map[string]any{"email": "ada@example.com", "password": password})

	// A user probing unknown ids is suspended: their sessions end, and
	// refresh and login are refused.
	pair := b.userToken("gamma", "bob@example.com", tenant.Member)
	for range 5 {
		b.must(404, "GET", "/v1/tenants/gamma/collections/nope/records/"+uuid.NewString(), pair.AccessToken, nil)
	}
	b.core.Flush()
	// Their sessions ended: the access token is refused as any ended one.
	b.mustProblem(401, problem.CodeUnauthorized, "GET", "/v1/tenants/gamma/collections", pair.AccessToken, nil)
	assertProblem(t, b.do("POST", "/v1/tenants/gamma/auth/refresh", "", map[string]any{"refresh_token": pair.RefreshToken}), 401, problem.CodeInvalidCredentials)
	assertProblem(t, login("bob@example.com", password), 401, problem.CodeInvalidCredentials)
	var suspended *containmentAPI
	for _, c := range b.containments("gamma", admin) {
		if c.Kind == "credential_suspended" && c.Active {
			suspended = &c
		}
	}
	if suspended == nil {
		t.Fatal("no active credential_suspended containment for the user")
	}
	b.must(204, "DELETE", "/v1/tenants/gamma/containments/"+suspended.ID, b.admin, nil) // the operator may lift too
	var again core.TokenPair
	b.must(200, "POST", "/v1/tenants/gamma/auth/login", "", map[string]any{"email": "bob@example.com", "password": password}).JSON(t, &again)
	b.must(200, "GET", "/v1/tenants/gamma/collections", again.AccessToken, nil)
}

// TestKeyFromManyAddressesIsFlagged: an API key used from more distinct
// client addresses than the rule allows is flagged, not blocked.
func TestKeyFromManyAddressesIsFlagged(t *testing.T) {
	t.Parallel()
	b, events := setupContainment(t, contain.Rules{Addresses: contain.Rule{Limit: 3, Window: time.Hour}}, func(c *Config) {
		c.TrustedProxies = []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	})
	b.tenant("delta", tenant.Pooled)
	admin := b.apiKey("delta", tenant.Admin)
	key := b.apiKey("delta", tenant.Member)
	for i := range 3 {
		b.must(200, "GET", "/v1/tenants/delta/collections", key, nil, "X-Forwarded-For", "198.51.100."+string(rune('1'+i)))
	}
	b.core.Flush()
	if got := b.containments("delta", admin); len(got) != 0 {
		t.Fatalf("flagged at 3 addresses: %+v", got)
	}
	b.must(200, "GET", "/v1/tenants/delta/collections", key, nil, "X-Forwarded-For", "203.0.113.9")
	b.core.Flush()
	got := b.containments("delta", admin)
	if len(got) != 1 || got[0].Kind != "flagged" || !got[0].Active {
		t.Fatalf("containments = %+v, want one active flag", got)
	}
	b.must(200, "GET", "/v1/tenants/delta/collections", key, nil, "X-Forwarded-For", "203.0.113.10") // not blocked
	alerted := false
	for _, ev := range events.all() {
		if ev.Action == "containment.flagged" && ev.ClientAddr == "203.0.113.9" && secevent.Encode(ev) != nil {
			alerted = true
		}
	}
	if !alerted {
		t.Error("no containment.flagged event from the fourth address")
	}
	if e := b.lastAudit("delta", admin); e.Action != "containment.flagged" {
		t.Errorf("last audit entry %+v, want containment.flagged", e)
	}
}

// TestSecurityEventsOfIdentityChanges: credential and role changes and
// the operator's suspensions are published, in ECS, with who did what to
// whom from where.
func TestSecurityEventsOfIdentityChanges(t *testing.T) {
	t.Parallel()
	b, events := setupContainment(t, contain.Rules{})
	tid := b.tenant("echo", tenant.Pooled)
	admin := b.apiKey("echo", tenant.Admin)
	_, _, adminID, _ := auth.ParseAPIKey(admin)
	var u struct {
		ID string `json:"id"`
	}
	b.must(201, "POST", "/v1/tenants/echo/users", admin, map[string]any{"email": "eve@example.com", "password": "correct horse battery", "role": "viewer"}).JSON(t, &u)
	b.must(200, "PATCH", "/v1/tenants/echo/users/"+u.ID, admin, map[string]any{"role": "member"})
	b.must(204, "DELETE", "/v1/tenants/echo/users/"+u.ID, admin, nil)
	var k struct {
		ID string `json:"id"`
	}
	b.must(201, "POST", "/v1/tenants/echo/api-keys", admin, map[string]any{"name": "spare", "role": "viewer"}).JSON(t, &k)
	b.must(204, "DELETE", "/v1/tenants/echo/api-keys/"+k.ID, admin, nil)
	b.must(200, "PATCH", "/v1/tenants/echo", b.admin, map[string]any{"status": "suspended"})
	b.must(200, "PATCH", "/v1/tenants/echo", b.admin, map[string]any{"status": "active"})

	type want struct{ action, actor, target, typ string }
	wants := []want{
		{"user.create", "key:" + string(adminID), "user:" + u.ID, "creation"},
		{"user.role_change", "key:" + string(adminID), "user:" + u.ID, "change"},
		{"user.delete", "key:" + string(adminID), "user:" + u.ID, "deletion"},
		{"api_key.create", "key:" + string(adminID), "key:" + k.ID, "creation"},
		{"api_key.revoke", "key:" + string(adminID), "key:" + k.ID, "deletion"},
		{"tenant.suspend", "operator", "tenant:" + string(tid), "change"},
		{"tenant.resume", "operator", "tenant:" + string(tid), "change"},
	}
	var got []secevent.Event
	for _, ev := range events.all() {
		if ev.Action != "api_key.create" || ev.Target != "key:"+string(adminID) { // not the setup's own key
			got = append(got, ev)
		}
	}
	if len(got) != len(wants) {
		t.Fatalf("%d events, want %d: %+v", len(got), len(wants), got)
	}
	for i, w := range wants {
		ev := got[i]
		if ev.Action != w.action || ev.Actor != w.actor || ev.Target != w.target || ev.Tenant != tid || ev.RequestID == "" {
			t.Errorf("event %d = %+v, want %s by %s on %s in %s", i, ev, w.action, w.actor, w.target, tid)
		}
		if ev.ClientAddr != "127.0.0.1" && ev.ClientAddr != "::1" {
			t.Errorf("event %d source.ip = %q, want the loopback client", i, ev.ClientAddr)
		}
		var doc struct {
			Event struct {
				Type   []string `json:"type"`
				Action string   `json:"action"`
			} `json:"event"`
			Org struct {
				ID string `json:"id"`
			} `json:"organization"`
		}
		if err := json.Unmarshal(secevent.Encode(ev), &doc); err != nil {
			t.Fatal(err)
		}
		if len(doc.Event.Type) != 1 || doc.Event.Type[0] != w.typ || doc.Event.Action != w.action || doc.Org.ID != string(tid) {
			t.Errorf("event %d encodes as %+v, want event.type [%s]", i, doc, w.typ)
		}
	}
}
