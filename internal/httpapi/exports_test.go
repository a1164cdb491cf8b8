package httpapi

import (
	"bytes"
	"context"
	"crypto/ed25519"
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
	"gocloud.dev/blob/fileblob"

	"github.com/bulkheadhq/bulkhead/internal/archive"
	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// exportBundle is a server with the job runner (River, on SQLite or on
// the test's PostgreSQL database) and a blob bucket.
type exportBundle struct {
	*testBundle
	runner *jobs.Runner
}

func setupExports(t *testing.T) *exportBundle {
	t.Helper()
	dir := t.TempDir()
	bucket, err := fileblob.OpenBucket(filepath.Join(dir, "blobs"), &fileblob.Options{CreateDir: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { bucket.Close() })
	st := openTestStore(t, dir)
	jc := jobs.Config{Store: st, Logger: slog.New(slog.DiscardHandler), PollInterval: 20 * time.Millisecond,
		ProgressInterval: 10 * time.Millisecond, RetryFunc: func(int) time.Duration { return 10 * time.Millisecond }}
	if postgresBackend() {
		v, _ := pgDatabases.Load(dir)
		db := v.(*pgtest.Database)
		jc.DatabaseURL, jc.MigrateURL = db.AppURL(t), db.OwnerURL(t)
	} else {
		jc.DatabaseURL = "sqlite:" + filepath.Join(dir, "jobs.db")
	}
	runner, err := jobs.Open(context.Background(), jc)
	if err != nil {
		t.Fatal(err)
	}
	b := setupStore(t, dir, st, func(c *core.Config) { c.Jobs, c.Blobs = runner, bucket })
	if err := runner.Start(context.Background()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runner.Close(context.Background()) }) // before the store closes
	return &exportBundle{testBundle: b, runner: runner}
}

// wait polls GET …/jobs/{id} with key until the job has finished, and
// returns it.
func (b *exportBundle) wait(slug, key, id string) *core.Job {
	b.t.Helper()
	deadline := time.Now().Add(2 * time.Minute)
	for {
		var j core.Job
		b.must(200, "GET", tpath(slug, "jobs", id), key, nil).JSON(b.t, &j)
		if j.State.Finished() {
			return &j
		}
		if time.Now().After(deadline) {
			b.t.Fatalf("job %s still %s after 2 minutes", id, j.State)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

type acceptedJob struct {
	Job struct {
		ID    string `json:"id"`
		Kind  string `json:"kind"`
		State string `json:"state"`
	} `json:"job"`
}

// export exports slug's data and returns the export id and the archive.
func (b *exportBundle) export(slug, key string) (string, []byte) {
	b.t.Helper()
	var a acceptedJob
	b.must(202, "POST", tpath(slug, "exports"), key, nil).JSON(b.t, &a)
	if a.Job.Kind != "export" || a.Job.State != "queued" {
		b.t.Fatalf("export job = %+v", a.Job)
	}
	j := b.wait(slug, key, a.Job.ID)
	if j.State != store.JobSucceeded {
		b.t.Fatalf("export job %s: %s", j.State, j.Error)
	}
	if j.Progress.Done != j.Progress.Total {
		b.t.Errorf("export progress %d/%d at the end", j.Progress.Done, j.Progress.Total)
	}
	var res core.ExportResult
	if err := json.Unmarshal(j.Result, &res); err != nil || res.ExportID == "" {
		b.t.Fatalf("export result %s: %v", j.Result, err)
	}
	r := b.must(200, "GET", tpath(slug, "exports", res.ExportID, "download"), key, nil)
	if ct := r.Header.Get("Content-Type"); ct != "application/octet-stream" {
		b.t.Errorf("download Content-Type = %q", ct)
	}
	if cl := r.Header.Get("Content-Length"); cl != fmt.Sprint(len(r.Body)) {
		b.t.Errorf("download Content-Length = %q, body %d bytes", cl, len(r.Body))
	}
	if r.Header.Get("ETag") == "" {
		b.t.Error("download without ETag")
	}
	return res.ExportID, r.Body
}

// restore uploads archive to slug and runs the restore job if one was
// queued; it returns the upload's answer and the job (nil if none).
func (b *exportBundle) restore(slug, key, confirm string, archive []byte) (*response, *core.Job) {
	b.t.Helper()
	r := b.do("POST", tpath(slug, "restores")+"?confirm="+confirm, key, archive, "Content-Type", "application/octet-stream")
	if r.Status != 202 {
		return r, nil
	}
	var a acceptedJob
	r.JSON(b.t, &a)
	return r, b.wait(slug, key, a.Job.ID)
}

// snapshot is everything a restore makes equal: each collection's
// definition and records, read through the API.
func (b *exportBundle) snapshot(slug, key string) map[string]any {
	b.t.Helper()
	var cols page[map[string]any]
	b.must(200, "GET", tpath(slug, "collections"), key, nil).JSON(b.t, &cols)
	out := map[string]any{}
	for _, c := range cols.Items {
		name := c["name"].(string)
		delete(c, "created_at")
		delete(c, "updated_at")
		delete(c, "indexes") // their build state varies; compared by name below
		recs, _ := b.listAllRecords(slug, key, name, nil)
		out[name] = map[string]any{"def": c, "records": recs}
	}
	return out
}

func (b *exportBundle) seed(slug, key string) {
	b.t.Helper()
	b.must(200, "PUT", tpath(slug, "collections", "notes"), key, map[string]any{
		"encrypted_fields": []string{"secret"}, "indexes": []map[string]any{{"fields": []string{"n"}, "unique": true}}})
	b.must(200, "PUT", tpath(slug, "collections", "tags"), key, map[string]any{"retention": "90d"})
	for i := range 30 {
		b.createRecord(slug, key, "notes", map[string]any{"n": i, "secret": fmt.Sprintf("s-%d", i), "title": "note"})
	}
	for i := range 5 {
		b.createRecord(slug, key, "tags", map[string]any{"tag": i})
	}
}

// TestExportRestoreRoundTrip: an export, then changes (records added,
// edited and deleted, a collection dropped, one added), then a restore of
// the export: the collections and records are the export's again, the
// audit chain verifies and ends with the restore naming the archive's
// SHA-256. Pooled and silo tenants, on the test backend.
func TestExportRestoreRoundTrip(t *testing.T) {
	t.Parallel()
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		t.Run(string(iso), func(t *testing.T) {
			t.Parallel()
			b := setupExports(t)
			b.tenant("acme", iso)
			key := b.apiKey("acme", tenant.Admin)
			b.seed("acme", key)
			want := b.snapshot("acme", key)
			_, arc := b.export("acme", key)
			if bytes.Contains(arc, []byte("s-17")) || bytes.Contains(arc, []byte("tags")) {
				t.Fatal("the archive holds plaintext")
			}

			notes, _ := b.listAllRecords("acme", key, "notes", nil)
			b.createRecord("acme", key, "notes", map[string]any{"n": 100, "secret": "new"})
			b.must(200, "PATCH", tpath("acme", "collections", "notes", "records", notes[3].ID), key, map[string]any{"secret": "changed", "n": 1000})
			b.must(204, "DELETE", tpath("acme", "collections", "notes", "records", notes[4].ID), key, nil)
			b.must(204, "DELETE", tpath("acme", "collections", "tags"), key, nil)
			b.collection("acme", key, "extra", nil)
			b.createRecord("acme", key, "extra", map[string]any{"x": 1})
			if diff := cmp.Diff(want, b.snapshot("acme", key)); diff == "" {
				t.Fatal("the changes changed nothing")
			}

			r, j := b.restore("acme", key, "acme", arc)
			if j == nil {
				t.Fatalf("restore = %d %s", r.Status, r.Body)
			}
			if j.State != store.JobSucceeded || j.Progress.Done != 35 || j.Progress.Total != 35 {
				t.Fatalf("restore job %s (%s), progress %+v", j.State, j.Error, j.Progress)
			}
			if diff := cmp.Diff(want, b.snapshot("acme", key)); diff != "" {
				t.Errorf("after the restore (-export +now):\n%s", diff)
			}
			// The unique index is declared again and enforced once built.
			if err := b.core.WaitBackground(context.Background()); err != nil {
				t.Fatal(err)
			}
			b.mustProblem(409, problem.CodeConflict, "POST", tpath("acme", "collections", "notes", "records"), key, map[string]any{"n": 5})
			// Encrypted fields answer equality filters: the blind index
			// was made again under the tenant's keys.
			if got, _ := b.listAllRecords("acme", key, "notes", map[string][]string{"filter": {`secret = "s-17"`}}); len(got) != 1 {
				t.Errorf("filter on the encrypted field after the restore: %d records, want 1", len(got))
			}

			v := b.verify("acme", key)
			if !v.OK {
				t.Errorf("audit chain after the restore: %+v", v)
			}
			sum := sha256.Sum256(arc)
			last := b.lastAudit("acme", key)
			if last.Action != "tenant.restore" || last.Resource != "archive:sha256:"+hex.EncodeToString(sum[:]) {
				t.Errorf("last audit entry = %s %s, want tenant.restore archive:sha256:%x", last.Action, last.Resource, sum)
			}

			// Restoring again changes nothing but the chain.
			if _, j := b.restore("acme", key, "acme", arc); j == nil || j.State != store.JobSucceeded {
				t.Fatalf("second restore: %+v", j)
			}
			if diff := cmp.Diff(want, b.snapshot("acme", key)); diff != "" {
				t.Errorf("after a second restore (-export +now):\n%s", diff)
			}
		})
	}
}

// TestExportAuditChainOverPages: an export reads the audit chain in
// pages of core.ExportPage entries, resting between them; a tenant whose
// chain spans several pages gets an archive whose chain is whole: the
// restore verifies it entry by entry before it writes, and an entry read
// twice or skipped at a page's edge would break it.
func TestExportAuditChainOverPages(t *testing.T) {
	t.Parallel()
	b := setupExports(t)
	b.tenant("acme", tenant.Pooled)
	key := b.apiKey("acme", tenant.Admin)
	b.collection("acme", key, "notes", nil)
	for i := range 2*core.ExportPage + 10 {
		b.createRecord("acme", key, "notes", map[string]any{"n": i})
	}
	before := b.lastAudit("acme", key)
	if before.Seq <= 2*core.ExportPage {
		t.Fatalf("the chain has %d entries, want more than two pages", before.Seq)
	}
	want := b.snapshot("acme", key)
	_, arc := b.export("acme", key)
	r, j := b.restore("acme", key, "acme", arc)
	if j == nil {
		t.Fatalf("restore = %d %s", r.Status, r.Body)
	}
	if j.State != store.JobSucceeded {
		t.Fatalf("restore job %s: %s", j.State, j.Error)
	}
	if diff := cmp.Diff(want, b.snapshot("acme", key)); diff != "" {
		t.Errorf("after the restore (-export +now):\n%s", diff)
	}
	if v := b.verify("acme", key); !v.OK {
		t.Errorf("audit chain after the restore: %+v", v)
	}
}

// TestRestoreRefusesForeignAndTamperedArchives: another tenant's archive is
// refused at upload with 422 archive_tenant_mismatch; archives with a
// flipped byte, or re-signed with another key, are refused (at upload if
// the header does not verify, else by the job before it writes); none of
// them changes anything. Another tenant's export cannot be downloaded.
func TestRestoreRefusesForeignAndTamperedArchives(t *testing.T) {
	t.Parallel()
	b := setupExports(t)
	acmeID := b.tenant("acme", tenant.Pooled)
	b.tenant("globex", tenant.Pooled)
	acme, globex := b.apiKey("acme", tenant.Admin), b.apiKey("globex", tenant.Admin)
	b.seed("acme", acme)
	b.seed("globex", globex)
	_, arc := b.export("acme", acme)
	globexExport, globexArc := b.export("globex", globex)
	var globexJob acceptedJob
	b.must(202, "POST", tpath("globex", "exports"), globex, nil).JSON(t, &globexJob)
	b.createRecord("acme", acme, "tags", map[string]any{"tag": "after the export"})
	want := b.snapshot("acme", acme)

	// unchanged checks that acme's data is as before and that no restore
	// was recorded (the chain does grow: refusals and 404s are audited).
	unchanged := func(t *testing.T) {
		t.Helper()
		if diff := cmp.Diff(want, b.snapshot("acme", acme)); diff != "" {
			t.Errorf("acme changed (-before +after):\n%s", diff)
		}
		for _, e := range b.withT(t).auditLog("acme", acme) {
			if e.Action == "tenant.restore" {
				t.Errorf("acme's chain records a restore: %+v", e)
			}
		}
	}

	t.Run("OtherTenantsDownload", func(t *testing.T) {
		b := b.withT(t)
		b.mustProblem(404, problem.CodeNotFound, "GET", tpath("acme", "exports", globexExport, "download"), acme, nil)
		b.mustProblem(404, problem.CodeNotFound, "GET", tpath("globex", "exports", globexExport, "download"), acme, nil)
		b.mustProblem(404, problem.CodeNotFound, "GET", tpath("acme", "exports", "not-an-id", "download"), acme, nil)
		b.mustProblem(404, problem.CodeNotFound, "GET", tpath("acme", "jobs", globexJob.Job.ID), acme, nil)
		b.mustProblem(404, problem.CodeNotFound, "GET", tpath("globex", "jobs", globexJob.Job.ID), acme, nil)
	})
	t.Run("OtherTenantsArchive", func(t *testing.T) {
		r, _ := b.restore("acme", acme, "acme", globexArc)
		assertProblem(t, r, 422, problem.CodeArchiveTenantMismatch)
		unchanged(t)
	})
	t.Run("Confirm", func(t *testing.T) {
		for _, confirm := range []string{"", "globex", "ACME"} {
			r, _ := b.restore("acme", acme, confirm, arc)
			assertProblem(t, r, 400, problem.CodeConfirmationRequired)
		}
		unchanged(t)
	})
	t.Run("NotAnAdmin", func(t *testing.T) {
		member := b.apiKey("acme", tenant.Member)
		r, _ := b.restore("acme", member, "acme", arc)
		assertProblem(t, r, 403, problem.CodeForbidden)
		b.withT(t).mustProblem(403, problem.CodeForbidden, "POST", tpath("acme", "exports"), member, nil)
		unchanged(t)
	})
	t.Run("FlippedHeaderByte", func(t *testing.T) {
		bad := bytes.Clone(arc)
		bad[len(archive.Magic)+20] ^= 1
		r, _ := b.restore("acme", acme, "acme", bad)
		assertProblem(t, r, 422, problem.CodeArchiveInvalid)
		unchanged(t)
	})
	for _, at := range []int{len(arc) / 2, len(arc) - 1} {
		t.Run(fmt.Sprintf("FlippedByte%d", at), func(t *testing.T) {
			bad := bytes.Clone(arc)
			bad[at] ^= 0x40
			r, j := b.restore("acme", acme, "acme", bad)
			if j == nil || j.State != store.JobFailed || !strings.Contains(j.Error, "does not verify") {
				t.Fatalf("restore = %d %s, job %+v; want a job failed for the archive", r.Status, r.Body, j)
			}
			unchanged(t)
		})
	}
	t.Run("OverQuota", func(t *testing.T) {
		op := b.withT(t)
		op.must(200, "PUT", "/v1/plans/tiny", op.admin, map[string]any{
			"rate_per_sec": 0, "burst": 1, "max_inflight": 0, "weight": 1, "max_records": 10, "max_bytes": 0})
		var before struct{ Plan string }
		op.must(200, "GET", "/v1/tenants/acme", op.admin, nil).JSON(t, &before)
		op.must(200, "PATCH", "/v1/tenants/acme", op.admin, map[string]any{"plan": "tiny"})
		defer op.must(200, "PATCH", "/v1/tenants/acme", op.admin, map[string]any{"plan": before.Plan})
		_, j := b.restore("acme", acme, "acme", arc)
		if j == nil || j.State != store.JobFailed || !strings.Contains(j.Error, "the tiny plan at most 10") {
			t.Fatalf("restore of 35 records onto a plan of 10: job %+v; want failed for the quota", j)
		}
		unchanged(t)
	})
	t.Run("ReSigned", func(t *testing.T) {
		r, _ := b.restore("acme", acme, "acme", resign(t, b.dir, acmeID, arc))
		assertProblem(t, r, 422, problem.CodeArchiveInvalid)
		unchanged(t)
	})
	t.Run("CutOff", func(t *testing.T) {
		_, j := b.restore("acme", acme, "acme", arc[:len(arc)-200])
		if j == nil || j.State != store.JobFailed || !strings.Contains(j.Error, "does not verify") {
			t.Fatalf("restore of a cut-off archive: job %+v; want failed for the archive", j)
		}
		unchanged(t)
	})
}

// resign decrypts arc (with the platform's keys in dir, as an insider
// could) and writes it again, the same content, signed by another key.
func resign(t *testing.T, dir string, tid tenant.ID, arc []byte) []byte {
	t.Helper()
	keys, err := keyring.Load(filepath.Join(dir, "keys"))
	if err != nil {
		t.Fatal(err)
	}
	kms, err := keyring.OpenLocal(keyring.LocalConfig{Dir: filepath.Join(dir, "keys"), WrappedKeysExist: true})
	if err != nil {
		t.Fatal(err)
	}
	pub := keys.ExportKey.Public().(ed25519.PublicKey)
	h, br, err := archive.ReadHeader(bytes.NewReader(arc), pub)
	if err != nil {
		t.Fatal(err)
	}
	key, err := kms.Unwrap(context.Background(), tid, h.WrappedKey, []byte("bulkhead archive key\x00"+string(tid)+"\x00"+h.ExportID))
	if err != nil {
		t.Fatal(err)
	}
	r, err := archive.NewReader(br, h, key, pub)
	if err != nil {
		t.Fatal(err)
	}
	_, other, _ := ed25519.GenerateKey(rand.Reader)
	var out bytes.Buffer
	w, err := archive.NewWriter(&out, &archive.Header{Tenant: h.Tenant, ExportID: h.ExportID, CreatedAt: h.CreatedAt, WrappedKey: h.WrappedKey}, key, other)
	if err != nil {
		t.Fatal(err)
	}
	for {
		p, item, err := r.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		if err := w.AddRaw(p, item); err != nil {
			t.Fatal(err)
		}
	}
	if _, err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return out.Bytes()
}
