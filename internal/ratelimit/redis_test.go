package ratelimit

import (
	"bytes"
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	mrand "math/rand/v2"
	"net"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"
)

// TestMain silences go-redis's own logger: the fallback tests dial addresses
// that refuse on purpose, and its dial errors would bury the test output.
func TestMain(m *testing.M) {
	redis.SetLogger(quietRedisLogger{})
	os.Exit(m.Run())
}

type quietRedisLogger struct{}

func (quietRedisLogger) Printf(context.Context, string, ...any) {}

// redisTestClient connects to BULKHEAD_TEST_REDIS_URL or skips the test.
func redisTestClient(t testing.TB) *redis.Client {
	t.Helper()
	url := os.Getenv("BULKHEAD_TEST_REDIS_URL")
	if url == "" {
		t.Skip("BULKHEAD_TEST_REDIS_URL is not set; set it (e.g. redis://127.0.0.1:6379/0) to run the Redis tests")
	}
	opt, err := ClientOptions(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	if err := c.Ping(context.Background()).Err(); err != nil {
		t.Fatalf("ping %s: %v", url, err)
	}
	return c
}

// testPrefix returns a key prefix unique to this test run, and deletes its
// keys when the test ends.
func testPrefix(t testing.TB, c *redis.Client) string {
	t.Helper()
	b := make([]byte, 6)
	rand.Read(b)
	name := strings.NewReplacer("{", "(", "}", ")").Replace(t.Name())
	prefix := "bulkhead:test:rl:" + name + ":" + hex.EncodeToString(b) + ":"
	t.Cleanup(func() {
		ctx := context.Background()
		keys, err := c.Keys(ctx, prefix+"*").Result()
		if err == nil && len(keys) > 0 {
			c.Del(ctx, keys...)
		}
	})
	return prefix
}

// newTestRedis returns a limiter for cfg. Unless cfg says otherwise, it
// allows a real Redis 10s per call: tests comparing decisions must not fall
// back because a loaded CI machine stalled past the 50ms default.
func newTestRedis(t testing.TB, cfg RedisConfig) *Redis {
	t.Helper()
	if cfg.Timeout == 0 {
		cfg.Timeout = 10 * time.Second
	}
	r, err := NewRedis(cfg)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

// durationsClose reports whether a Redis duration (microseconds, rounded
// up) matches a Local one (nanoseconds).
func durationsClose(redisD, localD time.Duration) bool {
	d := redisD - localD
	return d >= 0 && d < time.Microsecond
}

func TestRedisMatchesReferenceSequences(t *testing.T) {
	t.Parallel()
	c := redisTestClient(t)
	for _, seq := range referenceSequences {
		t.Run(seq.name, func(t *testing.T) {
			t.Parallel()
			if seq.lim.Rate > 1e6 {
				t.Skip("sub-microsecond emission interval: finer than the script's microsecond answers")
			}
			clock := new(fakeClock)
			r := newTestRedis(t, RedisConfig{Client: c, Prefix: testPrefix(t, c), NowFunc: clock.Now})
			key := Key{Owner: "t1", Actor: "k1"}
			for i, st := range seq.steps {
				clock.Set(st.at)
				got := r.Allow(context.Background(), key, seq.lim)
				want := st.want
				want.Limit = seq.lim
				if seq.microExact && got == want {
					continue
				}
				if got.Allowed != want.Allowed || got.Remaining != want.Remaining ||
					!durationsClose(got.RetryAfter, want.RetryAfter) || !durationsClose(got.ResetAfter, want.ResetAfter) {
					t.Fatalf("step %d at %v: Redis Allow() = %+v, want %+v", i, st.at, got, want)
				}
			}
			if n := r.Fallbacks(); n != 0 {
				t.Errorf("Fallbacks() = %d, want 0", n)
			}
		})
	}
}

// TestRedisMatchesLocal runs one random sequence of Allow and Admit through
// the Lua GCRA and through Local on the same clock: every decision must be
// identical.
func TestRedisMatchesLocal(t *testing.T) {
	t.Parallel()
	c := redisTestClient(t)
	clock := new(fakeClock)
	r := newTestRedis(t, RedisConfig{Client: c, Prefix: testPrefix(t, c), NowFunc: clock.Now})
	l := &Local{NowFunc: clock.Now}
	rng := mrand.New(mrand.NewPCG(3, 4))
	lims := []Limit{{Rate: 10, Burst: 3}, {Rate: 0.5, Burst: 2}, {Rate: 1000, Burst: 50}, {Rate: 4, Burst: 1}, {Rate: 1.0 / 60, Burst: 100}}
	ctx := context.Background()
	now := time.Duration(0)
	for i := range 3000 {
		now += time.Duration(rng.Int64N(int64(200*ms))) / time.Microsecond * time.Microsecond
		clock.Set(now)
		k := Key{Owner: fmt.Sprint("t", rng.IntN(3))}
		if rng.IntN(2) == 0 {
			k.Actor = fmt.Sprint("a", rng.IntN(3))
		}
		var got, want Decision
		if rng.IntN(2) == 0 {
			lim := lims[rng.IntN(len(lims))]
			got, want = r.Allow(ctx, k, lim), l.Allow(ctx, k, lim)
		} else {
			ls := Limits{Tenant: lims[rng.IntN(len(lims))], Actor: lims[rng.IntN(len(lims))]}
			got, want = r.Admit(ctx, k, ls), l.Admit(ctx, k, ls)
		}
		if got != want {
			t.Fatalf("request %d at %v for %+v: Redis = %+v, Local = %+v", i, now, k, got, want)
		}
	}
	if n := r.Fallbacks(); n != 0 {
		t.Errorf("Fallbacks() = %d, want 0", n)
	}
}

// TestRedisTwoNodesShareBudget runs two limiters with their own clients (two
// bulkhead nodes) against one Redis: together they admit exactly Burst.
func TestRedisTwoNodesShareBudget(t *testing.T) {
	t.Parallel()
	c1 := redisTestClient(t)
	c2 := redisTestClient(t)
	prefix := testPrefix(t, c1)
	for _, clockName := range []string{"ServerTime", "FrozenTestClock"} {
		t.Run(clockName, func(t *testing.T) {
			cfg1 := RedisConfig{Client: c1, Prefix: prefix + clockName + ":"}
			cfg2 := RedisConfig{Client: c2, Prefix: prefix + clockName + ":"}
			if clockName == "FrozenTestClock" {
				clock := new(fakeClock)
				cfg1.NowFunc, cfg2.NowFunc = clock.Now, clock.Now
			}
			// With the server's clock, one token per 1000s keeps the count
			// independent of how long the test takes.
			lim := Limit{Rate: 0.001, Burst: 60}
			ls := Limits{Tenant: Limit{Rate: 0.001, Burst: 40}, Actor: Limit{Rate: 0.001, Burst: 15}}
			nodes := []*Redis{newTestRedis(t, cfg1), newTestRedis(t, cfg2)}
			var mu sync.Mutex
			allowedTotal := 0
			perActor := map[string]int{}
			var wg sync.WaitGroup
			for n, node := range nodes {
				for g := range 6 {
					wg.Go(func() {
						ctx := context.Background()
						for i := range 30 {
							a := node.Allow(ctx, Key{Owner: "shared"}, lim).Allowed
							actor := fmt.Sprint("k", (n+g+i)%4)
							b := node.Admit(ctx, Key{Owner: "admit", Actor: actor}, ls).Allowed
							mu.Lock()
							if a {
								allowedTotal++
							}
							if b {
								perActor[actor]++
							}
							mu.Unlock()
						}
					})
				}
			}
			wg.Wait()
			if allowedTotal != 60 {
				t.Errorf("two nodes admitted %d of 360 on one bucket, want exactly 60 (Burst)", allowedTotal)
			}
			sum := 0
			for a, n := range perActor {
				sum += n
				if n > 15 {
					t.Errorf("actor %s admitted %d, want <= 15", a, n)
				}
			}
			if sum != 40 {
				t.Errorf("two nodes admitted %d across 4 actors, want exactly 40 (tenant Burst)", sum)
			}
			for i, node := range nodes {
				if f := node.Fallbacks(); f != 0 {
					t.Errorf("node %d Fallbacks() = %d, want 0", i, f)
				}
			}
		})
	}
}

func TestRedisKeysAndTTL(t *testing.T) {
	t.Parallel()
	c := redisTestClient(t)
	prefix := testPrefix(t, c)
	r := newTestRedis(t, RedisConfig{Client: c, Prefix: prefix})
	ctx := context.Background()
	ls := Limits{Tenant: Limit{Rate: 10, Burst: 20}, Actor: Limit{Rate: 1, Burst: 5}}
	d := r.Admit(ctx, Key{Owner: "0192-t", Actor: "key-1"}, ls)
	if !d.Allowed {
		t.Fatalf("Admit() = %+v, want allowed", d)
	}
	for key, max := range map[string]time.Duration{
		prefix + "{0192-t}":       100 * ms,    // one request: 1/Rate to full
		prefix + "{0192-t}:key-1": time.Second, // ditto for the actor
	} {
		ttl, err := c.PTTL(ctx, key).Result()
		if err != nil {
			t.Fatal(err)
		}
		if ttl <= 0 || ttl > max {
			t.Errorf("PTTL(%s) = %v, want in (0, %v]", key, ttl, max)
		}
	}
	if n, _ := c.Keys(ctx, prefix+"*").Result(); len(n) != 2 {
		t.Errorf("keys under the prefix = %q, want exactly the two buckets", n)
	}
	if slot1, slot2 := hashSlot(prefix+"{0192-t}"), hashSlot(prefix+"{0192-t}:key-1"); slot1 != slot2 {
		t.Errorf("tenant and actor keys on cluster slots %d and %d, want one slot", slot1, slot2)
	}
}

// hashSlot is Redis Cluster's key slot: CRC16 of the hash tag, mod 16384.
func hashSlot(key string) uint16 {
	if i := strings.IndexByte(key, '{'); i >= 0 {
		if j := strings.IndexByte(key[i+1:], '}'); j > 0 {
			key = key[i+1 : i+1+j]
		}
	}
	var crc uint16
	for i := 0; i < len(key); i++ {
		crc ^= uint16(key[i]) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return crc % 16384
}

func TestRedisScriptNotCached(t *testing.T) {
	// Not parallel: SCRIPT FLUSH empties the cache of the whole server.
	c := redisTestClient(t)
	r := newTestRedis(t, RedisConfig{Client: c, Prefix: testPrefix(t, c)})
	ctx := context.Background()
	if err := c.ScriptFlush(ctx).Err(); err != nil {
		t.Fatal(err)
	}
	if d := r.Allow(ctx, Key{Owner: "t"}, Limit{Rate: 1, Burst: 1}); !d.Allowed || r.Fallbacks() != 0 {
		t.Errorf("Allow() after SCRIPT FLUSH = %+v with %d fallbacks, want allowed by Redis (EVAL on NOSCRIPT)", d, r.Fallbacks())
	}
}

func TestRedisFallbackWhenRedisGoesAway(t *testing.T) {
	t.Parallel()
	c := redisTestClient(t)
	prefix := testPrefix(t, c)
	opt, _ := ClientOptions(os.Getenv("BULKHEAD_TEST_REDIS_URL"))
	own := redis.NewClient(opt) // closed mid-test
	clock := new(fakeClock)
	r := newTestRedis(t, RedisConfig{Client: own, Prefix: prefix, Fallback: &Local{NowFunc: clock.Now}, Logger: discardLogger()})
	ctx := context.Background()
	lim := Limit{Rate: 0.001, Burst: 5}
	for range 3 {
		if d := r.Allow(ctx, Key{Owner: "t"}, lim); !d.Allowed {
			t.Fatalf("Allow() = %+v while Redis is up, want allowed", d)
		}
	}
	own.Close()
	n := 0
	for range 20 {
		if r.Allow(ctx, Key{Owner: "t"}, lim).Allowed {
			n++
		}
	}
	if n != 5 {
		t.Errorf("after the client closed, %d of 20 admitted, want exactly 5 (a fresh local bucket: never unlimited)", n)
	}
	if f := r.Fallbacks(); f != 20 {
		t.Errorf("Fallbacks() = %d, want 20", f)
	}
	if v := metricValue(t, r, "bulkhead_ratelimit_fallback_total"); v != 20 {
		t.Errorf("bulkhead_ratelimit_fallback_total = %v, want 20", v)
	}
}

// refusedAddr returns an address where nothing listens.
func refusedAddr(t *testing.T) string {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

// TestRedisFallbackConnectionRefused needs no Redis: nothing listens.
func TestRedisFallbackConnectionRefused(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: refusedAddr(t), MaxRetries: -1})
	t.Cleanup(func() { c.Close() })
	var logs syncBuffer
	clock := new(fakeClock)
	r := newTestRedis(t, RedisConfig{
		Client:   c,
		Fallback: &Local{NowFunc: clock.Now},
		Logger:   slog.New(slog.NewTextHandler(&logs, nil)),
	})
	ctx := context.Background()
	lim := Limit{Rate: 1, Burst: 5}
	ls := Limits{Tenant: Limit{Rate: 1, Burst: 8}, Actor: Limit{Rate: 1, Burst: 3}}
	var wg sync.WaitGroup
	var mu sync.Mutex
	allowed, admitted := 0, 0
	for range 8 {
		wg.Go(func() {
			for range 10 {
				a := r.Allow(ctx, Key{Owner: "t"}, lim).Allowed
				b := r.Admit(ctx, Key{Owner: "u", Actor: "k"}, ls).Allowed
				mu.Lock()
				if a {
					allowed++
				}
				if b {
					admitted++
				}
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	if allowed != 5 {
		t.Errorf("Allow admitted %d of 80 with Redis refusing, want exactly 5 (Burst)", allowed)
	}
	if admitted != 3 {
		t.Errorf("Admit admitted %d of 80 with Redis refusing, want exactly 3 (actor Burst)", admitted)
	}
	if f := r.Fallbacks(); f != 160 {
		t.Errorf("Fallbacks() = %d, want 160", f)
	}
	if errs := metricValue(t, r, "bulkhead_ratelimit_redis_errors_total"); errs < 1 || errs > 8 {
		t.Errorf("redis errors = %v, want 1 to 8 (the circuit opens at the first; only calls already under way fail too)", errs)
	}
	if open := metricValue(t, r, "bulkhead_ratelimit_redis_circuit_open"); open != 1 {
		t.Errorf("circuit_open = %v, want 1", open)
	}
	if n := strings.Count(logs.String(), "Redis unavailable"); n != 1 {
		t.Errorf("%d log lines about Redis, want 1 (rate-limited):\n%s", n, logs.String())
	}
}

// TestRedisFallbackTimeout points the limiter at a server that accepts
// connections and never answers, through a client that ignores contexts: the
// limiter's own deadline must still bound the call.
func TestRedisFallbackTimeout(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var conns []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			conn, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, conn) // hold it open, say nothing
			mu.Unlock()
		}
	}()
	c := redis.NewClient(&redis.Options{Addr: ln.Addr().String(), ReadTimeout: 5 * time.Second})
	t.Cleanup(func() {
		c.Close()
		ln.Close()
		mu.Lock()
		for _, conn := range conns {
			conn.Close()
		}
		mu.Unlock()
	})
	r := newTestRedis(t, RedisConfig{Client: c, Timeout: 20 * ms, Fallback: &Local{NowFunc: new(fakeClock).Now}, Logger: discardLogger()})
	n := 0
	for range 10 {
		if r.Allow(context.Background(), Key{Owner: "t"}, Limit{Rate: 1, Burst: 4}).Allowed {
			n++
		}
	}
	if n != 4 {
		t.Errorf("admitted %d of 10 with Redis silent, want exactly 4 (Burst)", n)
	}
	if f := r.Fallbacks(); f != 10 {
		t.Errorf("Fallbacks() = %d, want 10", f)
	}
	if errs := metricValue(t, r, "bulkhead_ratelimit_redis_errors_total"); errs != 1 {
		t.Errorf("redis errors = %v, want 1: the circuit keeps later calls away", errs)
	}
}

// fakeScripter stands in for Redis: it counts calls and answers with err, or
// with an allowed decision.
type fakeScripter struct {
	mu    sync.Mutex
	calls int
	err   error
}

func (f *fakeScripter) run() *redis.Cmd {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.err != nil {
		return redis.NewCmdResult(nil, f.err)
	}
	return redis.NewCmdResult([]any{int64(1), int64(7), int64(0), int64(100)}, nil)
}

func (f *fakeScripter) set(err error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.err = err
}

func (f *fakeScripter) count() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

func (f *fakeScripter) Eval(context.Context, string, []string, ...any) *redis.Cmd { return f.run() }
func (f *fakeScripter) EvalSha(context.Context, string, []string, ...any) *redis.Cmd {
	return f.run()
}
func (f *fakeScripter) EvalRO(context.Context, string, []string, ...any) *redis.Cmd { return f.run() }
func (f *fakeScripter) EvalShaRO(context.Context, string, []string, ...any) *redis.Cmd {
	return f.run()
}
func (f *fakeScripter) ScriptExists(context.Context, ...string) *redis.BoolSliceCmd {
	return redis.NewBoolSliceResult([]bool{true}, nil)
}
func (f *fakeScripter) ScriptLoad(context.Context, string) *redis.StringCmd {
	return redis.NewStringResult("", nil)
}

// TestRedisCircuit: the first failed call opens the breaker; while open no
// call reaches Redis; after BreakerTimeout one call probes, a failed probe
// opens it again and a successful one closes it. Each change is reported
// and logged. It waits with a generous bound; it asserts no durations.
func TestRedisCircuit(t *testing.T) {
	t.Parallel()
	fake := &fakeScripter{err: errors.New("connection refused")}
	var logs syncBuffer
	var states breakerStates
	r := newTestRedis(t, RedisConfig{
		Client:         fake,
		BreakerTimeout: 50 * time.Millisecond,
		Breakers:       &states,
		LogInterval:    time.Hour,
		Logger:         slog.New(slog.NewTextHandler(&logs, nil)),
		Fallback:       &Local{NowFunc: new(fakeClock).Now},
	})
	ctx := context.Background()
	lim := Limit{Rate: 1000, Burst: 1000}
	call := func() Decision { return r.Allow(ctx, Key{Owner: "t"}, lim) }
	expect := func(step string, wantCalls int, wantOpen float64) {
		t.Helper()
		if got := fake.count(); got != wantCalls {
			t.Errorf("%s: %d Redis calls, want %d", step, got, wantCalls)
		}
		if got := metricValue(t, r, "bulkhead_ratelimit_redis_circuit_open"); got != wantOpen {
			t.Errorf("%s: circuit_open = %v, want %v", step, got, wantOpen)
		}
	}
	waitHalfOpen := func() {
		t.Helper()
		for give := time.Now().Add(30 * time.Second); r.BreakerState() != "half-open"; time.Sleep(5 * time.Millisecond) {
			if time.Now().After(give) {
				t.Fatal("the breaker did not turn half-open")
			}
		}
	}

	call()
	expect("first failure", 1, 1)
	for range 5 {
		call()
	}
	expect("open: no call to Redis", 1, 1)
	waitHalfOpen()
	call()
	expect("half-open: one probe", 2, 1)
	expect("the probe failed: open again", 2, 1)
	waitHalfOpen()
	fake.set(nil) // Redis is back
	if d := call(); !d.Allowed || d.Remaining != 7 {
		t.Errorf("probe on a healthy Redis: Allow() = %+v, want Redis's answer", d)
	}
	expect("successful probe closes", 3, 0)
	call()
	call()
	expect("closed: every call goes to Redis", 5, 0)
	if got, want := r.Fallbacks(), uint64(7); got != want {
		t.Errorf("Fallbacks() = %d, want %d", got, want)
	}
	if got, want := states.String(), "closed open half-open open half-open closed"; got != want {
		t.Errorf("reported states %q, want %q", got, want)
	}
	warn, opened, closed := strings.Count(logs.String(), "Redis unavailable"),
		strings.Count(logs.String(), "circuit breaker opened"), strings.Count(logs.String(), "circuit breaker closed")
	if warn != 1 || opened != 2 || closed != 1 {
		t.Errorf("logged %d failure lines (one per LogInterval), %d openings and %d closings, want 1, 2 and 1:\n%s",
			warn, opened, closed, logs.String())
	}
}

// breakerStates records the states a breaker reports.
type breakerStates struct {
	mu     sync.Mutex
	states []string
}

func (b *breakerStates) Set(name, state string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	if name == BreakerName {
		b.states = append(b.states, state)
	}
}

func (b *breakerStates) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return strings.Join(b.states, " ")
}

func TestRedisCanceledCallerDoesNotTripCircuit(t *testing.T) {
	t.Parallel()
	c := redis.NewClient(&redis.Options{Addr: refusedAddr(t)})
	t.Cleanup(func() { c.Close() })
	r := newTestRedis(t, RedisConfig{Client: c, Logger: discardLogger(), Fallback: &Local{NowFunc: new(fakeClock).Now}})
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if d := r.Allow(ctx, Key{Owner: "t"}, Limit{Rate: 1, Burst: 1}); !d.Allowed {
		t.Errorf("Allow() with a canceled context = %+v, want a local decision (allowed)", d)
	}
	if got := metricValue(t, r, "bulkhead_ratelimit_redis_circuit_open"); got != 0 {
		t.Errorf("circuit_open = %v after the caller canceled, want 0", got)
	}
}

func TestRedisFallbackNodeShare(t *testing.T) {
	t.Parallel()
	r := newTestRedis(t, RedisConfig{
		Client: &fakeScripter{err: errors.New("down")}, Nodes: 3,
		Logger: discardLogger(), Fallback: &Local{NowFunc: new(fakeClock).Now},
	})
	n := 0
	var d Decision
	for range 30 {
		if d = r.Allow(context.Background(), Key{Owner: "t"}, Limit{Rate: 30, Burst: 10}); d.Allowed {
			n++
		}
	}
	if n != 3 {
		t.Errorf("one of 3 nodes admitted %d locally under burst 10, want 3 (its share)", n)
	}
	if want := (Limit{Rate: 10, Burst: 3}); d.Limit != want {
		t.Errorf("Decision.Limit = %+v, want the node's share %+v", d.Limit, want)
	}
}

func TestNewRedisValidates(t *testing.T) {
	t.Parallel()
	fake := &fakeScripter{}
	tests := []struct {
		cfg       RedisConfig
		wantField string
	}{
		{RedisConfig{}, "Client"},
		{RedisConfig{Client: fake, Prefix: "x{y}:"}, "Prefix"},
		{RedisConfig{Client: fake, Timeout: -1}, "Timeout"},
		{RedisConfig{Client: fake, BreakerTimeout: -1}, "BreakerTimeout"},
		{RedisConfig{Client: fake, LogInterval: -1}, "LogInterval"},
		{RedisConfig{Client: fake, Nodes: -1}, "Nodes"},
	}
	for _, tt := range tests {
		if _, err := NewRedis(tt.cfg); err == nil || !strings.Contains(err.Error(), tt.wantField) {
			t.Errorf("NewRedis(%+v) error = %v, want one naming %s", tt.cfg, err, tt.wantField)
		}
	}
	if _, err := NewRedis(RedisConfig{Client: fake}); err != nil {
		t.Errorf("NewRedis with defaults: %v", err)
	}
}

func TestRedisInvalidLimitDeniesWithoutACall(t *testing.T) {
	t.Parallel()
	fake := &fakeScripter{}
	r := newTestRedis(t, RedisConfig{Client: fake})
	ctx := context.Background()
	if d := r.Allow(ctx, Key{Owner: "t"}, Limit{}); d.Allowed {
		t.Error("Allow with the zero Limit allowed")
	}
	if d := r.Admit(ctx, Key{Owner: "t", Actor: "a"}, Limits{Tenant: Limit{Rate: 1, Burst: 1}, Actor: Limit{Rate: -1, Burst: 1}}); d.Allowed {
		t.Error("Admit with an invalid actor Limit allowed")
	}
	if n := fake.count(); n != 0 {
		t.Errorf("%d Redis calls for invalid limits, want 0", n)
	}
}

func metricValue(t *testing.T, c prometheus.Collector, name string) float64 {
	t.Helper()
	reg := prometheus.NewPedanticRegistry()
	reg.MustRegister(c)
	mfs, err := reg.Gather()
	if err != nil {
		t.Fatal(err)
	}
	for _, mf := range mfs {
		if mf.GetName() != name {
			continue
		}
		m := mf.GetMetric()[0]
		if m.GetCounter() != nil {
			return m.GetCounter().GetValue()
		}
		return m.GetGauge().GetValue()
	}
	t.Fatalf("metric %s not collected", name)
	return 0
}

type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

func discardLogger() *slog.Logger { return slog.New(slog.DiscardHandler) }
