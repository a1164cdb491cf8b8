package httpapi

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/core"
)

// encryptedBench is a fixture with two collections of the same records:
// "plain", and "secret" whose ssn and pin are encrypted fields.
type encryptedBench struct {
	*benchFixture
	paths map[string]string // collection -> a record's path
}

const encBenchBody = `{"title":"hello","n":1,"ssn":"078-05-1120","pin":4711}`

func newEncryptedBench(b *testing.B) *encryptedBench {
	f := &encryptedBench{benchFixture: newBenchFixture(b, benchConfig{}), paths: map[string]string{}}
	// No record quota: the POST benchmarks create many.
	f.call("PUT", "/v1/plans/unlimited", testAdminToken, `{"rate_per_sec":0,"burst":1,"max_inflight":0,"weight":1,"max_records":0,"max_bytes":0}`)
	f.call("PATCH", "/v1/tenants/bench", testAdminToken, `{"plan":"unlimited"}`)
	f.call("PUT", "/v1/tenants/bench/collections/plain", f.key, `{}`)
	f.call("PUT", "/v1/tenants/bench/collections/secret", f.key, `{"encrypted_fields":["ssn","pin"]}`)
	for _, col := range []string{"plain", "secret"} {
		var r struct{ ID string }
		json.Unmarshal(f.call("POST", "/v1/tenants/bench/collections/"+col+"/records", f.key, encBenchBody), &r)
		f.paths[col] = "/v1/tenants/bench/collections/" + col + "/records/" + r.ID
	}
	return f
}

// BenchmarkEncryptedFields measures GET and POST of a record with two
// encrypted fields against the same record without, in the same run.
// The Ratio sub-benchmarks alternate the two in one loop and report
// encrypted/plain time as the metric "enc/plain".
//
//	go test ./internal/httpapi -run '^$' -bench EncryptedFields -benchtime 2000x
func BenchmarkEncryptedFields(b *testing.B) {
	f := newEncryptedBench(b)
	get := func(col string) func() {
		req := httptest.NewRequest("GET", f.paths[col], nil)
		req.Header.Set("Authorization", "Bearer "+f.key)
		return func() { serve(b, f.h, req, 200) }
	}
	post := func(col string) func() {
		return func() {
			req := httptest.NewRequest("POST", "/v1/tenants/bench/collections/"+col+"/records", bytes.NewReader([]byte(encBenchBody)))
			req.Header.Set("Authorization", "Bearer "+f.key)
			req.Header.Set("Content-Type", "application/json")
			serve(b, f.h, req, 201)
		}
	}
	ops := map[string]func(col string) func(){"Get": get, "Post": post}
	for _, op := range []string{"Get", "Post"} {
		for _, col := range []string{"plain", "secret"} {
			b.Run(op+"/"+col, func(b *testing.B) {
				do := ops[op](col)
				b.ReportAllocs()
				for b.Loop() {
					do()
				}
			})
		}
		b.Run(op+"/Ratio", func(b *testing.B) {
			plain, secret := ops[op]("plain"), ops[op]("secret")
			var tp, ts time.Duration
			for b.Loop() {
				t0 := time.Now()
				plain()
				t1 := time.Now()
				secret()
				tp += t1.Sub(t0)
				ts += time.Since(t1)
			}
			b.ReportMetric(float64(ts)/float64(tp), "enc/plain")
		})
	}
}

// BenchmarkReencrypt measures how fast a rotation re-encrypts records:
// each iteration rotates the tenant's data key and waits until every one
// of 2,000 records with two encrypted fields is sealed under the new
// version; the metric is records/s.
func BenchmarkReencrypt(b *testing.B) {
	f := newEncryptedBench(b)
	const n = 2000
	for i := range n - 1 {
		f.call("POST", "/v1/tenants/bench/collections/secret/records", f.key, fmt.Sprintf(`{"title":"r%d","ssn":"ssn-%d","pin":%d}`, i, i, i))
	}
	ctx := context.Background()
	ctl, err := f.core.Control(core.Operator(), "bench")
	if err != nil {
		b.Fatal(err)
	}
	sc, err := f.core.Scope(ctx, core.Operator(), "bench", "bench")
	if err != nil {
		b.Fatal(err)
	}
	var took time.Duration
	for b.Loop() {
		t0 := time.Now()
		if _, err := ctl.RotateKeys(ctx, sc); err != nil {
			b.Fatal(err)
		}
		if err := f.core.WaitBackground(ctx); err != nil {
			b.Fatal(err)
		}
		took += time.Since(t0)
	}
	st, err := sc.Keys(ctx)
	if err != nil || st.Rotation.State != "idle" {
		b.Fatalf("keys after the rotations = %+v, %v", st, err)
	}
	b.ReportMetric(float64(n*b.N)/took.Seconds(), "records/s")
}
