package core

import (
	"context"
	"sync"
	"testing"

	"github.com/bulkheadhq/bulkhead/internal/audit"
	"github.com/bulkheadhq/bulkhead/internal/secevent"
	"github.com/bulkheadhq/bulkhead/store"
)

type recorder struct {
	mu     sync.Mutex
	events []secevent.Event
}

func (r *recorder) Publish(ev secevent.Event) {
	r.mu.Lock()
	r.events = append(r.events, ev)
	r.mu.Unlock()
}

// TestDeniedFloodIsAggregated: a flood of denied requests by one
// credential costs a bounded number of writes — the first denial, one
// entry counting the rest, and the suspension — not one per request.
func TestDeniedFloodIsAggregated(t *testing.T) {
	t.Parallel()
	b := setupScopes(t)
	ctx := context.Background()
	b.c.Flush()
	got := b.measure(func() {
		for range 500 {
			b.c.Denied(ctx, b.acmeKey, "/v1/tenants/globex/collections", "req")
		}
		b.c.Flush()
	})
	if got.writes != 3 {
		t.Errorf("500 denied requests cost %d writes, want 3 (first denial, the count of the rest, the suspension)", got.writes)
	}
	var entries []*store.AuditEntry
	err := b.c.store.ReadTenant(ctx, b.acmeKey.Tenant, func(tx store.Tx) (err error) {
		entries, err = tx.ListAudit(ctx, 0, 1000)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	actions := map[string]string{}
	for _, e := range entries {
		actions[e.Action] = e.Resource
	}
	if actions["access.denied_repeated"] != "requests:499" || actions["containment.credential_suspended"] != b.acmeKey.Actor() {
		t.Errorf("acme's audit actions = %v, want the 499 counted and the key suspended", actions)
	}
	// Globex, the tenant named, has no trace of it.
	err = b.c.store.ReadTenant(ctx, b.globexKey.Tenant, func(tx store.Tx) (err error) {
		entries, err = tx.ListAudit(ctx, 0, 1000)
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Actor == b.acmeKey.Actor() || e.Outcome == audit.Denied {
			t.Errorf("globex's audit has %+v", e)
		}
	}
}

func TestBreakerOpenEvent(t *testing.T) {
	t.Parallel()
	b := setupScopes(t)
	rec := &recorder{}
	b.c.events = rec
	b.c.BreakerOpenFunc()(b.acmeKey.Tenant)
	if len(rec.events) != 1 || rec.events[0].Action != "scheduler.breaker_opened" || rec.events[0].Tenant != b.acmeKey.Tenant {
		t.Fatalf("events = %+v, want one scheduler.breaker_opened of acme", rec.events)
	}
}
