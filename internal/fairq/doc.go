// Package fairq is bulkhead's weighted fair scheduler for database slots: the
// "queue" step of the request path. A Scheduler owns a fixed number of slots
// (concurrent database operations). Work calls Acquire before it touches the
// database and Slot.Release when it is done; between the two it holds a slot.
// When no slot can be granted at once the request waits in its tenant's queue
// until a slot is granted, its deadline passes (it is shed with a *ShedError)
// or its context is canceled. The package knows nothing of HTTP.
//
// # Fairness
//
// Each tenant has one FIFO queue per Class. A tenant's weight w (from its plan)
// decides both how its waiters are ordered against other tenants' and how many
// slots it may hold while others wait.
//
// Share. Let W be the sum of the weights of the tenants that hold or wait for
// a slot. While another tenant waits, tenant t's share is
//
//	share(t) = max(1, ceil(Slots × w_t / W))
//
// and while no other tenant waits its share is Slots (work conserving).
// A tenant's hard cap is min(MaxTenantSlots, its breaker's cap while the
// breaker is not closed); it is never exceeded.
//
// Order. When a slot is free the scheduler grants it to the first waiter found
// in this order of passes:
//
//  1. Interactive waiters of tenants holding fewer slots than their share;
//  2. Batch waiters of tenants holding fewer slots than their share;
//  3. Interactive waiters of tenants under their hard cap;
//  4. Batch waiters of tenants under their hard cap.
//
// Within a pass, tenants take turns by deficit round robin (DRR) over the
// tenants with waiters of that class. When a tenant's turn starts it is
// credited Quantum × w grants; each grant costs one; the turn ends when the
// credit is spent or the tenant cannot be served. A turn cut short because the
// tenant was at its cap is owed: it is finished, ahead of the round, as soon
// as the tenant may hold another slot, and forfeited if the tenant's next turn
// comes first (it then held its full share for a whole round). A tenant whose
// queue empties leaves the round and loses its credit. So under sustained
// contention tenants receive grants in proportion to their weights (exactly,
// in the tests, for 1, 4 and 7 slots with weights 1:2:4), no tenant gets more
// than 2 × Quantum × w - 1 grants in a row, and picking a tenant is O(1)
// amortized when tenants are under their caps, O(tenants waiting) at worst.
//
// The order puts isolation before priority: a tenant under its share is served
// before any tenant at or above its share, whatever their classes, and a
// grant only takes a tenant above its share (passes 3 and 4) when every other
// waiting tenant is already at its share or at its hard cap. Passes 3 and 4
// keep the scheduler work conserving when a tenant that holds slots but does
// not wait leaves part of its share unused. Slots are never taken back: a
// tenant that held every slot while alone drops to its share as its
// operations finish, because each freed slot goes to a tenant under its share.
//
// Priority is strict within a pass: while interactive requests of tenants under
// their share keep every slot busy, batch requests wait, and are shed at their
// deadline. Give batch work a longer deadline than interactive work.
//
// Reservation. Batch work never holds more than BatchSlots slots at once (a
// quarter of them by default); batch waiters are passed over while it does,
// even when other slots are free. Slots are sized to the processors, and a
// granted slot is never taken back, so without the reservation a few long
// batch operations could occupy every slot and every processor, and a short
// interactive request would wait for one of them to finish. Interactive
// requests are not limited: they may use every slot.
//
// # Shedding
//
// Every waiter has a deadline, the latest time its work may start. A waiter
// still queued at its deadline is removed and gets a *ShedError with reason
// ShedDeadline; a single timer at the earliest deadline does this, so no
// goroutine runs per waiter. When MaxQueue requests already wait, a new
// request either pushes out the newest waiter (Batch before Interactive) of the
// tenant with the longest queue relative to its weight, or, when its own
// tenant's queue is the longest, is rejected at once with ShedQueueFull. A
// flooding tenant thus cannot fill the shared queue and get other tenants'
// requests rejected. ShedError.RetryAfter estimates when the tenant's queue
// will have drained, from its queue length, its share and the mean time a
// slot is held recently; it is at least one second.
//
// # Breaker
//
// A tenant whose operations keep timing out (BreakerThreshold releases with
// OutcomeTimeout within BreakerWindow) has its breaker opened: it may hold at
// most BreakerSlots slots for BreakerCooldown, then the breaker is half-open
// (still capped); the next OutcomeOK closes it and the next OutcomeTimeout
// opens it again.
//
// # Memory
//
// The scheduler keeps no state for idle tenants. A tenant's entry is dropped
// as soon as it holds no slot, has no waiter and its breaker has nothing to
// remember (no open or half-open breaker, no timeout within the window).
//
// # Stability
//
// The API is internal and may change: notably the Outcome set and the
// RetryAfter estimate.
package fairq
