package httpapi

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/internal/ratelimit"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// hangGuard bounds the waits below. It is no timing assertion: a wait that
// hits it means the condition never came.
const hangGuard = 20 * time.Second

// waitFor polls cond until it holds, failing the test with what if it never
// does.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for give := time.Now().Add(hangGuard); !cond(); time.Sleep(time.Millisecond) {
		if time.Now().After(give) {
			t.Fatalf("%s: never happened", what)
		}
	}
}

// smallBuffers is a listener whose connections have small kernel send
// buffers, so that a client that does not read blocks the server's writes
// after a few KiB instead of a few MiB.
type smallBuffers struct{ net.Listener }

func (l smallBuffers) Accept() (net.Conn, error) {
	c, err := l.Listener.Accept()
	if tc, ok := c.(*net.TCPConn); ok {
		tc.SetWriteBuffer(4096)
	}
	return c, err
}

// slowWorld is a server with the production admission setup: rate limits,
// in-flight caps and a scheduler of four slots. The attacker is on the
// default plan (4 in flight); two victims on the default plan too.
type slowWorld struct {
	*testBundle
	sched    *fairq.Scheduler
	inflight *ratelimit.Inflight
	attacker tenant.ID
	atkKey   string
	atkAddr  string // a listener with small send buffers, for the attacker
	victims  []string
	vicKeys  []string
}

func newSlowWorld(t *testing.T, opts ...func(*Config)) *slowWorld {
	sched, err := fairq.New(fairq.Config{Slots: 4})
	if err != nil {
		t.Fatal(err)
	}
	inflight := &ratelimit.Inflight{}
	opts = append([]func(*Config){withAdmission(Admission{Limiter: ratelimit.NewLocal(), Inflight: inflight, Scheduler: sched})}, opts...)
	b := setup(t, opts...)
	w := &slowWorld{testBundle: b, sched: sched, inflight: inflight}
	// The default plan, with a rate that the test's own requests cannot
	// exhaust: what is tested is slots and caps, not rates.
	b.must(200, "PUT", "/v1/plans/"+tenant.DefaultPlan, b.admin, map[string]any{
		"rate_per_sec": 1000, "burst": 1000, "max_inflight": 4, "weight": 1, "max_records": 0, "max_bytes": 0})
	w.attacker = b.tenant("attacker", tenant.Pooled)
	w.atkKey = b.apiKey("attacker", tenant.Admin)
	b.collection("attacker", w.atkKey, "notes", nil)
	for _, slug := range []string{"victim-a", "victim-b"} {
		b.tenant(slug, tenant.Pooled)
		key := b.apiKey(slug, tenant.Admin)
		b.collection(slug, key, "notes", nil)
		b.createRecord(slug, key, "notes", map[string]any{"n": 0})
		w.victims, w.vicKeys = append(w.victims, slug), append(w.vicKeys, key)
	}

	srv := httptest.NewUnstartedServer(b.srv.Config.Handler)
	srv.Listener = smallBuffers{srv.Listener}
	srv.Start()
	t.Cleanup(srv.Close)
	w.atkAddr = strings.TrimPrefix(srv.URL, "http://")
	return w
}

// attackConn opens a connection to the attacker's listener that is closed
// when the test ends.
func (w *slowWorld) attackConn(t *testing.T) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", w.atkAddr)
	if err != nil {
		t.Fatal(err)
	}
	c.(*net.TCPConn).SetReadBuffer(4096)
	t.Cleanup(func() { c.Close() })
	return c
}

// victimsServed has every victim get, list and create, and fails the test
// unless every request succeeds.
func (w *slowWorld) victimsServed(t *testing.T, rounds int) {
	t.Helper()
	for i := range rounds {
		for v, slug := range w.victims {
			key := w.vicKeys[v]
			rec := w.createRecord(slug, key, "notes", map[string]any{"n": i})
			w.must(200, "GET", tpath(slug, "collections", "notes", "records", rec.ID), key, nil)
			w.must(200, "GET", tpath(slug, "collections", "notes", "records")+"?limit=10", key, nil)
		}
	}
}

// TestSlowBodiesHoldNoSlot: a tenant at its in-flight cap with request
// bodies that never finish holds no database slot, and every other
// tenant's requests succeed meanwhile.
func TestSlowBodiesHoldNoSlot(t *testing.T) {
	t.Parallel()
	w := newSlowWorld(t, func(c *Config) { c.BodyTimeout = time.Minute })
	path := tpath("attacker", "collections", "notes", "records")
	for range 4 {
		c := w.attackConn(t)
		fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 65536\r\n\r\n{\"x\":\"",
			path, w.atkKey)
	}
	waitFor(t, "the attacker's four requests admitted", func() bool { return w.inflight.Count(w.attacker) == 4 })
	if st := w.sched.Stats(); st.InUse != 0 {
		t.Fatalf("while the attacker's bodies arrive, %d database slots are held, want 0", st.InUse)
	}
	w.victimsServed(t, 10)
	// The attacker is held to its own cap.
	assertProblem(t, w.do("GET", tpath("attacker", "usage"), w.atkKey, nil), 429, problem.CodeConcurrencyLimited)
	if st := w.sched.Stats(); st.ShedDeadline+st.ShedQueueFull != 0 {
		t.Errorf("the scheduler shed %d requests, want none", st.ShedDeadline+st.ShedQueueFull)
	}
}

// TestUnreadResponsesHoldNoSlot: a tenant at its in-flight cap whose
// clients never read their (large) responses holds no database slot once
// its queries are done, and every other tenant's requests succeed.
func TestUnreadResponsesHoldNoSlot(t *testing.T) {
	t.Parallel()
	w := newSlowWorld(t)
	filler := strings.Repeat("x", 1000)
	for i := range 200 {
		w.createRecord("attacker", w.atkKey, "notes", map[string]any{"i": i, "filler": filler})
	}
	before := w.sched.Stats().Granted
	path := tpath("attacker", "collections", "notes", "records") + "?limit=1000"
	for range 4 {
		c := w.attackConn(t)
		fmt.Fprintf(c, "GET %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\n\r\n", path, w.atkKey)
	}
	// Each list is one transaction: four grants, and then the handlers sit
	// in their writes, in flight but without a slot.
	waitFor(t, "the attacker's four lists queried and their slots released", func() bool {
		st := w.sched.Stats()
		return st.Granted-before >= 4 && st.InUse == 0 && w.inflight.Count(w.attacker) == 4
	})
	w.victimsServed(t, 10)
	assertProblem(t, w.do("GET", tpath("attacker", "usage"), w.atkKey, nil), 429, problem.CodeConcurrencyLimited)
	if st := w.sched.Stats(); st.ShedDeadline+st.ShedQueueFull != 0 {
		t.Errorf("the scheduler shed %d requests, want none", st.ShedDeadline+st.ShedQueueFull)
	}
}

// TestSlowBodyTimesOut: a body that does not arrive within BodyTimeout is
// answered 408 request_timeout, and the in-flight slot is free again.
func TestSlowBodyTimesOut(t *testing.T) {
	t.Parallel()
	w := newSlowWorld(t, func(c *Config) { c.BodyTimeout = 200 * time.Millisecond })
	c := w.attackConn(t)
	fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer %s\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{",
		tpath("attacker", "collections", "notes", "records"), w.atkKey)
	c.SetReadDeadline(time.Now().Add(hangGuard))
	res, err := http.ReadResponse(bufio.NewReader(c), nil)
	if err != nil {
		t.Fatalf("read the answer to a stalled body: %v", err)
	}
	body, _ := io.ReadAll(res.Body)
	res.Body.Close()
	assertProblem(t, &response{Status: res.StatusCode, Header: res.Header, Body: body}, 408, problem.CodeRequestTimeout)
	waitFor(t, "the in-flight slot released", func() bool { return w.inflight.Count(w.attacker) == 0 })
}

// TestDeclaredTooLarge: a Content-Length over the body limit is refused with
// 413 at once, before the body is sent.
func TestDeclaredTooLarge(t *testing.T) {
	t.Parallel()
	w := newSlowWorld(t)
	for _, tc := range []struct{ name, path, token string }{
		{"TenantRoute", tpath("attacker", "collections", "notes", "records"), w.atkKey},
		{"Login", tpath("attacker", "auth", "login"), ""},
		{"Operator", "/v1/tenants", w.admin},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := w.attackConn(t)
			auth := ""
			if tc.token != "" {
				auth = "Authorization: Bearer " + tc.token + "\r\n"
			}
			// Headers only: the body is never sent.
			fmt.Fprintf(c, "POST %s HTTP/1.1\r\nHost: x\r\n%sContent-Type: application/json\r\nContent-Length: %d\r\n\r\n",
				tc.path, auth, 1<<30)
			c.SetReadDeadline(time.Now().Add(hangGuard))
			res, err := http.ReadResponse(bufio.NewReader(c), nil)
			if err != nil {
				t.Fatalf("read the answer: %v", err)
			}
			body, _ := io.ReadAll(res.Body)
			res.Body.Close()
			assertProblem(t, &response{Status: res.StatusCode, Header: res.Header, Body: body}, 413, problem.CodePayloadTooLarge)
		})
	}
}
