package storetest

import (
	"encoding/json"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
)

// testJobs covers a tenant's job records: stored and read back exactly,
// updated, listed newest first by kind and in pages, active ones counted
// up to a limit, read-only transactions refused, and each tenant seeing
// only its own — for pooled and silo tenants.
func (h *harness) testJobs(t *testing.T) {
	t.Parallel()
	e := h.setup(t)
	ctx := e.ctx
	for _, iso := range isolations {
		a, b := e.tenant(iso), e.tenant(iso)
		name := isoName(iso)
		j1 := &store.Job{ID: "j1", Kind: "export", State: store.JobQueued, Args: json.RawMessage(`{"format":"ndjson"}`),
			CreatedBy: "user:u1", QueueID: 41, CreatedAt: base, UpdatedAt: base}
		j2 := &store.Job{ID: "j2", Kind: "rotate_keys", State: store.JobQueued, Args: json.RawMessage(`{}`),
			QueueID: 42, CreatedAt: at(time.Second), UpdatedAt: at(time.Second)}
		j3 := &store.Job{ID: "j3", Kind: "export", State: store.JobQueued, Args: json.RawMessage(`null`),
			QueueID: 43, CreatedAt: at(time.Second), UpdatedAt: at(time.Second)}
		e.in(a.ID, func(tx store.Tx) error {
			for _, j := range []*store.Job{j1, j2, j3} {
				errIs(t, name+": CreateJob", tx.CreateJob(ctx, j), nil)
			}
			dup := *j1
			dup.Kind = "other"
			errIs(t, name+": CreateJob(same id)", tx.CreateJob(ctx, &dup), store.ErrConflict)
			return nil
		})
		// j1 runs and succeeds; j2 starts.
		started, finished := at(2*time.Second), at(3*time.Second)
		j1.State, j1.Done, j1.Total, j1.Attempts, j1.Result = store.JobSucceeded, 10, 10, 2, json.RawMessage(`{"records":10}`)
		j1.Error, j1.UpdatedAt, j1.StartedAt, j1.FinishedAt = "", finished, &started, &finished
		j2.State, j2.Attempts, j2.Error, j2.UpdatedAt, j2.StartedAt = store.JobRunning, 1, "retrying", started, &started
		e.in(a.ID, func(tx store.Tx) error {
			errIs(t, name+": UpdateJob", tx.UpdateJob(ctx, j1), nil)
			errIs(t, name+": UpdateJob", tx.UpdateJob(ctx, j2), nil)
			errIs(t, name+": UpdateJob(unknown)", tx.UpdateJob(ctx, &store.Job{ID: "nope", State: store.JobFailed,
				UpdatedAt: base}), store.ErrNotFound)
			return nil
		})
		// A finished job's state is final.
		e.in(a.ID, func(tx store.Tx) error {
			late := *j1
			late.State, late.Error, late.UpdatedAt = store.JobFailed, "late", at(time.Hour)
			errIs(t, name+": UpdateJob(finished)", tx.UpdateJob(ctx, &late), store.ErrConflict)
			return nil
		})
		e.read(a.ID, func(tx store.Tx) error {
			for _, want := range []*store.Job{j1, j2, j3} {
				got, err := tx.GetJob(ctx, want.ID)
				if errIs(t, name+": GetJob", err, nil) {
					diff(t, name+": GetJob("+string(want.ID)+")", want, got)
				}
			}
			_, err := tx.GetJob(ctx, "nope")
			errIs(t, name+": GetJob(unknown)", err, store.ErrNotFound)
			// Newest first: j3 and j2 share a time, so the id orders them.
			js, err := tx.ListJobs(ctx, &store.ListJobsParams{})
			if errIs(t, name+": ListJobs", err, nil) {
				diff(t, name+": ListJobs", []*store.Job{j3, j2, j1}, js)
			}
			js, err = tx.ListJobs(ctx, &store.ListJobsParams{Kind: "export"})
			if errIs(t, name+": ListJobs(kind)", err, nil) {
				diff(t, name+": ListJobs(kind)", []*store.Job{j3, j1}, js)
			}
			var pages [][]store.JobID
			var before *store.JobKey
			for {
				js, err := tx.ListJobs(ctx, &store.ListJobsParams{Before: before, Limit: 2})
				if !errIs(t, name+": ListJobs(page)", err, nil) || len(js) == 0 || len(pages) > 3 {
					break
				}
				var ids []store.JobID
				for _, j := range js {
					ids = append(ids, j.ID)
				}
				pages = append(pages, ids)
				last := js[len(js)-1]
				before = &store.JobKey{CreatedAt: last.CreatedAt, ID: last.ID}
			}
			diff(t, name+": ListJobs pages", [][]store.JobID{{"j3", "j2"}, {"j1"}}, pages)
			for _, c := range []struct{ limit, want int }{{0, 2}, {10, 2}, {1, 1}} {
				n, err := tx.CountActiveJobs(ctx, c.limit)
				if errIs(t, name+": CountActiveJobs", err, nil) && n != c.want {
					t.Errorf("%s: CountActiveJobs(%d) = %d, want %d", name, c.limit, n, c.want)
				}
			}
			errIs(t, name+": CreateJob(read-only)", tx.CreateJob(ctx, &store.Job{ID: "ro", Kind: "k", State: store.JobQueued,
				CreatedAt: base, UpdatedAt: base}), store.ErrReadOnly)
			errIs(t, name+": UpdateJob(read-only)", tx.UpdateJob(ctx, j3), store.ErrReadOnly)
			return nil
		})
		// Tenant B sees none of A's jobs and cannot change them.
		e.in(b.ID, func(tx store.Tx) error {
			_, err := tx.GetJob(ctx, "j1")
			errIs(t, name+": B GetJob(A's job)", err, store.ErrNotFound)
			hijack := *j2
			hijack.State = store.JobCancelled
			errIs(t, name+": B UpdateJob(A's job)", tx.UpdateJob(ctx, &hijack), store.ErrNotFound)
			js, err := tx.ListJobs(ctx, &store.ListJobsParams{})
			if errIs(t, name+": B ListJobs", err, nil) && len(js) != 0 {
				t.Errorf("%s: tenant B lists %d jobs of tenant A", name, len(js))
			}
			n, err := tx.CountActiveJobs(ctx, 10)
			if errIs(t, name+": B CountActiveJobs", err, nil) && n != 0 {
				t.Errorf("%s: tenant B counts %d active jobs of tenant A", name, n)
			}
			// B may use the same id for a job of its own.
			errIs(t, name+": B CreateJob(same id as A's)", tx.CreateJob(ctx, &store.Job{ID: "j1", Kind: "k", State: store.JobQueued,
				Args: json.RawMessage(`{}`), CreatedAt: base, UpdatedAt: base}), nil)
			return nil
		})
		e.read(a.ID, func(tx store.Tx) error {
			got, err := tx.GetJob(ctx, "j2")
			if errIs(t, name+": GetJob after B's attempts", err, nil) {
				diff(t, name+": A's job j2 after B's attempts", j2, got)
			}
			got, err = tx.GetJob(ctx, "j1")
			if errIs(t, name+": GetJob(j1) after B's own j1", err, nil) {
				diff(t, name+": A's job j1 after B made its own j1", j1, got)
			}
			return nil
		})
	}
}
