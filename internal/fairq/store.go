package fairq

import (
	"context"
	"errors"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/observe"
	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Ticket says how the database work of one admitted request is scheduled:
// which Scheduler grants its slots, its tenant's weight, its class and how
// long each of its transactions may wait for a slot. Admission attaches it
// to the request's context with WithTicket; a store wrapped by Store reads
// it.
type Ticket struct {
	// Scheduler grants the slots. A Ticket without one schedules nothing.
	Scheduler *Scheduler
	// Weight is the tenant's plan weight.
	Weight int
	// Class is the request's priority class.
	Class Class
	// Wait is how long each transaction may wait for a slot before it is
	// shed. Zero means the Scheduler's MaxWait.
	Wait time.Duration
}

type ticketKey struct{}

// WithTicket returns a context whose tenant transactions, in a store wrapped
// by Store, each run in a slot granted under t.
func WithTicket(ctx context.Context, t Ticket) context.Context {
	return context.WithValue(ctx, ticketKey{}, t)
}

// TicketFrom returns the ticket ctx carries, if any: work a request starts
// in the background (such as an index build) runs under a copy of it.
func TicketFrom(ctx context.Context) (Ticket, bool) { return ticketFrom(ctx) }

// ticketFrom returns the ticket ctx carries, if any.
func ticketFrom(ctx context.Context) (Ticket, bool) {
	t, ok := ctx.Value(ticketKey{}).(Ticket)
	return t, ok && t.Scheduler != nil
}

// Store wraps st so that each InTenant and ReadTenant whose context carries
// a Ticket runs in a database slot of the tenant named by its argument: the
// slot is acquired just before the transaction and released as soon as it
// ends, so it is held for database work only — never while a request body is
// read or a response written. Without a Ticket (authentication's lookups,
// the command line, the control plane) transactions run at once. A shed
// transaction returns the *ShedError without running fn.
//
// The tenant a slot is charged to is the transaction's own, never one read
// from the context: the Ticket carries only how to schedule.
func Store(st store.Store) store.Store {
	if _, ok := st.(*scheduledStore); ok {
		return st
	}
	return &scheduledStore{Store: st}
}

type scheduledStore struct {
	store.Store
}

func (s *scheduledStore) InTenant(ctx context.Context, tid tenant.ID, fn func(tx store.Tx) error) error {
	return s.run(ctx, tid, fn, s.Store.InTenant)
}

func (s *scheduledStore) ReadTenant(ctx context.Context, tid tenant.ID, fn func(tx store.Tx) error) error {
	return s.run(ctx, tid, fn, s.Store.ReadTenant)
}

// BuildIndexes builds in a slot of the tenant, like a transaction: an index
// build is the tenant's database work, and waits its turn as the ticket's
// class (Batch, for builds a request starts).
func (s *scheduledStore) BuildIndexes(ctx context.Context, tid tenant.ID, col store.CollectionName) error {
	return s.run(ctx, tid, nil, func(ctx context.Context, tid tenant.ID, _ func(store.Tx) error) error {
		return s.Store.BuildIndexes(ctx, tid, col)
	})
}

// LookupAPIKey runs at once, ticket or not: it authenticates a request,
// which happens before admission gives the request a ticket, and it is one
// short read.
func (s *scheduledStore) LookupAPIKey(ctx context.Context, tid tenant.ID, id store.APIKeyID) (*store.KeyLookup, error) {
	return s.Store.LookupAPIKey(ctx, tid, id)
}

func (s *scheduledStore) run(ctx context.Context, tid tenant.ID, fn func(tx store.Tx) error,
	txFunc func(context.Context, tenant.ID, func(store.Tx) error) error) (err error) {
	t, ok := ticketFrom(ctx)
	if !ok || tid == "" {
		return traced(ctx, tid, fn, txFunc)
	}
	var deadline time.Time
	if t.Wait > 0 {
		deadline = time.Now().Add(t.Wait)
	}
	_, span := observe.StartTenantSpan(ctx, "bulkhead.queue", string(tid))
	slot, err := t.Scheduler.Acquire(ctx, tid, t.Weight, t.Class, deadline)
	observe.EndSpan(span, err)
	if err != nil {
		return err
	}
	defer func() { slot.Release(outcomeOf(err)) }() // also if fn panics
	return traced(ctx, tid, fn, txFunc)
}

// traced runs the transaction in a "bulkhead.store" span of the request's
// trace, if it is traced.
func traced(ctx context.Context, tid tenant.ID, fn func(tx store.Tx) error,
	txFunc func(context.Context, tenant.ID, func(store.Tx) error) error) error {
	ctx, span := observe.StartTenantSpan(ctx, "bulkhead.store", string(tid))
	err := txFunc(ctx, tid, fn)
	observe.EndSpan(span, err)
	return err
}

// outcomeOf classifies a transaction's error for the breaker.
func outcomeOf(err error) Outcome {
	switch {
	case errors.Is(err, context.DeadlineExceeded):
		return OutcomeTimeout
	case errors.Is(err, context.Canceled):
		return OutcomeCanceled
	}
	return OutcomeOK
}
