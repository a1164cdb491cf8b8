package ratelimit

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/redis/go-redis/v9"

	"github.com/bulkheadhq/bulkhead/internal/breaker"
)

// redisEpoch (2023-11-14, Unix seconds, as gcraLua text) is subtracted from Redis TIME so that
// TATs, held by Lua as doubles in microseconds, stay near 2^47 for decades:
// exact to about 1/64 µs, where Unix microseconds would be exact only to
// 1/4 µs.
const redisEpoch = "1700000000"

// gcraLua is the GCRA of gcra() over one or more buckets, all or nothing.
//
//	KEYS[i]     bucket i
//	ARGV[1]     now in µs since redisEpoch, or "" for the server's TIME
//	ARGV[2i]    bucket i's emission interval in µs (may be fractional)
//	ARGV[2i+1]  bucket i's burst offset in µs
//
// It returns 4 integers per bucket: allowed (0/1), remaining, retry-after µs
// (rounded up), reset-after µs (rounded up). Only if every bucket allows
// does it store the new TATs, each with a TTL of its time to a full bucket,
// so idle buckets expire by themselves. TATs are stored with %.17g: Lua's
// default number format keeps 14 digits, which would round them. TIME in a
// script that writes is fine on Redis >= 5 (effects replication, the only
// mode of Redis 7).
const gcraLua = `
local now
if ARGV[1] ~= '' then
  now = tonumber(ARGV[1])
else
  local t = redis.call('TIME')
  now = (tonumber(t[1]) - ` + redisEpoch + `) * 1000000 + tonumber(t[2])
end
local res, nexts, all = {}, {}, true
for i = 1, #KEYS do
  local t = tonumber(ARGV[2 * i])
  local bo = tonumber(ARGV[2 * i + 1])
  local tat = now
  local v = redis.call('GET', KEYS[i])
  if v then tat = math.max(tonumber(v), now) end
  local nxt = tat + t
  local diff = now - (nxt - bo)
  local j = 4 * (i - 1)
  if diff < 0 then
    all = false
    res[j + 1], res[j + 2], res[j + 3], res[j + 4] = 0, 0, math.ceil(-diff), math.ceil(tat - now)
  else
    nexts[i] = nxt
    res[j + 1], res[j + 2], res[j + 3], res[j + 4] = 1, math.floor(diff / t), 0, math.ceil(nxt - now)
  end
end
if all then
  for i = 1, #KEYS do
    local ttl = math.min(math.max(1, math.ceil((nexts[i] - now) / 1000)), 1e12)
    redis.call('SET', KEYS[i], string.format('%.17g', nexts[i]), 'PX', string.format('%d', ttl))
  end
end
return res
`

var gcraScript = redis.NewScript(gcraLua)

// RedisConfig configures NewRedis. Only Client is required; every other zero
// field means its default.
type RedisConfig struct {
	// Client reaches the Redis holding the shared state: a *redis.Client,
	// *redis.ClusterClient or *redis.Ring. Required. The limiter enforces
	// Timeout itself, but the client should also honour deadlines
	// (ContextTimeoutEnabled, as ClientOptions sets) so that abandoned calls
	// end promptly too.
	Client redis.Scripter
	// Prefix starts every key. Defaults to "bulkhead:rl:". Keys are
	// Prefix+"{"+tenant+"}" for a tenant and Prefix+"{"+tenant+"}:"+actor for
	// a credential: the hash tag keeps a tenant's keys on one cluster slot.
	// It must not contain '{' or '}'.
	Prefix string
	// Timeout bounds each Redis call; past it the request is decided
	// locally. Defaults to 50ms.
	Timeout time.Duration
	// BreakerTimeout is how long the limiter decides locally, without
	// calling Redis, after a failed call opened its circuit breaker; then
	// one request (or Probe) calls Redis again, and its success closes the
	// breaker. Defaults to 1s.
	BreakerTimeout time.Duration
	// Breakers, if set, receives the breaker's state under the name
	// "redis" at each change (an *observe.Breakers).
	Breakers breaker.Reporter
	// LogInterval is the least time between two log lines about failing
	// Redis calls. Defaults to 10s.
	LogInterval time.Duration
	// Logger receives those lines. Defaults to slog.Default().
	Logger *slog.Logger
	// Fallback decides while Redis is unreachable. Defaults to a new Local.
	Fallback *Local
	// Nodes is how many bulkhead nodes share the Redis. While deciding
	// locally each node enforces its share, Rate/Nodes and Burst/Nodes (at
	// least 1), so the fleet stays near the shared limit. Defaults to 1.
	Nodes int
	// NowFunc, if set, replaces the Redis server's clock (TIME) with the
	// caller's: for tests only. Every limiter sharing keys must then use the
	// same NowFunc timeline.
	NowFunc func() time.Duration
}

// Redis is a GCRA limiter whose state lives in Redis, so that every bulkhead
// node using the same Redis and Prefix shares one budget per bucket. Each
// decision is one round trip (EVALSHA of a Lua script, EVAL if the script is
// not cached), timed by the Redis server's clock so nodes need no clock
// agreement. It is safe for concurrent use.
//
// Redis never fails a request: when a call errors or exceeds Timeout, the
// request is decided by the Fallback Local limiter (never unlimited), a
// counter is incremented, a line is logged at most every LogInterval, and
// a circuit breaker (internal/breaker, gobreaker) opens: Redis is left
// alone for BreakerTimeout before one request probes it again. Redis is a
// prometheus.Collector for those counters and the breaker's state.
type Redis struct {
	client   redis.Scripter
	prefix   string
	timeout  time.Duration
	logEvery int64
	logger   *slog.Logger
	local    *Local
	nodes    int
	nowFunc  func() time.Duration
	clock    func() int64 // monotonic ns for the log; tests replace it

	breaker   *breaker.Breaker
	lastLog   atomic.Int64
	fallbacks atomic.Uint64 // decisions made locally
	failures  atomic.Uint64 // failed Redis calls
	sinceLog  atomic.Uint64 // local decisions since the last log line

	collectors []prometheus.Collector
}

// NewRedis returns a Redis limiter. It returns an error naming the field if
// cfg is invalid; it does not contact Redis.
func NewRedis(cfg RedisConfig) (*Redis, error) {
	switch {
	case cfg.Client == nil:
		return nil, errors.New("ratelimit: RedisConfig.Client is required")
	case strings.ContainsAny(cfg.Prefix, "{}"):
		return nil, fmt.Errorf("ratelimit: RedisConfig.Prefix must not contain '{' or '}', got %q", cfg.Prefix)
	case cfg.Timeout < 0:
		return nil, fmt.Errorf("ratelimit: RedisConfig.Timeout must be >= 0, got %v", cfg.Timeout)
	case cfg.BreakerTimeout < 0:
		return nil, fmt.Errorf("ratelimit: RedisConfig.BreakerTimeout must be >= 0, got %v", cfg.BreakerTimeout)
	case cfg.LogInterval < 0:
		return nil, fmt.Errorf("ratelimit: RedisConfig.LogInterval must be >= 0, got %v", cfg.LogInterval)
	case cfg.Nodes < 0:
		return nil, fmt.Errorf("ratelimit: RedisConfig.Nodes must be >= 0, got %d", cfg.Nodes)
	}
	r := &Redis{
		client:   cfg.Client,
		prefix:   cmp.Or(cfg.Prefix, "bulkhead:rl:"),
		timeout:  cmp.Or(cfg.Timeout, 50*time.Millisecond),
		logEvery: int64(cmp.Or(cfg.LogInterval, 10*time.Second)),
		logger:   cfg.Logger,
		local:    cfg.Fallback,
		nodes:    cmp.Or(cfg.Nodes, 1),
		nowFunc:  cfg.NowFunc,
		clock:    func() int64 { return int64(time.Since(start)) },
	}
	if r.logger == nil {
		r.logger = slog.Default()
	}
	r.breaker = breaker.New(breaker.Settings{
		Name:      BreakerName,
		IsFailure: func(err error) bool { return errors.Is(err, errRedisFailed) },
		Failures:  1,
		Timeout:   cmp.Or(cfg.BreakerTimeout, time.Second),
		Report:    cfg.Breakers,
		Logger:    r.logger,
	})
	if r.local == nil {
		r.local = NewLocal()
	}
	r.lastLog.Store(math.MinInt64)
	r.collectors = []prometheus.Collector{
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bulkhead_ratelimit_fallback_total",
			Help: "Rate-limit decisions made by the local fallback because Redis failed or its circuit was open.",
		}, func() float64 { return float64(r.fallbacks.Load()) }),
		prometheus.NewCounterFunc(prometheus.CounterOpts{
			Name: "bulkhead_ratelimit_redis_errors_total",
			Help: "Rate-limit Redis calls that failed or timed out.",
		}, func() float64 { return float64(r.failures.Load()) }),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Name: "bulkhead_ratelimit_redis_circuit_open",
			Help: "1 while the rate limiter's Redis breaker is open or half-open (it decides locally), else 0.",
		}, func() float64 {
			if r.breaker.State() != breaker.Closed {
				return 1
			}
			return 0
		}),
	}
	return r, nil
}

// ClientOptions parses a redis:// or rediss:// URL (as redis.ParseURL) into
// options suited to a limiter's client: ContextTimeoutEnabled, so that the
// client's socket I/O stops at the limiter's per-call deadline. It returns
// the parse error, if any.
func ClientOptions(url string) (*redis.Options, error) {
	opt, err := redis.ParseURL(url)
	if err != nil {
		return nil, fmt.Errorf("parse redis url: %w", err)
	}
	opt.ContextTimeoutEnabled = true
	return opt, nil
}

// Sweep drops the fallback limiter's buckets that are full again; see
// Local.Sweep.
func (r *Redis) Sweep() { r.local.Sweep() }

// Fallbacks returns how many decisions have been made locally because Redis
// failed or its circuit was open.
func (r *Redis) Fallbacks() uint64 { return r.fallbacks.Load() }

// Describe implements prometheus.Collector.
func (r *Redis) Describe(ch chan<- *prometheus.Desc) {
	for _, c := range r.collectors {
		c.Describe(ch)
	}
}

// Collect implements prometheus.Collector: bulkhead_ratelimit_fallback_total,
// bulkhead_ratelimit_redis_errors_total and
// bulkhead_ratelimit_redis_circuit_open.
func (r *Redis) Collect(ch chan<- prometheus.Metric) {
	for _, c := range r.collectors {
		c.Collect(ch)
	}
}

// bucket is one bucket of a decision, with its limit's GCRA parameters.
type bucket struct {
	key   Key
	lim   Limit
	t, bo int64
}

// Allow decides one request against bucket key under lim, in Redis or, if
// Redis fails, locally; see Redis. An invalid lim denies without a call.
// Canceling ctx abandons the Redis call and decides locally.
func (r *Redis) Allow(ctx context.Context, key Key, lim Limit) Decision {
	t, bo, ok := lim.interval()
	if !ok {
		return Decision{Limit: lim}
	}
	b := [1]bucket{{key: key, lim: lim, t: t, bo: bo}}
	return r.decide(ctx, b[:])
}

// Admit decides one request against the tenant's and the credential's
// buckets in one round trip: see Limiter.Admit and Local.Admit, whose rules
// for invalid limits it shares.
func (r *Redis) Admit(ctx context.Context, key Key, lim Limits) Decision {
	t, bo, ok := lim.Tenant.interval()
	if !ok {
		return Decision{Limit: lim.Tenant}
	}
	b := [2]bucket{{key: Key{Owner: key.Owner}, lim: lim.Tenant, t: t, bo: bo}}
	if key.Actor == "" || lim.Actor == (Limit{}) {
		return r.decide(ctx, b[:1])
	}
	if t, bo, ok = lim.Actor.interval(); !ok {
		return Decision{Limit: lim.Actor}
	}
	b[1] = bucket{key: key, lim: lim.Actor, t: t, bo: bo}
	return r.decide(ctx, b[:])
}

func (r *Redis) decide(ctx context.Context, bs []bucket) Decision {
	done, err := r.breaker.Allow()
	if err != nil {
		return r.fallback(ctx, bs, nil)
	}
	vals, err := r.eval(ctx, bs)
	done(r.outcome(ctx, err))
	if err != nil {
		return r.fallback(ctx, bs, err)
	}
	d := redisDecision(vals[0:4], bs[0].lim)
	if len(bs) == 2 {
		d = combine(d, redisDecision(vals[4:8], bs[1].lim))
	}
	return d
}

func redisDecision(v []int64, lim Limit) Decision {
	return Decision{
		Allowed:    v[0] == 1,
		Remaining:  int(v[1]),
		RetryAfter: time.Duration(v[2]) * time.Microsecond,
		ResetAfter: time.Duration(v[3]) * time.Microsecond,
		Limit:      lim,
	}
}

// eval runs the script for bs within r.timeout. The deadline is enforced
// here, not only by the client: a client that ignores contexts (go-redis
// without ContextTimeoutEnabled) would otherwise hold the request for its
// own read timeout and retries, seconds with the defaults.
func (r *Redis) eval(ctx context.Context, bs []bucket) ([]int64, error) {
	keys := make([]string, len(bs))
	args := make([]any, 1+2*len(bs))
	args[0] = ""
	if r.nowFunc != nil {
		args[0] = strconv.FormatFloat(float64(r.nowFunc())/1e3, 'f', -1, 64)
	}
	for i, b := range bs {
		keys[i] = r.redisKey(b.key)
		args[1+2*i] = strconv.FormatFloat(float64(b.t)/1e3, 'g', -1, 64)
		args[2+2*i] = strconv.FormatFloat(float64(b.bo)/1e3, 'g', -1, 64)
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	type result struct {
		vals []int64
		err  error
	}
	done := make(chan result, 1)
	go func() {
		vals, err := gcraScript.Run(ctx, r.client, keys, args...).Int64Slice()
		if err == nil && len(vals) != 4*len(bs) {
			err = fmt.Errorf("ratelimit script returned %d values, want %d", len(vals), 4*len(bs))
		}
		done <- result{vals, err}
	}()
	select {
	case res := <-done:
		return res.vals, res.err
	case <-ctx.Done():
		return nil, fmt.Errorf("ratelimit redis call: %w", ctx.Err())
	}
}

func (r *Redis) redisKey(k Key) string {
	if k.Actor == "" {
		return r.prefix + "{" + string(k.Owner) + "}"
	}
	return r.prefix + "{" + string(k.Owner) + "}:" + k.Actor
}

// errRedisFailed marks, for the breaker, a call that failed because of
// Redis.
var errRedisFailed = errors.New("redis call failed")

// BreakerName is the name of the limiter's circuit breaker.
const BreakerName = "redis"

// outcome classifies a call's error for the breaker: nil, an error that
// says nothing about Redis (the caller gave up), or errRedisFailed.
func (r *Redis) outcome(ctx context.Context, err error) error {
	switch {
	case err == nil:
		return nil
	case ctx.Err() != nil:
		return context.Canceled
	}
	r.failures.Add(1)
	return fmt.Errorf("%w: %w", errRedisFailed, err)
}

// Probe calls Redis through the breaker with a trivial script, bounded by
// Timeout, and returns its error: an open breaker's error at once, or the
// call's. A failure opens the breaker; a success of a half-open breaker
// closes it. Run it at start-up to learn whether Redis is there, and then
// periodically (see Watch) so that the breaker closes without waiting for
// traffic.
func (r *Redis) Probe(ctx context.Context) error {
	done, err := r.breaker.Allow()
	if err != nil {
		return err
	}
	cctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	err = r.client.Eval(cctx, "return 1", nil).Err()
	done(r.outcome(ctx, err))
	return err
}

// Watch probes Redis every interval while the breaker is not closed, until
// ctx ends.
func (r *Redis) Watch(ctx context.Context, interval time.Duration) {
	r.breaker.ProbeWhileOpen(ctx, interval, func() { _ = r.Probe(ctx) })
}

// BreakerState returns the state of the limiter's Redis breaker:
// "closed", "half-open" or "open".
func (r *Redis) BreakerState() string { return r.breaker.State() }

// fallback decides bs locally, each limit cut to this node's share.
func (r *Redis) fallback(ctx context.Context, bs []bucket, err error) Decision {
	r.fallbacks.Add(1)
	r.sinceLog.Add(1)
	if err != nil {
		now := r.clock()
		last := r.lastLog.Load()
		if (last == math.MinInt64 || now-last >= r.logEvery) && r.lastLog.CompareAndSwap(last, now) {
			r.logger.Warn("ratelimit: Redis unavailable, deciding locally",
				"err", err, "local_decisions", r.sinceLog.Swap(0))
		}
	}
	if len(bs) == 1 {
		return r.local.Allow(ctx, bs[0].key, r.share(bs[0].lim))
	}
	return r.local.Admit(ctx, bs[1].key, Limits{Tenant: r.share(bs[0].lim), Actor: r.share(bs[1].lim)})
}

func (r *Redis) share(l Limit) Limit {
	if r.nodes <= 1 {
		return l
	}
	return Limit{Rate: l.Rate / float64(r.nodes), Burst: max(1, l.Burst/r.nodes)}
}
