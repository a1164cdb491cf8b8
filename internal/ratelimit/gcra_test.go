package ratelimit

import (
	"context"
	"errors"
	"math"
	"math/big"
	"math/rand/v2"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/google/go-cmp/cmp"
)

// fakeClock is a test clock: a Duration since an arbitrary origin that only
// moves when told.
type fakeClock struct{ ns atomic.Int64 }

func (c *fakeClock) Now() time.Duration      { return time.Duration(c.ns.Load()) }
func (c *fakeClock) Set(d time.Duration)     { c.ns.Store(int64(d)) }
func (c *fakeClock) Advance(d time.Duration) { c.ns.Add(int64(d)) }

func newFakeLocal() (*Local, *fakeClock) {
	c := new(fakeClock)
	return &Local{NowFunc: c.Now}, c
}

func allowed(remaining int, reset time.Duration) Decision {
	return Decision{Allowed: true, Remaining: remaining, ResetAfter: reset}
}

func denied(retry, reset time.Duration) Decision {
	return Decision{RetryAfter: retry, ResetAfter: reset}
}

type step struct {
	at   time.Duration
	want Decision // Limit is filled in by the test
}

type sequence struct {
	name  string
	lim   Limit
	steps []step
	// microExact marks sequences whose every duration is a whole number of
	// microseconds, the resolution of the Redis script's answers.
	microExact bool
}

const ms = time.Millisecond

// referenceSequences are computed by hand from the definition: T = 1s/Rate,
// B = Burst*T; admit iff max(TAT,now)+T-B <= now.
var referenceSequences = []sequence{
	{
		name: "BurstThenSteady", lim: Limit{Rate: 10, Burst: 3}, microExact: true, // T=100ms, B=300ms
		steps: []step{
			{0, allowed(2, 100*ms)},
			{0, allowed(1, 200*ms)},
			{0, allowed(0, 300*ms)},
			{0, denied(100*ms, 300*ms)},
			{50 * ms, denied(50*ms, 250*ms)},
			{100 * ms, allowed(0, 300*ms)},    // TAT 300 -> 400
			{150 * ms, denied(50*ms, 250*ms)}, // next 500, allowed at 200
			{250 * ms, allowed(0, 250*ms)},    // TAT 400 -> 500, 50ms of slack < T
			{time.Second, allowed(2, 100*ms)}, // idle: full again
			{time.Second, allowed(1, 200*ms)},
		},
	},
	{
		name: "RemainingRecovers", lim: Limit{Rate: 10, Burst: 5}, microExact: true, // T=100ms, B=500ms
		steps: []step{
			{0, allowed(4, 100*ms)},
			{0, allowed(3, 200*ms)},
			{0, allowed(2, 300*ms)},
			{0, allowed(1, 400*ms)},
			{0, allowed(0, 500*ms)},
			{0, denied(100*ms, 500*ms)},
			{250 * ms, allowed(1, 350*ms)}, // TAT 500 -> 600; slack 150ms: one more now
			{250 * ms, allowed(0, 450*ms)},
			{250 * ms, denied(50*ms, 450*ms)},
		},
	},
	{
		name: "HalfPerSecond", lim: Limit{Rate: 0.5, Burst: 1}, microExact: true, // T=B=2s
		steps: []step{
			{0, allowed(0, 2*time.Second)},
			{time.Second, denied(time.Second, time.Second)},
			{2 * time.Second, allowed(0, 2*time.Second)},
			{3500 * ms, denied(500*ms, 500*ms)},
			{10 * time.Second, allowed(0, 2*time.Second)},
		},
	},
	{
		name: "BurstOne", lim: Limit{Rate: 1, Burst: 1}, microExact: true,
		steps: []step{
			{0, allowed(0, time.Second)},
			{0, denied(time.Second, time.Second)},
			{999 * ms, denied(ms, ms)},
			{time.Second, allowed(0, time.Second)},
		},
	},
	{
		name: "FractionalInterval", lim: Limit{Rate: 3, Burst: 2}, // T=333333333ns (rounded), B=666666666ns
		steps: []step{
			{0, allowed(1, 333333333)},
			{0, allowed(0, 666666666)},
			{0, denied(333333333, 666666666)},
			{333333333, allowed(0, 666666666)},
			{333333334, denied(333333332, 666666665)},
		},
	},
	{
		name: "HugeRate", lim: Limit{Rate: 1e12, Burst: 3}, // T clamps to 1ns, B=3ns
		steps: []step{
			{0, allowed(2, 1)},
			{0, allowed(1, 2)},
			{0, allowed(0, 3)},
			{0, denied(1, 3)},
			{1, allowed(0, 3)},
			{time.Second, allowed(2, 1)},
		},
	},
	{
		name: "InfiniteRate", lim: Limit{Rate: math.Inf(1), Burst: 1},
		steps: []step{
			{0, allowed(0, 1)},
			{0, denied(1, 1)},
			{1, allowed(0, 1)},
		},
	},
	{
		name: "HourlyWithBigBurst", lim: Limit{Rate: 1.0 / 3600, Burst: 1000}, microExact: true, // T=1h
		steps: []step{
			{0, allowed(999, time.Hour)},
			{time.Hour, allowed(999, time.Hour)},
			{time.Hour, allowed(998, 2*time.Hour)},
		},
	},
}

func TestLocalReferenceSequences(t *testing.T) {
	t.Parallel()
	for _, seq := range referenceSequences {
		t.Run(seq.name, func(t *testing.T) {
			t.Parallel()
			l, clock := newFakeLocal()
			key := Key{Owner: "t1", Actor: "k1"}
			for i, st := range seq.steps {
				clock.Set(st.at)
				got := l.Allow(context.Background(), key, seq.lim)
				want := st.want
				want.Limit = seq.lim
				if diff := cmp.Diff(want, got); diff != "" {
					t.Fatalf("step %d at %v: Allow() mismatch (-want +got):\n%s", i, st.at, diff)
				}
			}
		})
	}
}

func TestLimitInterval(t *testing.T) {
	t.Parallel()
	tests := []struct {
		lim       Limit
		wantT     int64
		wantBO    int64
		wantValid bool
	}{
		{Limit{Rate: 10, Burst: 20}, 100e6, 2000e6, true},
		{Limit{Rate: 0.5, Burst: 1}, 2e9, 2e9, true},
		{Limit{Rate: 3, Burst: 3}, 333333333, 999999999, true},
		{Limit{Rate: 1e12, Burst: 7}, 1, 7, true},
		{Limit{Rate: math.Inf(1), Burst: 1}, 1, 1, true},
		{Limit{Rate: 1e-30, Burst: 1}, maxSpan, maxSpan, true},
		{Limit{Rate: 1, Burst: math.MaxInt}, 1e9, maxSpan, true},
		{Limit{}, 0, 0, false},
		{Limit{Rate: 10}, 0, 0, false},
		{Limit{Burst: 10}, 0, 0, false},
		{Limit{Rate: -1, Burst: 10}, 0, 0, false},
		{Limit{Rate: math.NaN(), Burst: 10}, 0, 0, false},
	}
	for _, tt := range tests {
		gotT, gotBO, ok := tt.lim.interval()
		if gotT != tt.wantT || gotBO != tt.wantBO || ok != tt.wantValid {
			t.Errorf("%+v.interval() = %d, %d, %v, want %d, %d, %v", tt.lim, gotT, gotBO, ok, tt.wantT, tt.wantBO, tt.wantValid)
		}
		if got := tt.lim.Valid(); got != tt.wantValid {
			t.Errorf("%+v.Valid() = %v, want %v", tt.lim, got, tt.wantValid)
		}
	}
}

func TestLocalInvalidLimitDenies(t *testing.T) {
	t.Parallel()
	l, _ := newFakeLocal()
	ctx := context.Background()
	for _, lim := range []Limit{{}, {Rate: 10}, {Burst: 10}, {Rate: -5, Burst: 5}, {Rate: math.NaN(), Burst: 5}} {
		if got := l.Allow(ctx, Key{Owner: "t"}, lim); got.Allowed || got.Remaining != 0 || got.RetryAfter != 0 || got.ResetAfter != 0 {
			t.Errorf("Allow(%+v) = %+v, want the zero Decision", lim, got)
		}
		if got := l.Admit(ctx, Key{Owner: "t"}, Limits{Tenant: lim}); got.Allowed {
			t.Errorf("Admit(Tenant: %+v) allowed", lim)
		}
		if lim == (Limit{}) {
			continue // the zero actor Limit means no actor bucket
		}
		if got := l.Admit(ctx, Key{Owner: "t", Actor: "a"}, Limits{Tenant: Limit{Rate: 1, Burst: 1}, Actor: lim}); got.Allowed {
			t.Errorf("Admit(Actor: %+v) allowed", lim)
		}
	}
	if n := l.Len(); n != 0 {
		t.Errorf("Len() = %d after only denials, want 0", n)
	}
}

// tokenBucket is an independent model of the same limit: a continuous token
// bucket of capacity Burst refilled at 1/T tokens per nanosecond, in exact
// rational arithmetic. GCRA with emission interval T must agree with it
// exactly when T is a whole number of nanoseconds.
type tokenBucket struct {
	perNS  *big.Rat // tokens per nanosecond
	burst  *big.Rat
	tokens *big.Rat
	last   int64
}

func newTokenBucket(tNS int64, burst int) *tokenBucket {
	b := big.NewRat(int64(burst), 1)
	return &tokenBucket{perNS: big.NewRat(1, tNS), burst: b, tokens: new(big.Rat).Set(b)}
}

func (b *tokenBucket) take(now int64) Decision {
	refill := new(big.Rat).Mul(big.NewRat(now-b.last, 1), b.perNS)
	b.tokens.Add(b.tokens, refill)
	if b.tokens.Cmp(b.burst) > 0 {
		b.tokens.Set(b.burst)
	}
	b.last = now
	one := big.NewRat(1, 1)
	toNS := func(tokens *big.Rat) time.Duration { // time to accrue tokens
		q := new(big.Rat).Quo(tokens, b.perNS)
		if !q.IsInt() {
			panic("non-integer duration " + q.String())
		}
		return time.Duration(q.Num().Int64())
	}
	if b.tokens.Cmp(one) >= 0 {
		b.tokens.Sub(b.tokens, one)
		floor := new(big.Int).Quo(b.tokens.Num(), b.tokens.Denom())
		return allowed(int(floor.Int64()), toNS(new(big.Rat).Sub(b.burst, b.tokens)))
	}
	return denied(toNS(new(big.Rat).Sub(one, b.tokens)), toNS(new(big.Rat).Sub(b.burst, b.tokens)))
}

func TestLocalMatchesTokenBucketModel(t *testing.T) {
	t.Parallel()
	limits := []Limit{
		{Rate: 10, Burst: 20}, {Rate: 4, Burst: 1}, {Rate: 0.5, Burst: 3},
		{Rate: 1000, Burst: 200}, {Rate: 0.25, Burst: 10}, {Rate: 1e9, Burst: 5},
	}
	for _, lim := range limits {
		t.Run(strconv.FormatFloat(lim.Rate, 'g', -1, 64)+"x"+strconv.Itoa(lim.Burst), func(t *testing.T) {
			t.Parallel()
			tNS, _, _ := lim.interval()
			rng := rand.New(rand.NewPCG(uint64(tNS), uint64(lim.Burst)))
			l, clock := newFakeLocal()
			model := newTokenBucket(tNS, lim.Burst)
			now := int64(0)
			admitted := 0
			for i := range 5000 {
				switch rng.IntN(4) {
				case 0: // same instant
				case 1:
					now += rng.Int64N(tNS) + 1
				case 2:
					now += rng.Int64N(3 * tNS)
				case 3:
					now += rng.Int64N(tNS*int64(lim.Burst)*2 + 1)
				}
				clock.Set(time.Duration(now))
				got := l.Allow(context.Background(), Key{Owner: "t"}, lim)
				want := model.take(now)
				want.Limit = lim
				if got != want {
					t.Fatalf("request %d at %dns: Allow() = %+v, model says %+v", i, now, got, want)
				}
				if got.Allowed {
					admitted++
				}
			}
			t.Logf("%d of 5000 admitted", admitted)
		})
	}
}

func TestLimitChangeTakesEffect(t *testing.T) {
	t.Parallel()
	l, clock := newFakeLocal()
	ctx := context.Background()
	key := Key{Owner: "t"}
	small, big := Limit{Rate: 1, Burst: 2}, Limit{Rate: 1, Burst: 10}
	for range 2 {
		l.Allow(ctx, key, small)
	}
	if d := l.Allow(ctx, key, small); d.Allowed {
		t.Fatalf("third request under burst 2 allowed: %+v", d)
	}
	// An upgraded plan applies to the same bucket at once: 8 more now.
	n := 0
	for range 20 {
		if l.Allow(ctx, key, big).Allowed {
			n++
		}
	}
	if n != 8 {
		t.Errorf("after upgrade to burst 10, %d more admitted, want 8", n)
	}
	// A downgrade holds the tenant back until its backlog drains below the
	// new burst: TAT is 10s ahead, the new burst offset 2s.
	if d := l.Allow(ctx, key, small); d.Allowed || d.RetryAfter != 9*time.Second {
		t.Errorf("after downgrade Allow() = %+v, want denied with RetryAfter 9s", d)
	}
	clock.Set(9 * time.Second)
	if d := l.Allow(ctx, key, small); !d.Allowed {
		t.Errorf("after draining Allow() = %+v, want allowed", d)
	}
}

func TestHeaders(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name                  string
		d                     Decision
		wantPolicy, wantState string
		wantRetry             int
	}{
		{"FreePlanFirstRequest", Decision{Allowed: true, Remaining: 19, ResetAfter: 100 * ms, Limit: Limit{Rate: 10, Burst: 20}},
			"20;w=2", "limit=20, remaining=19, reset=1", 0},
		{"Denied", Decision{RetryAfter: 100 * ms, ResetAfter: 2 * time.Second, Limit: Limit{Rate: 10, Burst: 20}},
			"20;w=2", "limit=20, remaining=0, reset=2", 1},
		{"WindowRoundsUp", Decision{RetryAfter: 2500 * ms, ResetAfter: 6500 * ms, Limit: Limit{Rate: 3, Burst: 20}},
			"20;w=7", "limit=20, remaining=0, reset=7", 3},
		{"SubSecondWindowIsOne", Decision{Allowed: true, ResetAfter: 100 * ms, Limit: Limit{Rate: 10, Burst: 1}},
			"1;w=1", "limit=1, remaining=0, reset=1", 0},
		{"FullBucketResetZero", Decision{Allowed: true, Remaining: 4, Limit: Limit{Rate: 0.5, Burst: 5}},
			"5;w=10", "limit=5, remaining=4, reset=0", 0},
		{"InvalidLimit", Decision{}, "", "", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			policy, state := tt.d.Headers()
			if policy != tt.wantPolicy || state != tt.wantState {
				t.Errorf("Headers() = %q, %q, want %q, %q", policy, state, tt.wantPolicy, tt.wantState)
			}
			if got := tt.d.RetryAfterSeconds(); got != tt.wantRetry {
				t.Errorf("RetryAfterSeconds() = %d, want %d", got, tt.wantRetry)
			}
		})
	}
}

func TestDecisionErr(t *testing.T) {
	t.Parallel()
	if err := (Decision{Allowed: true}).Err(); err != nil {
		t.Errorf("allowed Decision.Err() = %v, want nil", err)
	}
	d := Decision{RetryAfter: 1500 * ms, Limit: Limit{Rate: 1, Burst: 1}}
	var lim *LimitedError
	if err := d.Err(); !errors.As(err, &lim) {
		t.Fatalf("denied Decision.Err() = %v, want a *LimitedError", err)
	}
	if got := lim.RetryAfterSeconds(); got != 2 {
		t.Errorf("RetryAfterSeconds() = %d, want 2", got)
	}
	if lim.Decision != d {
		t.Errorf("LimitedError.Decision = %+v, want %+v", lim.Decision, d)
	}
}
