package httpapi

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/internal/keyring"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/pgstore/pgtest"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// testClock is a Core's clock that tests move: the real time plus an
// offset. Nothing asserts a wall-clock time; the offset only puts purges
// before or after their due time.
type testClock struct{ offset atomic.Int64 }

func (c *testClock) now() time.Time          { return time.Now().Add(time.Duration(c.offset.Load())) }
func (c *testClock) set(d time.Duration)     { c.offset.Store(int64(d)) }
func (c *testClock) coreOpt(cc *core.Config) { cc.NowFunc = c.now }

// recordingQueue is a jobs.Queue that keeps what Core registers and the
// platform jobs it enqueues, so that a test runs a job's Work itself, when
// it chooses. It is not a database: the job's Work runs on the real store.
type recordingQueue struct {
	mu       sync.Mutex
	kinds    map[jobs.Kind]jobs.KindConfig
	platform []enqueued
}

type enqueued struct {
	kind jobs.Kind
	args json.RawMessage
	opts jobs.EnqueueOptions
}

func (q *recordingQueue) Register(kind jobs.Kind, cfg jobs.KindConfig) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.kinds == nil {
		q.kinds = map[jobs.Kind]jobs.KindConfig{}
	}
	q.kinds[kind] = cfg
}

func (q *recordingQueue) Enqueue(ctx context.Context, tid tenant.ID, kind jobs.Kind, args any, opts *jobs.EnqueueOptions) (*store.Job, error) {
	return nil, errors.New("recordingQueue: tenant jobs are not recorded")
}

func (q *recordingQueue) Cancel(ctx context.Context, tid tenant.ID, id store.JobID, fn func(store.Tx) error) (*store.Job, error) {
	return nil, store.ErrNotFound
}

func (q *recordingQueue) EnqueuePlatform(ctx context.Context, kind jobs.Kind, args any, opts *jobs.EnqueueOptions) error {
	b, err := json.Marshal(args)
	if err != nil {
		return err
	}
	q.mu.Lock()
	defer q.mu.Unlock()
	q.platform = append(q.platform, enqueued{kind: kind, args: b, opts: *opts})
	return nil
}

// last returns the last platform job enqueued.
func (q *recordingQueue) last(t *testing.T) enqueued {
	t.Helper()
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.platform) == 0 {
		t.Fatal("no platform job was enqueued")
	}
	return q.platform[len(q.platform)-1]
}

// run runs a platform job's Work as a Runner would, and returns its result.
func (q *recordingQueue) run(t *testing.T, e enqueued) (any, error) {
	t.Helper()
	q.mu.Lock()
	kc, ok := q.kinds[e.kind]
	q.mu.Unlock()
	if !ok {
		t.Fatalf("kind %q is not registered", e.kind)
	}
	return kc.Work(t.Context(), jobs.NewTask("", nil, e.args, nil))
}

type tenantView struct {
	Slug      string     `json:"slug"`
	Status    string     `json:"status"`
	UpdatedAt time.Time  `json:"updated_at"`
	PurgeAt   *time.Time `json:"purge_at"`
}

// withStandIn serves b's Core and store with one more route, a stand-in
// for the export routes (which a deleting tenant's admins may still use):
// GET /v1/tenants/{tenant}/standin-export, marked WhileDeleting, which
// lists the tenant's collections.
func withStandIn(b *testBundle) *testBundle {
	s := New(Config{Core: b.core, Store: b.store, Logger: slog.New(slog.NewTextHandler(io.Discard, nil))})
	rt := Route{Method: "GET", Pattern: "/v1/tenants/{tenant}/standin-export", WhileDeleting: true,
		handle: func(w http.ResponseWriter, r *http.Request, rq *request) error {
			cs, err := rq.scope.ListCollections(r.Context())
			if err != nil {
				return err
			}
			return writeJSON(w, http.StatusOK, cs)
		}}
	s.mux.Handle(rt.Method+" "+rt.Pattern, s.wrap(rt))
	srv := httptest.NewServer(s)
	b.t.Cleanup(srv.Close)
	c := *b
	c.srv = srv
	return &c
}

func (b *testBundle) platformActions(tid tenant.ID) []string {
	b.t.Helper()
	var audit struct{ Items []auditEntry }
	b.must(200, "GET", "/v1/audit?limit=1000", b.admin, nil).JSON(b.t, &audit)
	var actions []string
	for _, e := range audit.Items {
		if e.Resource == "tenant:"+string(tid) {
			actions = append(actions, e.Action)
		}
	}
	return actions
}

// TestOffboardGracePeriod: DELETE with a grace period suspends the tenant
// at once as deleting; its data routes are refused with tenant_suspended,
// but its admins may still sign in and use the routes marked for exports;
// the operator cancels by setting the status, which restores access; and
// when the grace has passed the purge job shreds the tenant's keys (a copy
// of the database no longer opens) and purges it, each step in the
// platform chain. The purge job does nothing for a cancelled or moved
// deletion, and a due purge cannot be cancelled.
func TestOffboardGracePeriod(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	clock := &testClock{}
	q := &recordingQueue{}
	b := setupCore(t, dir, func(cc *core.Config) { clock.coreOpt(cc); cc.Jobs = q })
	tid := b.tenant("leaving", tenant.Pooled)
	b.tenant("neighbour", tenant.Pooled)
	admin, member := b.apiKey("leaving", tenant.Admin), b.apiKey("leaving", tenant.Member)
	neighbourAdmin := b.apiKey("neighbour", tenant.Admin)
	b.putPeople("leaving", admin)
	secret := marker(t)
	rec := b.createRecord("leaving", admin, "people", map[string]any{"name": "ada", "ssn": secret})
	const password = "correct horse battery"
	b.must(201, "POST", tpath("leaving", "users"), b.admin, map[string]any{"email": "boss@example.com", "password": password, "role": "admin"})
	b.must(201, "POST", tpath("leaving", "users"), b.admin, map[string]any{"email": "staff@example.com", "password": password, "role": "member"})
	sb := withStandIn(b)
	recPath := tpath("leaving", "collections", "people", "records", rec.ID)
	login := func(email string) *response {
		return b.do("POST", tpath("leaving", "auth", "login"), "", map[string]any{"email": email, "password": password})
	}

	// Bad grace periods change nothing.
	for _, g := range []string{"30", "1w", "367d", "-1d", "0d", "1.5d"} {
		p := b.mustProblem(400, problem.CodeInvalidRequest, "DELETE", "/v1/tenants/leaving?grace="+g, b.admin, nil)
		if len(p.Errors) != 1 || p.Errors[0].Field != "grace" {
			t.Errorf("grace=%s: errors %+v, want grace named", g, p.Errors)
		}
	}
	b.must(200, "GET", recPath, admin, nil)
	b.mustProblem(403, problem.CodeForbidden, "DELETE", "/v1/tenants/leaving?grace=1d", admin, nil)

	var v tenantView
	b.must(202, "DELETE", "/v1/tenants/leaving?grace=30d", b.admin, nil).JSON(t, &v)
	if v.Status != "deleting" || v.PurgeAt == nil || v.PurgeAt.Sub(v.UpdatedAt) != 30*24*time.Hour {
		t.Fatalf("DELETE ?grace=30d answered %+v, want deleting with purge_at 30 days after updated_at", v)
	}
	job := q.last(t)
	if job.kind != core.KindTenantPurge || !job.opts.RunAt.Equal(*v.PurgeAt) {
		t.Errorf("enqueued %s at %v, want %s at purge_at %v", job.kind, job.opts.RunAt, core.KindTenantPurge, v.PurgeAt)
	}
	var got tenantView
	b.must(200, "GET", "/v1/tenants/leaving", b.admin, nil).JSON(t, &got)
	if got.Status != "deleting" || got.PurgeAt == nil || !got.PurgeAt.Equal(*v.PurgeAt) {
		t.Errorf("GET of the deleting tenant = %+v", got)
	}

	// During the grace: data routes refused, exports allowed to admins.
	runScenarios(t, sb, []apiScenario{
		{name: "AdminReadsRecord", method: "GET", path: recPath, token: admin, wantStatus: 403, wantCode: problem.CodeTenantSuspended},
		{name: "AdminWrites", method: "POST", path: tpath("leaving", "collections", "people", "records"), token: admin,
			body: map[string]any{"name": "x"}, wantStatus: 403, wantCode: problem.CodeTenantSuspended},
		{name: "AdminUsage", method: "GET", path: tpath("leaving", "usage"), token: admin, wantStatus: 403, wantCode: problem.CodeTenantSuspended},
		{name: "MemberReads", method: "GET", path: recPath, token: member, wantStatus: 403, wantCode: problem.CodeTenantSuspended},
		{name: "AdminExports", method: "GET", path: tpath("leaving", "standin-export"), token: admin, wantStatus: 200},
		{name: "MemberExports", method: "GET", path: tpath("leaving", "standin-export"), token: member, wantStatus: 403, wantCode: problem.CodeTenantSuspended},
		{name: "NeighbourExports", method: "GET", path: tpath("leaving", "standin-export"), token: neighbourAdmin, wantStatus: 404, wantCode: problem.CodeNotFound},
		{name: "NeighbourUnaffected", method: "GET", path: tpath("neighbour", "collections"), token: neighbourAdmin, wantStatus: 200},
	})
	if r := login("staff@example.com"); r.Status != 403 || r.Code(t) != string(problem.CodeTenantSuspended) {
		t.Errorf("a member's login while deleting = %d %s, want 403 tenant_suspended", r.Status, r.Body)
	}
	r := login("boss@example.com")
	if r.Status != 200 {
		t.Fatalf("an admin's login while deleting = %d %s, want 200", r.Status, r.Body)
	}
	var pair core.TokenPair
	r.JSON(t, &pair)
	sb.must(200, "GET", tpath("leaving", "standin-export"), pair.AccessToken, nil)
	sb.mustProblem(403, problem.CodeTenantSuspended, "GET", tpath("leaving", "collections"), pair.AccessToken, nil)

	// Cancelling restores access; the old job then does nothing.
	var undeleted tenantView
	b.must(200, "PATCH", "/v1/tenants/leaving", b.admin, map[string]any{"status": "active"}).JSON(t, &undeleted)
	if undeleted.Status != "active" || undeleted.PurgeAt != nil {
		t.Errorf("PATCH status active on a deleting tenant = %+v, want active without purge_at", undeleted)
	}
	b.must(200, "GET", recPath, admin, nil)
	b.must(200, "GET", recPath, member, nil)
	clock.set(31 * 24 * time.Hour)
	if res, err := q.run(t, job); err != nil || res.(*core.PurgeResult).Purged {
		t.Errorf("the purge job of a cancelled deletion = %+v, %v; want nothing done", res, err)
	}
	b.must(200, "GET", recPath, admin, nil)

	// Deleted again: a job of a moved deletion does nothing either.
	clock.set(0)
	b.must(202, "DELETE", "/v1/tenants/leaving?grace=2d", b.admin, nil)
	moved := q.last(t)
	b.must(202, "DELETE", "/v1/tenants/leaving?grace=3d", b.admin, nil).JSON(t, &v)
	final := q.last(t)
	clock.set(4 * 24 * time.Hour)
	if res, err := q.run(t, moved); err != nil || res.(*core.PurgeResult).Purged {
		t.Errorf("the purge job of a moved deletion = %+v, %v; want nothing done", res, err)
	}
	// A due purge is not cancelled, nor moved.
	b.mustProblem(409, problem.CodeConflict, "PATCH", "/v1/tenants/leaving", b.admin, map[string]any{"status": "active"})
	b.mustProblem(409, problem.CodeConflict, "DELETE", "/v1/tenants/leaving?grace=1d", b.admin, nil)
	// The purge job before its time does nothing, and is retried.
	clock.set(2 * 24 * time.Hour)
	if _, err := q.run(t, final); err == nil {
		t.Error("the purge job before its time succeeded, want an error so that it is retried")
	}
	b.must(200, "GET", "/v1/tenants/leaving", b.admin, nil)

	// The purge: keys shredded (a copy of the database opens no more),
	// then the data.
	backup := b.copyTenant(tid, rec.ID)
	kms, err := keyring.OpenLocal(keyring.LocalConfig{Dir: filepath.Join(dir, "keys"), WrappedKeysExist: true})
	if err != nil {
		t.Fatal(err)
	}
	if s, err := openCopied(kms, tid, backup, "people", rec.ID, "ssn"); err != nil || s != secret {
		t.Fatalf("before the purge the copy opens to %q, %v; want the plaintext (else the test proves nothing)", s, err)
	}
	clock.set(4 * 24 * time.Hour)
	if res, err := q.run(t, final); err != nil || !res.(*core.PurgeResult).Purged {
		t.Fatalf("the purge job when due = %+v, %v; want the tenant purged", res, err)
	}
	if s, err := openCopied(kms, tid, backup, "people", rec.ID, "ssn"); err == nil || s == secret || !errors.Is(err, keyring.ErrKeyNotFound) {
		t.Errorf("after the purge the copy opens to %q, %v; want ErrKeyNotFound", s, err)
	}
	b.mustProblem(404, problem.CodeNotFound, "GET", "/v1/tenants/leaving", b.admin, nil)
	b.mustProblem(401, problem.CodeUnauthorized, "GET", recPath, admin, nil)
	b.must(200, "GET", tpath("neighbour", "collections"), neighbourAdmin, nil)
	// Run again (a retry, a second node): nothing left to do.
	if res, err := q.run(t, final); err != nil || res.(*core.PurgeResult).Purged {
		t.Errorf("the purge job again = %+v, %v; want nothing done", res, err)
	}
	want := []string{"tenant.create", "tenant.offboard", "tenant.undelete", "tenant.offboard", "tenant.offboard", "tenant.shred", "tenant.delete"}
	if got := b.platformActions(tid); !slices.Equal(got, want) {
		t.Errorf("platform chain for the tenant = %q, want %q", got, want)
	}
	b.must(200, "GET", "/v1/audit/verify", b.admin, nil)
}

// TestOffboardImmediate: grace=0 purges before answering, with the 202
// and the tenant's view, status deleted.
func TestOffboardImmediate(t *testing.T) {
	t.Parallel()
	b := setup(t)
	tid := b.tenant("gone", tenant.Silo)
	key := b.apiKey("gone", tenant.Admin)
	b.collection("gone", key, "notes", nil)
	b.createRecord("gone", key, "notes", map[string]any{"a": 1})
	var v tenantView
	b.must(202, "DELETE", "/v1/tenants/gone?grace=0", b.admin, nil).JSON(t, &v)
	if v.Status != "deleted" || v.Slug != "gone" {
		t.Errorf("DELETE ?grace=0 answered %+v, want status deleted", v)
	}
	b.mustProblem(404, problem.CodeNotFound, "GET", "/v1/tenants/gone", b.admin, nil)
	b.mustProblem(401, problem.CodeUnauthorized, "GET", tpath("gone", "collections"), key, nil)
	want := []string{"tenant.create", "tenant.offboard", "tenant.shred", "tenant.delete"}
	if got := b.platformActions(tid); !slices.Equal(got, want) {
		t.Errorf("platform chain for the tenant = %q, want %q", got, want)
	}
}

// TestOffboardSweeper: without a job queue, the sweeper purges a deleting
// tenant once it is due, and not before; the configured default grace
// applies to a DELETE without one.
func TestOffboardSweeper(t *testing.T) {
	t.Parallel()
	clock := &testClock{}
	b := setupCore(t, t.TempDir(), func(cc *core.Config) { clock.coreOpt(cc); cc.DeletionGrace = 2 * time.Hour })
	b.tenant("swept", tenant.Pooled)
	b.tenant("kept", tenant.Pooled)
	var v tenantView
	b.must(202, "DELETE", "/v1/tenants/swept", b.admin, nil).JSON(t, &v)
	if v.Status != "deleting" || v.PurgeAt == nil || v.PurgeAt.Sub(v.UpdatedAt) != 2*time.Hour {
		t.Fatalf("DELETE without grace answered %+v, want purge_at the configured 2h after updated_at", v)
	}
	if err := b.core.SweepPurges(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.must(200, "GET", "/v1/tenants/swept", b.admin, nil)
	clock.set(3 * time.Hour)
	if err := b.core.SweepPurges(t.Context()); err != nil {
		t.Fatal(err)
	}
	b.mustProblem(404, problem.CodeNotFound, "GET", "/v1/tenants/swept", b.admin, nil)
	b.must(200, "GET", "/v1/tenants/kept", b.admin, nil)
}

// TestOffboardRunner: with the real job runner, the purge job enqueued by
// DELETE runs at purge_at and purges the tenant. The Core's clock runs
// two minutes behind, so that a purge due in one minute is due for River
// at once; the job finds it not due (and is retried) until the clock is
// set right.
func TestOffboardRunner(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	st := openTestStore(t, dir)
	jc := jobs.Config{Store: st, DatabaseURL: "sqlite:" + filepath.Join(dir, "jobs.db"),
		RetryFunc: func(int) time.Duration { return 20 * time.Millisecond }, PollInterval: 20 * time.Millisecond,
		Logger: slog.New(slog.NewTextHandler(io.Discard, nil))}
	if postgresBackend() {
		v, _ := pgDatabases.Load(dir)
		db := v.(*pgtest.Database)
		jc.DatabaseURL, jc.MigrateURL = db.AppURL(t), db.OwnerURL(t)
	}
	runner, err := jobs.Open(t.Context(), jc)
	if err != nil {
		t.Fatal(err)
	}
	clock := &testClock{}
	clock.set(-2 * time.Minute)
	b := setupStore(t, dir, st, func(cc *core.Config) { clock.coreOpt(cc); cc.Jobs = runner })
	if err := runner.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { runner.Close(context.Background()) })
	b.tenant("timed", tenant.Pooled)
	b.must(202, "DELETE", "/v1/tenants/timed?grace=1m", b.admin, nil)
	b.must(200, "GET", "/v1/tenants/timed", b.admin, nil) // the job may have run: not due yet
	clock.set(0)
	deadline := time.Now().Add(30 * time.Second)
	for b.do("GET", "/v1/tenants/timed", b.admin, nil).Status != 404 {
		if time.Now().After(deadline) {
			t.Fatal("the purge job did not purge the tenant within 30s of its being due")
		}
		time.Sleep(20 * time.Millisecond)
	}
}
