package fairq_test

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/sqlitestore"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// scheduledBundle is a real SQLite store with two tenants, wrapped by
// fairq.Store, and a scheduler of two slots.
type scheduledBundle struct {
	st     store.Store
	sched  *fairq.Scheduler
	a, b   tenant.ID
	ticket fairq.Ticket
}

func setupScheduled(t *testing.T) *scheduledBundle {
	t.Helper()
	raw, err := sqlitestore.Open(filepath.Join(t.TempDir(), "bulkhead.db"), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { raw.Close() })
	sched, err := fairq.New(fairq.Config{Slots: 2, MaxTenantSlots: 2})
	if err != nil {
		t.Fatal(err)
	}
	b := &scheduledBundle{st: fairq.Store(raw), sched: sched,
		ticket: fairq.Ticket{Scheduler: sched, Weight: 1, Wait: 50 * time.Millisecond}}
	for i, id := range []*tenant.ID{&b.a, &b.b} {
		tn, err := raw.CreateTenant(context.Background(), &store.CreateTenantParams{
			ID:   tenant.ID([]string{"0190d5a0-0000-7000-8000-00000000000a", "0190d5a0-0000-7000-8000-00000000000b"}[i]),
			Slug: tenant.Slug([]string{"aa", "bb"}[i]), Name: "t", Plan: tenant.DefaultPlan, Isolation: tenant.Pooled,
			CreatedAt: time.Now()}, nil, nil)
		if err != nil {
			t.Fatal(err)
		}
		*id = tn.ID
	}
	return b
}

// TestStoreHoldsSlotsForTransactionsOnly: a transaction with a ticket runs
// in a slot charged to its own tenant, and the slot is free again as soon as
// the transaction has returned — before its caller does anything else.
func TestStoreHoldsSlotsForTransactionsOnly(t *testing.T) {
	t.Parallel()
	b := setupScheduled(t)
	ctx := fairq.WithTicket(context.Background(), b.ticket)
	for _, run := range []func(context.Context, tenant.ID, func(store.Tx) error) error{b.st.InTenant, b.st.ReadTenant} {
		ran := false
		err := run(ctx, b.a, func(tx store.Tx) error {
			ran = true
			if got := b.sched.TenantStats(b.a).InUse; got != 1 {
				t.Errorf("tenant a holds %d slots in its transaction, want 1", got)
			}
			if got := b.sched.TenantStats(b.b).InUse; got != 0 {
				t.Errorf("tenant b holds %d slots in a's transaction, want 0", got)
			}
			return nil
		})
		if err != nil || !ran {
			t.Fatalf("transaction = %v (ran %v)", err, ran)
		}
		if got := b.sched.Stats().InUse; got != 0 {
			t.Errorf("after the transaction %d slots are held, want 0", got)
		}
	}

	// An error and a panic release the slot too.
	boom := errors.New("boom")
	if err := b.st.InTenant(ctx, b.a, func(store.Tx) error { return boom }); !errors.Is(err, boom) {
		t.Errorf("InTenant = %v, want boom", err)
	}
	func() {
		defer func() { recover() }()
		b.st.ReadTenant(ctx, b.a, func(store.Tx) error { panic("boom") })
	}()
	if got := b.sched.Stats().InUse; got != 0 {
		t.Errorf("after an error and a panic %d slots are held, want 0", got)
	}
}

// TestStoreSheds: with every slot held, a transaction with a ticket is shed
// at its wait without running; one without a ticket (authentication, the
// command line) runs at once.
func TestStoreSheds(t *testing.T) {
	t.Parallel()
	b := setupScheduled(t)
	var held []fairq.Slot
	for range 2 {
		sl, err := b.sched.Acquire(context.Background(), b.b, 1, fairq.Interactive, time.Time{})
		if err != nil {
			t.Fatal(err)
		}
		held = append(held, sl)
	}
	ran := false
	err := b.st.InTenant(fairq.WithTicket(context.Background(), b.ticket), b.a, func(store.Tx) error {
		ran = true
		return nil
	})
	var shed *fairq.ShedError
	if !errors.As(err, &shed) || ran {
		t.Fatalf("InTenant with every slot held = %v (ran %v), want a *ShedError without running", err, ran)
	}
	if err := b.st.ReadTenant(context.Background(), b.a, func(store.Tx) error { return nil }); err != nil {
		t.Errorf("ReadTenant without a ticket = %v, want it to run", err)
	}
	// LookupAPIKey authenticates requests: it is never scheduled.
	_, err = b.st.LookupAPIKey(fairq.WithTicket(context.Background(), b.ticket), b.a, "no-such-key")
	if !errors.Is(err, store.ErrNotFound) {
		t.Errorf("LookupAPIKey with a ticket and every slot held = %v, want it to run (ErrNotFound)", err)
	}
	for _, sl := range held {
		sl.Release(fairq.OutcomeOK)
	}
	if err := b.st.InTenant(fairq.WithTicket(context.Background(), b.ticket), b.a, func(store.Tx) error { return nil }); err != nil {
		t.Errorf("InTenant after the slots are free = %v", err)
	}
}
