package httpapi

import (
	"os"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"

	"github.com/bulkheadhq/bulkhead/internal/contain"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// TestProbesCountedAcrossNodes: probes spread over two nodes, each seeing
// half of the limit, suspend the key through the counts they share in
// Redis, and both nodes then refuse it.
func TestProbesCountedAcrossNodes(t *testing.T) {
	t.Parallel()
	url := os.Getenv("BULKHEAD_TEST_REDIS_URL")
	if url == "" {
		t.Skip("BULKHEAD_TEST_REDIS_URL is not set; skipping containment counted across nodes in Redis")
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	rc := redis.NewClient(opt)
	t.Cleanup(func() { rc.Close() })

	a, b := twoNodes(t, func(c *core.Config) {
		c.Containment = &contain.Rules{Probes: contain.Rule{Limit: 10, Window: time.Minute}}
		c.SharedCounts = contain.NewRedis(rc)
	})
	a.tenant("alpha", tenant.Pooled)
	admin := a.apiKey("alpha", tenant.Admin)
	key := a.apiKey("alpha", tenant.Member)
	a.collection("alpha", admin, "notes", nil)
	for _, n := range []*testBundle{a, b} {
		n.must(200, "GET", "/v1/tenants/alpha/collections/notes/records", key, nil)
	}
	for i := range 10 {
		n := a
		if i%2 == 1 {
			n = b
		}
		n.must(404, "GET", "/v1/tenants/alpha/collections/notes/records/"+uuid.NewString(), key, nil)
	}
	a.core.Flush()
	b.core.Flush()
	for name, n := range map[string]*testBundle{"a": a, "b": b} {
		eventually(t, "node "+name+" refuses the suspended key", func() bool {
			r := n.do("GET", "/v1/tenants/alpha/collections/notes/records", key, nil)
			return r.Status == 403 && r.Code(t) == string(problem.CodeCredentialSuspended)
		})
	}
	if list := a.containments("alpha", admin); len(list) != 1 || list[0].Kind != "credential_suspended" || list[0].Count != 10 {
		t.Errorf("containments = %+v, want one suspension counting 10", list)
	}
}
