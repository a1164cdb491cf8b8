package changefeed

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"time"

	"github.com/redis/go-redis/v9"
)

// RedisChannel is the channel a Redis feed subscribes and publishes to.
// Redis's pub/sub ignores the database number: nodes of two deployments
// sharing a Redis server hear each other (which costs them cache entries,
// never correctness).
const RedisChannel = "bulkhead:changes"

// Redis is a Feed over Redis's pub/sub (SUBSCRIBE and PUBLISH on
// RedisChannel). When the subscription's connection fails (Redis restarts,
// CLIENT KILL, the network drops it: an idle subscription is pinged every
// few seconds), the feed is not live until it has subscribed again,
// retrying with back-off, and then delivers a Reset.
type Redis struct {
	link
	log    *slog.Logger
	client redis.UniversalClient
	ps     *redis.PubSub // guarded by mu
}

var _ Feed = (*Redis)(nil)

// NewRedis subscribes with client and returns the feed, live. ctx bounds
// the first subscription only (10s if it has no deadline); it returns an
// error if the feed cannot subscribe by then, provided client honours
// deadlines (ContextTimeoutEnabled, as ratelimit.ClientOptions sets; else
// its own timeouts apply). The feed does not close client. logger receives
// the subscription's losses and recoveries; nil discards them.
func NewRedis(ctx context.Context, client redis.UniversalClient, logger *slog.Logger) (*Redis, error) {
	return newRedis(ctx, client, logger, options{})
}

func newRedis(ctx context.Context, client redis.UniversalClient, logger *slog.Logger, o options) (*Redis, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	r := &Redis{log: logger, client: client}
	r.opts, r.done = o.withDefaults(RedisChannel), make(chan struct{})
	ps, err := r.subscribe(ctx)
	if err != nil {
		return nil, err
	}
	r.ps = ps
	r.hub = newHub()
	var runCtx context.Context
	runCtx, r.cancel = context.WithCancel(context.Background())
	r.setLive(true)
	go r.run(runCtx)
	return r, nil
}

// subscribe subscribes on a new PubSub and waits for Redis to confirm, until
// ctx's deadline or for 10s.
func (r *Redis) subscribe(ctx context.Context) (*redis.PubSub, error) {
	timeout := 10 * time.Second
	if dl, ok := ctx.Deadline(); ok {
		timeout = max(time.Until(dl), time.Millisecond)
	}
	ps := r.client.Subscribe(ctx, r.opts.channel)
	for {
		msg, err := ps.ReceiveTimeout(ctx, timeout)
		if err != nil {
			ps.Close()
			return nil, fmt.Errorf("changefeed: subscribe: %w", err)
		}
		if s, ok := msg.(*redis.Subscription); ok && s.Kind == "subscribe" && s.Channel == r.opts.channel {
			return ps, nil
		}
	}
}

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// run receives messages until ctx ends. go-redis reconnects a PubSub
// whose connection failed, and subscribes again, on the next receive: the
// confirmation of that subscription is when the feed is live again. A
// connection that stops answering (no reply to a ping) is replaced by a
// new PubSub.
func (r *Redis) run(ctx context.Context) {
	defer close(r.done)
	var lost time.Time
	failures := 0
	pinged := false
	for {
		r.mu.Lock()
		ps := r.ps
		r.mu.Unlock()
		msg, err := ps.ReceiveTimeout(ctx, r.opts.pingEvery)
		if ctx.Err() != nil {
			return
		}
		if err != nil {
			if isTimeout(err) && !pinged {
				// Idle: the Pong, or an error, comes with the next
				// receive.
				pinged = true
				if err = ps.Ping(ctx); err == nil {
					continue
				}
			}
			if r.live.Load() {
				r.log.Warn("changefeed: the Redis subscription is lost; events are missed until it is back", "err", err)
				lost = time.Now()
			} else if failures%20 == 0 {
				r.log.Warn("changefeed: cannot subscribe on Redis; retrying", "attempt", failures+1, "err", err)
			}
			r.setLive(false)
			if pinged {
				// No answer to the ping: go-redis keeps a connection
				// that times out, so start over on a new one.
				r.mu.Lock()
				if !r.closed {
					ps.Close()
					r.ps = r.client.Subscribe(ctx, r.opts.channel)
				}
				r.mu.Unlock()
			}
			pinged = false
			failures++
			select {
			case <-ctx.Done():
				return
			case <-time.After(backoff(failures)):
			}
			continue
		}
		pinged = false
		switch m := msg.(type) {
		case *redis.Subscription:
			if m.Kind == "subscribe" && m.Channel == r.opts.channel && !r.live.Load() {
				failures = 0
				r.setLive(true)
				r.log.Info("changefeed: the Redis subscription is back; dropping what was cached", "after_ms", float64(time.Since(lost))/float64(time.Millisecond))
				r.hub.post(Reset)
			}
		case *redis.Message:
			if m.Channel != r.opts.channel {
				continue
			}
			e, derr := decode([]byte(m.Payload))
			if derr != nil {
				r.log.Warn("changefeed: dropping what was cached", "err", derr)
			}
			r.hub.post(e)
		}
	}
}

// Publish sends e with PUBLISH: every node subscribed receives it.
func (r *Redis) Publish(ctx context.Context, e Event) error {
	payload, err := encode(e)
	if err != nil {
		return err
	}
	if r.isClosed() {
		return ErrClosed
	}
	if err := r.client.Publish(ctx, r.opts.channel, payload).Err(); err != nil {
		return fmt.Errorf("changefeed: publish: %w", err)
	}
	return nil
}

// Close implements Feed. It does not close the client.
func (r *Redis) Close() error {
	r.mu.Lock()
	if r.closed {
		r.mu.Unlock()
		<-r.done
		return nil
	}
	r.closed = true
	ps := r.ps
	r.mu.Unlock()
	r.hub.close()
	r.cancel()
	ps.Close() // ends a receive in progress
	<-r.done
	return nil
}
