package changefeed

import (
	"bufio"
	"context"
	"crypto/rand"
	"encoding/hex"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestMain silences go-redis's own logger, which reports the connections
// the tests break on purpose.
func TestMain(m *testing.M) {
	redis.SetLogger(quietRedisLogger{})
	os.Exit(m.Run())
}

type quietRedisLogger struct{}

func (quietRedisLogger) Printf(context.Context, string, ...any) {}

// redisNodes opens feeds on a channel of the test's own, each with a client
// of its own named name-<n>, so that kill ends that feed's subscription
// only.
func redisNodes(t *testing.T, addr string, o options) nodes {
	t.Helper()
	u := os.Getenv("BULKHEAD_TEST_REDIS_URL")
	if u == "" {
		t.Skip("BULKHEAD_TEST_REDIS_URL is not set; skipping Redis tests")
	}
	b := make([]byte, 6)
	rand.Read(b)
	o.channel = "bulkhead:test:changes:" + hex.EncodeToString(b)
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	admin := redis.NewClient(opt)
	t.Cleanup(func() { admin.Close() })
	if addr != "" {
		opt.Addr = addr
	}
	names := map[Feed]string{}
	return nodes{
		open: func(t *testing.T, onLive func(bool)) Feed {
			opt := *opt
			opt.ClientName = "bulkhead-test-" + hex.EncodeToString(b) + "-" + string(rune('a'+len(names)))
			client := redis.NewClient(&opt)
			o := o
			o.onLive = onLive
			f, err := newRedis(context.Background(), client, nil, o)
			if err != nil {
				client.Close()
				t.Fatal(err)
			}
			names[f] = opt.ClientName
			t.Cleanup(func() {
				f.Close()
				client.Close()
			})
			return f
		},
		kill: func(t *testing.T, f Feed) {
			name := names[f]
			list, err := admin.ClientList(context.Background()).Result()
			if err != nil {
				t.Fatal(err)
			}
			killed := 0
			sc := bufio.NewScanner(strings.NewReader(list))
			for sc.Scan() {
				fields := strings.Fields(sc.Text())
				var id string
				var mine, sub bool
				for _, f := range fields {
					switch {
					case strings.HasPrefix(f, "id="):
						id = strings.TrimPrefix(f, "id=")
					case f == "name="+name:
						mine = true
					case strings.HasPrefix(f, "sub=") && f != "sub=0":
						sub = true
					}
				}
				if mine && sub {
					if err := admin.Do(context.Background(), "CLIENT", "KILL", "ID", id).Err(); err != nil {
						t.Fatal(err)
					}
					killed++
				}
			}
			if killed != 1 {
				t.Fatalf("killed %d subscribed connections named %s, want 1", killed, name)
			}
		},
	}
}

func TestRedis(t *testing.T) {
	t.Parallel()
	testNodes(t, redisNodes(t, "", options{}))
}

// A subscription whose connection stops answering, without being closed,
// is found out by the ping of an idle subscription and replaced.
func TestRedisSilentConnection(t *testing.T) {
	t.Parallel()
	u := os.Getenv("BULKHEAD_TEST_REDIS_URL")
	if u == "" {
		t.Skip("BULKHEAD_TEST_REDIS_URL is not set; skipping Redis tests")
	}
	opt, err := redis.ParseURL(u)
	if err != nil {
		t.Fatal(err)
	}
	fr := newFreezer(t, opt.Addr)
	n := redisNodes(t, fr.addr, options{pingEvery: 200 * time.Millisecond})
	onLive, liveCh := liveChanges()
	f := n.open(t, onLive)
	expectLive(t, liveCh, true)
	c := collect(t, f)
	fr.freeze()
	expectLive(t, liveCh, false)
	expectLive(t, liveCh, true)
	c.expect(t, Reset)
	other := n.open(t, nil)
	e := Event{Kind: KindPlan, Key: "free"}
	if err := other.Publish(context.Background(), e); err != nil {
		t.Fatal(err)
	}
	c.expect(t, e)
}
