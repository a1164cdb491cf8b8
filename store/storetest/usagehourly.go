package storetest

import (
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// testUsageHours covers a tenant's usage per hour: counts add up across
// calls (as nodes flush them), records and bytes change only with a
// sample, listings select [from, to) oldest first, a time that does not
// start an hour is refused, read-only transactions are refused, each
// tenant sees only its own rows, and deleting a tenant removes them.
func (h *harness) testUsageHours(t *testing.T, iso tenant.Isolation) {
	e := h.setup(t)
	ctx := e.ctx
	name := isoName(iso)
	h0 := time.Date(2025, 3, 14, 15, 0, 0, 0, time.UTC)
	h1 := h0.Add(time.Hour)
	params := createParams(iso)
	a, err := e.s.CreateTenant(ctx, params, nil, nil)
	if err != nil {
		t.Fatalf("CreateTenant = %v", err)
	}
	b := e.tenant(iso)
	e.in(a.ID, func(tx store.Tx) error {
		for _, u := range []*store.UsageHour{
			{Hour: h0, Requests: 3, JobMS: 10, Records: 5, Bytes: 100, Sampled: true},
			{Hour: h0, Requests: 2, Records: 99, Bytes: 99}, // not sampled: records and bytes stay
			{Hour: h1, Requests: 1},
			{Hour: h0, JobMS: 5, Records: 7, Bytes: 140, Sampled: true},
		} {
			errIs(t, name+": AddUsageHour", tx.AddUsageHour(ctx, u), nil)
		}
		if err := tx.AddUsageHour(ctx, &store.UsageHour{Hour: h0.Add(time.Minute), Requests: 1}); err == nil {
			t.Errorf("%s: AddUsageHour(not an hour's start) succeeded", name)
		}
		return nil
	})
	want0 := &store.UsageHour{Hour: h0, Records: 7, Bytes: 140, Requests: 5, JobMS: 15}
	want1 := &store.UsageHour{Hour: h1, Requests: 1}
	e.read(a.ID, func(tx store.Tx) error {
		for _, c := range []struct {
			from, to time.Time
			limit    int
			want     []*store.UsageHour
		}{
			{h0, h1.Add(time.Hour), 0, []*store.UsageHour{want0, want1}},
			{h0, h1, 0, []*store.UsageHour{want0}},
			{h0.Add(time.Microsecond), h1.Add(time.Microsecond), 0, []*store.UsageHour{want1}},
			{h0, h1.Add(time.Hour), 1, []*store.UsageHour{want0}},
			{h1.Add(time.Hour), h1.Add(2 * time.Hour), 0, nil},
		} {
			got, err := tx.ListUsageHours(ctx, c.from, c.to, c.limit)
			if errIs(t, name+": ListUsageHours", err, nil) {
				diff(t, name+": ListUsageHours from "+c.from.Sub(h0).String()+" to "+c.to.Sub(h0).String(), c.want, got)
			}
		}
		errIs(t, name+": AddUsageHour(read-only)", tx.AddUsageHour(ctx, &store.UsageHour{Hour: h0, Requests: 1}), store.ErrReadOnly)
		return nil
	})
	e.in(b.ID, func(tx store.Tx) error {
		got, err := tx.ListUsageHours(ctx, h0, h1.Add(time.Hour), 0)
		if errIs(t, name+": B ListUsageHours", err, nil) && len(got) != 0 {
			t.Errorf("%s: tenant B lists %d usage hours of tenant A", name, len(got))
		}
		// B's counts go to B's row, never A's.
		return tx.AddUsageHour(ctx, &store.UsageHour{Hour: h0, Requests: 100})
	})
	e.read(a.ID, func(tx store.Tx) error {
		got, err := tx.ListUsageHours(ctx, h0, h1, 0)
		if errIs(t, name+": ListUsageHours after B's", err, nil) {
			diff(t, name+": A's hour after B added to its own", []*store.UsageHour{want0}, got)
		}
		return nil
	})

	// Deleting the tenant removes its rows: a tenant created again with
	// the same id starts with none.
	if err := e.s.DeleteTenant(ctx, a.ID, nil); err != nil {
		t.Fatalf("DeleteTenant = %v", err)
	}
	if _, err := e.s.CreateTenant(ctx, params, nil, nil); err != nil {
		t.Fatalf("CreateTenant(same id) = %v", err)
	}
	e.read(a.ID, func(tx store.Tx) error {
		got, err := tx.ListUsageHours(ctx, h0, h1.Add(time.Hour), 0)
		if errIs(t, name+": ListUsageHours after DeleteTenant", err, nil) && len(got) != 0 {
			t.Errorf("%s: a tenant created again lists %d usage hours of the deleted one", name, len(got))
		}
		return nil
	})
}
