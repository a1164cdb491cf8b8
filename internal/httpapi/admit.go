package httpapi

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"math"
	"net/http"
	"net/netip"
	"strconv"
	"time"

	"github.com/bulkheadhq/bulkhead/internal/core"
	"github.com/bulkheadhq/bulkhead/internal/fairq"
	"github.com/bulkheadhq/bulkhead/internal/ratelimit"
	"github.com/bulkheadhq/bulkhead/problem"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// Admission is per-tenant admission control: the "admit" and "queue" steps
// of the request path. Every field is optional; a nil one turns its check
// off. It applies to requests of tenant credentials scoped to their tenant,
// before any database work; the operator is not admitted per tenant.
type Admission struct {
	// Limiter applies the plan's rate_per_sec and burst to the tenant, and
	// a CredentialShare of them to each credential of the tenant. A plan
	// whose rate_per_sec is 0 has no rate limit: its tenants skip the
	// Limiter.
	Limiter ratelimit.Limiter
	// Inflight caps the tenant's requests in flight at the plan's
	// max_inflight. A plan whose max_inflight is 0 has no such cap: its
	// tenants skip Inflight.
	Inflight *ratelimit.Inflight
	// Scheduler grants database slots fairly across tenants by plan weight
	// and sheds transactions that cannot start within QueueTimeout. Admission
	// gives each request a fairq.Ticket; the slots are taken by the Core's
	// store (fairq.Store), around each transaction only.
	Scheduler *fairq.Scheduler
	// CredentialShare is the fraction of the tenant's rate and burst that
	// one credential (API key or user) may use, so that one credential
	// cannot starve the tenant's others. 1 gives each credential the whole
	// tenant budget. Defaults to 0.5.
	CredentialShare float64
	// QueueTimeout is how long a transaction of an interactive request may
	// wait for a slot before the request is shed with 503. Batch requests
	// (listings of more than 100 records) get five times as long. Defaults
	// to 1s.
	QueueTimeout time.Duration
	// StatementTimeout bounds each request's database work. A tenant whose
	// requests keep running into it has its slots cut by the scheduler's
	// breaker. Defaults to 10s.
	StatementTimeout time.Duration
	// AddressLimit is the Limiter's limit on logins and token refreshes per
	// client address (an IPv6 client's /64), decided first: it is what
	// stops one address that floods or guesses, so that AuthLimit, per
	// slug, need not be low enough to do it and lock the slug's other
	// users out with the attacker. Defaults to 1/s with a burst of 10.
	AddressLimit ratelimit.Limit
	// AuthLimit is the Limiter's limit on logins and token refreshes per
	// tenant slug, which take no credential and cost a password hash: a
	// ceiling that protects the hashing capacity from many addresses at
	// once, not the limit one attacker meets (that is AddressLimit). It is
	// the same for every slug, known or not, and is decided before the
	// slug is looked up, so that it tells nothing about which tenants
	// exist. Defaults to 20/s with a burst of 40: about what a node can
	// hash.
	AuthLimit ratelimit.Limit
	// UnknownSlugLimit is the Limiter's limit on the logins to every slug
	// that names no tenant, together: what a made-up slug would otherwise
	// multiply. Defaults to 10/s with a burst of 20, or to AuthLimit when
	// that is set.
	UnknownSlugLimit ratelimit.Limit
	// LoginLimit is the Limiter's limit on logins per email address of a
	// tenant slug, on top of AuthLimit, against password guessing on one
	// account. Like AuthLimit it applies whether or not the account exists.
	// Defaults to a burst of 5, then one every 5 seconds.
	LoginLimit ratelimit.Limit
	// AuthRefusalDelay is how long a login or refresh refused by AuthLimit
	// or LoginLimit waits before its 429 is sent: at most this, and no
	// longer than the Retry-After it carries. Such requests carry no
	// credential, so a client that floods them would otherwise get its
	// refusals as fast as the server can write them and take every
	// processor doing so; held, each connection gets at most one a second.
	// Defaults to 1s; negative means no wait.
	AuthRefusalDelay time.Duration

	// refusalWait waits for d or until ctx ends; tests replace it.
	refusalWait func(ctx context.Context, d time.Duration)
}

func (a *Admission) setDefaults() {
	if a.CredentialShare <= 0 || a.CredentialShare > 1 {
		a.CredentialShare = 0.5
	}
	if a.QueueTimeout <= 0 {
		a.QueueTimeout = time.Second
	}
	if a.StatementTimeout <= 0 {
		a.StatementTimeout = 10 * time.Second
	}
	if a.AddressLimit == (ratelimit.Limit{}) {
		a.AddressLimit = ratelimit.Limit{Rate: 1, Burst: 10}
	}
	if a.AuthLimit == (ratelimit.Limit{}) {
		a.AuthLimit = ratelimit.Limit{Rate: 20, Burst: 40}
		if a.UnknownSlugLimit == (ratelimit.Limit{}) {
			a.UnknownSlugLimit = ratelimit.Limit{Rate: 10, Burst: 20}
		}
	}
	if a.UnknownSlugLimit == (ratelimit.Limit{}) {
		a.UnknownSlugLimit = a.AuthLimit
	}
	if a.LoginLimit == (ratelimit.Limit{}) {
		a.LoginLimit = ratelimit.Limit{Rate: 0.2, Burst: 5}
	}
	if a.AuthRefusalDelay == 0 {
		a.AuthRefusalDelay = time.Second
	}
	if a.refusalWait == nil {
		a.refusalWait = func(ctx context.Context, d time.Duration) {
			t := time.NewTimer(d)
			defer t.Stop()
			select {
			case <-t.C:
			case <-ctx.Done():
			}
		}
	}
}

// admitAuth limits the logins and refreshes of the client's address (see
// Admission.AddressLimit), then those sent to the tenant slug in the path
// (Admission.AuthLimit). A request the address limit refuses is not
// counted against the slug: one address flooding a slug spends its own
// budget, not the slug's. Buckets are named under prefixes no tenant ID
// can have.
func (s *Server) admitAuth(r *http.Request) error {
	if err := s.allowAuth(r, ratelimit.Key{Owner: addressBucket(core.ClientFrom(r.Context()))}, s.admission.AddressLimit); err != nil {
		return err
	}
	return s.allowAuth(r, ratelimit.Key{Owner: authBucket(r)}, s.admission.AuthLimit)
}

// addressBucket names the login bucket of a client address: the address,
// or an IPv6 address's /64 (one subscriber's usual allocation, which a
// client could otherwise walk through). Requests whose address is unknown
// share one bucket.
func addressBucket(a netip.Addr) string {
	switch {
	case !a.IsValid():
		return "auth-addr/?"
	case a.Is6():
		p, _ := a.Prefix(64)
		return "auth-addr/" + p.String()
	}
	return "auth-addr/" + a.String()
}

// admitLogin limits the logins to one email address of the tenant slug in
// the path: see Admission.LoginLimit.
func (s *Server) admitLogin(r *http.Request, email string) error {
	// The address is hashed: a bucket's name must not grow with the body.
	sum := sha256.Sum256([]byte(core.NormalizeEmail(email)))
	return s.allowAuth(r, ratelimit.Key{Owner: authBucket(r), Actor: "email:" + hex.EncodeToString(sum[:])}, s.admission.LoginLimit)
}

// admitUnknownSlug holds the logins to every slug that names no tenant to
// one UnknownSlugLimit, shared. Each slug has its own AuthLimit,
// decided before it is looked up, so a flood over many made-up slugs would
// otherwise pass every limit and take all the password hashing there is.
func (s *Server) admitUnknownSlug(r *http.Request) error {
	slug := tenant.Slug(r.PathValue("tenant"))
	if s.admission.Limiter == nil || !slug.Valid() { // invalid slugs share their bucket already
		return nil
	}
	known, err := s.core.SlugKnown(r.Context(), slug)
	if err != nil || known {
		return err
	}
	return s.allowAuth(r, ratelimit.Key{Owner: unknownSlugsBucket}, s.admission.UnknownSlugLimit)
}

// unknownSlugsBucket names the bucket that slugs naming no tenant share; no
// tenant ID or slug bucket can be named so.
const unknownSlugsBucket = "auth/?"

// allowAuth decides one request against key under lim; without a Limiter,
// it allows.
func (s *Server) allowAuth(r *http.Request, key ratelimit.Key, lim ratelimit.Limit) error {
	if s.admission.Limiter == nil {
		return nil
	}
	decision := s.admission.Limiter.Allow(r.Context(), key, lim)
	if decision.Allowed {
		return nil
	}
	s.metrics.Rejected("auth_rate")
	if d := min(s.admission.AuthRefusalDelay, time.Duration(decision.RetryAfterSeconds())*time.Second); d > 0 {
		s.admission.refusalWait(r.Context(), d)
	}
	return decision.Err()
}

// authBucket names the buckets of the tenant slug in r's path. Paths that
// are no valid slug, and so name no tenant, share one bucket: a bucket's
// name must not grow with the URL.
func authBucket(r *http.Request) string {
	slug := tenant.Slug(r.PathValue("tenant"))
	if !slug.Valid() {
		return "auth/"
	}
	return "auth/" + string(slug)
}

// admit runs the admit step for a scoped tenant request: the tenant's and
// the credential's rate limits and the tenant's in-flight cap (each unless
// the plan sets it to 0, which means none), and the ticket by which each of
// the request's database transactions will queue for a slot. It returns the context the rest of the request runs in, and
// a done func to call when the request has been answered. Refusals are
// cheap: the plan and tenant come from the scope and nothing touches the
// database.
func (s *Server) admit(r *http.Request, rq *request) (context.Context, func(), error) {
	ctx := r.Context()
	t, plan := rq.scope.Tenant(), rq.scope.Plan()
	a := &s.admission
	if a.Limiter != nil && plan.RatePerSec > 0 {
		rq.decision = a.Limiter.Admit(ctx, ratelimit.TenantKey(t.ID, rq.principal.ActorID), limits(&plan, a.CredentialShare))
		if d := rq.decision; !d.Allowed {
			if d.Limit.Burst != plan.Burst || d.Limit.Rate != plan.RatePerSec {
				s.metrics.Rejected("credential_rate")
			} else {
				s.metrics.Rejected("rate")
			}
			return nil, nil, d.Err()
		}
	}
	// The in-flight slot is held until the answer is written: a tenant
	// whose clients read slowly uses up its own cap, and nobody else's.
	var inflight ratelimit.Slot
	if a.Inflight != nil && plan.MaxInflight > 0 {
		var ok bool
		if inflight, ok = a.Inflight.Acquire(t.ID, plan.MaxInflight); !ok {
			s.metrics.Rejected("inflight")
			return nil, nil, problem.New(http.StatusTooManyRequests, problem.CodeConcurrencyLimited,
				"the tenant has "+strconv.Itoa(plan.MaxInflight)+" requests in flight, its plan's maximum").
				WithHeader("Retry-After", "1")
		}
	}
	if a.Scheduler != nil {
		ticket := fairq.Ticket{Scheduler: a.Scheduler, Weight: plan.Weight, Class: fairq.Interactive, Wait: a.QueueTimeout}
		if isBatch(r) {
			ticket.Class, ticket.Wait = fairq.Batch, 5*a.QueueTimeout
		}
		ctx = fairq.WithTicket(ctx, ticket)
	}
	ctx, cancel := context.WithTimeout(ctx, a.StatementTimeout)
	return ctx, func() {
		cancel()
		inflight.Release()
	}, nil
}

// limits turns a plan with a rate limit (rate_per_sec > 0) into the
// tenant's and each credential's limits.
func limits(plan *tenant.Plan, share float64) ratelimit.Limits {
	l := ratelimit.Limits{Tenant: ratelimit.Limit{Rate: plan.RatePerSec, Burst: plan.Burst}}
	if share < 1 {
		l.Actor = ratelimit.Limit{Rate: plan.RatePerSec * share, Burst: max(1, int(math.Ceil(float64(plan.Burst)*share)))}
	}
	return l
}

// isBatch reports whether a request is bulk work that may wait behind
// interactive requests: listings of more than 100 records.
func isBatch(r *http.Request) bool {
	if r.Method != http.MethodGet {
		return false
	}
	l, err := strconv.Atoi(r.URL.Query().Get("limit"))
	return err == nil && l > 100
}

// withRateLimitHeaders adds the RateLimit-Policy and RateLimit headers of a
// decision, if there was one.
func withRateLimitHeaders(d *problem.Details, decision ratelimit.Decision) {
	if policy, state := decision.Headers(); policy != "" {
		d.WithHeader("RateLimit-Policy", policy).WithHeader("RateLimit", state)
	}
}
