package httpapi

import (
	"strings"
	"testing"

	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// A plan's record and byte quotas are enforced in the write's own
// transaction: the write that would cross them is refused whole, and a plan
// change applies to the next request.
func TestQuotas(t *testing.T) {
	t.Parallel()
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		t.Run(string(iso), func(t *testing.T) {
			t.Parallel()
			b := setup(t).withT(t)
			b.must(200, "PUT", "/v1/plans/tiny", b.admin, map[string]any{
				"rate_per_sec": 100, "burst": 100, "max_inflight": 10, "weight": 1, "max_records": 2, "max_bytes": 100})
			b.tenant("acme", iso)
			b.must(200, "PATCH", "/v1/tenants/acme", b.admin, map[string]any{"plan": "tiny"})
			key := b.apiKey("acme", tenant.Admin)
			b.collection("acme", key, "notes", nil)
			path := "/v1/tenants/acme/collections/notes/records"

			first := b.createRecord("acme", key, "notes", map[string]any{"n": 1})
			b.createRecord("acme", key, "notes", map[string]any{"n": 2})
			b.mustProblem(403, problem.CodeQuotaExceeded, "POST", path, key, map[string]any{"n": 3})
			if u := b.usage("acme", key); u.Records != 2 {
				t.Errorf("usage after a refused create = %d records, want 2", u.Records)
			}
			if n := len(b.listRecords("acme", key, "notes", nil).Items); n != 2 {
				t.Errorf("listing after a refused create holds %d records, want 2", n)
			}

			// Growing a record past max_bytes is refused and changes nothing.
			big := strings.Repeat("x", 120)
			b.mustProblem(403, problem.CodeQuotaExceeded, "PATCH", path+"/"+first.ID, key, map[string]any{"s": big})
			var got record
			b.must(200, "GET", path+"/"+first.ID, key, nil).JSON(t, &got)
			if got.Version != 1 || got.Data["s"] != nil {
				t.Errorf("record after a refused patch = version %d, data %v; want it unchanged", got.Version, got.Data)
			}
			// Shrinking is always allowed, and deleting frees room.
			b.must(204, "DELETE", path+"/"+first.ID, key, nil)
			b.createRecord("acme", key, "notes", map[string]any{"n": 3})

			// Raising the plan's quota applies to the next request.
			b.must(200, "PUT", "/v1/plans/tiny", b.admin, map[string]any{
				"rate_per_sec": 100, "burst": 100, "max_inflight": 10, "weight": 1, "max_records": 3, "max_bytes": 0})
			b.createRecord("acme", key, "notes", map[string]any{"s": big})
			b.mustProblem(403, problem.CodeQuotaExceeded, "POST", path, key, map[string]any{"n": 5})
			// The audit chain holds only the writes that happened.
			if v := b.verify("acme", key); !v.OK {
				t.Errorf("audit verify after refused writes = %+v", v)
			}
		})
	}
}
