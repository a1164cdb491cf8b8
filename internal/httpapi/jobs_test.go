package httpapi

import (
	"context"
	"io"
	"log/slog"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// openTestRunner opens the job runner of a test node on the store of dir:
// River in dir/jobs.db, or, on PostgreSQL, in the test's database (which
// openTestStore migrated). Nodes sharing dir share the queue, as nodes of
// one deployment do.
func openTestRunner(t testing.TB, dir string, st store.Store, sched *fairq.Scheduler) *jobs.Runner {
	t.Helper()
	cfg := jobs.Config{Store: st, Scheduler: sched, DatabaseURL: "sqlite:" + filepath.Join(dir, "jobs.db"),
		PollInterval: 50 * time.Millisecond, RetryFunc: func(int) time.Duration { return 50 * time.Millisecond },
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if v, ok := pgDatabases.Load(dir); ok && postgresBackend() {
		db := v.(*pgtest.Database)
		cfg.DatabaseURL = db.AppURL(t)
	}
	r, err := jobs.Open(t.Context(), cfg)
	if err != nil {
		t.Fatalf("open job runner: %v", err)
	}
	return r
}

func startTestRunner(t testing.TB, r *jobs.Runner) {
	t.Helper()
	if err := r.Start(t.Context()); err != nil {
		t.Fatalf("start job runner: %v", err)
	}
}

func closeTestRunner(r *jobs.Runner) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.Close(ctx)
}

// apiJob is a job as the API shows it.
type apiJob struct {
	ID       string `json:"id"`
	Kind     string `json:"kind"`
	State    string `json:"state"`
	Progress struct {
		Done  int64 `json:"done"`
		Total int64 `json:"total"`
	} `json:"progress"`
	Error      string  `json:"error"`
	CreatedAt  string  `json:"created_at"`
	UpdatedAt  string  `json:"updated_at"`
	StartedAt  *string `json:"started_at"`
	FinishedAt *string `json:"finished_at"`
}

// awaitJob polls the job until it has finished, and returns it.
func (b *testBundle) awaitJob(slug, key, id string) apiJob {
	b.t.Helper()
	for range 1000 {
		var j apiJob
		b.must(200, "GET", tpath(slug, "jobs", id), key, nil).JSON(b.t, &j)
		if j.State == "succeeded" || j.State == "failed" || j.State == "cancelled" {
			return j
		}
		time.Sleep(10 * time.Millisecond)
	}
	b.t.Fatalf("job %s of %s never finished", id, slug)
	return apiJob{}
}

// TestJobsAPI: an index declaration's build shows as a job that a tenant
// admin follows to success, with its progress; a queued job is cancelled
// once (then 409 job_finished); listings filter by kind and page with a
// cursor bound to the tenant and kind; members may not see jobs; and
// another tenant's job id answers exactly like one that does not exist,
// to read and to cancel, and the attempt changes nothing.
func TestJobsAPI(t *testing.T) {
	t.Parallel()
	b := setup(t)
	acme := b.tenant("acme", tenant.Pooled)
	b.tenant("globex", tenant.Silo)
	acmeAdmin, globexAdmin := b.apiKey("acme", tenant.Admin), b.apiKey("globex", tenant.Admin)
	acmeMember := b.apiKey("acme", tenant.Member)

	// End to end: declaring an index enqueues its build.
	b.must(200, "PUT", tpath("acme", "collections", "people"), acmeAdmin, map[string]any{
		"indexes": []map[string]any{{"fields": []string{"n"}}}})
	var list page[apiJob]
	b.must(200, "GET", tpath("acme", "jobs"), acmeAdmin, nil).JSON(t, &list)
	if len(list.Items) != 1 || list.Items[0].Kind != "build_indexes" {
		t.Fatalf("jobs after an index declaration = %+v, want one build_indexes job", list.Items)
	}
	build := b.awaitJob("acme", acmeAdmin, list.Items[0].ID)
	if build.State != "succeeded" || build.Progress.Done != 1 || build.Progress.Total != 1 || build.StartedAt == nil || build.FinishedAt == nil {
		t.Errorf("index build job = %+v, want succeeded, 1 of 1, started and finished", build)
	}
	b.awaitIndexes("acme", acmeAdmin, "people")

	// A job due in an hour stays queued until cancelled.
	queued, err := b.jobs.Enqueue(context.Background(), acme, core.KindBuildIndexes, map[string]string{"collection": "people"},
		&jobs.EnqueueOptions{RunAt: time.Now().Add(time.Hour), CreatedBy: "test"})
	if err != nil {
		t.Fatal(err)
	}
	qpath := tpath("acme", "jobs", string(queued.ID))

	// Another tenant's admin: the same 404 as for no such job, and nothing
	// changes.
	ghost := tpath("globex", "jobs", "01900000-0000-7000-8000-000000000000")
	for _, c := range []struct{ method, path, ghost string }{
		{"GET", tpath("globex", "jobs", string(queued.ID)), ghost},
		{"POST", tpath("globex", "jobs", string(queued.ID), "cancel"), ghost + "/cancel"},
	} {
		foreign := b.mustProblem(404, problem.CodeNotFound, c.method, c.path, globexAdmin, nil)
		none := b.mustProblem(404, problem.CodeNotFound, c.method, c.ghost, globexAdmin, nil)
		foreign.Instance, foreign.RequestID, none.Instance, none.RequestID = "", "", "", ""
		if d := cmp.Diff(none, foreign); d != "" {
			t.Errorf("%s of another tenant's job differs from no such job (-none +foreign):\n%s", c.method, d)
		}
	}
	// Naming acme in the path with globex's key is refused as well.
	b.mustProblem(404, problem.CodeNotFound, "GET", qpath, globexAdmin, nil)
	b.mustProblem(404, problem.CodeNotFound, "POST", qpath+"/cancel", globexAdmin, nil)
	var j apiJob
	b.must(200, "GET", qpath, acmeAdmin, nil).JSON(t, &j)
	if j.State != "queued" {
		t.Fatalf("after another tenant's attempts the job is %s, want queued", j.State)
	}
	b.must(200, "GET", tpath("globex", "jobs"), globexAdmin, nil).JSON(t, &list)
	if len(list.Items) != 0 {
		t.Errorf("globex lists %d jobs, want none", len(list.Items))
	}

	// Members may not read or cancel jobs.
	b.mustProblem(403, problem.CodeForbidden, "GET", tpath("acme", "jobs"), acmeMember, nil)
	b.mustProblem(403, problem.CodeForbidden, "GET", qpath, acmeMember, nil)
	b.mustProblem(403, problem.CodeForbidden, "POST", qpath+"/cancel", acmeMember, nil)

	// The admin cancels it, once.
	b.must(200, "POST", qpath+"/cancel", acmeAdmin, nil).JSON(t, &j)
	if j.State != "cancelled" || j.FinishedAt == nil {
		t.Errorf("cancelled job = %+v, want cancelled and finished", j)
	}
	b.mustProblem(409, problem.CodeJobFinished, "POST", qpath+"/cancel", acmeAdmin, nil)
	b.mustProblem(409, problem.CodeJobFinished, "POST", tpath("acme", "jobs", build.ID, "cancel"), acmeAdmin, nil)
	if e := b.lastAudit("acme", acmeAdmin); e.Action != "job.cancel" {
		t.Errorf("last audit entry is %q, want job.cancel", e.Action)
	}

	// Listings: newest first, by kind, paged with a cursor bound to the
	// tenant and the kind.
	b.must(200, "GET", tpath("acme", "jobs")+"?kind=build_indexes&limit=1", acmeAdmin, nil).JSON(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != string(queued.ID) || list.NextCursor == "" {
		t.Fatalf("first page = %+v, want the newest job and a cursor", list)
	}
	cursor := list.NextCursor
	b.must(200, "GET", tpath("acme", "jobs")+"?kind=build_indexes&limit=1&cursor="+cursor, acmeAdmin, nil).JSON(t, &list)
	if len(list.Items) != 1 || list.Items[0].ID != build.ID || list.NextCursor != "" {
		t.Errorf("second page = %+v, want the build and no cursor", list)
	}
	b.must(200, "GET", tpath("acme", "jobs")+"?kind=export", acmeAdmin, nil).JSON(t, &list)
	if len(list.Items) != 0 {
		t.Errorf("jobs of kind export = %+v, want none", list.Items)
	}
	b.mustProblem(400, problem.CodeInvalidCursor, "GET", tpath("globex", "jobs")+"?kind=build_indexes&limit=1&cursor="+cursor, globexAdmin, nil)
	b.mustProblem(400, problem.CodeInvalidCursor, "GET", tpath("acme", "jobs")+"?limit=1&cursor="+cursor, acmeAdmin, nil)
	b.mustProblem(400, problem.CodeInvalidRequest, "GET", tpath("acme", "jobs")+"?kind=Not-A-Kind", acmeAdmin, nil)
	b.mustProblem(400, problem.CodeInvalidRequest, "GET", tpath("acme", "jobs")+"?limit=0", acmeAdmin, nil)
}
