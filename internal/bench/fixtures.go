package bench

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// The collection every bench tenant writes to. It has no schema, so the
// numbers are those of the storage path, not of schema validation.
const collection = "items"

// Plans the bench creates. Their names start with "bench-" so that a run
// against a real server (--url) touches none of its own plans.
const (
	planUnlimited = "bench-unlimited"
	planVictim    = "bench-victim"
	planAggressor = "bench-aggressor"
)

// unlimitedPlan is a plan no bench load reaches: what a server without
// isolation gives every tenant.
func unlimitedPlan() tenant.Plan {
	return tenant.Plan{Name: planUnlimited, RatePerSec: 1e9, Burst: 1 << 30, MaxInflight: 1 << 20, Weight: 1000,
		MaxRecords: 1 << 40, MaxBytes: 1 << 50}
}

// tenantFixture is a bench tenant: its API keys and some of its records.
type tenantFixture struct {
	Slug string
	Keys []string
	// users are the emails of its users, who share one password.
	users []string

	mu  sync.RWMutex
	ids []string
}

func (f *tenantFixture) addID(id string) {
	f.mu.Lock()
	f.ids = append(f.ids, id)
	f.mu.Unlock()
}

// pickID returns one of f's record ids, chosen by n.
func (f *tenantFixture) pickID(n uint64) string {
	f.mu.RLock()
	defer f.mu.RUnlock()
	if len(f.ids) == 0 {
		return "00000000-0000-7000-8000-000000000000"
	}
	return f.ids[n%uint64(len(f.ids))]
}

func (f *tenantFixture) key(n int64) string { return f.Keys[int(n%int64(len(f.Keys)))] }

// mix spreads n over [0, 2^64) so that consecutive requests pick records
// and tenants far apart (splitmix64).
func mix(n int64) uint64 {
	z := uint64(n) + 0x9e3779b97f4a7c15
	z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9
	z = (z ^ (z >> 27)) * 0x94d049bb133111eb
	return z ^ (z >> 31)
}

// recordBody is the JSON of the n-th bench record: small, with fields the
// filters below select on.
func recordBody(n int64) []byte {
	b := make([]byte, 0, 96)
	b = append(b, `{"title":"item `...)
	b = strconv.AppendInt(b, n, 10)
	b = append(b, `","points":`...)
	b = strconv.AppendInt(b, n%100, 10)
	b = append(b, `,"done":`...)
	b = strconv.AppendBool(b, n%3 == 0)
	b = append(b, `,"tag":"t`...)
	b = strconv.AppendInt(b, n%10, 10)
	return append(b, `"}`...)
}

// Queries: a light one (a page of 20 under a selective filter) and a heavy
// one (the largest page, a substring match that reads every row).
var (
	lightQuery = "?" + url.Values{"filter": {`points >= 50 && done = false`}, "limit": {"20"}}.Encode()
	heavyQuery = "?" + url.Values{"filter": {`title ~ "item" && points >= 0`}, "limit": {"1000"}}.Encode()
)

// setup provisions fixtures through the HTTP API with the operator token.
type setup struct {
	api   *apiClient
	token string
	run   string // a random word that keeps slugs of different runs apart
}

func newSetup(t *Target) *setup {
	return &setup{api: t.api, token: t.token, run: randomWord(6)}
}

func (s *setup) slug(role string, i int) string { return fmt.Sprintf("bn-%s-%s-%d", s.run, role, i) }

func (s *setup) putPlan(ctx context.Context, p tenant.Plan) error {
	return s.api.do(ctx, "PUT", "/v1/plans/"+p.Name, s.token, p, nil, 200, 201)
}

func (s *setup) createTenant(ctx context.Context, slug, plan string) error {
	body := map[string]string{"slug": slug, "name": slug, "plan": plan}
	return s.api.do(ctx, "POST", "/v1/tenants", s.token, body, nil, 201)
}

func (s *setup) setPlan(ctx context.Context, slug, plan string) error {
	return s.api.do(ctx, "PATCH", "/v1/tenants/"+slug, s.token, map[string]string{"plan": plan}, nil, 200)
}

// getPlan returns the server's plan name.
func (s *setup) getPlan(ctx context.Context, name string) (tenant.Plan, error) {
	var list struct{ Items []tenant.Plan }
	if err := s.api.do(ctx, "GET", "/v1/plans", s.token, nil, &list, 200); err != nil {
		return tenant.Plan{}, err
	}
	for _, p := range list.Items {
		if p.Name == name {
			return p, nil
		}
	}
	return tenant.Plan{}, fmt.Errorf("the server has no plan %q", name)
}

// createUser adds a member with email and password to f's tenant.
func (s *setup) createUser(ctx context.Context, f *tenantFixture, email, password string) error {
	body := map[string]string{"email": email, "password": password, "role": "member"}
	return s.api.do(ctx, "POST", "/v1/tenants/"+f.Slug+"/users", f.Keys[0], body, nil, 201)
}

func (s *setup) createKey(ctx context.Context, slug, name string) (string, error) {
	var k struct{ Key string }
	err := s.api.do(ctx, "POST", "/v1/tenants/"+slug+"/api-keys", s.token,
		map[string]string{"name": name, "role": "admin"}, &k, 201)
	return k.Key, err
}

// newTenant creates a tenant on plan with keys API keys and the bench
// collection.
func (s *setup) newTenant(ctx context.Context, slug, plan string, keys int) (*tenantFixture, error) {
	f, err := s.newTenantKeys(ctx, slug, plan, keys)
	if err != nil {
		return nil, err
	}
	return f, s.putCollection(ctx, f, collection)
}

// newTenantKeys creates a tenant on plan with keys API keys and no
// collection.
func (s *setup) newTenantKeys(ctx context.Context, slug, plan string, keys int) (*tenantFixture, error) {
	if err := s.createTenant(ctx, slug, plan); err != nil {
		return nil, err
	}
	f := &tenantFixture{Slug: slug}
	for i := range keys {
		k, err := s.createKey(ctx, slug, fmt.Sprintf("bench-%d", i))
		if err != nil {
			return nil, err
		}
		f.Keys = append(f.Keys, k)
	}
	return f, nil
}

// seedConns is the records created at once when seeding: more do not
// seed faster on SQLite, whose single writer commits them in groups.
const seedConns = 16

// seed creates n records in f, with up to seedConns requests in flight.
func (s *setup) seed(ctx context.Context, f *tenantFixture, n int) error {
	return s.seedCollection(ctx, f, collection, n, recordBody, true, nil)
}

// seedCollection creates n records body(0), …, body(n-1) in f's
// collection coll, with up to seedConns requests in flight, and keeps
// their ids in f when keep is set. It counts the records created in done,
// if not nil, and stops at the first error.
func (s *setup) seedCollection(ctx context.Context, f *tenantFixture, coll string, n int, body func(int64) []byte, keep bool, done *atomic.Int64) error {
	ctx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	var next atomic.Int64
	var wg sync.WaitGroup
	path := collectionRecordsPath(f.Slug, coll)
	for range min(seedConns, n) {
		wg.Go(func() {
			for i := next.Add(1) - 1; i < int64(n) && ctx.Err() == nil; i = next.Add(1) - 1 {
				var rec struct{ ID string }
				if err := s.api.do(ctx, "POST", path, f.Keys[0], rawJSON(body(i)), &rec, 201); err != nil {
					cancel(err)
					return
				}
				if keep {
					f.addID(rec.ID)
				}
				if done != nil {
					done.Add(1)
				}
			}
		})
	}
	wg.Wait()
	return context.Cause(ctx)
}

// putCollection creates f's collection coll, without a schema.
func (s *setup) putCollection(ctx context.Context, f *tenantFixture, coll string) error {
	return s.api.do(ctx, "PUT", "/v1/tenants/"+f.Slug+"/collections/"+coll, f.Keys[0], map[string]any{}, nil, 200, 201)
}

func recordsPath(slug string) string { return collectionRecordsPath(slug, collection) }

func collectionRecordsPath(slug, coll string) string {
	return "/v1/tenants/" + slug + "/collections/" + coll + "/records"
}

// rawJSON marshals as itself.
type rawJSON []byte

// MarshalJSON returns r unchanged.
func (r rawJSON) MarshalJSON() ([]byte, error) { return r, nil }

// client sends the measured requests of one stream.
type client struct {
	base string
	hc   *http.Client
}

func newClient(t *Target, conns int) *client { return newClientAt(t.URL, conns) }

// newClientAt returns a client of the server at base, such as the bare
// baseline's, with at most conns connections.
func newClientAt(base string, conns int) *client {
	return &client{base: base, hc: &http.Client{Transport: newTransport(conns)}}
}

func (c *client) close() { c.hc.CloseIdleConnections() }

// send makes one measured request and reads the whole answer; key is the
// bearer token, none if empty. When id is not nil it receives the "id" of
// a JSON object answer.
func (c *client) send(ctx context.Context, method, path, key string, body []byte, id *string) (int, error) {
	return c.sendFrom(ctx, method, path, key, body, id, "")
}

// sendFrom is send as if from the client address addr, if not empty: the
// in-process server trusts X-Forwarded-For from loopback, so that the
// bench's clients are told apart as a real deployment's behind a proxy
// would be (logins are limited per client address).
func (c *client) sendFrom(ctx context.Context, method, path, key string, body []byte, id *string, addr string) (int, error) {
	var r io.Reader
	if body != nil {
		r = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, r)
	if err != nil {
		return 0, err
	}
	if key != "" {
		req.Header.Set("Authorization", "Bearer "+key)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if addr != "" {
		req.Header.Set("X-Forwarded-For", addr)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, err
	}
	defer resp.Body.Close()
	if id != nil && resp.StatusCode/100 == 2 {
		b, err := io.ReadAll(resp.Body)
		if err != nil {
			return 0, err
		}
		*id = jsonID(b)
		return resp.StatusCode, nil
	}
	if _, err := io.Copy(io.Discard, resp.Body); err != nil {
		return 0, err
	}
	return resp.StatusCode, nil
}

// jsonID extracts the "id" string that starts a record's JSON (see
// core.Record.AppendJSON), without decoding the rest.
func jsonID(b []byte) string {
	s := string(b)
	i := strings.Index(s, `"id":"`)
	if i < 0 {
		return ""
	}
	s = s[i+6:]
	if j := strings.IndexByte(s, '"'); j >= 0 {
		return s[:j]
	}
	return ""
}

func (c *client) get(ctx context.Context, f *tenantFixture, key string, n uint64) (int, error) {
	return c.send(ctx, "GET", recordsPath(f.Slug)+"/"+f.pickID(n), key, nil, nil)
}

func (c *client) list(ctx context.Context, f *tenantFixture, key, query string) (int, error) {
	return c.send(ctx, "GET", recordsPath(f.Slug)+query, key, nil, nil)
}

func (c *client) create(ctx context.Context, f *tenantFixture, key string, n int64) (int, error) {
	var id string
	status, err := c.send(ctx, "POST", recordsPath(f.Slug), key, recordBody(n), &id)
	if err == nil && id != "" {
		f.addID(id)
	}
	return status, err
}
