package contain

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"fmt"
	"strconv"
	"sync/atomic"
	"time"

	"github.com/redis/go-redis/v9"
)

// Shared counts in windows that every node sharing it adds to, so that a
// rule trips on the events of all nodes together. Counter and Distinct
// count on one node; core uses both, and either tripping contains.
type Shared interface {
	// Hit adds an event of key at now and returns how many events of key
	// lie within the rule's window; reached is true for exactly one Hit,
	// over all nodes, per crossing of the rule's limit.
	Hit(ctx context.Context, key string, rule Rule, now time.Time) (n int, reached bool, err error)
	// See records value for key at now and returns how many distinct
	// values key has within the rule's window; crossed is true when this
	// value took the count past the limit.
	See(ctx context.Context, key, value string, rule Rule, now time.Time) (n int, crossed bool, err error)
}

// Redis is a Shared kept in Redis: one sorted set per key, trimmed to the
// limit, expiring with its window. It is safe for concurrent use.
type Redis struct {
	client  redis.Scripter
	prefix  string
	timeout time.Duration
	node    string
	seq     atomic.Uint64
}

// NewRedis returns a Redis Shared on client. Each call is bounded by
// 100ms; callers fall back to their own node's counts when it fails.
func NewRedis(client redis.Scripter) *Redis {
	var b [6]byte
	rand.Read(b[:])
	return &Redis{client: client, prefix: "bulkhead:contain:", timeout: 100 * time.Millisecond, node: hex.EncodeToString(b[:])}
}

// hitLua adds one event (a unique member scored by its time in
// microseconds), drops those older than the window, returns the count and
// trims the set to the limit, so that the count equals the limit once per
// crossing and memory stays bounded.
var hitLua = redis.NewScript(`
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
redis.call('ZADD', KEYS[1], now, ARGV[4])
local n = redis.call('ZCARD', KEYS[1])
if n > limit then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - limit - 1) end
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
return n
`)

// seeLua records a value with its last time seen, drops values not seen
// within the window, and returns the count and whether the value is new.
// The set is trimmed to limit+1 values.
var seeLua = redis.NewScript(`
local now, window, limit = tonumber(ARGV[1]), tonumber(ARGV[2]), tonumber(ARGV[3])
redis.call('ZREMRANGEBYSCORE', KEYS[1], '-inf', now - window)
local added = redis.call('ZADD', KEYS[1], now, ARGV[4])
local n = redis.call('ZCARD', KEYS[1])
if n > limit + 1 then redis.call('ZREMRANGEBYRANK', KEYS[1], 0, n - limit - 2) end
redis.call('PEXPIRE', KEYS[1], math.ceil(window / 1000))
return {n, added}
`)

// Hit implements Shared.
func (r *Redis) Hit(ctx context.Context, key string, rule Rule, now time.Time) (int, bool, error) {
	if !rule.On() {
		return 0, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	member := strconv.FormatInt(now.UnixMicro(), 10) + ":" + r.node + ":" + strconv.FormatUint(r.seq.Add(1), 10)
	n, err := hitLua.Run(ctx, r.client, []string{r.prefix + key}, now.UnixMicro(), rule.Window.Microseconds(), rule.Limit, member).Int()
	if err != nil {
		return 0, false, fmt.Errorf("contain: redis: %w", err)
	}
	return n, n == rule.Limit, nil
}

// See implements Shared.
func (r *Redis) See(ctx context.Context, key, value string, rule Rule, now time.Time) (int, bool, error) {
	if !rule.On() {
		return 0, false, nil
	}
	ctx, cancel := context.WithTimeout(ctx, r.timeout)
	defer cancel()
	res, err := seeLua.Run(ctx, r.client, []string{r.prefix + key}, now.UnixMicro(), rule.Window.Microseconds(), rule.Limit, value).Int64Slice()
	if err != nil || len(res) != 2 {
		return 0, false, fmt.Errorf("contain: redis: %v", err)
	}
	n, added := int(res[0]), res[1] == 1
	return n, added && n == rule.Limit+1, nil
}
