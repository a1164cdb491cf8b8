package core

import (
	"context"
	"errors"
	"io"
	"log/slog"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/jobs"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// openRunner opens a job runner on st with River in the SQLite file path,
// polling often so that tests wait little.
func openRunner(t *testing.T, st store.Store, path string) *jobs.Runner {
	t.Helper()
	r, err := jobs.Open(t.Context(), jobs.Config{Store: st, DatabaseURL: "sqlite:" + path, PollInterval: 100 * time.Millisecond,
		RetryFunc: func(int) time.Duration { return 50 * time.Millisecond },
		Logger:    slog.New(slog.NewTextHandler(io.Discard, nil))})
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func startRunner(t *testing.T, r *jobs.Runner) {
	t.Helper()
	if err := r.Start(t.Context()); err != nil {
		t.Fatal(err)
	}
}

func closeRunner(r *jobs.Runner) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	r.Close(ctx)
}

// TestJobsOfScope: a tenant admin lists, reads and cancels the tenant's
// jobs; a member may not; another tenant's job id is not found, to read
// or to cancel; a finished job cannot be cancelled.
func TestJobsOfScope(t *testing.T) {
	b := setupScopes(t)
	ctx := context.Background()
	// Declaring an index enqueues a build_indexes job of acme's.
	if _, err := b.acmeAdmin.PutCollection(ctx, "indexed", PutCollectionParams{
		Indexes: []IndexSpec{{Fields: []string{"n"}}}}); err != nil {
		t.Fatal(err)
	}
	if err := b.c.WaitBackground(ctx); err != nil {
		t.Fatal(err)
	}
	page, err := b.acmeAdmin.ListJobs(ctx, "", 0, "")
	if err != nil {
		t.Fatal(err)
	}
	if len(page.Items) != 1 || page.Items[0].Kind != string(KindBuildIndexes) || page.Items[0].State != store.JobSucceeded ||
		page.Items[0].Progress != (JobProgress{Done: 1, Total: 1}) {
		t.Fatalf("ListJobs = %+v, want one succeeded build_indexes job, 1 of 1", page.Items)
	}
	id := page.Items[0].ID
	if j, err := b.acmeAdmin.GetJob(ctx, id); err != nil || j.ID != id {
		t.Errorf("GetJob = %+v, %v", j, err)
	}
	if _, err := b.acmeAdmin.CancelJob(ctx, id); !errors.Is(err, ErrJobFinished) {
		t.Errorf("CancelJob(succeeded) = %v, want ErrJobFinished", err)
	}
	// Globex's admin cannot see or cancel it.
	if _, err := b.globexAdmin.GetJob(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("globex GetJob(acme's job) = %v, want ErrNotFound", err)
	}
	if _, err := b.globexAdmin.CancelJob(ctx, id); !errors.Is(err, store.ErrNotFound) {
		t.Errorf("globex CancelJob(acme's job) = %v, want ErrNotFound", err)
	}
	if page, err := b.globexAdmin.ListJobs(ctx, "", 0, ""); err != nil || len(page.Items) != 0 {
		t.Errorf("globex ListJobs = %+v, %v, want none", page, err)
	}
	// A member may not read jobs.
	k, err := b.acmeAdmin.CreateAPIKey(ctx, CreateAPIKeyParams{Name: "m", Role: tenant.Member})
	if err != nil {
		t.Fatal(err)
	}
	p, err := b.c.Authenticate(ctx, k.Key)
	if err != nil {
		t.Fatal(err)
	}
	member, err := b.c.Scope(ctx, p, "acme", "test")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := member.ListJobs(ctx, "", 0, ""); !errors.Is(err, ErrForbidden) {
		t.Errorf("member ListJobs = %v, want ErrForbidden", err)
	}
	if _, err := member.CancelJob(ctx, id); !errors.Is(err, ErrForbidden) {
		t.Errorf("member CancelJob = %v, want ErrForbidden", err)
	}
	// A cursor of acme's does not open globex's listing.
	for _, field := range []string{"m", "k"} {
		if _, err := b.acmeAdmin.PutCollection(ctx, "indexed", PutCollectionParams{
			Indexes: []IndexSpec{{Fields: []string{field}}}}); err != nil {
			t.Fatal(err)
		}
		if err := b.c.WaitBackground(ctx); err != nil {
			t.Fatal(err)
		}
	}
	page, err = b.acmeAdmin.ListJobs(ctx, string(KindBuildIndexes), 1, "")
	if err != nil || page.NextCursor == "" {
		t.Fatalf("ListJobs(limit 1) = %+v, %v, want a next cursor", page, err)
	}
	if _, err := b.globexAdmin.ListJobs(ctx, string(KindBuildIndexes), 1, page.NextCursor); err == nil {
		t.Errorf("globex ListJobs with acme's cursor succeeded")
	}
	if _, err := b.acmeAdmin.ListJobs(ctx, "", 1, page.NextCursor); err == nil {
		t.Errorf("a cursor of one kind's listing opened the listing of all kinds")
	}
}
