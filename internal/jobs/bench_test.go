package jobs

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/sqlitestore"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// BenchmarkEnqueue measures what enqueueing a job costs on SQLite against
// writing its record alone (the least an acknowledged job costs), in the
// same run: Ratio alternates the two and reports enqueue/record. Enqueue
// is the backlog count, River's insert and the record.
//
//	go test ./internal/jobs -run '^$' -bench Enqueue -benchtime 500x
func BenchmarkEnqueue(b *testing.B) {
	dir := b.TempDir()
	st, err := sqlitestore.Open(filepath.Join(dir, "bulkhead.db"), nil)
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { st.Close() })
	u := uuid.NewString()
	tn, err := st.CreateTenant(context.Background(), &store.CreateTenantParams{ID: tenant.ID(u), Slug: tenant.Slug("b-" + u[:8]),
		Name: "B", Plan: "pro", Isolation: tenant.Pooled, CreatedAt: time.Now().UTC()}, nil, nil)
	if err != nil {
		b.Fatal(err)
	}
	r, err := Open(context.Background(), Config{Store: st, DatabaseURL: "sqlite:" + filepath.Join(dir, "jobs.db")})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { r.Close(context.Background()) })
	r.Register("bench", KindConfig{Work: func(context.Context, *Task) (any, error) { return nil, nil }})
	ctx := context.Background()
	record := func() {
		now := time.Now().UTC()
		j := &store.Job{ID: store.JobID(uuid.Must(uuid.NewV7()).String()), Kind: "bench", State: store.JobQueued,
			Args: []byte(`{"n":1}`), CreatedAt: now, UpdatedAt: now}
		if err := st.InTenant(ctx, tn.ID, func(tx store.Tx) error { return tx.CreateJob(ctx, j) }); err != nil {
			b.Fatal(err)
		}
	}
	enqueue := func() {
		if _, err := r.Enqueue(ctx, tn.ID, "bench", map[string]int{"n": 1}, nil); err != nil {
			b.Fatal(err)
		}
	}
	b.Run("Record", func(b *testing.B) {
		for b.Loop() {
			record()
		}
	})
	b.Run("Enqueue", func(b *testing.B) {
		for b.Loop() {
			enqueue()
		}
	})
	b.Run("Ratio", func(b *testing.B) {
		var tr, te time.Duration
		for b.Loop() {
			t0 := time.Now()
			record()
			t1 := time.Now()
			enqueue()
			tr += t1.Sub(t0)
			te += time.Since(t1)
		}
		b.ReportMetric(float64(te)/float64(tr), "enqueue/record")
	})
}
