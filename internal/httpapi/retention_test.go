package httpapi

import (
	"context"
	"encoding/json"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// retentionBundle is a server whose clock the test moves, with a job
// runner (River on SQLite, or in the test's PostgreSQL database) that it
// starts when it wants jobs to run.
type retentionBundle struct {
	*testBundle
	now    *atomic.Int64 // Unix microseconds
	runner *jobs.Runner
}

func setupRetention(t *testing.T) *retentionBundle {
	t.Helper()
	rb := &retentionBundle{now: new(atomic.Int64)}
	rb.now.Store(time.Now().UnixMicro())
	dir := t.TempDir()
	rb.testBundle = setupCore(t, dir, func(c *core.Config) {
		jc := jobs.Config{Store: c.Store, DatabaseURL: "sqlite:" + dir + "/jobs.db", PollInterval: 20 * time.Millisecond,
			ProgressInterval: 10 * time.Millisecond, Logger: c.Logger}
		if postgresBackend() {
			v, _ := pgDatabases.Load(dir)
			db := v.(*pgtest.Database)
			jc.DatabaseURL, jc.MigrateURL = db.AppURL(t), db.OwnerURL(t)
		}
		r, err := jobs.Open(context.Background(), jc)
		if err != nil {
			t.Fatalf("open the job runner: %v", err)
		}
		rb.runner = r
		c.Jobs = r
		c.NowFunc = func() time.Time { return time.UnixMicro(rb.now.Load()) }
	})
	t.Cleanup(func() { rb.runner.Close(context.Background()) })
	return rb
}

// start starts the job runner.
func (rb *retentionBundle) start() {
	rb.t.Helper()
	if err := rb.runner.Start(context.Background()); err != nil {
		rb.t.Fatalf("start the job runner: %v", err)
	}
}

// latestJob returns tid's newest retention job, or nil.
func (rb *retentionBundle) latestJob(tid tenant.ID) *store.Job {
	rb.t.Helper()
	var js []*store.Job
	err := rb.store.ReadTenant(context.Background(), tid, func(tx store.Tx) (err error) {
		js, err = tx.ListJobs(context.Background(), &store.ListJobsParams{Kind: string(core.KindRetention), Limit: 1})
		return err
	})
	if err != nil {
		rb.t.Fatal(err)
	}
	if len(js) == 0 {
		return nil
	}
	return js[0]
}

// runRetention has the sweeper enqueue retention jobs, as App does every
// hour, and waits for tid's to finish, through the running job runner. It
// returns the job's result and record.
func (rb *retentionBundle) runRetention(tid tenant.ID) (core.RetentionResult, *store.Job) {
	rb.t.Helper()
	before := rb.latestJob(tid)
	if err := rb.core.EnqueueRetention(context.Background()); err != nil {
		rb.t.Fatalf("EnqueueRetention: %v", err)
	}
	deadline := time.Now().Add(time.Minute)
	for {
		j := rb.latestJob(tid)
		if j == nil || (before != nil && j.ID == before.ID) {
			rb.t.Fatalf("no retention job enqueued for %s", tid)
		}
		if j.State.Finished() {
			if j.State != store.JobSucceeded {
				rb.t.Fatalf("retention job %s: %s", j.State, j.Error)
			}
			var res core.RetentionResult
			if err := json.Unmarshal(j.Result, &res); err != nil {
				rb.t.Fatalf("retention job result %s: %v", j.Result, err)
			}
			return res, j
		}
		if time.Now().After(deadline) {
			rb.t.Fatalf("retention job still %s after a minute", j.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (rb *retentionBundle) advance(d time.Duration) time.Time {
	return time.UnixMicro(rb.now.Add(d.Microseconds())).UTC()
}

type cutVerification struct {
	verification
	Start int64 `json:"start"`
}

func (rb *retentionBundle) verifyCut(slug string) cutVerification {
	rb.t.Helper()
	var v cutVerification
	rb.must(200, "GET", tpath(slug, "audit", "verify"), rb.admin, nil).JSON(rb.t, &v)
	return v
}

func (rb *retentionBundle) ids(slug, key, col string) []string {
	rb.t.Helper()
	var out []string
	for _, r := range rb.listRecords(slug, key, col, url.Values{"limit": {"1000"}}).Items {
		out = append(out, r.Data["name"].(string))
	}
	slices.Sort(out)
	return out
}

func (rb *retentionBundle) usage(slug, key string) (records, bytes int64) {
	rb.t.Helper()
	var u struct{ Records, Bytes int64 }
	rb.must(200, "GET", tpath(slug, "usage"), key, nil).JSON(rb.t, &u)
	return u.Records, u.Bytes
}

// TestRetentionSettings: a collection's retention and retention_field are
// stored and shown as validated; bad ones are refused with the field named
// and nothing written.
func TestRetentionSettings(t *testing.T) {
	t.Parallel()
	b := setup(t)
	b.tenant("acme", tenant.Pooled)
	admin := b.apiKey("acme", tenant.Admin)
	var col struct {
		Retention      string `json:"retention"`
		RetentionField string `json:"retention_field"`
	}
	for _, c := range []struct {
		body             map[string]any
		retention, field string
	}{
		{map[string]any{"retention": "90d"}, "90d", "created_at"},
		{map[string]any{"retention": "48h", "retention_field": "updated_at"}, "2d", "updated_at"},
		{map[string]any{"retention": "90m", "retention_field": "seen_at"}, "90m", "seen_at"},
		{map[string]any{"retention": "99999d"}, "99999d", "created_at"},
		{map[string]any{"retention_field": "seen_at"}, "", "seen_at"}, // declared, in effect once a retention is
		{map[string]any{}, "", ""},
	} {
		col.Retention, col.RetentionField = "", ""
		b.must(200, "PUT", tpath("acme", "collections", "logs"), admin, c.body).JSON(t, &col)
		if col.Retention != c.retention || col.RetentionField != c.field {
			t.Errorf("PUT %v: retention %q on %q, want %q on %q", c.body, col.Retention, col.RetentionField, c.retention, c.field)
		}
		col.Retention, col.RetentionField = "", ""
		b.must(200, "GET", tpath("acme", "collections", "logs"), admin, nil).JSON(t, &col)
		if col.Retention != c.retention || col.RetentionField != c.field {
			t.Errorf("GET after PUT %v: retention %q on %q, want %q on %q", c.body, col.Retention, col.RetentionField, c.retention, c.field)
		}
	}
	b.must(200, "PUT", tpath("acme", "collections", "logs"), admin, map[string]any{"retention": "7d"})
	schema := map[string]any{"type": "object", "properties": map[string]any{"at": map[string]any{"type": "string"}}, "additionalProperties": false}
	for _, c := range []struct {
		body  map[string]any
		code  problem.Code
		field string
	}{
		{map[string]any{"retention": "0d"}, problem.CodeInvalidRequest, "retention"},
		{map[string]any{"retention": "100000d"}, problem.CodeInvalidRequest, "retention"},
		{map[string]any{"retention": "1w"}, problem.CodeInvalidRequest, "retention"},
		{map[string]any{"retention": "90"}, problem.CodeInvalidRequest, "retention"},
		{map[string]any{"retention": "-1d"}, problem.CodeInvalidRequest, "retention"},
		{map[string]any{"retention": 90}, problem.CodeInvalidRequest, "retention"},
		{map[string]any{"retention": "7d", "retention_field": "id"}, problem.CodeInvalidRequest, "retention_field"},
		{map[string]any{"retention": "7d", "retention_field": "a.b"}, problem.CodeInvalidRequest, "retention_field"},
		{map[string]any{"retention": "7d", "retention_field": "other", "schema": schema}, problem.CodeUnknownField, "retention_field"},
	} {
		p := b.mustProblem(400, c.code, "PUT", tpath("acme", "collections", "logs"), admin, c.body)
		if len(p.Errors) == 0 || p.Errors[0].Field != c.field {
			t.Errorf("PUT %v: errors %+v, want field %s", c.body, p.Errors, c.field)
		}
	}
	// Nothing was written: the collection keeps 7d.
	b.must(200, "GET", tpath("acme", "collections", "logs"), admin, nil).JSON(t, &col)
	if col.Retention != "7d" || col.RetentionField != "created_at" {
		t.Errorf("after refused PUTs: retention %q on %q, want 7d on created_at", col.Retention, col.RetentionField)
	}
	b.must(200, "PUT", tpath("acme", "collections", "typed"), admin, map[string]any{"retention": "7d", "retention_field": "at", "schema": schema})
}

// TestRetentionJob: the retention job deletes exactly the records past
// their collection's retention — on created_at and on a data field, by
// the injected clock — audits each batch once, lowers the usage, and
// leaves other collections and tenants alone; pooled and silo.
func TestRetentionJob(t *testing.T) {
	t.Parallel()
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		t.Run(string(iso), func(t *testing.T) {
			t.Parallel()
			rb := setupRetention(t)
			tid := rb.tenant("acme", iso)
			rb.tenant("other", iso)
			admin := rb.apiKey("acme", tenant.Admin)
			other := rb.apiKey("other", tenant.Admin)
			rb.must(200, "PUT", tpath("acme", "collections", "logs"), admin, map[string]any{"retention": "30d"})
			rb.must(200, "PUT", tpath("acme", "collections", "events"), admin, map[string]any{"retention": "48h", "retention_field": "at"})
			rb.collection("acme", admin, "keep", nil)
			rb.must(200, "PUT", tpath("other", "collections", "logs"), other, map[string]any{})

			t0 := rb.advance(0)
			for i := range 3 {
				rb.createRecord("acme", admin, "logs", map[string]any{"name": fmt.Sprint("old", i)})
				rb.createRecord("acme", admin, "keep", map[string]any{"name": fmt.Sprint("k", i)})
			}
			rb.createRecord("other", other, "logs", map[string]any{"name": "theirs"})
			rfc := func(d time.Duration) string { return t0.Add(d).Format(time.RFC3339Nano) }
			for name, at := range map[string]any{
				"past":     rfc(-5 * 24 * time.Hour),
				"offset":   t0.Add(-72 * time.Hour).In(time.FixedZone("", 5*3600)).Format(time.RFC3339),
				"future":   rfc(40 * 24 * time.Hour),
				"invalid":  "last tuesday",
				"number":   12345,
				"dateonly": t0.Add(-72 * time.Hour).Format(time.DateOnly),
			} {
				rb.createRecord("acme", admin, "events", map[string]any{"name": name, "at": at})
			}
			rb.createRecord("acme", admin, "events", map[string]any{"name": "missing"})
			rb.advance(10 * 24 * time.Hour)
			for i := range 2 {
				rb.createRecord("acme", admin, "logs", map[string]any{"name": fmt.Sprint("new", i)})
			}
			records, bytes := rb.usage("acme", admin)

			// Nothing is old enough yet for logs; events' "past" and
			// "offset" are.
			rb.advance(20*24*time.Hour + time.Hour) // t0 + 30d + 1h
			rb.start()
			res, job := rb.runRetention(tid)
			if res.Expired["logs"] != 3 || res.Expired["events"] != 2 || len(res.Expired) != 2 {
				t.Errorf("job result %+v, want 3 logs and 2 events expired", res)
			}
			if job.Done != 5 || job.Total != 5 || job.CreatedBy != "system" {
				t.Errorf("job record %+v, want progress 5 of 5, created by system", job)
			}
			if got, want := rb.ids("acme", admin, "logs"), []string{"new0", "new1"}; !slices.Equal(got, want) {
				t.Errorf("logs after the job = %v, want %v", got, want)
			}
			if got, want := rb.ids("acme", admin, "events"), []string{"dateonly", "future", "invalid", "missing", "number"}; !slices.Equal(got, want) {
				t.Errorf("events after the job = %v, want %v", got, want)
			}
			if got := rb.ids("acme", admin, "keep"); len(got) != 3 {
				t.Errorf("keep (no retention) after the job = %v, want its 3", got)
			}
			if got := rb.ids("other", other, "logs"); len(got) != 1 {
				t.Errorf("the other tenant's logs = %v, want its 1", got)
			}
			r2, b2 := rb.usage("acme", admin)
			if r2 != records-5 || b2 >= bytes {
				t.Errorf("usage %d records %d bytes, want %d records and fewer than %d bytes", r2, b2, records-5, bytes)
			}
			var expires []string
			for _, e := range rb.auditLog("acme", admin) {
				if e.Action == "records.expire" {
					expires = append(expires, e.Actor+" "+e.Resource)
					if e.RequestID != "job:"+string(job.ID) {
						t.Errorf("records.expire entry's request_id %q, want the job's", e.RequestID)
					}
				}
			}
			slices.Sort(expires)
			if want := []string{"system collection:events?count=2", "system collection:logs?count=3"}; !slices.Equal(expires, want) {
				t.Errorf("records.expire entries %q, want %q", expires, want)
			}
			if v := rb.verifyCut("acme"); !v.OK {
				t.Errorf("audit chain after the job: %+v", v)
			}
			// A second run finds nothing.
			if res, _ := rb.runRetention(tid); res.Expired["logs"]+res.Expired["events"] != 0 {
				t.Errorf("second run expired %+v, want nothing", res)
			}
		})
	}
}

// TestRetentionBatches: more expired records than one batch are all
// deleted, one audit entry per batch of core.RetentionBatch.
func TestRetentionBatches(t *testing.T) {
	t.Parallel()
	rb := setupRetention(t)
	tid := rb.tenant("acme", tenant.Pooled)
	admin := rb.apiKey("acme", tenant.Admin)
	rb.must(200, "PUT", tpath("acme", "collections", "logs"), admin, map[string]any{"retention": "1d"})
	n := core.RetentionBatch + 20
	err := rb.store.InTenant(context.Background(), tid, func(tx store.Tx) error {
		at := rb.advance(0).Add(-48 * time.Hour)
		for i := range n {
			if err := tx.CreateRecord(context.Background(), &store.Record{Collection: "logs", ID: store.RecordID(fmt.Sprintf("r%04d", i)),
				Version: 1, Data: json.RawMessage(`{"name":"x"}`), CreatedAt: at, UpdatedAt: at}); err != nil {
				return err
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	rb.start()
	res, _ := rb.runRetention(tid)
	if res.Expired["logs"] != int64(n) {
		t.Errorf("expired %d, want %d", res.Expired["logs"], n)
	}
	var batches []string
	for _, e := range rb.auditLog("acme", admin) {
		if e.Action == "records.expire" {
			batches = append(batches, e.Resource)
		}
	}
	if want := []string{fmt.Sprint("collection:logs?count=", core.RetentionBatch), "collection:logs?count=20"}; !slices.Equal(batches, want) {
		t.Errorf("records.expire entries %q, want %q", batches, want)
	}
}

// TestEnqueueRetention: the sweeper enqueues a job for each tenant with a
// retention setting, and for no other, and none for a tenant whose last
// one has not finished (the runner is not started here, so none does).
func TestEnqueueRetention(t *testing.T) {
	t.Parallel()
	rb := setupRetention(t)
	a := rb.tenant("acme", tenant.Pooled)
	plain := rb.tenant("plain", tenant.Pooled)
	c := rb.tenant("audited", tenant.Silo)
	admin := rb.apiKey("acme", tenant.Admin)
	rb.must(200, "PUT", tpath("acme", "collections", "logs"), admin, map[string]any{"retention": "1d"})
	rb.must(200, "PUT", tpath("plain", "collections", "logs"), rb.apiKey("plain", tenant.Admin), map[string]any{})
	rb.must(200, "PUT", tpath("audited", "audit", "retention"), rb.admin, map[string]any{"keep": "365d"})
	for range 3 {
		if err := rb.core.EnqueueRetention(context.Background()); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []struct {
		tid  tenant.ID
		jobs int
	}{{a, 1}, {plain, 0}, {c, 1}} {
		var js []*store.Job
		err := rb.store.ReadTenant(context.Background(), c.tid, func(tx store.Tx) (err error) {
			js, err = tx.ListJobs(context.Background(), &store.ListJobsParams{Limit: 10})
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		if len(js) != c.jobs {
			t.Errorf("tenant %s has %d jobs after three sweeps, want %d", c.tid, len(js), c.jobs)
		}
		for _, j := range js {
			if j.Kind != string(core.KindRetention) || j.State != store.JobQueued {
				t.Errorf("job %+v, want a queued retention job", j)
			}
		}
	}
}

// TestAuditRetention: only the operator sets the audit retention; the job
// cuts the chain at a signed checkpoint so that it still verifies from
// there; the cut is audited; deleting entries after it, deleting entries
// below the start without a cut, and forging the cut all fail
// verification.
func TestAuditRetention(t *testing.T) {
	t.Parallel()
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		t.Run(string(iso), func(t *testing.T) {
			t.Parallel()
			rb := setupRetention(t)
			tid := rb.tenant("acme", iso)
			owner := rb.apiKey("acme", tenant.Owner)
			admin := rb.apiKey("acme", tenant.Admin)
			var ret struct {
				Keep      string `json:"keep"`
				UpdatedBy string `json:"updated_by"`
			}
			rb.must(200, "GET", tpath("acme", "audit", "retention"), admin, nil).JSON(t, &ret)
			if ret.Keep != "" {
				t.Errorf("audit retention before any is set = %+v, want none", ret)
			}
			rb.mustProblem(403, problem.CodeForbidden, "PUT", tpath("acme", "audit", "retention"), owner, map[string]any{"keep": "1d"})
			rb.mustProblem(403, problem.CodeForbidden, "GET", tpath("acme", "audit", "retention"), rb.apiKey("acme", tenant.Member), nil)
			for _, bad := range []any{"0d", "12h", "365", 365, "100000d"} {
				p := rb.mustProblem(400, problem.CodeInvalidRequest, "PUT", tpath("acme", "audit", "retention"), rb.admin, map[string]any{"keep": bad})
				if len(p.Errors) == 0 || p.Errors[0].Field != "keep" {
					t.Errorf("keep %v: errors %+v, want keep named", bad, p.Errors)
				}
			}
			rb.collection("acme", admin, "notes", nil)
			for i := range 150 { // crosses the checkpoint at 100
				rb.createRecord("acme", admin, "notes", map[string]any{"name": fmt.Sprint(i)})
			}
			old := rb.auditLog("acme", admin)
			rb.advance(40 * 24 * time.Hour)
			for i := range 3 {
				rb.createRecord("acme", admin, "notes", map[string]any{"name": fmt.Sprint("late", i)})
			}
			rb.must(200, "PUT", tpath("acme", "audit", "retention"), rb.admin, map[string]any{"keep": "30d"}).JSON(t, &ret)
			if ret.Keep != "30d" || ret.UpdatedBy != "operator" {
				t.Errorf("PUT audit retention = %+v, want 30d by the operator", ret)
			}
			rb.must(200, "GET", tpath("acme", "audit", "retention"), admin, nil).JSON(t, &ret)
			if ret.Keep != "30d" {
				t.Errorf("GET audit retention = %+v, want 30d", ret)
			}

			rb.start()
			res, _ := rb.runRetention(tid)
			lastOld := old[len(old)-1].Seq
			if res.AuditCut != lastOld || res.AuditRemoved != lastOld-1 {
				t.Errorf("job cut at %d removing %d, want at %d (the last entry older than 30d) removing %d", res.AuditCut, res.AuditRemoved, lastOld, lastOld-1)
			}
			v := rb.verifyCut("acme")
			entries := rb.auditLog("acme", admin)
			head := entries[len(entries)-1]
			if !v.OK || v.Start != lastOld || v.Length != head.Seq {
				t.Errorf("verify after the cut = %+v, want ok from %d to %d", v, lastOld, head.Seq)
			}
			if entries[0].Seq != lastOld || entries[0].Hash != old[len(old)-1].Hash {
				t.Errorf("first entry after the cut = %d, want %d unchanged", entries[0].Seq, lastOld)
			}
			if head.Action != "audit.cut" || head.Actor != "system" || !strings.HasPrefix(head.Resource, fmt.Sprintf("audit:%d?removed=%d", lastOld, lastOld-1)) {
				t.Errorf("last entry = %+v, want the audit.cut", head)
			}
			// The job again: nothing more to cut, nothing broken.
			if res, _ := rb.runRetention(tid); res.AuditCut != 0 {
				t.Errorf("second run cut at %d, want no cut", res.AuditCut)
			}
			if v := rb.verifyCut("acme"); !v.OK || v.Start != lastOld {
				t.Errorf("verify after the second run = %+v", v)
			}

			if postgresBackend() && iso == tenant.Silo {
				return // the tampering below reaches the pooled schema or SQLite files
			}
			tamper := func(sqlite, pg string, args ...any) {
				t.Helper()
				if postgresBackend() {
					pgArgs := append([]any{string(tid)}, args...)
					if _, err := rb.superConn().Exec(context.Background(), pg, pgArgs...); err != nil {
						t.Fatalf("%s: %v", pg, err)
					}
					return
				}
				if _, err := rb.tenantDB(tid, iso).Exec(sqlite, append([]any{string(tid)}, args...)...); err != nil {
					t.Fatalf("%s: %v", sqlite, err)
				}
			}
			mid, forged := lastOld+1, lastOld+3
			// Deleting an entry after the cut breaks the chain there.
			tamper(`DELETE FROM audit_log WHERE tenant_id = ? AND seq = ?`, `DELETE FROM bulkhead.audit_log WHERE tenant_id = $1 AND seq = $2`, mid)
			if v := rb.verifyCut("acme"); v.OK || v.BrokenAt != mid || v.Reason != audit.ReasonSequenceGap {
				t.Errorf("verify after deleting entry %d = %+v, want a gap there", mid, v)
			}
			// Moving the cut forward, removing what lies below, with a
			// signature made without the audit key, is refused at the cut.
			var hash []byte
			if postgresBackend() {
				if err := rb.superConn().QueryRow(context.Background(), `SELECT hash FROM bulkhead.audit_log WHERE tenant_id = $1 AND seq = $2`,
					string(tid), forged).Scan(&hash); err != nil {
					t.Fatal(err)
				}
			} else if err := rb.tenantDB(tid, iso).QueryRow(`SELECT hash FROM audit_log WHERE tenant_id = ? AND seq = ?`, string(tid), forged).Scan(&hash); err != nil {
				t.Fatal(err)
			}
			tamper(`INSERT INTO audit_cuts (tenant_id, seq, hash, key_id, signature, time) SELECT tenant_id, ?2, ?3, key_id, signature, time FROM audit_cuts WHERE tenant_id = ?1`,
				`INSERT INTO bulkhead.audit_cuts (tenant_id, seq, hash, key_id, signature, time) SELECT tenant_id, $2, $3, key_id, signature, time FROM bulkhead.audit_cuts WHERE tenant_id = $1`,
				forged, hash)
			tamper(`DELETE FROM audit_log WHERE tenant_id = ? AND seq < ?`, `DELETE FROM bulkhead.audit_log WHERE tenant_id = $1 AND seq < $2`, forged)
			if v := rb.verifyCut("acme"); v.OK || v.BrokenAt != forged || v.Reason != audit.ReasonCutSignature {
				t.Errorf("verify after forging a cut at %d = %+v, want its signature refused", forged, v)
			}
			// Removing every cut leaves a chain that lacks its beginning.
			tamper(`DELETE FROM audit_cuts WHERE tenant_id = ?`, `DELETE FROM bulkhead.audit_cuts WHERE tenant_id = $1`)
			if v := rb.verifyCut("acme"); v.OK || v.BrokenAt != 1 || v.Reason != audit.ReasonSequenceGap {
				t.Errorf("verify without any cut = %+v, want a gap at 1", v)
			}
		})
	}
}
