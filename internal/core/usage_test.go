package core

import (
	"context"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
)

// Counting a request or job time touches no database; FlushUsage adds the
// counts with one transaction per tenant, stores job time in whole
// milliseconds and keeps the rest for the next flush, and drops the counts
// of a tenant that is gone.
func TestUsageMeter(t *testing.T) {
	t.Parallel()
	b := setupOracle(t)
	// The meter's hours come from the Core's clock: hold it within one
	// hour, so that the counts below fall in one hour whenever the test
	// runs.
	hour := time.Now().UTC().Truncate(time.Hour)
	b.c.now = func() time.Time { return hour.Add(30 * time.Minute) }
	ctx := context.Background()
	tid := b.acme.Tenant().ID
	if w := b.measure(func() {
		for range 100 {
			b.acme.CountRequest()
		}
		b.c.addJobTime(tid, 1500*time.Millisecond+700*time.Microsecond)
		b.c.addJobTime(tid, 1500*time.Millisecond)
		b.c.addJobTime("", time.Hour) // the platform's: counted nowhere
	}); w != (work{}) {
		t.Fatalf("counting cost %+v, want no database work", w)
	}
	if w := b.measure(func() {
		if err := b.c.FlushUsage(ctx); err != nil {
			t.Fatal(err)
		}
	}); w.writes != 1 {
		t.Errorf("a flush of one tenant's counts cost %+v, want one write transaction", w)
	}
	sum := func() (requests, jobMS int64) {
		t.Helper()
		err := b.c.store.ReadTenant(ctx, tid, func(tx store.Tx) error {
			hs, err := tx.ListUsageHours(ctx, hour, hour.Add(time.Hour), 0)
			for _, h := range hs {
				requests, jobMS = requests+h.Requests, jobMS+h.JobMS
			}
			return err
		})
		if err != nil {
			t.Fatal(err)
		}
		return requests, jobMS
	}
	if r, ms := sum(); r != 100 || ms != 3000 {
		t.Errorf("after the flush: %d requests, %d job ms; want 100 and 3000", r, ms)
	}
	// The 0.7ms left over and 0.3ms more make one more millisecond.
	b.c.addJobTime(tid, 300*time.Microsecond)
	if err := b.c.FlushUsage(ctx); err != nil {
		t.Fatal(err)
	}
	if r, ms := sum(); r != 100 || ms != 3001 {
		t.Errorf("after the second flush: %d requests, %d job ms; want 100 and 3001", r, ms)
	}
	if w := b.measure(func() {
		if err := b.c.FlushUsage(ctx); err != nil {
			t.Fatal(err)
		}
	}); w != (work{}) {
		t.Errorf("a flush with nothing counted cost %+v, want nothing", w)
	}
	// A tenant that is gone: its counts are dropped, not retried forever.
	b.c.usage.add("01a245aa-0000-7000-8000-000000000000", hourOf(b.c.now()), 1, 0)
	if err := b.c.FlushUsage(ctx); err != nil {
		t.Errorf("flushing the counts of a tenant that does not exist = %v, want them dropped", err)
	}
	if n := len(b.c.usage.take()); n != 0 {
		t.Errorf("%d counts kept after the flush, want none", n)
	}
}
