// Package ratelimit is the admit step of the request path: per-tenant and
// per-credential rate limits (GCRA) and per-tenant in-flight caps. It knows
// nothing of HTTP; Decision.Headers formats the RateLimit header values and
// the HTTP layer sets them.
//
// # GCRA
//
// A Limit{Rate, Burst} admits Burst requests at once and Rate per second
// sustained. Each bucket keeps one number, its theoretical arrival time
// (TAT): with emission interval T = 1s/Rate and burst offset B = Burst*T, a
// request at now is admitted iff max(TAT, now) + T - B <= now, and then TAT
// becomes max(TAT, now) + T. A bucket whose TAT has passed is full, the same
// as an absent one, which is why forgetting it (eviction, Redis TTL) never
// admits more than Burst.
//
// # Limiters
//
// Local keeps TATs in memory, on the monotonic clock, for one process.
// Redis keeps them in Redis, on the Redis server's clock, so that every node
// shares one budget per bucket, and decides with an embedded Local while
// Redis is unreachable. Both implement Limiter: Allow for one bucket, Admit
// for a tenant's bucket and a credential's bucket together, all or nothing.
//
// # Per request
//
// Take the in-flight slot first and the rate token second, so that neither
// rejection spends the other's budget:
//
//	slot, ok := inflight.Acquire(p.Tenant, plan.MaxInflight)
//	if !ok {
//		// 429
//	}
//	defer slot.Release()
//	d := lim.Admit(ctx, ratelimit.Key{Owner: p.Tenant, Actor: p.ActorID},
//		ratelimit.Limits{Tenant: tenantLimit, Actor: actorLimit})
//	policy, state := d.Headers() // RateLimit-Policy, RateLimit
//	if !d.Allowed {
//		// 429, Retry-After: strconv.Itoa(d.RetryAfterSeconds())
//	}
//
// # Unstable
//
// The Redis key layout and script are versioned only by Prefix: change the
// prefix when changing them, since nodes of two versions must not share keys.
package ratelimit
