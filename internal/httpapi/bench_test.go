package httpapi

import (
	"bytes"
	"cmp"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/internal/observe"
	"github.com/bulkheadhq/bulkhead/internal/ratelimit"
)

// The benchmarks below call ServeHTTP in process, so they measure the
// handler stack — authentication, scoping, the store transaction, the audit
// append, JSON, logs and metrics — without the network. BenchmarkBare is the
// same measurement of a bare net/http handler answering a small JSON object:
// report the others as a ratio to it.
//
//	go test ./internal/httpapi -run '^$' -bench . -benchmem
//
// With BULKHEAD_TEST_BACKEND=postgres (and BULKHEAD_TEST_POSTGRES_URL) the
// handler benchmarks run on PostgreSQL instead of SQLite.

// benchHandler returns the full API on a fresh database with one tenant,
// an admin key and a collection holding one record.
func benchHandler(b *testing.B, isolation string) (h http.Handler, key, recordPath, listPath string) {
	f := newBenchFixture(b, benchConfig{isolation: isolation})
	return f.h, f.key, f.recordPath, f.listPath
}

// benchConfig varies the API a benchmark runs against.
type benchConfig struct {
	isolation string           // "pooled" or "silo"
	cacheTTL  time.Duration    // the node's caches of tenants and keys; 0 means the default
	admission Admission        // none by default
	tracing   *observe.Tracing // nil: tracing off
}

// benchFixture is the API of newBenchFixture and what it set up.
type benchFixture struct {
	h                         http.Handler
	core                      *core.Core
	key, recordPath, listPath string
	// call sends a setup request and fails the benchmark unless it
	// succeeds.
	call func(method, path, token, body string) []byte
}

// newBenchFixture builds the API on a fresh database (SQLite, or
// PostgreSQL with BULKHEAD_TEST_BACKEND=postgres) with tenant "bench", an
// admin key and a collection "notes" holding one record.
func newBenchFixture(b *testing.B, cfg benchConfig) *benchFixture {
	b.Helper()
	dir := b.TempDir()
	st := openTestStore(b, dir)
	b.Cleanup(func() { st.Close() })
	keys, err := keyring.Load(filepath.Join(dir, "keys"))
	if err != nil {
		b.Fatal(err)
	}
	// Request logs go to a real JSON handler (discarding its output) so
	// their cost is counted.
	log := observe.NewLogger(io.Discard, slog.LevelInfo)
	kms, err := keyring.OpenLocal(keyring.LocalConfig{Dir: filepath.Join(dir, "keys")})
	if err != nil {
		b.Fatal(err)
	}
	runner := openTestRunner(b, dir, st, cfg.admission.Scheduler)
	c, err := core.New(core.Config{Store: st, Keys: keys, KMS: kms, AdminToken: testAdminToken, PasswordParams: fastPasswords, Logger: log,
		CacheTTL: cfg.cacheTTL, Jobs: runner})
	if err != nil {
		b.Fatal(err)
	}
	startTestRunner(b, runner)
	b.Cleanup(func() { closeTestRunner(runner) })
	f := &benchFixture{core: c, h: New(Config{Core: c, Store: st, Metrics: observe.NewMetrics(), Logger: log, Admission: cfg.admission,
		Tracing: cfg.tracing})}
	f.call = func(method, path, token, body string) []byte {
		req := httptest.NewRequest(method, path, strings.NewReader(body))
		req.Header.Set("Authorization", "Bearer "+token)
		req.Header.Set("Content-Type", "application/json")
		rec := httptest.NewRecorder()
		f.h.ServeHTTP(rec, req)
		if rec.Code >= 300 {
			b.Fatalf("%s %s = %d %s", method, path, rec.Code, rec.Body)
		}
		return rec.Body.Bytes()
	}
	iso := cmp.Or(cfg.isolation, "pooled")
	f.call("POST", "/v1/tenants", testAdminToken, `{"slug":"bench","name":"Bench","isolation":"`+iso+`"}`)
	var k struct{ Key string }
	json.Unmarshal(f.call("POST", "/v1/tenants/bench/api-keys", testAdminToken, `{"name":"bench","role":"admin"}`), &k)
	f.key = k.Key
	f.call("PUT", "/v1/tenants/bench/collections/notes", f.key, `{}`)
	f.listPath = "/v1/tenants/bench/collections/notes/records"
	var r struct{ ID string }
	json.Unmarshal(f.call("POST", f.listPath, f.key, `{"title":"hello","n":1}`), &r)
	f.recordPath = f.listPath + "/" + r.ID
	return f
}

func serve(b *testing.B, h http.Handler, req *http.Request, want int) {
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, req)
	if rec.Code != want {
		b.Fatalf("%s %s = %d %s", req.Method, req.URL.Path, rec.Code, rec.Body)
	}
}

// BenchmarkBare is the baseline: a net/http handler that returns a small
// JSON object like a record.
func BenchmarkBare(b *testing.B) {
	body := []byte(`{"id":"0192f0a4-6c1e-7b3a-9d2f-4e8a1c5b7d90","version":1,"data":{"title":"hello","n":1}}`)
	h := http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		w.Write(body)
	})
	req := httptest.NewRequest("GET", "/v1/tenants/bench/collections/notes/records/x", nil)
	b.ReportAllocs()
	for b.Loop() {
		serve(b, h, req, 200)
	}
}

func BenchmarkGetRecord(b *testing.B) {
	for _, iso := range []string{"pooled", "silo"} {
		b.Run(iso, func(b *testing.B) {
			h, key, path, _ := benchHandler(b, iso)
			req := httptest.NewRequest("GET", path, nil)
			req.Header.Set("Authorization", "Bearer "+key)
			b.ReportAllocs()
			for b.Loop() {
				serve(b, h, req, 200)
			}
		})
	}
}

// BenchmarkGetRecordUncached is BenchmarkGetRecord with every request
// finding the node's caches empty, as the first request of a key the node
// has not seen lately does: the key, its tenant and its plan are read from
// the database (in one transaction) before the record.
func BenchmarkGetRecordUncached(b *testing.B) {
	f := newBenchFixture(b, benchConfig{})
	h := f.h
	req := httptest.NewRequest("GET", f.recordPath, nil)
	req.Header.Set("Authorization", "Bearer "+f.key)
	b.ReportAllocs()
	for b.Loop() {
		f.core.ForgetAll()
		serve(b, h, req, 200)
	}
}

func BenchmarkCreateRecord(b *testing.B) {
	body := []byte(`{"title":"hello","n":1,"tags":["a","b"]}`)
	for _, iso := range []string{"pooled", "silo"} {
		b.Run(iso, func(b *testing.B) {
			h, key, _, path := benchHandler(b, iso)
			b.ReportAllocs()
			for b.Loop() {
				req := httptest.NewRequest("POST", path, bytes.NewReader(body))
				req.Header.Set("Authorization", "Bearer "+key)
				req.Header.Set("Content-Type", "application/json")
				serve(b, h, req, 201)
			}
		})
	}
}

// BenchmarkCreateRecordParallel shows group commit: concurrent writers share
// the fsync of one commit.
func BenchmarkCreateRecordParallel(b *testing.B) {
	body := []byte(`{"title":"hello","n":1,"tags":["a","b"]}`)
	h, key, _, path := benchHandler(b, "pooled")
	b.ReportAllocs()
	b.SetParallelism(16)
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			req := httptest.NewRequest("POST", path, bytes.NewReader(body))
			req.Header.Set("Authorization", "Bearer "+key)
			req.Header.Set("Content-Type", "application/json")
			serve(b, h, req, 201)
		}
	})
}

// BenchmarkGetRecordParallel reads from the reader pool on all cores.
func BenchmarkGetRecordParallel(b *testing.B) {
	h, key, path, _ := benchHandler(b, "pooled")
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		req := httptest.NewRequest("GET", path, nil)
		req.Header.Set("Authorization", "Bearer "+key)
		for pb.Next() {
			serve(b, h, req, 200)
		}
	})
}

// BenchmarkRateLimited is the cost of refusing a request over its tenant's
// rate: authentication (cached), scoping, the limiter, the 429 problem, the
// log line and metrics — no database work.
func BenchmarkRateLimited(b *testing.B) {
	f := newBenchFixture(b, benchConfig{admission: Admission{Limiter: ratelimit.NewLocal(), Inflight: &ratelimit.Inflight{}}})
	// A tenant of its own on a plan that refills once in 1,000 s; the
	// operator's setup calls are not admitted per tenant, so its bucket is
	// fresh.
	f.call("PUT", "/v1/plans/slow", testAdminToken, `{"rate_per_sec":0.001,"burst":1,"max_inflight":10,"weight":1,"max_records":0,"max_bytes":0}`)
	f.call("POST", "/v1/tenants", testAdminToken, `{"slug":"slow","name":"Slow","plan":"slow"}`)
	var k struct{ Key string }
	json.Unmarshal(f.call("POST", "/v1/tenants/slow/api-keys", testAdminToken, `{"name":"bench","role":"admin"}`), &k)
	h := f.h
	req := httptest.NewRequest("GET", "/v1/tenants/slow/collections/notes/records?limit=1000", nil)
	req.Header.Set("Authorization", "Bearer "+k.Key)
	h.ServeHTTP(httptest.NewRecorder(), req) // spends the burst
	b.ReportAllocs()
	for b.Loop() {
		serve(b, h, req, http.StatusTooManyRequests)
	}
}

// BenchmarkListHeavy lists 1,000 of 2,000 records with a filter: the heavy
// query bench noisy's aggressor sends.
func BenchmarkListHeavy(b *testing.B) {
	h, key, _, listPath := benchHandler(b, "pooled")
	for i := range 2000 {
		req := httptest.NewRequest("POST", listPath, strings.NewReader(fmt.Sprintf(`{"title":"item %d","points":%d,"done":false}`, i, i%100)))
		req.Header.Set("Authorization", "Bearer "+key)
		req.Header.Set("Content-Type", "application/json")
		serve(b, h, req, http.StatusCreated)
	}
	req := httptest.NewRequest("GET", listPath+"?"+url.Values{"filter": {`title ~ "item" && points >= 0`}, "limit": {"1000"}}.Encode(), nil)
	req.Header.Set("Authorization", "Bearer "+key)
	b.ReportAllocs()
	for b.Loop() {
		serve(b, h, req, 200)
	}
}
