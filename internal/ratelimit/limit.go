package ratelimit

import (
	"context"
	"fmt"
	"math"
	"strconv"
	"time"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// Key names one rate-limit bucket. Key{Owner: o} is owner o's own bucket;
// Key{Owner: o, Actor: a} is the bucket of credential a within o, kept apart
// from the owner's. An owner is a tenant (TenantKey) or something else that
// is limited as a whole, such as the logins to one tenant slug; Actor is an
// identifier unique within the owner, such as tenant.Principal.ActorID. Key
// is a comparable value: building one from strings the caller already
// holds costs no allocation, and limiters copy its strings only when they
// first store it. Owner should be non-empty and free of '}' (it is a Redis
// Cluster hash tag).
type Key struct {
	// Owner names whom the bucket belongs to: a tenant's ID, or a name no
	// tenant ID can have (tenant IDs are UUIDs), such as "auth/acme".
	Owner string
	// Actor identifies the credential within Owner; empty for the owner's
	// own bucket.
	Actor string
}

// TenantKey is the key of tenant tid's own bucket (actor "") or of one of
// its credentials' buckets.
func TenantKey(tid tenant.ID, actor string) Key { return Key{Owner: string(tid), Actor: actor} }

// Limit is a GCRA rate limit: up to Burst requests at once, refilled at Rate
// requests per second. A Limit is valid (see Valid) when Rate > 0 and
// Burst >= 1; the zero Limit is invalid, and limiters deny every request
// under an invalid Limit rather than allow unlimited traffic.
type Limit struct {
	// Rate is the sustained rate in requests per second. Fractions are
	// allowed (0.5 is one request every two seconds); +Inf means one request
	// per nanosecond, the finest the limiters resolve.
	Rate float64
	// Burst is how many requests a full bucket admits at once.
	Burst int
}

// Limits pairs the tenant-wide limit with the per-credential limit, for
// Limiter.Admit.
type Limits struct {
	// Tenant limits the tenant's bucket, Key{Owner: t}. It must be valid,
	// or every request is denied.
	Tenant Limit
	// Actor limits each credential's bucket within the tenant. The zero
	// Limit means credentials have no bucket of their own.
	Actor Limit
}

// Valid reports whether l can admit anything: Rate > 0 (not NaN) and Burst >= 1.
func (l Limit) Valid() bool { return l.Rate > 0 && l.Burst >= 1 }

// Window is the time a drained bucket under l takes to refill: Burst/Rate.
// It is the w of RateLimit-Policy. It returns 0 for an invalid Limit.
func (l Limit) Window() time.Duration {
	_, bo, ok := l.interval()
	if !ok {
		return 0
	}
	return time.Duration(bo)
}

// maxSpan caps every GCRA duration (about 36 years) so that sums of a TAT, an
// emission interval and a burst offset never overflow int64.
const maxSpan = int64(1) << 60

// interval returns the emission interval t (nanoseconds per request, rounded
// to the nearest nanosecond, at least 1) and the burst offset bo = t*Burst,
// both clamped to maxSpan. ok is false for an invalid Limit.
func (l Limit) interval() (t, bo int64, ok bool) {
	if !l.Valid() {
		return 0, 0, false
	}
	f := 1e9 / l.Rate
	switch {
	case f < 1:
		t = 1
	case f >= float64(maxSpan):
		t = maxSpan
	default:
		t = int64(math.Round(f))
	}
	if int64(l.Burst) > maxSpan/t {
		bo = maxSpan
	} else {
		bo = t * int64(l.Burst)
	}
	return t, bo, true
}

// gcra decides one request arriving at now (nanoseconds on the limiter's
// clock) for a bucket whose theoretical arrival time is tat, with emission
// interval t and burst offset bo. An absent bucket is passed as tat = now. It
// returns the TAT to store if the request is allowed; a denied request
// changes nothing.
//
// The bucket admits a request when now >= tat' - bo, where tat' = max(tat,
// now) + t: at most Burst requests at once (tat' - bo <= now for Burst
// increments from a full bucket), then one per t.
func gcra(tat, now, t, bo int64) (next int64, d Decision) {
	if tat < now {
		tat = now
	}
	next = tat + t
	allowAt := next - bo
	if now < allowAt {
		return tat, Decision{RetryAfter: time.Duration(allowAt - now), ResetAfter: time.Duration(tat - now)}
	}
	return next, Decision{Allowed: true, Remaining: int((now - allowAt) / t), ResetAfter: time.Duration(next - now)}
}

// combine merges the decisions of the tenant bucket (a) and the actor bucket
// (b) of one request: it is allowed only if both are, and it reports the
// bucket that binds: the denying one with the longest wait, or, when both
// allow, the one with fewer requests left (the tenant's on a tie).
func combine(a, b Decision) Decision {
	switch {
	case a.Allowed && b.Allowed:
		if b.Remaining < a.Remaining {
			return b
		}
		return a
	case a.Allowed:
		return b
	case b.Allowed:
		return a
	case b.RetryAfter > a.RetryAfter:
		return b
	default:
		return a
	}
}

// Decision is a limiter's answer for one request. Its zero value is a denial
// with nothing known, which is what limiters return for an invalid Limit.
type Decision struct {
	// Allowed reports whether the request may proceed. A denied request
	// consumed nothing.
	Allowed bool
	// Remaining is how many more requests the bucket would admit right now,
	// after this one. It is 0 when denied.
	Remaining int
	// RetryAfter is the time until the next request would be admitted; 0 when
	// Allowed.
	RetryAfter time.Duration
	// ResetAfter is the time until the bucket is full again, when it holds
	// no trace of past requests and admits Limit.Burst at once.
	ResetAfter time.Duration
	// Limit is the limit of the bucket this decision reports: for Admit, the
	// bucket that bound (see Limiter.Admit).
	Limit Limit
}

// RetryAfterSeconds is RetryAfter rounded up to whole seconds, the value of a
// Retry-After header: at least 1 when denied, 0 when allowed.
func (d Decision) RetryAfterSeconds() int {
	if d.Allowed {
		return 0
	}
	return max(1, ceilSeconds(d.RetryAfter))
}

// Headers formats d as the two fields of the IETF RateLimit header fields
// draft (draft-ietf-httpapi-ratelimit-headers-07):
//
//	RateLimit-Policy: <burst>;w=<window>
//	RateLimit: limit=<burst>, remaining=<remaining>, reset=<reset>
//
// where burst is d.Limit.Burst, window is d.Limit.Window() in seconds
// (rounded up, at least 1), remaining is d.Remaining and reset is
// d.ResetAfter in seconds (rounded up). Both are Structured Field values
// (RFC 8941): RateLimit-Policy a List of one Integer with parameter w,
// RateLimit a Dictionary. For example, the "free" plan (10/s, burst 20) after
// one request gives "20;w=2" and "limit=20, remaining=19, reset=1". Both are
// empty when d.Limit is invalid. A 429 also needs Retry-After:
// strconv.Itoa(d.RetryAfterSeconds()).
func (d Decision) Headers() (policy, rateLimit string) {
	if !d.Limit.Valid() {
		return "", ""
	}
	burst := strconv.Itoa(d.Limit.Burst)
	w := max(1, ceilSeconds(d.Limit.Window()))
	policy = burst + ";w=" + strconv.Itoa(w)
	rateLimit = "limit=" + burst +
		", remaining=" + strconv.Itoa(d.Remaining) +
		", reset=" + strconv.Itoa(ceilSeconds(d.ResetAfter))
	return policy, rateLimit
}

// Err returns nil if d is allowed and a *LimitedError carrying d otherwise.
func (d Decision) Err() error {
	if d.Allowed {
		return nil
	}
	return &LimitedError{Decision: d}
}

func ceilSeconds(d time.Duration) int {
	if d <= 0 {
		return 0
	}
	return int((d + time.Second - 1) / time.Second)
}

// LimitedError reports a request denied by a rate limit. Handlers return it
// and the HTTP layer maps it to 429 with Retry-After and RateLimit headers.
type LimitedError struct {
	// Decision is the denial.
	Decision Decision
}

// Error describes the denial without naming the tenant or credential.
func (e *LimitedError) Error() string {
	return fmt.Sprintf("rate limited: retry after %v", e.Decision.RetryAfter)
}

// RetryAfterSeconds is the Retry-After header value: see
// Decision.RetryAfterSeconds.
func (e *LimitedError) RetryAfterSeconds() int { return e.Decision.RetryAfterSeconds() }

// Limiter decides whether requests fit their rate limits. *Local and *Redis
// implement it; both are safe for concurrent use and never return an error:
// a limiter that cannot reach its shared state decides locally instead.
type Limiter interface {
	// Allow decides one request against the bucket key under lim, and
	// charges the bucket if it allows. An invalid lim denies.
	Allow(ctx context.Context, key Key, lim Limit) Decision
	// Admit decides one request of credential key.Actor of tenant
	// key.Owner against both the tenant's bucket Key{Owner: key.Owner}
	// under lim.Tenant and the credential's bucket key under lim.Actor,
	// atomically: it allows only if both buckets allow, and then charges
	// both; a denied request charges neither. The credential's bucket is
	// skipped when key.Actor is empty or lim.Actor is the zero Limit; an
	// invalid lim.Tenant, or an invalid non-zero lim.Actor, denies. The
	// Decision reports the binding bucket: when denied, the denying bucket
	// with the longest RetryAfter; when allowed, the bucket with the fewest
	// Remaining, the tenant's on a tie.
	Admit(ctx context.Context, key Key, lim Limits) Decision
}

// Compile-time checks that both limiters implement Limiter.
var (
	_ Limiter = (*Local)(nil)
	_ Limiter = (*Redis)(nil)
)
