package httpapi

// The cross-tenant attack suite (OWASP API1:2023, broken object level
// authorization). Every attack runs for real over loopback HTTP against the
// whole handler stack, once for each pairing of a pooled or silo attacker with
// a pooled or silo victim, and checks two things: the attack got the answer
// the contract promises, and the victim's data — records, collections, keys,
// usage, audit chain, users' ability to log in — is exactly what it was
// before. Where the contract answers 404, the answer for the foreign resource
// must also equal the answer for one that does not exist (ignoring instance
// and request_id), so that existence does not leak.
//
// Helpers here are prefixed "ct" so that they do not collide with other test
// files of the package.

import (
	"bytes"
	"crypto/ed25519"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base32"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/google/go-cmp/cmp"
	"github.com/google/uuid"

	"github.com/bulkheadhq/bulkhead/internal/auth"
	"github.com/bulkheadhq/bulkhead/internal/changefeed"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

const (
	ctAttacker = "attacker"
	ctVictim   = "victim"
	// ctGhost is a well-formed slug no tenant ever has: the "nonexistent"
	// side of every existence comparison.
	ctGhost = "ghost-tenant"
	// ctMarker is in every record of the victim; no answer to an attacker
	// may contain it.
	ctMarker   = "VICTIM-SECRET"
	ctPassword = "correct horse battery staple"
)

var ctRoles = []tenant.Role{tenant.Owner, tenant.Admin, tenant.Member, tenant.Viewer}

// ctKey is an issued API key.
type ctKey struct{ ID, Key string }

// ctUser is a tenant user with the token pair of its login.
type ctUser struct {
	ID, Email, Password string
	Pair                core.TokenPair
}

// ctParty is one tenant of a world with credentials of every role and some
// records.
type ctParty struct {
	Slug    string
	ID      tenant.ID
	Iso     tenant.Isolation
	Keys    map[tenant.Role]ctKey
	Users   map[tenant.Role]ctUser // admin, member, viewer
	Records map[string][]record    // by collection, in creation order
}

func (p *ctParty) key(role tenant.Role) string { return p.Keys[role].Key }
func (p *ctParty) jwt(role tenant.Role) string { return p.Users[role].Pair.AccessToken }

// ctCred is a named credential.
type ctCred struct{ name, token string }

// creds are the party's credentials worth attacking with: API keys of every
// role and access tokens of admin and viewer users.
func (p *ctParty) creds() []ctCred {
	return []ctCred{
		{"OwnerKey", p.key(tenant.Owner)},
		{"AdminKey", p.key(tenant.Admin)},
		{"MemberKey", p.key(tenant.Member)},
		{"ViewerKey", p.key(tenant.Viewer)},
		{"AdminJWT", p.jwt(tenant.Admin)},
		{"ViewerJWT", p.jwt(tenant.Viewer)},
	}
}

// ctWorld is an attacker and a victim tenant served by one bulkhead.
type ctWorld struct {
	*testBundle
	atk, vic *ctParty
}

// ctCollectionSeed is a collection and the records to put in it.
type ctCollectionSeed struct {
	name string
	docs []map[string]any
}

// ctEachPair runs fn for every pairing of attacker and victim isolation,
// each in a parallel subtest with its own server and database.
func ctEachPair(t *testing.T, fn func(t *testing.T, w *ctWorld)) {
	t.Helper()
	for _, atk := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		for _, vic := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
			name := ctTitle(string(atk)) + "Attacker" + ctTitle(string(vic)) + "Victim"
			t.Run(name, func(t *testing.T) {
				t.Parallel()
				fn(t, ctNewWorld(t, atk, vic))
			})
		}
	}
}

func ctTitle(s string) string { return strings.ToUpper(s[:1]) + s[1:] }

func ctNewWorld(t *testing.T, atkIso, vicIso tenant.Isolation) *ctWorld {
	t.Helper()
	// One node with a live in-process change feed, as a SQLite deployment
	// runs: its caches hold while the attacks run, so that each answer is
	// decided by the same cached state however long the suite takes.
	feed := changefeed.NewLocal()
	t.Cleanup(func() { feed.Close() })
	w := &ctWorld{testBundle: setupCore(t, t.TempDir(), func(c *core.Config) { c.Feed = feed })}
	var vicNotes, vicVault, atkNotes []map[string]any
	for i := 1; i <= 3; i++ {
		vicNotes = append(vicNotes, map[string]any{"title": fmt.Sprintf("victim note %d", i), "n": i,
			"secret": fmt.Sprintf("%s-notes-%d", ctMarker, i)})
	}
	for i := 1; i <= 2; i++ {
		vicVault = append(vicVault, map[string]any{"secret": fmt.Sprintf("%s-vault-%d", ctMarker, i), "n": i})
		atkNotes = append(atkNotes, map[string]any{"title": fmt.Sprintf("attacker note %d", i), "n": i})
	}
	w.vic = w.party(ctVictim, vicIso, []ctCollectionSeed{{"notes", vicNotes}, {"vault", vicVault}})
	w.atk = w.party(ctAttacker, atkIso, []ctCollectionSeed{{"notes", atkNotes}, {"scratch", nil}})
	return w
}

func (w *ctWorld) party(slug string, iso tenant.Isolation, cols []ctCollectionSeed) *ctParty {
	w.t.Helper()
	p := &ctParty{Slug: slug, Iso: iso, Keys: map[tenant.Role]ctKey{}, Users: map[tenant.Role]ctUser{},
		Records: map[string][]record{}}
	p.ID = w.tenant(slug, iso)
	for _, role := range ctRoles {
		p.Keys[role] = w.issueKey(slug, w.admin, role)
	}
	for _, role := range []tenant.Role{tenant.Admin, tenant.Member, tenant.Viewer} {
		p.Users[role] = w.newUser(slug, fmt.Sprintf("%s@%s.example", role, slug), role)
	}
	for _, c := range cols {
		w.collection(slug, p.key(tenant.Admin), c.name, nil)
		p.Records[c.name] = []record{}
		for _, d := range c.docs {
			p.Records[c.name] = append(p.Records[c.name], w.createRecord(slug, p.key(tenant.Member), c.name, d))
		}
	}
	return p
}

// issueKey creates an API key of role in slug using token.
func (w *ctWorld) issueKey(slug, token string, role tenant.Role) ctKey {
	w.t.Helper()
	var k struct {
		ID  string `json:"id"`
		Key string `json:"key"`
	}
	w.must(201, "POST", ctPath(slug, "/api-keys"), token, map[string]any{"name": "key-" + string(role), "role": role}).JSON(w.t, &k)
	return ctKey{ID: k.ID, Key: k.Key}
}

// newUser creates a user as the operator and logs it in.
func (w *ctWorld) newUser(slug, email string, role tenant.Role) ctUser {
	w.t.Helper()
	var u struct {
		ID string `json:"id"`
	}
	w.must(201, "POST", ctPath(slug, "/users"), w.admin, map[string]any{"email": email, "password": ctPassword, "role": role}).JSON(w.t, &u)
	var pair core.TokenPair
	w.must(200, "POST", ctPath(slug, "/auth/login"), "", map[string]any{"email": email, "password": ctPassword}).JSON(w.t, &pair)
	return ctUser{ID: u.ID, Email: email, Password: ctPassword, Pair: pair}
}

// server is the API under test, for its route table.
func (w *ctWorld) server() *Server { return w.srv.Config.Handler.(*Server) }

func ctPath(slug, rest string) string { return "/v1/tenants/" + slug + rest }

func ctRecords(slug, col string) string { return ctPath(slug, "/collections/"+col+"/records") }

func ctRecord(slug, col, id string) string { return ctRecords(slug, col) + "/" + id }

// ctCall is one request.
type ctCall struct {
	name         string
	method, path string
	body         any
	headers      []string
}

// call sends c with token.
func (w *ctWorld) call(c ctCall, token string) *response {
	w.t.Helper()
	return w.do(c.method, c.path, token, c.body, c.headers...)
}

// tenantRoutes is every route of the API under /v1/tenants/{tenant}, filled in
// for slug with the victim's real collection, record id and key id, so that
// a request that slipped through would touch victim data. Public routes
// (login, refresh) are left out unless withPublic.
func (w *ctWorld) tenantRoutes(slug string, withPublic bool) []ctCall {
	var calls []ctCall
	for _, rt := range w.server().Routes() {
		if !strings.Contains(rt.Pattern, "{tenant}") || rt.Public && !withPublic {
			continue
		}
		calls = append(calls, w.fillRoute(rt, slug))
	}
	return calls
}

// allRoutes is every authenticated route, tenant routes filled in for slug.
func (w *ctWorld) allRoutes(slug string) []ctCall {
	var calls []ctCall
	for _, rt := range w.server().Routes() {
		if rt.Public {
			continue
		}
		calls = append(calls, w.fillRoute(rt, slug))
	}
	return calls
}

func (w *ctWorld) fillRoute(rt Route, slug string) ctCall {
	id := w.vic.Records["notes"][0].ID
	if strings.Contains(rt.Pattern, "/api-keys/") {
		id = w.vic.Keys[tenant.Admin].ID
	}
	path := strings.NewReplacer("{tenant}", slug, "{collection}", "notes", "{id}", id, "{plan}", "free").Replace(rt.Pattern)
	var body any
	switch rt.Method {
	case "POST", "PUT", "PATCH":
		body = map[string]any{}
		if strings.HasSuffix(rt.Pattern, "/records") {
			body = map[string]any{"title": "planted by the attacker"}
		}
	}
	return ctCall{name: rt.Method + " " + rt.Pattern, method: rt.Method, path: path, body: body}
}

// ghostOf is c addressed to the nonexistent tenant instead of the victim.
func ghostOf(c ctCall) ctCall {
	c.path = strings.Replace(c.path, "/v1/tenants/"+ctVictim, "/v1/tenants/"+ctGhost, 1)
	return c
}

// ---------------------------------------------------------------------------
// Assertions

// ctProblem decodes a problem body, or returns nil if r is not one.
func ctProblem(r *response) map[string]any {
	if r.Header.Get("Content-Type") != "application/problem+json" {
		return nil
	}
	var m map[string]any
	if json.Unmarshal(r.Body, &m) != nil {
		return nil
	}
	return m
}

func ctShort(b []byte) string {
	if len(b) > 400 {
		return string(b[:400]) + "…"
	}
	return string(b)
}

// ctWant reports whether r answered status with problem code (code "" for
// any or no code), failing the test otherwise.
func ctWant(t *testing.T, attack string, r *response, status int, code string) bool {
	t.Helper()
	if r.Status != status {
		t.Errorf("%s: got %d %s, want %d %s", attack, r.Status, ctShort(r.Body), status, code)
		return false
	}
	if status < 400 {
		return true
	}
	p := ctProblem(r)
	if p == nil {
		t.Errorf("%s: got %d with Content-Type %q body %s, want application/problem+json", attack, r.Status,
			r.Header.Get("Content-Type"), ctShort(r.Body))
		return false
	}
	if code != "" && p["code"] != code {
		t.Errorf("%s: got %d code %v, want %d %s; body %s", attack, r.Status, p["code"], status, code, ctShort(r.Body))
		return false
	}
	return true
}

// ctSame fails unless foreign and nonexistent are the same answer: status,
// problem body (without instance and request_id) and the headers a client
// could tell them apart by.
func ctSame(t *testing.T, attack string, foreign, nonexistent *response) {
	t.Helper()
	if foreign.Status != nonexistent.Status {
		t.Errorf("%s: got %d %s, but the same request for something that does not exist got %d %s; they must match so that existence does not leak",
			attack, foreign.Status, ctShort(foreign.Body), nonexistent.Status, ctShort(nonexistent.Body))
		return
	}
	for _, h := range []string{"Content-Type", "WWW-Authenticate", "Allow", "ETag", "Location", "Retry-After"} {
		if a, b := foreign.Header.Get(h), nonexistent.Header.Get(h); a != b {
			t.Errorf("%s: header %s is %q for foreign, %q for nonexistent", attack, h, a, b)
		}
	}
	fp, np := ctProblem(foreign), ctProblem(nonexistent)
	if fp == nil || np == nil {
		if !bytes.Equal(foreign.Body, nonexistent.Body) {
			t.Errorf("%s: foreign body %s differs from nonexistent body %s", attack, ctShort(foreign.Body), ctShort(nonexistent.Body))
		}
		return
	}
	for _, m := range []map[string]any{fp, np} {
		delete(m, "instance")
		delete(m, "request_id")
	}
	if d := cmp.Diff(np, fp); d != "" {
		t.Errorf("%s: foreign and nonexistent problem bodies differ (-nonexistent +foreign):\n%s", attack, d)
	}
}

// secrets are strings of the victim that no answer to the attacker may
// contain: the marker in its records, its record, key and user ids.
func (w *ctWorld) secrets() []string {
	s := []string{ctMarker}
	for _, recs := range w.vic.Records {
		for _, r := range recs {
			s = append(s, r.ID)
		}
	}
	for _, k := range w.vic.Keys {
		s = append(s, k.ID)
	}
	for _, u := range w.vic.Users {
		s = append(s, u.ID)
	}
	return s
}

// noLeak fails if r carries any of the victim's secrets, or, in a problem
// body outside its instance (the caller's own path), the victim's tenant id.
func (w *ctWorld) noLeak(t *testing.T, attack string, r *response) {
	t.Helper()
	body := string(r.Body)
	if p := ctProblem(r); p != nil {
		delete(p, "instance")
		b, _ := json.Marshal(p)
		body = string(b)
		if strings.Contains(body, string(w.vic.ID)) {
			t.Errorf("%s: problem body names the victim tenant: %s", attack, ctShort(r.Body))
		}
		if leakPattern(body) {
			t.Errorf("%s: problem body looks like internals: %s", attack, ctShort(r.Body))
		}
	}
	for _, s := range w.secrets() {
		if strings.Contains(body, s) {
			t.Errorf("%s: answer %d leaks victim data %q: %s", attack, r.Status, s, ctShort(r.Body))
			return
		}
	}
}

func leakPattern(s string) bool {
	s = strings.ToLower(s)
	for _, p := range []string{"sqlite", "select ", "json_extract", "tenant_id", "panic", "goroutine", ".go:"} {
		if strings.Contains(s, p) {
			return true
		}
	}
	return false
}

// attackForeign sends c on the victim's path and the same request on a
// nonexistent tenant's path with token, and checks both are the same 404.
func (w *ctWorld) attackForeign(t *testing.T, attack string, c ctCall, token string) {
	t.Helper()
	foreign := w.call(c, token)
	ctWant(t, attack, foreign, http.StatusNotFound, "not_found")
	w.noLeak(t, attack, foreign)
	ctSame(t, attack, foreign, w.call(ghostOf(c), token))
}

// ---------------------------------------------------------------------------
// The victim's state

// ctSnapshot is everything the victim's admin can see of its tenant.
type ctSnapshot struct {
	Collections []map[string]any
	Records     map[string][]map[string]any
	Keys        []map[string]any
	Usage       map[string]any
	Verify      map[string]any
	Audit       []map[string]any
}

type ctList struct {
	Items      []map[string]any `json:"items"`
	NextCursor string           `json:"next_cursor"`
}

// snapshot reads the victim's whole state with its own admin key.
func (w *ctWorld) snapshot() ctSnapshot {
	w.t.Helper()
	w.core.Flush() // failed logins are audited after their answers
	key := w.vic.key(tenant.Admin)
	var s ctSnapshot
	var cols ctList
	w.must(200, "GET", ctPath(ctVictim, "/collections"), key, nil).JSON(w.t, &cols)
	s.Collections = cols.Items
	s.Records = map[string][]map[string]any{}
	for _, c := range cols.Items {
		name := c["name"].(string)
		var recs ctList
		w.must(200, "GET", ctRecords(ctVictim, name)+"?limit=1000", key, nil).JSON(w.t, &recs)
		if recs.NextCursor != "" {
			w.t.Fatalf("victim collection %s has more than 1000 records", name)
		}
		s.Records[name] = recs.Items
	}
	var keys ctList
	w.must(200, "GET", ctPath(ctVictim, "/api-keys"), key, nil).JSON(w.t, &keys)
	s.Keys = keys.Items
	w.must(200, "GET", ctPath(ctVictim, "/usage"), key, nil).JSON(w.t, &s.Usage)
	w.must(200, "GET", ctPath(ctVictim, "/audit/verify"), key, nil).JSON(w.t, &s.Verify)
	after := ""
	for {
		var page ctList
		w.must(200, "GET", ctPath(ctVictim, "/audit?limit=1000&after="+after), key, nil).JSON(w.t, &page)
		s.Audit = append(s.Audit, page.Items...)
		if page.NextCursor == "" {
			break
		}
		after = page.NextCursor
	}
	return s
}

// ctAuditWant is an audit entry the victim may legitimately gain during an
// attack, such as the failed login an attacker's guess records.
type ctAuditWant struct{ Action, Outcome string }

// unchanged fails unless the victim's state equals before, apart from the
// audit entries in extra (in order), and then checks that each victim user
// can still log in. It must be the last look at the victim in a test:
// logging in appends to the victim's audit.
func (w *ctWorld) unchanged(t *testing.T, before ctSnapshot, attack string, extra ...ctAuditWant) {
	t.Helper()
	after := w.snapshot()
	data := func(s ctSnapshot) ctSnapshot { s.Audit, s.Verify = nil, nil; return s }
	if d := cmp.Diff(data(before), data(after)); d != "" {
		t.Errorf("after %s: victim data changed (-before +after):\n%s", attack, d)
	}
	n := len(before.Audit)
	if len(after.Audit) < n || !cmp.Equal(before.Audit, after.Audit[:n]) {
		t.Errorf("after %s: victim audit history was rewritten (-before +after):\n%s", attack,
			cmp.Diff(before.Audit, after.Audit[:min(n, len(after.Audit))]))
	} else {
		var got []ctAuditWant
		for _, e := range after.Audit[n:] {
			got = append(got, ctAuditWant{Action: e["action"].(string), Outcome: e["outcome"].(string)})
		}
		if d := cmp.Diff(extra, got); d != "" {
			t.Errorf("after %s: victim audit gained unexpected entries (-want +got):\n%s", attack, d)
		}
	}
	if len(extra) == 0 {
		if d := cmp.Diff(before.Verify, after.Verify); d != "" {
			t.Errorf("after %s: victim audit verification changed (-before +after):\n%s", attack, d)
		}
	}
	if after.Verify["ok"] != true || after.Verify["length"] != float64(len(after.Audit)) {
		t.Errorf("after %s: victim audit verify = %v with %d entries listed, want ok and equal length", attack, after.Verify, len(after.Audit))
	}
	for role, u := range w.vic.Users {
		r := w.do("POST", ctPath(ctVictim, "/auth/login"), "", map[string]any{"email": u.Email, "password": u.Password})
		if r.Status != 200 {
			t.Errorf("after %s: victim %s user cannot log in: %d %s", attack, role, r.Status, ctShort(r.Body))
		}
	}
}

// listIDs lists a collection with token and returns the record ids.
func (w *ctWorld) listIDs(t *testing.T, attack, path, token string) []string {
	t.Helper()
	r := w.do("GET", path, token, nil)
	if !ctWant(t, attack, r, 200, "") {
		return nil
	}
	var l ctList
	r.JSON(t, &l)
	var ids []string
	for _, it := range l.Items {
		ids = append(ids, it["id"].(string))
	}
	return ids
}

// ownIDs are the ids of the attacker's records in col.
func (w *ctWorld) ownIDs(col string) []string {
	var ids []string
	for _, r := range w.atk.Records[col] {
		ids = append(ids, r.ID)
	}
	return ids
}

// onlyOwn fails unless every id is one of the attacker's records in col.
func (w *ctWorld) onlyOwn(t *testing.T, attack, col string, ids []string) {
	t.Helper()
	own := w.ownIDs(col)
	for _, id := range ids {
		if !slices.Contains(own, id) {
			t.Errorf("%s: listing returned record %s, which is not the attacker's (own: %v)", attack, id, own)
		}
	}
}

// ---------------------------------------------------------------------------
// Credential forgery

// ctB32 is the auth package's credential alphabet (lower-case base32, no
// padding).
var ctB32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// ctSplitKey splits "bh_<env>_<id>_<secret>".
func ctSplitKey(t *testing.T, key string) (env, id, secret string) {
	t.Helper()
	parts := strings.Split(key, "_")
	if len(parts) != 4 || parts[0] != "bh" {
		t.Fatalf("unexpected API key form %q", key)
	}
	return parts[1], parts[2], parts[3]
}

// ctSwapTenant re-encodes an API key id with tid in its tenant part, keeping
// its random part.
func ctSwapTenant(t *testing.T, id string, tid tenant.ID) string {
	t.Helper()
	raw, err := ctB32.DecodeString(id)
	if err != nil || len(raw) != 24 {
		t.Fatalf("decode key id %q: %v (%d bytes)", id, err, len(raw))
	}
	u, err := uuid.Parse(string(tid))
	if err != nil {
		t.Fatalf("parse tenant id %q: %v", tid, err)
	}
	copy(raw[:16], u[:])
	return ctB32.EncodeToString(raw)
}

var ctB64 = base64.RawURLEncoding

// ctJSONMap is v as it comes back from JSON.
func ctJSONMap(t *testing.T, v any) map[string]any {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	if err := json.Unmarshal(b, &m); err != nil {
		t.Fatal(err)
	}
	return m
}

// ctJWTParts decodes a compact JWS's header and payload.
func ctJWTParts(t *testing.T, token string) (header, payload map[string]any, sig string) {
	t.Helper()
	parts := strings.Split(token, ".")
	if len(parts) != 3 {
		t.Fatalf("token %q is not a compact JWS", token)
	}
	for i, dst := range []*map[string]any{&header, &payload} {
		b, err := ctB64.DecodeString(parts[i])
		if err != nil {
			t.Fatalf("decode JWS part %d: %v", i, err)
		}
		if err := json.Unmarshal(b, dst); err != nil {
			t.Fatalf("decode JWS part %d: %v", i, err)
		}
	}
	return header, payload, parts[2]
}

func ctSeg(t *testing.T, v any) string {
	t.Helper()
	b, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	return ctB64.EncodeToString(b)
}

// ctTamper returns token with edit applied to its payload and the original
// signature kept.
func ctTamper(t *testing.T, token string, edit func(payload map[string]any)) string {
	t.Helper()
	h, p, sig := ctJWTParts(t, token)
	edit(p)
	return ctSeg(t, h) + "." + ctSeg(t, p) + "." + sig
}

// ---------------------------------------------------------------------------
// Attacks

// TestCrossTenantForeignRecordByID: the attacker's credentials on the
// victim's paths with the victim's real record ids: 404, the same as for a
// tenant that does not exist. A missing credential gets the same 401 on both.
func TestCrossTenantForeignRecordByID(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		for _, col := range []string{"notes", "vault"} {
			for _, vr := range w.vic.Records[col] {
				path := ctRecord(ctVictim, col, vr.ID)
				calls := []ctCall{
					{name: "GET", method: "GET", path: path},
					{name: "PATCH", method: "PATCH", path: path, body: map[string]any{"secret": "overwritten"}},
					{name: "PATCHIfMatch", method: "PATCH", path: path, body: map[string]any{"secret": "overwritten"}, headers: []string{"If-Match", `"1"`}},
					{name: "DELETE", method: "DELETE", path: path},
					{name: "DELETEIfMatch", method: "DELETE", path: path, headers: []string{"If-Match", "*"}},
				}
				for _, c := range calls {
					for _, cr := range w.atk.creds() {
						w.attackForeign(t, fmt.Sprintf("%s %s on victim %s/%s with attacker %s", c.name, col, col, vr.ID, cr.name), c, cr.token)
					}
					// Without any credential, foreign and nonexistent are one 401.
					anon := w.call(c, "")
					ctWant(t, "anonymous "+c.name+" on victim record", anon, 401, "unauthorized")
					ctSame(t, "anonymous "+c.name+" on victim record", anon, w.call(ghostOf(c), ""))
				}
			}
		}
		w.unchanged(t, before, "attacker GET/PATCH/DELETE of victim records on victim paths")
	})
}

// TestCrossTenantOwnPathForeignRecordID: the attacker names the victim's
// record ids on its own tenant's path, where the tenant check passes: 404,
// the same as for a record id that does not exist, with no version oracle
// (If-Match mismatches are still 404, not 412).
func TestCrossTenantOwnPathForeignRecordID(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		missing := uuid.Must(uuid.NewV7()).String()
		for _, col := range []string{"notes", "vault"} {
			for _, vr := range w.vic.Records[col] {
				for _, cr := range w.atk.creds() {
					for _, c := range []ctCall{
						{name: "GET", method: "GET"},
						{name: "PATCH", method: "PATCH", body: map[string]any{"secret": "overwritten"}},
						{name: "PATCHIfMatch1", method: "PATCH", body: map[string]any{"secret": "overwritten"}, headers: []string{"If-Match", `"1"`}},
						{name: "PATCHIfMatch999", method: "PATCH", body: map[string]any{"secret": "overwritten"}, headers: []string{"If-Match", `"999"`}},
						{name: "DELETE", method: "DELETE"},
						{name: "DELETEIfMatch1", method: "DELETE", headers: []string{"If-Match", `"1"`}},
					} {
						attack := fmt.Sprintf("%s attacker/%s/%s (victim's id) with attacker %s", c.name, col, vr.ID, cr.name)
						// Viewers may not write at all: 403 before any lookup, for
						// foreign and missing ids alike.
						status, code := 404, "not_found"
						if c.method != "GET" && (cr.name == "ViewerKey" || cr.name == "ViewerJWT") {
							status, code = 403, "forbidden"
						}
						c.path = ctRecord(ctAttacker, col, vr.ID)
						r := w.call(c, cr.token)
						ctWant(t, attack, r, status, code)
						w.noLeak(t, attack, r)
						c.path = ctRecord(ctAttacker, col, missing)
						ctSame(t, attack, r, w.call(c, cr.token))
					}
				}
			}
		}
		w.unchanged(t, before, "attacker GET/PATCH/DELETE of victim record ids on its own path")
	})
}

// TestCrossTenantListForeignCollection: listing the victim's collections
// with the attacker's credentials is 404; listing the attacker's own
// same-named collection, with any filter, order or limit, returns only the
// attacker's records; the attacker's collection list holds only its own.
func TestCrossTenantListForeignCollection(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		for _, cr := range w.atk.creds() {
			for _, q := range []string{"", "?limit=1000", "?order=-n", `?filter=` + url.QueryEscape(`secret ~ "VICTIM"`)} {
				for _, col := range []string{"notes", "vault"} {
					w.attackForeign(t, "list victim "+col+q+" with attacker "+cr.name,
						ctCall{method: "GET", path: ctRecords(ctVictim, col) + q}, cr.token)
				}
				attack := "list attacker's own notes" + q + " with " + cr.name
				r := w.do("GET", ctRecords(ctAttacker, "notes")+q, cr.token, nil)
				ctWant(t, attack, r, 200, "")
				w.noLeak(t, attack, r)
				ids := w.listIDs(t, attack, ctRecords(ctAttacker, "notes")+q, cr.token)
				w.onlyOwn(t, attack, "notes", ids)
				if q == "" && len(ids) != len(w.atk.Records["notes"]) {
					t.Errorf("%s: got %d records, want the attacker's %d", attack, len(ids), len(w.atk.Records["notes"]))
				}
			}
			// A collection only the victim has is missing for the attacker.
			attack := "list attacker/vault (a collection only the victim has) with " + cr.name
			r := w.do("GET", ctRecords(ctAttacker, "vault"), cr.token, nil)
			ctWant(t, attack, r, 404, "not_found")
			ctSame(t, attack, r, w.do("GET", ctRecords(ctAttacker, "nosuchcol"), cr.token, nil))
			w.attackForeign(t, "list victim collections with "+cr.name, ctCall{method: "GET", path: ctPath(ctVictim, "/collections")}, cr.token)
		}
		var cols ctList
		w.must(200, "GET", ctPath(ctAttacker, "/collections"), w.atk.key(tenant.Admin), nil).JSON(t, &cols)
		var names []string
		for _, c := range cols.Items {
			names = append(names, c["name"].(string))
		}
		if want := []string{"notes", "scratch"}; !cmp.Equal(names, want) {
			t.Errorf("attacker's collections = %v, want %v (no victim collection)", names, want)
		}
		w.unchanged(t, before, "listing victim collections")
	})
}

// TestCrossTenantCreateInForeignCollection: writing into the victim's
// collections — a record, a collection, a schema — with the attacker's
// credentials is 404 and plants nothing; writing into a collection that
// only the victim has, on the attacker's own path, is 404 too.
func TestCrossTenantCreateInForeignCollection(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		planted := map[string]any{"title": "planted", "secret": "planted by the attacker"}
		for _, cr := range w.atk.creds() {
			for _, col := range []string{"notes", "vault", "brand_new"} {
				w.attackForeign(t, "POST record into victim/"+col+" with "+cr.name,
					ctCall{method: "POST", path: ctRecords(ctVictim, col), body: planted}, cr.token)
				w.attackForeign(t, "POST record into victim/"+col+" with Idempotency-Key, "+cr.name,
					ctCall{method: "POST", path: ctRecords(ctVictim, col), body: planted, headers: []string{"Idempotency-Key", "plant-1"}}, cr.token)
				w.attackForeign(t, "PUT collection victim/"+col+" with "+cr.name,
					ctCall{method: "PUT", path: ctPath(ctVictim, "/collections/"+col),
						body: map[string]any{"schema": map[string]any{"type": "object", "required": []string{"never"}}}}, cr.token)
			}
			attack := "POST record into attacker/vault (only the victim has vault) with " + cr.name
			r := w.do("POST", ctRecords(ctAttacker, "vault"), cr.token, planted)
			if cr.name == "ViewerKey" || cr.name == "ViewerJWT" {
				ctWant(t, attack, r, 403, "forbidden")
			} else {
				ctWant(t, attack, r, 404, "not_found")
				ctSame(t, attack, r, w.do("POST", ctRecords(ctAttacker, "nosuchcol"), cr.token, planted))
			}
		}
		w.unchanged(t, before, "creating records and collections in the victim")
	})
}

// TestCrossTenantTenantSmuggling: tenant ids and slugs smuggled in headers,
// query parameters and body fields with the attacker's key change nothing:
// the request stays in the attacker's tenant, a record body's tenant fields
// are just data of the attacker's record, control-plane bodies refuse them,
// and the victim's paths stay 404.
func TestCrossTenantTenantSmuggling(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		vid, vslug := string(w.vic.ID), ctVictim
		headers := [][]string{
			{"X-Tenant-ID", vid}, {"X-Tenant-ID", vslug}, {"X-Tenant", vslug}, {"Tenant", vslug}, {"X-Tenant-Slug", vslug},
			{"X-Org-ID", vid}, {"X-Account-ID", vid}, {"X-Forwarded-Host", vslug + ".example.com"},
			{"Forwarded", "host=" + vslug + ".example.com"}, {"X-Forwarded-Prefix", "/v1/tenants/" + vslug},
			{"X-Original-URL", ctRecords(vslug, "notes")}, {"X-Rewrite-URL", ctRecords(vslug, "notes")},
			{"X-HTTP-Method-Override", "DELETE"}, {"X-Bulkhead-Tenant", vid},
		}
		queries := []string{"tenant=" + vslug, "tenant_id=" + vid, "tenant=" + vid, "tenant_slug=" + vslug, "slug=" + vslug,
			"tenant[]=" + vslug, "tenant_id=" + vid + "&tenant_id=" + vslug}
		key := w.atk.key(tenant.Member)

		for _, h := range headers {
			attack := "list attacker/notes with header " + h[0] + ": " + h[1]
			r := w.do("GET", ctRecords(ctAttacker, "notes"), key, nil, h...)
			w.noLeak(t, attack, r)
			w.onlyOwn(t, attack, "notes", w.listIDs(t, attack, ctRecords(ctAttacker, "notes"), key))
			// The header is no way into the victim's paths either.
			w.attackForeign(t, "list victim/notes with header "+h[0], ctCall{method: "GET", path: ctRecords(ctVictim, "notes"), headers: h}, key)
			w.attackForeign(t, "GET victim record with header "+h[0],
				ctCall{method: "GET", path: ctRecord(ctVictim, "notes", w.vic.Records["notes"][0].ID), headers: h}, key)
			// A write with the header lands in the attacker's tenant.
			rec := w.do("POST", ctRecords(ctAttacker, "notes"), key, map[string]any{"title": "smuggled via " + h[0]}, h...)
			if ctWant(t, "POST attacker/notes with header "+h[0], rec, 201, "") {
				var got record
				rec.JSON(t, &got)
				w.atk.Records["notes"] = append(w.atk.Records["notes"], got)
				w.must(200, "GET", ctRecord(ctAttacker, "notes", got.ID), key, nil)
			}
		}
		for _, q := range queries {
			attack := "list attacker/notes?" + q
			w.onlyOwn(t, attack, "notes", w.listIDs(t, attack, ctRecords(ctAttacker, "notes")+"?"+q, key))
			w.attackForeign(t, "list victim/notes?"+q, ctCall{method: "GET", path: ctRecords(ctVictim, "notes") + "?" + q}, key)
			r := w.do("POST", ctRecords(ctAttacker, "notes")+"?"+q, key, map[string]any{"title": "smuggled via ?" + q})
			if ctWant(t, "POST attacker/notes?"+q, r, 201, "") {
				var got record
				r.JSON(t, &got)
				w.atk.Records["notes"] = append(w.atk.Records["notes"], got)
			}
		}

		// Tenant fields in a record body are the attacker's data.
		body := map[string]any{"title": "smuggled body", "tenant_id": vid, "tenant": vslug, "tenant_slug": vslug,
			"_tenant": vid, "collection": "vault", "owner": vid}
		r := w.do("POST", ctRecords(ctAttacker, "notes"), key, body)
		if ctWant(t, "POST attacker/notes with tenant fields in the body", r, 201, "") {
			var got record
			r.JSON(t, &got)
			if d := cmp.Diff(body, got.Data); d != "" {
				t.Errorf("body tenant fields were not kept as plain data (-sent +stored):\n%s", d)
			}
			var again record
			w.must(200, "GET", ctRecord(ctAttacker, "notes", got.ID), key, nil).JSON(t, &again)
			if d := cmp.Diff(got, again); d != "" {
				t.Errorf("attacker's record read back differs (-created +read):\n%s", d)
			}
			// Patching tenant fields into an own record is data too.
			patched := w.do("PATCH", ctRecord(ctAttacker, "notes", got.ID), key, map[string]any{"tenant_id": vid, "tenant": vslug})
			ctWant(t, "PATCH own record with tenant fields", patched, 200, "")
		}
		// Control-plane bodies refuse unknown fields, tenant ones included.
		admin := w.atk.key(tenant.Admin)
		for _, c := range []ctCall{
			{name: "api key with tenant_id", method: "POST", path: ctPath(ctAttacker, "/api-keys"), body: map[string]any{"name": "x", "role": "viewer", "tenant_id": vid}},
			{name: "api key with tenant", method: "POST", path: ctPath(ctAttacker, "/api-keys"), body: map[string]any{"name": "x", "role": "viewer", "tenant": vslug}},
			{name: "user with tenant_id", method: "POST", path: ctPath(ctAttacker, "/users"), body: map[string]any{"email": "smuggle@attacker.example", "password": ctPassword, "role": "viewer", "tenant_id": vid}},
			{name: "collection with tenant_id", method: "PUT", path: ctPath(ctAttacker, "/collections/smuggled"), body: map[string]any{"tenant_id": vid}},
			{name: "login with tenant", method: "POST", path: ctPath(ctAttacker, "/auth/login"), body: map[string]any{"email": w.atk.Users[tenant.Admin].Email, "password": ctPassword, "tenant": vslug}},
		} {
			r := w.call(c, admin)
			ctWant(t, "control-plane "+c.name, r, 400, "unknown_field")
		}
		// The attacker's keys list holds only the attacker's keys.
		var keys ctList
		w.must(200, "GET", ctPath(ctAttacker, "/api-keys"), admin, nil, "X-Tenant-ID", vid).JSON(t, &keys)
		for _, k := range keys.Items {
			if owner, ok := auth.TenantOfAPIKeyID(store.APIKeyID(k["id"].(string))); !ok || owner != w.atk.ID {
				t.Errorf("attacker's key list (X-Tenant-ID smuggled) holds key %v of tenant %s", k["id"], owner)
			}
		}
		w.unchanged(t, before, "tenant smuggling in headers, query and body")
	})
}

// TestCrossTenantCursorReuse: cursors are sealed to a tenant and a
// collection. The victim's cursor replayed by the attacker, the attacker's
// cursor on the victim's path, a cursor of another collection or filter, and
// forged or bit-flipped cursors: 400 invalid_cursor on one's own path (with
// the same body as for garbage), 404 on a foreign path, never victim data.
func TestCrossTenantCursorReuse(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		vkey, akey := w.vic.key(tenant.Viewer), w.atk.key(tenant.Viewer)
		cursorOf := func(slug, col, key, extra string) string {
			var l ctList
			w.must(200, "GET", ctRecords(slug, col)+"?limit=1"+extra, key, nil).JSON(t, &l)
			if l.NextCursor == "" {
				t.Fatalf("listing %s/%s with limit=1 returned no next_cursor", slug, col)
			}
			return l.NextCursor
		}
		vc := cursorOf(ctVictim, "notes", vkey, "")
		vcVault := cursorOf(ctVictim, "vault", vkey, "")
		ac := cursorOf(ctAttacker, "notes", akey, "")
		// Sanity: the victim's cursor works for the victim.
		var page ctList
		w.must(200, "GET", ctRecords(ctVictim, "notes")+"?limit=1&cursor="+url.QueryEscape(vc), vkey, nil).JSON(t, &page)
		if len(page.Items) != 1 || page.Items[0]["id"] != w.vic.Records["notes"][1].ID {
			t.Fatalf("victim's own cursor did not continue its listing: %v", page.Items)
		}
		before := w.snapshot()

		garbage := w.do("GET", ctRecords(ctAttacker, "notes")+"?limit=1&cursor=garbage", akey, nil)
		ctWant(t, "garbage cursor", garbage, 400, "invalid_cursor")
		own := func(attack, path, key, cursor string) {
			t.Helper()
			r := w.do("GET", path+"?limit=1&cursor="+url.QueryEscape(cursor), key, nil)
			ctWant(t, attack, r, 400, "invalid_cursor")
			w.noLeak(t, attack, r)
			ctSame(t, attack+" vs garbage cursor", r, garbage)
		}
		// The victim's cursor replayed by the attacker.
		own("victim's cursor on attacker/notes", ctRecords(ctAttacker, "notes"), akey, vc)
		own("victim's cursor on attacker/scratch", ctRecords(ctAttacker, "scratch"), akey, vc)
		for _, cr := range w.atk.creds() {
			w.attackForeign(t, "victim's cursor on victim/notes with attacker "+cr.name,
				ctCall{method: "GET", path: ctRecords(ctVictim, "notes") + "?limit=1&cursor=" + url.QueryEscape(vc)}, cr.token)
			w.attackForeign(t, "attacker's cursor on victim/notes with attacker "+cr.name,
				ctCall{method: "GET", path: ctRecords(ctVictim, "notes") + "?limit=1&cursor=" + url.QueryEscape(ac)}, cr.token)
		}
		// The attacker's cursor fed to the victim does not open either.
		own("attacker's cursor used by the victim on victim/notes", ctRecords(ctVictim, "notes"), vkey, ac)
		// A cursor of collection A on collection B, and of another filter.
		own("victim's notes cursor on victim/vault", ctRecords(ctVictim, "vault"), vkey, vc)
		own("victim's vault cursor on victim/notes", ctRecords(ctVictim, "notes"), vkey, vcVault)
		own("attacker's notes cursor on attacker/scratch", ctRecords(ctAttacker, "scratch"), akey, ac)
		r := w.do("GET", ctRecords(ctVictim, "notes")+"?limit=1&filter="+url.QueryEscape("n > 0")+"&cursor="+url.QueryEscape(vc), vkey, nil)
		ctWant(t, "victim's cursor with another filter", r, 400, "invalid_cursor")
		r = w.do("GET", ctRecords(ctVictim, "notes")+"?limit=1&order=-n&cursor="+url.QueryEscape(vc), vkey, nil)
		ctWant(t, "victim's cursor with another order", r, 400, "invalid_cursor")

		// Forged and bit-flipped cursors.
		flip := func(s string, i int) string {
			b := []byte(s)
			if b[i] == 'A' {
				b[i] = 'B'
			} else {
				b[i] = 'A'
			}
			return string(b)
		}
		payload, mac, _ := strings.Cut(vc, ".")
		apayload, amac, _ := strings.Cut(ac, ".")
		forged := map[string]string{
			"FlipPayloadFirst": flip(vc, 0),
			"FlipPayloadMid":   flip(vc, len(payload)/2),
			"FlipMACFirst":     flip(vc, len(payload)+1),
			"FlipMACMid":       flip(vc, len(payload)+1+len(mac)/2),
			"Truncated":        vc[:len(vc)-3],
			"NoMAC":            payload,
			"EmptyMAC":         payload + ".",
			"ZeroMAC":          payload + "." + ctB64.EncodeToString(make([]byte, 16)),
			"SwappedMAC":       payload + "." + amac,
			"SwappedPayload":   apayload + "." + mac,
			"JSONPayload":      ctB64.EncodeToString([]byte(`{"tenant_id":"`+string(w.vic.ID)+`"}`)) + "." + mac,
			"Overlong":         strings.Repeat("A", 5000),
			"Dots":             "..",
			"Base64StdPadding": base64.StdEncoding.EncodeToString([]byte("x")) + "." + mac,
			"Operator":         "e30." + mac,
		}
		for name, c := range forged {
			own("forged cursor "+name+" by the attacker", ctRecords(ctAttacker, "notes"), akey, c)
			own("forged cursor "+name+" by the victim", ctRecords(ctVictim, "notes"), vkey, c)
			w.attackForeign(t, "forged cursor "+name+" on victim/notes",
				ctCall{method: "GET", path: ctRecords(ctVictim, "notes") + "?cursor=" + url.QueryEscape(c)}, akey)
		}
		// Operator's tenant-listing cursor is no records cursor.
		w.must(201, "POST", "/v1/tenants", w.admin, map[string]any{"slug": "third", "name": "third"})
		var tl ctList
		w.must(200, "GET", "/v1/tenants?limit=1", w.admin, nil).JSON(t, &tl)
		if tl.NextCursor != "" {
			own("operator's tenants cursor on attacker/notes", ctRecords(ctAttacker, "notes"), akey, tl.NextCursor)
		}
		w.unchanged(t, before, "cursor reuse")
	})
}

// TestCrossTenantFilterInjection: filters written to break out of the
// parameterized query or to name the tenant column either fail with 400
// invalid_filter or return only the attacker's own records; nothing quotes
// SQL back. The same filters on the victim's path are 404.
func TestCrossTenantFilterInjection(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		vid := string(w.vic.ID)
		vrec := w.vic.Records["notes"][0].ID
		filters := []string{
			`title = "x' OR 1=1 --"`,
			`title = "x\" OR 1=1 --"`,
			`title = 'x' OR 1=1 --`,
			`id = "x\") OR (1=1"`,
			`id = "` + vrec + `"`,
			`id != "` + vrec + `"`,
			`id ~ ""`,
			`id = "x" OR 1 = 1`,
			`a = 1 || tenant_id != ""`,
			`tenant_id != ""`,
			`tenant_id = "` + vid + `"`,
			`tenant_id != "` + vid + `"`,
			`tenant_id = null`,
			`tenant_id != null`,
			`tenant_id ~ ""`,
			`collection != "notes"`,
			`collection = "vault"`,
			`secret ~ "VICTIM"`,
			`secret != null`,
			`n > 0 || n <= 0 || n = null`,
			`title ~ ""`,
			`$.title = "x"`,
			`data.title = "x"`,
			`json_extract(data, '$.title') = 1`,
			`"title" = 1`,
			`title = "x"; DROP TABLE records; --`,
			`title = "x" UNION SELECT id, data FROM records --`,
			`title = "x") OR (tenant_id != ""`,
			`(title = "a") || (tenant_id != "")`,
			`1 = 1`,
			`true`,
			`title = "\u0000"`,
			`title = "x"` + "\x00" + ` || 1 = 1`,
			`created_at > "1970-01-01T00:00:00Z"`,
			`created_at > "1970-01-01T00:00:00Z' OR '1'='1"`,
			`updated_at < "9999-12-31T23:59:59Z" || tenant_id != ""`,
			`title = "` + strings.Repeat("a", 5000) + `"`,
			strings.Repeat("(", 40) + `a = 1` + strings.Repeat(")", 40),
			strings.Repeat("(", 10000) + `a = 1` + strings.Repeat(")", 10000),
			strings.TrimSuffix(strings.Repeat(`a = 1 || `, 100), " || "),
			strings.TrimSuffix(strings.Repeat(`tenant_id != "" || `, 60), " || "),
			`ÿ = 1`,
			`title = "` + strings.Repeat(`\"`, 500) + `"`,
		}
		orders := []string{"tenant_id", "-tenant_id", "tenant_id desc", "(SELECT 1)", "id; DROP TABLE records", "collection", "data", "-data.title", "rowid"}
		akey := w.atk.key(tenant.Viewer)
		try := func(attack, query string) {
			t.Helper()
			path := ctRecords(ctAttacker, "notes") + "?limit=1000&" + query
			r := w.do("GET", path, akey, nil)
			w.noLeak(t, attack, r)
			switch r.Status {
			case 200:
				var l ctList
				r.JSON(t, &l)
				var ids []string
				for _, it := range l.Items {
					ids = append(ids, it["id"].(string))
				}
				w.onlyOwn(t, attack, "notes", ids)
			case 400:
				code := ctProblem(r)["code"]
				if code != "invalid_filter" && code != "invalid_request" {
					t.Errorf("%s: got 400 %v, want invalid_filter (or invalid_request for order)", attack, code)
				}
			default:
				t.Errorf("%s: got %d %s, want 400 invalid_filter or 200 with the attacker's records", attack, r.Status, ctShort(r.Body))
			}
			w.attackForeign(t, attack+" on victim/notes", ctCall{method: "GET", path: ctRecords(ctVictim, "notes") + "?" + query}, akey)
		}
		for _, f := range filters {
			try(fmt.Sprintf("filter %.80q", f), "filter="+url.QueryEscape(f))
		}
		for _, o := range orders {
			try(fmt.Sprintf("order %q", o), "order="+url.QueryEscape(o))
		}
		// Parameters repeated or smuggled next to a filter.
		try("two filters", "filter="+url.QueryEscape(`n = 1`)+"&filter="+url.QueryEscape(`tenant_id != ""`))
		w.unchanged(t, before, "filter injection")
	})
}

// TestCrossTenantRevokedKey: a key the victim revokes gets 401 at once, on
// every route, with the same body as a key never issued; a key the attacker
// revoked cannot be used on its own or the victim's paths either.
func TestCrossTenantRevokedKey(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		vadmin := w.vic.key(tenant.Admin)
		doomed := w.issueKey(ctVictim, vadmin, tenant.Admin)
		// Use it first, so that it sits in the key cache.
		w.must(200, "GET", ctRecords(ctVictim, "notes"), doomed.Key, nil)
		w.must(204, "DELETE", ctPath(ctVictim, "/api-keys/"+doomed.ID), vadmin, nil)

		aadmin := w.atk.key(tenant.Admin)
		atkDoomed := w.issueKey(ctAttacker, aadmin, tenant.Admin)
		w.must(200, "GET", ctRecords(ctAttacker, "notes"), atkDoomed.Key, nil)
		w.must(204, "DELETE", ctPath(ctAttacker, "/api-keys/"+atkDoomed.ID), aadmin, nil)
		before := w.snapshot()

		neverIssued := ctNeverIssuedKey(t, w.vic.ID)
		for _, slug := range []string{ctVictim, ctAttacker} {
			for _, c := range w.allRoutes(slug) {
				ref := w.call(c, neverIssued)
				for _, k := range []ctCred{{"victim's revoked key", doomed.Key}, {"attacker's revoked key", atkDoomed.Key}} {
					attack := fmt.Sprintf("%s on %s (%s)", k.name, c.name, slug)
					r := w.call(c, k.token)
					ctWant(t, attack, r, 401, "unauthorized")
					ctSame(t, attack+" vs never-issued key", r, ref)
				}
			}
		}
		// Revoking again, with the revoked key itself or the real admin, does
		// not bring it back.
		r := w.do("DELETE", ctPath(ctVictim, "/api-keys/"+doomed.ID), doomed.Key, nil)
		ctWant(t, "revoked key revoking itself", r, 401, "unauthorized")
		w.unchanged(t, before, "use of revoked keys")
	})
}

// TestCrossTenantSuspendedAttacker: once the operator suspends the attacker,
// its keys and access tokens get 403 tenant_suspended on every route of its
// own tenant and 403 on platform routes, and on the victim's routes exactly
// the 404 of a tenant that does not exist. A suspended victim, likewise,
// answers the attacker like a tenant that does not exist.
func TestCrossTenantSuspendedAttacker(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		creds := w.atk.creds()
		for _, cr := range creds {
			w.must(200, "GET", ctRecords(ctAttacker, "notes"), cr.token, nil) // warm the caches
		}
		w.must(200, "PATCH", "/v1/tenants/"+ctAttacker, w.admin, map[string]any{"status": "suspended"})
		for _, cr := range creds {
			for _, c := range w.tenantRoutes(ctAttacker, false) {
				// The attacker's own paths, with the victim's ids in them.
				ctWant(t, "suspended attacker "+cr.name+" on own "+c.name, w.call(c, cr.token), 403, "tenant_suspended")
			}
			for _, c := range w.allRoutes(ctVictim) {
				if !strings.Contains(c.path, "/v1/tenants/"+ctVictim) {
					ctWant(t, "suspended attacker "+cr.name+" on platform route "+c.name, w.call(c, cr.token), 403, "forbidden")
					continue
				}
				w.attackForeign(t, "suspended attacker "+cr.name+" on victim "+c.name, c, cr.token)
			}
		}
		// The suspended attacker cannot log in or refresh its way out.
		u := w.atk.Users[tenant.Admin]
		r := w.do("POST", ctPath(ctAttacker, "/auth/login"), "", map[string]any{"email": u.Email, "password": u.Password})
		ctWant(t, "suspended attacker logs in", r, 403, "tenant_suspended")
		r = w.do("POST", ctPath(ctVictim, "/auth/login"), "", map[string]any{"email": u.Email, "password": u.Password})
		ctWant(t, "suspended attacker logs in to the victim", r, 401, "invalid_credentials")
		ctSame(t, "suspended attacker logs in to the victim", r,
			w.do("POST", ctPath(ctGhost, "/auth/login"), "", map[string]any{"email": u.Email, "password": u.Password}))
		rt := map[string]any{"refresh_token": u.Pair.RefreshToken}
		r = w.do("POST", ctPath(ctVictim, "/auth/refresh"), "", rt)
		ctWant(t, "suspended attacker's refresh token at the victim", r, 401, "invalid_credentials")
		ctSame(t, "suspended attacker's refresh token at the victim", r, w.do("POST", ctPath(ctGhost, "/auth/refresh"), "", rt))
		// Nor can it resume itself.
		r = w.do("PATCH", "/v1/tenants/"+ctAttacker, w.atk.key(tenant.Owner), map[string]any{"status": "active"})
		ctWant(t, "suspended attacker resumes itself", r, 403, "tenant_suspended")
		// The failed login at the victim is in its audit.
		w.unchanged(t, before, "suspended attacker's requests", ctAuditWant{Action: "auth.login", Outcome: "failure"})
	})
}

// TestCrossTenantSuspendedVictim: while the victim is suspended, the
// attacker's credentials on its routes get the 404 of a tenant that does not
// exist (not tenant_suspended), and so do logins with made-up passwords.
func TestCrossTenantSuspendedVictim(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		w.must(200, "PATCH", "/v1/tenants/"+ctVictim, w.admin, map[string]any{"status": "suspended"})
		for _, cr := range w.atk.creds() {
			for _, c := range w.tenantRoutes(ctVictim, false) {
				w.attackForeign(t, "attacker "+cr.name+" on suspended victim "+c.name, c, cr.token)
			}
		}
		login := map[string]any{"email": "nobody@victim.example", "password": "guess guess guess"}
		r := w.do("POST", ctPath(ctVictim, "/auth/login"), "", login)
		ctWant(t, "login guess at suspended victim", r, 401, "invalid_credentials")
		ctSame(t, "login guess at suspended victim", r, w.do("POST", ctPath(ctGhost, "/auth/login"), "", login))
		// The victim's own key is told it is suspended: it is its own tenant.
		ctWant(t, "suspended victim's own key", w.do("GET", ctRecords(ctVictim, "notes"), w.vic.key(tenant.Viewer), nil), 403, "tenant_suspended")
		w.must(200, "PATCH", "/v1/tenants/"+ctVictim, w.admin, map[string]any{"status": "active"})
		// The guess at the suspended victim is in its audit.
		w.unchanged(t, before, "attacks on a suspended victim", ctAuditWant{Action: "auth.login", Outcome: "failure"})
	})
}

// TestCrossTenantRoleEscalation: viewers and members cannot mint keys or
// users, change collections or revoke keys; admins cannot mint owners; no
// tenant role reaches platform routes; a JWT whose role claim was raised is
// 401; the attacker's owner cannot mint anything in the victim (404).
func TestCrossTenantRoleEscalation(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		v := w.vic
		newUser := func(role string) map[string]any {
			return map[string]any{"email": "escalated-" + role + "@victim.example", "password": ctPassword, "role": role}
		}
		type esc struct {
			name string
			call ctCall
		}
		lowCalls := []esc{
			{"mint owner key", ctCall{method: "POST", path: ctPath(ctVictim, "/api-keys"), body: map[string]any{"name": "esc", "role": "owner"}}},
			{"mint admin key", ctCall{method: "POST", path: ctPath(ctVictim, "/api-keys"), body: map[string]any{"name": "esc", "role": "admin"}}},
			{"mint viewer key", ctCall{method: "POST", path: ctPath(ctVictim, "/api-keys"), body: map[string]any{"name": "esc", "role": "viewer"}}},
			{"create owner user", ctCall{method: "POST", path: ctPath(ctVictim, "/users"), body: newUser("owner")}},
			{"create admin user", ctCall{method: "POST", path: ctPath(ctVictim, "/users"), body: newUser("admin")}},
			{"replace notes schema", ctCall{method: "PUT", path: ctPath(ctVictim, "/collections/notes"), body: map[string]any{"schema": map[string]any{"type": "object", "required": []string{"never"}}}}},
			{"create collection", ctCall{method: "PUT", path: ctPath(ctVictim, "/collections/escalated"), body: map[string]any{}}},
			{"revoke admin key", ctCall{method: "DELETE", path: ctPath(ctVictim, "/api-keys/"+v.Keys[tenant.Admin].ID)}},
			{"revoke owner key", ctCall{method: "DELETE", path: ctPath(ctVictim, "/api-keys/"+v.Keys[tenant.Owner].ID)}},
			{"list keys", ctCall{method: "GET", path: ctPath(ctVictim, "/api-keys")}},
			{"read audit", ctCall{method: "GET", path: ctPath(ctVictim, "/audit")}},
			{"verify audit", ctCall{method: "GET", path: ctPath(ctVictim, "/audit/verify")}},
			{"read usage", ctCall{method: "GET", path: ctPath(ctVictim, "/usage")}},
		}
		viewerCalls := append(slices.Clone(lowCalls),
			esc{"create record", ctCall{method: "POST", path: ctRecords(ctVictim, "notes"), body: map[string]any{"title": "viewer write"}}},
			esc{"patch record", ctCall{method: "PATCH", path: ctRecord(ctVictim, "notes", v.Records["notes"][0].ID), body: map[string]any{"title": "viewer write"}}},
			esc{"delete record", ctCall{method: "DELETE", path: ctRecord(ctVictim, "notes", v.Records["notes"][0].ID)}},
		)
		platformCalls := []esc{
			{"resume/patch own tenant", ctCall{method: "PATCH", path: "/v1/tenants/" + ctVictim, body: map[string]any{"plan": "enterprise"}}},
			{"delete own tenant", ctCall{method: "DELETE", path: "/v1/tenants/" + ctVictim}},
			{"get own tenant", ctCall{method: "GET", path: "/v1/tenants/" + ctVictim}},
			{"list tenants", ctCall{method: "GET", path: "/v1/tenants"}},
			{"create tenant", ctCall{method: "POST", path: "/v1/tenants", body: map[string]any{"slug": "escalated", "name": "x"}}},
			{"put plan", ctCall{method: "PUT", path: "/v1/plans/free", body: map[string]any{"rate_per_sec": 1000000, "burst": 1000000, "max_inflight": 1000, "weight": 1000, "max_records": 1 << 40, "max_bytes": 1 << 50}}},
			{"list plans", ctCall{method: "GET", path: "/v1/plans"}},
			{"platform audit", ctCall{method: "GET", path: "/v1/audit"}},
			{"metrics", ctCall{method: "GET", path: "/metrics"}},
		}
		run := func(who, token string, calls []esc) {
			t.Helper()
			for _, e := range calls {
				attack := who + " tries to " + e.name
				r := w.call(e.call, token)
				ctWant(t, attack, r, 403, "forbidden")
			}
		}
		for _, who := range []ctCred{{"viewer key", v.key(tenant.Viewer)}, {"viewer JWT", v.jwt(tenant.Viewer)}} {
			run(who.name, who.token, viewerCalls)
			run(who.name, who.token, platformCalls)
		}
		for _, who := range []ctCred{{"member key", v.key(tenant.Member)}, {"member JWT", v.jwt(tenant.Member)}} {
			run(who.name, who.token, lowCalls)
			run(who.name, who.token, platformCalls)
		}
		adminCalls := []esc{lowCalls[0], lowCalls[3]} // mint an owner key, create an owner user
		for _, who := range []ctCred{{"admin key", v.key(tenant.Admin)}, {"admin JWT", v.jwt(tenant.Admin)}} {
			run(who.name, who.token, adminCalls)
			run(who.name, who.token, platformCalls)
		}
		run("owner key", v.key(tenant.Owner), platformCalls)

		// Raising the role claim of a JWT breaks its signature.
		for _, base := range []ctCred{{"viewer", v.jwt(tenant.Viewer)}, {"member", v.jwt(tenant.Member)}, {"admin", v.jwt(tenant.Admin)}} {
			raised := ctTamper(t, base.token, func(p map[string]any) { p["role"] = "owner" })
			for _, e := range append(slices.Clone(viewerCalls), platformCalls...) {
				ctWant(t, base.name+" JWT with role raised to owner tries to "+e.name, w.call(e.call, raised), 401, "unauthorized")
			}
		}
		// The attacker's owner cannot mint anything in the victim.
		aowner := w.atk.key(tenant.Owner)
		for _, e := range lowCalls[:5] {
			w.attackForeign(t, "attacker owner key tries to "+e.name+" in the victim", e.call, aowner)
		}
		w.unchanged(t, before, "role escalation")
	})
}

// TestCrossTenantJWT: the attacker's access tokens on the victim's routes are
// 404 like a nonexistent tenant; tokens whose tid claim was changed, and
// tokens signed with alg none, HS256 over the public key, or another Ed25519
// key under the real kid, are 401 like any bad credential.
func TestCrossTenantJWT(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		for _, role := range []tenant.Role{tenant.Admin, tenant.Member, tenant.Viewer} {
			for _, c := range w.tenantRoutes(ctVictim, false) {
				w.attackForeign(t, fmt.Sprintf("attacker %s JWT on victim %s", role, c.name), c, w.atk.jwt(role))
			}
		}

		adminJWT := w.atk.jwt(tenant.Admin)
		hdr, payload, _ := ctJWTParts(t, adminJWT)
		vid := string(w.vic.ID)

		var jwks struct {
			Keys []struct {
				X string `json:"x"`
			} `json:"keys"`
		}
		jwksBody := w.must(200, "GET", "/.well-known/jwks.json", "", nil)
		jwksBody.JSON(t, &jwks)
		pub, err := ctB64.DecodeString(jwks.Keys[0].X)
		if err != nil {
			t.Fatal(err)
		}
		sign := func(alg string, key []byte, p map[string]any) string {
			h := map[string]any{}
			for k, v := range hdr {
				h[k] = v
			}
			h["alg"] = alg
			input := ctSeg(t, h) + "." + ctSeg(t, p)
			switch alg {
			case "none":
				return input + "."
			case "HS256":
				m := hmac.New(sha256.New, key)
				m.Write([]byte(input))
				return input + "." + ctB64.EncodeToString(m.Sum(nil))
			case "EdDSA":
				return input + "." + ctB64.EncodeToString(ed25519.Sign(ed25519.PrivateKey(key), []byte(input)))
			}
			t.Fatalf("unknown alg %s", alg)
			return ""
		}
		victimClaims := map[string]any{}
		for k, v := range payload {
			victimClaims[k] = v
		}
		victimClaims["tid"] = vid
		victimClaims["role"] = "owner"
		victimClaims["sub"] = w.vic.Users[tenant.Admin].ID
		_, otherKey, err := ed25519.GenerateKey(rand.Reader)
		if err != nil {
			t.Fatal(err)
		}
		forged := []ctCred{
			{"tid tampered, signature kept", ctTamper(t, adminJWT, func(p map[string]any) { p["tid"] = vid })},
			{"tid and sub tampered", ctTamper(t, adminJWT, func(p map[string]any) { p["tid"] = vid; p["sub"] = w.vic.Users[tenant.Admin].ID })},
			{"alg none", sign("none", nil, victimClaims)},
			{"alg none, own tid", sign("none", nil, payload)},
			{"HS256 keyed with the public key", sign("HS256", pub, victimClaims)},
			{"HS256 keyed with the JWKS document", sign("HS256", jwksBody.Body, victimClaims)},
			{"EdDSA with another key under the real kid", sign("EdDSA", otherKey, victimClaims)},
			{"signature of the attacker's token on victim claims", ctSeg(t, hdr) + "." + ctSeg(t, victimClaims) + "." + strings.Split(adminJWT, ".")[2]},
			{"no signature", strings.Join(strings.Split(adminJWT, ".")[:2], ".") + "."},
		}
		ref := w.do("GET", ctRecords(ctVictim, "notes"), "eyJhbGciOiJub25lIn0.e30.", nil)
		for _, f := range forged {
			for _, slug := range []string{ctVictim, ctAttacker} {
				for _, c := range w.tenantRoutes(slug, false) {
					attack := fmt.Sprintf("JWT %s on %s %s", f.name, slug, c.name)
					r := w.call(c, f.token)
					ctWant(t, attack, r, 401, "unauthorized")
					ctSame(t, attack+" vs garbage JWT", r, ref)
				}
			}
		}
		w.unchanged(t, before, "JWT attacks")
	})
}

// TestCrossTenantKeyTenantSwap: an API key whose embedded tenant part is
// re-encoded to the victim's tenant id (or to a random tenant, or with
// another environment) is 401 everywhere, like a key never issued.
func TestCrossTenantKeyTenantSwap(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		fresh := ctNeverIssuedKey(t, w.vic.ID)
		var forged []ctCred
		for _, role := range ctRoles {
			env, id, secret := ctSplitKey(t, w.atk.key(role))
			swapped := ctSwapTenant(t, id, w.vic.ID)
			if owner, ok := auth.TenantOfAPIKeyID(store.APIKeyID(swapped)); !ok || owner != w.vic.ID {
				t.Fatalf("re-encoded key id names tenant %s, want the victim %s", owner, w.vic.ID)
			}
			random := ctSwapTenant(t, id, tenant.ID(uuid.Must(uuid.NewV7()).String()))
			forged = append(forged,
				ctCred{fmt.Sprintf("attacker %s key with the victim's tenant part", role), "bh_" + env + "_" + swapped + "_" + secret},
				ctCred{fmt.Sprintf("attacker %s key with a random tenant part", role), "bh_" + env + "_" + random + "_" + secret},
				ctCred{fmt.Sprintf("attacker %s key in env test", role), "bh_test_" + id + "_" + secret},
				ctCred{fmt.Sprintf("attacker %s key upper-cased", role), "bh_" + env + "_" + strings.ToUpper(id) + "_" + secret},
			)
		}
		forged = append(forged, ctCred{"well-formed key for the victim never issued", fresh})
		ref := w.do("GET", ctRecords(ctVictim, "notes"), "bh_live_garbage", nil)
		for _, f := range forged {
			for _, slug := range []string{ctVictim, ctAttacker} {
				for _, c := range w.tenantRoutes(slug, false) {
					attack := fmt.Sprintf("%s on %s %s", f.name, slug, c.name)
					r := w.call(c, f.token)
					ctWant(t, attack, r, 401, "unauthorized")
					ctSame(t, attack+" vs garbage key", r, ref)
				}
			}
		}
		w.unchanged(t, before, "API keys with a swapped tenant part")
	})
}

// TestCrossTenantKeyMixAndMatch: the victim's key id with the attacker's
// secret, the attacker's id with the victim's secret, and the victim's id
// with a random secret are 401 everywhere, including right after the
// victim's key was used (and cached).
func TestCrossTenantKeyMixAndMatch(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot() // uses, and so caches, the victim's admin key
		var forged []ctCred
		for _, role := range ctRoles {
			venv, vid, vsecret := ctSplitKey(t, w.vic.key(role))
			aenv, aid, asecret := ctSplitKey(t, w.atk.key(role))
			random := make([]byte, 32)
			rand.Read(random)
			forged = append(forged,
				ctCred{fmt.Sprintf("victim %s key id + attacker secret", role), "bh_" + venv + "_" + vid + "_" + asecret},
				ctCred{fmt.Sprintf("attacker %s key id + victim secret", role), "bh_" + aenv + "_" + aid + "_" + vsecret},
				ctCred{fmt.Sprintf("victim %s key id + random secret", role), "bh_" + venv + "_" + vid + "_" + ctB32.EncodeToString(random)},
			)
		}
		ref := w.do("GET", ctRecords(ctVictim, "notes"), "bh_live_garbage", nil)
		for _, f := range forged {
			for _, slug := range []string{ctVictim, ctAttacker} {
				for _, c := range w.tenantRoutes(slug, false) {
					attack := fmt.Sprintf("%s on %s %s", f.name, slug, c.name)
					r := w.call(c, f.token)
					ctWant(t, attack, r, 401, "unauthorized")
					ctSame(t, attack+" vs garbage key", r, ref)
				}
			}
		}
		w.unchanged(t, before, "mixed key ids and secrets")
	})
}

// TestCrossTenantRevokeForeignKey: the attacker's admin revoking the
// victim's key ids, on its own path and on the victim's, gets 404 (the
// answer for a key id that does not exist) and the victim's keys keep
// working.
func TestCrossTenantRevokeForeignKey(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		_, idNever, _ := ctSplitKey(t, ctNeverIssuedKey(t, w.atk.ID))
		for _, cr := range []ctCred{{"attacker owner key", w.atk.key(tenant.Owner)}, {"attacker admin key", w.atk.key(tenant.Admin)}, {"attacker admin JWT", w.atk.jwt(tenant.Admin)}} {
			missing := w.do("DELETE", ctPath(ctAttacker, "/api-keys/"+idNever), cr.token, nil)
			ctWant(t, cr.name+" revokes a key id that does not exist", missing, 404, "not_found")
			for _, role := range ctRoles {
				id := w.vic.Keys[role].ID
				attack := fmt.Sprintf("%s revokes victim %s key %s on its own path", cr.name, role, id)
				r := w.do("DELETE", ctPath(ctAttacker, "/api-keys/"+id), cr.token, nil)
				ctWant(t, attack, r, 404, "not_found")
				ctSame(t, attack, r, missing)
				w.attackForeign(t, fmt.Sprintf("%s revokes victim %s key on the victim's path", cr.name, role),
					ctCall{method: "DELETE", path: ctPath(ctVictim, "/api-keys/"+id)}, cr.token)
				// The victim's key id with its tenant part re-encoded to the attacker.
				swapped := ctSwapTenant(t, id, w.atk.ID)
				r = w.do("DELETE", ctPath(ctAttacker, "/api-keys/"+swapped), cr.token, nil)
				ctWant(t, attack+" (tenant part swapped to the attacker)", r, 404, "not_found")
				ctSame(t, attack+" (tenant part swapped to the attacker)", r, missing)
			}
			for _, id := range []string{"..%2F..%2F" + ctVictim + "%2Fapi-keys%2F" + w.vic.Keys[tenant.Admin].ID, strings.ToUpper(w.vic.Keys[tenant.Admin].ID), "*", "%25"} {
				r := w.do("DELETE", ctPath(ctAttacker, "/api-keys/"+id), cr.token, nil)
				ctWant(t, cr.name+" revokes key id "+id, r, 404, "not_found")
			}
		}
		for _, role := range ctRoles {
			w.must(200, "GET", ctRecords(ctVictim, "notes"), w.vic.key(role), nil)
		}
		w.unchanged(t, before, "revoking the victim's keys")
	})
}

// ctNeverIssuedKey returns a well-formed key of tid that was never stored.
func ctNeverIssuedKey(t *testing.T, tid tenant.ID) string {
	t.Helper()
	_, key, err := auth.NewAPIKey("live", tid)
	if err != nil {
		t.Fatal(err)
	}
	return key
}

// TestCrossTenantIdempotencyKey: the attacker reusing the victim's
// Idempotency-Key with the same body gets a new record of its own, never the
// victim's stored response, and no 422 that would reveal the key was used.
func TestCrossTenantIdempotencyKey(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		body := map[string]any{"title": "order 42", "secret": ctMarker + "-idem"}
		const ik = "order-42"
		var vrec record
		first := w.must(201, "POST", ctRecords(ctVictim, "notes"), w.vic.key(tenant.Member), body, "Idempotency-Key", ik)
		first.JSON(t, &vrec)
		w.vic.Records["notes"] = append(w.vic.Records["notes"], vrec)
		// Sanity: the victim's retry replays.
		var again record
		replay := w.must(201, "POST", ctRecords(ctVictim, "notes"), w.vic.key(tenant.Member), body, "Idempotency-Key", ik)
		replay.JSON(t, &again)
		if again.ID != vrec.ID || replay.Header.Get("Idempotent-Replayed") != "true" {
			t.Fatalf("victim's own retry did not replay: %s", replay.Body)
		}
		// The victim's JWT user uses the same key for a user creation too.
		vuser := map[string]any{"email": "idem@shared.example", "password": ctPassword, "role": "viewer"}
		w.must(201, "POST", ctPath(ctVictim, "/users"), w.vic.jwt(tenant.Admin), vuser, "Idempotency-Key", ik)
		before := w.snapshot()

		for _, cr := range []ctCred{{"attacker member key", w.atk.key(tenant.Member)}, {"attacker admin JWT", w.atk.jwt(tenant.Admin)}, {"attacker owner key", w.atk.key(tenant.Owner)}} {
			w.attackForeign(t, cr.name+" replays the victim's key on the victim's path",
				ctCall{method: "POST", path: ctRecords(ctVictim, "notes"), body: body, headers: []string{"Idempotency-Key", ik}}, cr.token)
			attack := cr.name + " reuses the victim's Idempotency-Key on its own path"
			r := w.do("POST", ctRecords(ctAttacker, "notes"), cr.token, body, "Idempotency-Key", ik)
			if !ctWant(t, attack, r, 201, "") {
				continue
			}
			if r.Header.Get("Idempotent-Replayed") != "" {
				t.Errorf("%s: answer says Idempotent-Replayed: %q", attack, r.Header.Get("Idempotent-Replayed"))
			}
			var got record
			r.JSON(t, &got)
			if got.ID == vrec.ID {
				t.Errorf("%s: got the victim's record %s back", attack, vrec.ID)
			}
			w.must(200, "GET", ctRecord(ctAttacker, "notes", got.ID), cr.token, nil)
			ctWant(t, attack+": victim's record id on attacker path", w.do("GET", ctRecord(ctAttacker, "notes", vrec.ID), cr.token, nil), 404, "not_found")
			// Its own retry replays its own record.
			var own record
			rr := w.must(201, "POST", ctRecords(ctAttacker, "notes"), cr.token, body, "Idempotency-Key", ik)
			rr.JSON(t, &own)
			if own.ID != got.ID || rr.Header.Get("Idempotent-Replayed") != "true" {
				t.Errorf("%s: own retry = %s (replayed %q), want its own record %s", attack, own.ID, rr.Header.Get("Idempotent-Replayed"), got.ID)
			}
			// Another body under the victim's key is a fresh key for the attacker, not 422.
			other := w.do("POST", ctRecords(ctAttacker, "scratch"), cr.token, map[string]any{"other": true}, "Idempotency-Key", "victim-only-"+ik)
			ctWant(t, attack+" with another body and a fresh key", other, 201, "")
		}
		// The same on user creation.
		attack := "attacker admin reuses the victim's user Idempotency-Key"
		r := w.do("POST", ctPath(ctAttacker, "/users"), w.atk.key(tenant.Admin), vuser, "Idempotency-Key", ik)
		ctWant(t, attack, r, 201, "")
		w.noLeak(t, attack, r)
		w.unchanged(t, before, "Idempotency-Key collisions")
	})
}

// TestCrossTenantAudit: the attacker's admin cannot read or verify the
// victim's audit (404); the attacker's own audit never holds the victim's
// entries.
func TestCrossTenantAudit(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		for _, cr := range []ctCred{{"attacker owner key", w.atk.key(tenant.Owner)}, {"attacker admin key", w.atk.key(tenant.Admin)}, {"attacker admin JWT", w.atk.jwt(tenant.Admin)}} {
			for _, q := range []string{"/audit", "/audit?after=0&limit=1000", "/audit?after=1", "/audit/verify"} {
				w.attackForeign(t, cr.name+" reads victim "+q, ctCall{method: "GET", path: ctPath(ctVictim, q)}, cr.token)
			}
			// Its own audit: no victim resource, actor or request. Its
			// denied attempts are audited there, after their answers.
			w.core.Flush()
			var own ctList
			w.must(200, "GET", ctPath(ctAttacker, "/audit?limit=1000"), cr.token, nil).JSON(t, &own)
			victimRequests := map[string]bool{}
			for _, e := range before.Audit {
				victimRequests[e["request_id"].(string)] = true
			}
			for _, e := range own.Items {
				b, _ := json.Marshal(e)
				for _, s := range append(w.secrets(), string(w.vic.ID)) {
					if strings.Contains(string(b), s) {
						t.Errorf("%s: attacker's audit entry %s mentions victim %q", cr.name, b, s)
					}
				}
				if victimRequests[e["request_id"].(string)] {
					t.Errorf("%s: attacker's audit entry %s is a victim request", cr.name, b)
				}
			}
			var v map[string]any
			w.must(200, "GET", ctPath(ctAttacker, "/audit/verify"), cr.token, nil).JSON(t, &v)
			if v["ok"] != true || v["length"] != float64(len(own.Items)) {
				t.Errorf("%s: attacker's audit verify = %v, want ok with its own %d entries", cr.name, v, len(own.Items))
			}
			var far ctList
			w.must(200, "GET", ctPath(ctAttacker, "/audit?after=1000000"), cr.token, nil).JSON(t, &far)
			if len(far.Items) != 0 {
				t.Errorf("%s: audit after=1000000 returned %d entries", cr.name, len(far.Items))
			}
		}
		w.unchanged(t, before, "reading the victim's audit")
	})
}

// TestCrossTenantUsage: the victim's usage is 404 to the attacker; the
// attacker's usage counts only its own records.
func TestCrossTenantUsage(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		for _, cr := range []ctCred{{"attacker owner key", w.atk.key(tenant.Owner)}, {"attacker admin key", w.atk.key(tenant.Admin)}, {"attacker admin JWT", w.atk.jwt(tenant.Admin)}} {
			w.attackForeign(t, cr.name+" reads victim usage", ctCall{method: "GET", path: ctPath(ctVictim, "/usage")}, cr.token)
			var u map[string]any
			w.must(200, "GET", ctPath(ctAttacker, "/usage"), cr.token, nil).JSON(t, &u)
			if want := float64(len(w.atk.Records["notes"])); u["records"] != want {
				t.Errorf("%s: attacker's usage records = %v, want its own %v", cr.name, u["records"], want)
			}
		}
		if want := float64(len(w.vic.Records["notes"]) + len(w.vic.Records["vault"])); before.Usage["records"] != want {
			t.Errorf("victim's usage records = %v, want %v", before.Usage["records"], want)
		}
		w.unchanged(t, before, "reading the victim's usage")
	})
}

// TestCrossTenantLoginAndUsers: the attacker's user credentials do not log
// in to the victim (401 invalid_credentials, like an unknown tenant), even
// when the attacker created a user with the victim admin's email; the
// attacker's admin cannot create users in the victim (404).
func TestCrossTenantLoginAndUsers(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		for role, u := range w.atk.Users {
			attack := fmt.Sprintf("attacker %s user logs in to the victim", role)
			creds := map[string]any{"email": u.Email, "password": u.Password}
			r := w.do("POST", ctPath(ctVictim, "/auth/login"), "", creds)
			ctWant(t, attack, r, 401, "invalid_credentials")
			w.noLeak(t, attack, r)
			ctSame(t, attack, r, w.do("POST", ctPath(ctGhost, "/auth/login"), "", creds))
		}
		for _, cr := range []ctCred{{"attacker owner key", w.atk.key(tenant.Owner)}, {"attacker admin key", w.atk.key(tenant.Admin)}, {"attacker admin JWT", w.atk.jwt(tenant.Admin)}} {
			for _, role := range ctRoles {
				w.attackForeign(t, fmt.Sprintf("%s creates a %s user in the victim", cr.name, role),
					ctCall{method: "POST", path: ctPath(ctVictim, "/users"), body: map[string]any{"email": "mole-" + string(role) + "@victim.example", "password": ctPassword, "role": role}}, cr.token)
			}
		}
		// The attacker creates, in its own tenant, a user with the victim
		// admin's email and its own password: that password still does not
		// open the victim (the failed guess is recorded in the victim's audit).
		vEmail := w.vic.Users[tenant.Admin].Email
		const atkPassword = "attacker's own password 1"
		w.must(201, "POST", ctPath(ctAttacker, "/users"), w.atk.key(tenant.Admin), map[string]any{"email": vEmail, "password": atkPassword, "role": "admin"})
		r := w.do("POST", ctPath(ctVictim, "/auth/login"), "", map[string]any{"email": vEmail, "password": atkPassword})
		ctWant(t, "victim admin's email with the attacker's password at the victim", r, 401, "invalid_credentials")
		ctSame(t, "victim admin's email with the attacker's password at the victim", r,
			w.do("POST", ctPath(ctGhost, "/auth/login"), "", map[string]any{"email": vEmail, "password": atkPassword}))
		// At the attacker, the same email logs in to the attacker, not the victim.
		var pair core.TokenPair
		w.must(200, "POST", ctPath(ctAttacker, "/auth/login"), "", map[string]any{"email": vEmail, "password": atkPassword}).JSON(t, &pair)
		_, claims, _ := ctJWTParts(t, pair.AccessToken)
		if claims["tid"] != string(w.atk.ID) {
			t.Errorf("login at the attacker with a shared email issued tid %v, want the attacker %s", claims["tid"], w.atk.ID)
		}
		w.attackForeign(t, "shared-email attacker JWT on the victim", ctCall{method: "GET", path: ctRecords(ctVictim, "notes")}, pair.AccessToken)
		// Each failed login at the victim is in its audit, for the
		// attacker's emails (unknown there) as for the shared one.
		var failures []ctAuditWant
		for range len(w.atk.Users) + 1 {
			failures = append(failures, ctAuditWant{Action: "auth.login", Outcome: "failure"})
		}
		w.unchanged(t, before, "logging in to the victim", failures...)
	})
}

// TestCrossTenantRefreshToken: a refresh token of one tenant presented at
// the other's refresh endpoint is 401 invalid_credentials, like at a tenant
// that does not exist, and does not burn the token at home. While the victim
// is suspended, the answer must still not tell the attacker that the victim
// exists.
func TestCrossTenantRefreshToken(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		_, forgedRT, _, err := auth.NewRefreshToken()
		if err != nil {
			t.Fatal(err)
		}
		for role, u := range w.atk.Users {
			body := map[string]any{"refresh_token": u.Pair.RefreshToken}
			attack := fmt.Sprintf("attacker %s refresh token at the victim", role)
			r := w.do("POST", ctPath(ctVictim, "/auth/refresh"), "", body)
			ctWant(t, attack, r, 401, "invalid_credentials")
			w.noLeak(t, attack, r)
			ctSame(t, attack, r, w.do("POST", ctPath(ctGhost, "/auth/refresh"), "", body))
			// With the attacker's access token as bearer, too.
			r = w.do("POST", ctPath(ctVictim, "/auth/refresh"), u.Pair.AccessToken, body)
			ctWant(t, attack+" (with its bearer)", r, 401, "invalid_credentials")
		}
		// The victim's refresh token at the attacker (say, leaked to it).
		vrt := map[string]any{"refresh_token": w.vic.Users[tenant.Viewer].Pair.RefreshToken}
		r := w.do("POST", ctPath(ctAttacker, "/auth/refresh"), w.atk.jwt(tenant.Admin), vrt)
		ctWant(t, "victim's refresh token at the attacker", r, 401, "invalid_credentials")
		ctSame(t, "victim's refresh token at the attacker", r, w.do("POST", ctPath(ctGhost, "/auth/refresh"), "", vrt))
		// The attacker's tokens still work at home: the foreign use burnt nothing.
		for role, u := range w.atk.Users {
			r := w.do("POST", ctPath(ctAttacker, "/auth/refresh"), "", map[string]any{"refresh_token": u.Pair.RefreshToken})
			ctWant(t, fmt.Sprintf("attacker %s refreshes at home after the attack", role), r, 200, "")
		}

		// A suspended victim: an attacker's refresh token, or a made-up one,
		// must get the same answer as at a tenant that does not exist.
		w.must(200, "PATCH", "/v1/tenants/"+ctVictim, w.admin, map[string]any{"status": "suspended"})
		for _, rt := range []ctCred{{"attacker's used refresh token", w.atk.Users[tenant.Admin].Pair.RefreshToken}, {"made-up refresh token", forgedRT}} {
			body := map[string]any{"refresh_token": rt.token}
			attack := rt.name + " at the suspended victim"
			r := w.do("POST", ctPath(ctVictim, "/auth/refresh"), "", body)
			ctWant(t, attack, r, 401, "invalid_credentials")
			ctSame(t, attack, r, w.do("POST", ctPath(ctGhost, "/auth/refresh"), "", body))
		}
		w.must(200, "PATCH", "/v1/tenants/"+ctVictim, w.admin, map[string]any{"status": "active"})
		w.unchanged(t, before, "refresh tokens across tenants")
		// The victim's own refresh token was not burnt by the attacker's use.
		w.must(200, "POST", ctPath(ctVictim, "/auth/refresh"), "", vrt)
	})
}

// ctRaw sends a request with path exactly as given (no cleaning, no
// redirects followed).
func (w *ctWorld) ctRaw(t *testing.T, method, path, token string, host string) *response {
	t.Helper()
	req, err := http.NewRequest(method, w.srv.URL+"/", nil)
	if err != nil {
		t.Fatal(err)
	}
	req.URL.Opaque = path // sent verbatim in the request line
	if host != "" {
		req.Host = host
	}
	if token != "" {
		req.Header.Set("Authorization", "Bearer "+token)
	}
	client := *w.srv.Client()
	client.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	res, err := client.Do(req)
	if err != nil {
		t.Fatalf("%s %s: %v", method, path, err)
	}
	defer res.Body.Close()
	body, err := io.ReadAll(res.Body)
	if err != nil {
		t.Fatal(err)
	}
	return &response{Status: res.StatusCode, Header: res.Header, Body: body}
}

// TestCrossTenantPathTricks: encoded slashes, dot segments, case variants
// and percent-encodings of the victim's slug, double and trailing slashes,
// and Host games never yield victim data: each answer is a 404, 400 or 405,
// or a redirect that itself leads to a 404.
func TestCrossTenantPathTricks(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		vid := w.vic.Records["notes"][0].ID
		rec := "/collections/notes/records"
		paths := []string{
			"/v1/tenants/VICTIM" + rec,
			"/v1/tenants/Victim" + rec + "/" + vid,
			"/v1/tenants/%76ictim" + rec,
			"/v1/tenants/%76ictim" + rec + "/" + vid,
			"/v1/tenants/attacker%2F..%2Fvictim" + rec,
			"/v1/tenants/attacker%2f..%2fvictim" + rec + "/" + vid,
			"/v1/tenants/attacker/../victim" + rec,
			"/v1/tenants/attacker/../victim" + rec + "/" + vid,
			"/v1/tenants/./victim" + rec,
			"/v1/tenants/victim/." + rec + "/" + vid,
			"/v1/tenants/attacker/%2e%2e/victim" + rec,
			"/v1/tenants/attacker/collections/notes/records/../../../../victim" + rec + "/" + vid,
			"/v1/tenants/attacker/collections/notes/records/..%2F..%2F..%2F..%2Fvictim%2Fcollections%2Fnotes%2Frecords%2F" + vid,
			"/v1/tenants/attacker/collections/..%2F..%2Fvictim%2Fcollections%2Fnotes/records",
			"/v1/tenants/attacker/collections/notes%2F..%2F..%2F..%2Fvictim%2Fcollections%2Fnotes/records",
			"//v1/tenants/victim" + rec,
			"/v1//tenants/victim" + rec,
			"/v1/tenants//victim" + rec,
			"/v1/tenants/victim/" + rec,
			"/v1/tenants/victim" + rec + "/",
			"/v1/tenants/victim" + rec + "/" + vid + "/",
			"/v1/tenants/victim/",
			"/v1/tenants/victim%00" + rec,
			"/v1/tenants/victim%20" + rec,
			"/v1/tenants/victim;attacker" + rec,
			"/v1/tenants/victim%3Battacker" + rec,
			"/v1/tenants/" + string(w.vic.ID) + rec,
			"/v1/tenants/" + strings.ToUpper(vid) + rec,
			"/v1/tenants/attacker" + rec + "/" + strings.ToUpper(vid),
			"/v1/tenants/attacker" + rec + "/%7B" + vid + "%7D",
			"/v1/tenants/attacker" + rec + "/" + strings.ReplaceAll(vid, "-", ""),
			"/V1/TENANTS/VICTIM" + rec,
			"/v1/tenants/victim" + rec + "?tenant=attacker",
			"/v1/tenants/victim" + rec + "#attacker",
			"/v1/tenants/victim/collections/vault/records",
			"/v1/tenants/victim/audit/../usage",
			"/v1/tenants/victim/api-keys/../collections",
		}
		for _, cr := range []ctCred{{"attacker owner key", w.atk.key(tenant.Owner)}, {"attacker admin JWT", w.atk.jwt(tenant.Admin)}} {
			for _, p := range paths {
				for _, method := range []string{"GET", "DELETE"} {
					attack := fmt.Sprintf("%s %s with %s", method, p, cr.name)
					r := w.ctRaw(t, method, p, cr.token, "")
					if r.Status < 300 || r.Status >= 400 {
						// A redirect's body only echoes the caller's own path.
						w.noLeak(t, attack, r)
					}
					switch r.Status {
					case 301, 302, 307, 308:
						loc := r.Header.Get("Location")
						u, err := url.Parse(loc)
						if err != nil {
							t.Errorf("%s: redirect to unparsable %q", attack, loc)
							continue
						}
						next := w.ctRaw(t, method, u.EscapedPath(), cr.token, "")
						w.noLeak(t, attack+" after redirect to "+loc, next)
						if next.Status != 404 && next.Status != 400 && next.Status != 405 {
							t.Errorf("%s: redirect to %s answers %d %s, want 404", attack, loc, next.Status, ctShort(next.Body))
						}
					case 400, 404, 405:
					default:
						t.Errorf("%s: got %d %s, want 404, 400, 405 or a redirect", attack, r.Status, ctShort(r.Body))
					}
				}
			}
			// Host and virtual-host games on the attacker's own path.
			for _, host := range []string{ctVictim + ".example.com", ctVictim, string(w.vic.ID)} {
				attack := "Host: " + host + " with " + cr.name
				r := w.ctRaw(t, "GET", ctRecords(ctAttacker, "notes"), cr.token, host)
				ctWant(t, attack, r, 200, "")
				w.noLeak(t, attack, r)
				r = w.ctRaw(t, "GET", ctRecords(ctVictim, "notes"), cr.token, host)
				ctWant(t, attack+" on the victim's path", r, 404, "not_found")
			}
		}
		// Methods a route lacks answer alike for the victim and nobody.
		for _, method := range []string{"PUT", "POST", "OPTIONS"} {
			c := ctCall{method: method, path: ctRecord(ctVictim, "notes", vid)}
			r := w.call(c, w.atk.key(tenant.Owner))
			ctWant(t, method+" on a victim record", r, 405, "method_not_allowed")
			ctSame(t, method+" on a victim record", r, w.call(ghostOf(c), w.atk.key(tenant.Owner)))
		}
		w.unchanged(t, before, "path tricks")
	})
}

// TestCrossTenantOperator: the operator token manages tenants but holds no
// permission on tenant data: 403 on the victim's records, collections,
// keys list, audit list and usage; verifying the audit reveals no data.
func TestCrossTenantOperator(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		vid := w.vic.Records["notes"][0].ID
		denied := []ctCall{
			{method: "GET", path: ctRecords(ctVictim, "notes")},
			{method: "GET", path: ctRecords(ctVictim, "vault") + "?limit=1000"},
			{method: "GET", path: ctRecord(ctVictim, "notes", vid)},
			{method: "POST", path: ctRecords(ctVictim, "notes"), body: map[string]any{"title": "operator write"}},
			{method: "PATCH", path: ctRecord(ctVictim, "notes", vid), body: map[string]any{"title": "operator write"}},
			{method: "DELETE", path: ctRecord(ctVictim, "notes", vid)},
			{method: "PUT", path: ctPath(ctVictim, "/collections/notes"), body: map[string]any{}},
			{method: "PUT", path: ctPath(ctVictim, "/collections/operator_made"), body: map[string]any{}},
			{method: "GET", path: ctPath(ctVictim, "/collections")},
			{method: "GET", path: ctPath(ctVictim, "/audit")},
			{method: "GET", path: ctPath(ctVictim, "/api-keys")},
			{method: "DELETE", path: ctPath(ctVictim, "/api-keys/"+w.vic.Keys[tenant.Admin].ID)},
			{method: "GET", path: ctPath(ctVictim, "/usage")},
		}
		for _, c := range denied {
			attack := "operator " + c.method + " " + c.path
			r := w.call(c, w.admin)
			ctWant(t, attack, r, 403, "forbidden")
			w.noLeak(t, attack, r)
		}
		// Verification is allowed and shows only the chain's shape.
		var v map[string]any
		w.must(200, "GET", ctPath(ctVictim, "/audit/verify"), w.admin, nil).JSON(t, &v)
		for k := range v {
			if !slices.Contains([]string{"ok", "length", "head", "checkpoints", "broken_at", "reason"}, k) {
				t.Errorf("operator's audit verification carries field %q: %v", k, v)
			}
		}
		// Managing the tenant shows the tenant, not its data.
		r := w.must(200, "GET", "/v1/tenants/"+ctVictim, w.admin, nil)
		w.noLeak(t, "operator GET tenant", r)
		w.unchanged(t, before, "operator reading tenant data")
	})
}

// TestCrossTenantIDCollisions: both tenants have a "notes" collection; ids
// are server-generated, so a client "id" in the body is data, the victim's
// id never addresses the attacker's record, and an attacker's schema on its
// "notes" does not bind the victim's "notes" (nor the other way round).
func TestCrossTenantIDCollisions(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		key := w.atk.key(tenant.Admin)
		vrec := w.vic.Records["notes"][0]
		body := map[string]any{"id": vrec.ID, "version": 99, "created_at": vrec.CreatedAt, "title": "clone"}
		var got record
		w.must(201, "POST", ctRecords(ctAttacker, "notes"), key, body).JSON(t, &got)
		if got.ID == vrec.ID {
			t.Fatalf("the client chose the record id: got the victim's id %s", got.ID)
		}
		if d := cmp.Diff(ctJSONMap(t, body), got.Data); d != "" {
			t.Errorf("client id/version fields were not kept as data (-sent +stored):\n%s", d)
		}
		if got.Version != 1 {
			t.Errorf("client version field set the record version: got %d, want 1", got.Version)
		}
		// The victim's id still does not address anything of the attacker's.
		ctWant(t, "GET attacker/notes/<victim id> after cloning it as data", w.do("GET", ctRecord(ctAttacker, "notes", vrec.ID), key, nil), 404, "not_found")
		ctWant(t, "PATCH attacker/notes/<victim id>", w.do("PATCH", ctRecord(ctAttacker, "notes", vrec.ID), key, map[string]any{"x": 1}), 404, "not_found")
		// The system field id shadows the data key: filtering on it finds nothing.
		ids := w.listIDs(t, "filter id = victim id", ctRecords(ctAttacker, "notes")+"?filter="+url.QueryEscape(`id = "`+vrec.ID+`"`), key)
		if len(ids) != 0 {
			t.Errorf("filter id = victim id on the attacker's notes returned %v, want nothing", ids)
		}
		// Patching an "id" into its own record is data too.
		var patched record
		w.must(200, "PATCH", ctRecord(ctAttacker, "notes", got.ID), key, map[string]any{"id": w.vic.Records["notes"][1].ID}).JSON(t, &patched)
		if patched.ID != got.ID {
			t.Errorf("PATCH with an id field moved the record to %s", patched.ID)
		}
		// Schemas are per tenant: the attacker's strict "notes" schema does
		// not reach the victim's "notes", whose schema stays what it was.
		strict := map[string]any{"schema": map[string]any{"type": "object", "required": []string{"attacker_only"},
			"properties": map[string]any{"title": map[string]any{"type": "number"}}}}
		w.must(200, "PUT", ctPath(ctAttacker, "/collections/notes"), key, strict)
		ctWant(t, "attacker's own strict schema applies to it", w.do("POST", ctRecords(ctAttacker, "notes"), key, map[string]any{"title": "x"}), 422, "schema_violation")
		w.unchanged(t, before, "same collection names and cloned ids")
		// After the check (it changes the victim): the victim's writes are
		// not bound by the attacker's schema, and the victim's own schema
		// does not bind the attacker.
		w.must(201, "POST", ctRecords(ctVictim, "notes"), w.vic.key(tenant.Member), map[string]any{"title": "victim text"})
		w.must(200, "PUT", ctPath(ctVictim, "/collections/vault"), w.vic.key(tenant.Admin), map[string]any{"schema": map[string]any{"type": "object", "required": []string{"victim_only"}}})
		w.must(200, "PUT", ctPath(ctAttacker, "/collections/vault"), key, map[string]any{})
		w.must(201, "POST", ctRecords(ctAttacker, "vault"), key, map[string]any{"anything": true})
		w.must(201, "POST", ctRecords(ctAttacker, "notes"), key, map[string]any{"attacker_only": 1, "title": 2})
		ctWant(t, "victim's vault schema", w.do("POST", ctRecords(ctVictim, "vault"), w.vic.key(tenant.Member), map[string]any{"anything": true}), 422, "schema_violation")
	})
}

// TestCrossTenantDeletedTenant: after the operator deletes the attacker, its
// keys are 401 and its access tokens 404 everywhere; a new tenant with the
// same slug cannot be entered with any old credential, and starts empty.
func TestCrossTenantDeletedTenant(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		old := w.atk
		for _, cr := range old.creds() {
			w.must(200, "GET", ctRecords(ctAttacker, "notes"), cr.token, nil) // warm the caches
		}
		w.must(202, "DELETE", "/v1/tenants/"+ctAttacker+"?grace=0", w.admin, nil)

		check := func(phase string) {
			t.Helper()
			badKey := w.do("GET", ctRecords(ctVictim, "notes"), "bh_live_garbage", nil)
			for _, cr := range old.creds() {
				isKey := strings.HasSuffix(cr.name, "Key")
				for _, slug := range []string{ctAttacker, ctVictim} {
					for _, c := range w.tenantRoutes(slug, false) {
						attack := fmt.Sprintf("%s: deleted attacker's %s on %s %s", phase, cr.name, slug, c.name)
						r := w.call(c, cr.token)
						w.noLeak(t, attack, r)
						if isKey {
							ctWant(t, attack, r, 401, "unauthorized")
							ctSame(t, attack+" vs garbage key", r, badKey)
						} else {
							ctWant(t, attack, r, 404, "not_found")
							g := c
							g.path = strings.Replace(c.path, "/v1/tenants/"+slug, "/v1/tenants/"+ctGhost, 1)
							ctSame(t, attack, r, w.call(g, cr.token))
						}
					}
				}
			}
			for role, u := range old.Users {
				r := w.do("POST", ctPath(ctAttacker, "/auth/refresh"), "", map[string]any{"refresh_token": u.Pair.RefreshToken})
				ctWant(t, fmt.Sprintf("%s: deleted attacker's %s refresh token", phase, role), r, 401, "invalid_credentials")
				r = w.do("POST", ctPath(ctAttacker, "/auth/login"), "", map[string]any{"email": u.Email, "password": u.Password})
				ctWant(t, fmt.Sprintf("%s: deleted attacker's %s user logs in", phase, role), r, 401, "invalid_credentials")
			}
		}
		check("deleted")

		// A new tenant takes the slug.
		newID := w.tenant(ctAttacker, old.Iso)
		if newID == old.ID {
			t.Fatalf("the new tenant reused the deleted tenant's id %s", newID)
		}
		check("slug re-created")
		okey := w.apiKey(ctAttacker, tenant.Owner)
		var cols ctList
		w.must(200, "GET", ctPath(ctAttacker, "/collections"), okey, nil).JSON(t, &cols)
		if len(cols.Items) != 0 {
			t.Errorf("the re-created tenant inherited collections: %v", cols.Items)
		}
		w.collection(ctAttacker, okey, "notes", nil)
		if ids := w.listIDs(t, "re-created tenant lists notes", ctRecords(ctAttacker, "notes"), okey); len(ids) != 0 {
			t.Errorf("the re-created tenant's notes hold %v, want nothing", ids)
		}
		for _, r := range old.Records["notes"] {
			ctWant(t, "re-created tenant reads the deleted tenant's record", w.do("GET", ctRecord(ctAttacker, "notes", r.ID), okey, nil), 404, "not_found")
		}
		var keys ctList
		w.must(200, "GET", ctPath(ctAttacker, "/api-keys"), okey, nil).JSON(t, &keys)
		if len(keys.Items) != 1 {
			t.Errorf("the re-created tenant has %d keys, want only the new one: %v", len(keys.Items), keys.Items)
		}
		var audit ctList
		w.must(200, "GET", ctPath(ctAttacker, "/audit?limit=1000"), okey, nil).JSON(t, &audit)
		for _, e := range audit.Items {
			b, _ := json.Marshal(e)
			for _, k := range old.Keys {
				if strings.Contains(string(b), k.ID) {
					t.Errorf("the re-created tenant's audit mentions the old key %s: %s", k.ID, b)
				}
			}
		}
		var u map[string]any
		w.must(200, "GET", ctPath(ctAttacker, "/usage"), okey, nil).JSON(t, &u)
		if u["records"] != float64(0) {
			t.Errorf("the re-created tenant's usage = %v, want 0 records", u)
		}
		w.unchanged(t, before, "deleting and re-creating the attacker")
	})
}

// TestCrossTenantPlatformRoutes: tenant credentials of any role get 403 on
// the platform API and, on the victim's tenant resource (GET, PATCH to
// suspend it, DELETE), the 404 of a tenant that does not exist.
func TestCrossTenantPlatformRoutes(t *testing.T) {
	t.Parallel()
	ctEachPair(t, func(t *testing.T, w *ctWorld) {
		before := w.snapshot()
		for _, cr := range w.atk.creds() {
			for _, c := range []ctCall{
				{method: "GET", path: "/v1/tenants/" + ctVictim},
				{method: "PATCH", path: "/v1/tenants/" + ctVictim, body: map[string]any{"status": "suspended"}},
				{method: "PATCH", path: "/v1/tenants/" + ctVictim, body: map[string]any{"plan": "enterprise", "name": "pwned"}},
				{method: "DELETE", path: "/v1/tenants/" + ctVictim},
			} {
				w.attackForeign(t, fmt.Sprintf("attacker %s %s %s", cr.name, c.method, c.path), c, cr.token)
			}
			for _, c := range []ctCall{
				{method: "GET", path: "/v1/tenants"},
				{method: "GET", path: "/v1/audit"},
				{method: "GET", path: "/v1/audit/verify"},
				{method: "GET", path: "/metrics"},
				{method: "POST", path: "/v1/tenants", body: map[string]any{"slug": ctVictim, "name": "takeover"}},
			} {
				attack := fmt.Sprintf("attacker %s %s %s", cr.name, c.method, c.path)
				r := w.call(c, cr.token)
				ctWant(t, attack, r, 403, "forbidden")
				w.noLeak(t, attack, r)
			}
		}
		var tv map[string]any
		w.must(200, "GET", "/v1/tenants/"+ctVictim, w.admin, nil).JSON(t, &tv)
		if tv["status"] != "active" || tv["name"] != ctVictim || tv["plan"] != "free" {
			t.Errorf("victim tenant changed: %v", tv)
		}
		w.unchanged(t, before, "platform routes")
	})
}
