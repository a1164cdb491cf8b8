package contain

import (
	"context"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"
	"github.com/redis/go-redis/v9"
)

func testRedis(t *testing.T) *redis.Client {
	t.Helper()
	url := os.Getenv("BULKHEAD_TEST_REDIS_URL")
	if url == "" {
		t.Skip("BULKHEAD_TEST_REDIS_URL is not set; skipping the Redis counting tests")
	}
	opt, err := redis.ParseURL(url)
	if err != nil {
		t.Fatal(err)
	}
	c := redis.NewClient(opt)
	t.Cleanup(func() { c.Close() })
	return c
}

// Three nodes hitting one key concurrently reach the limit exactly once
// between them, at the limit's event.
func TestRedisHitSharedByNodes(t *testing.T) {
	t.Parallel()
	c := testRedis(t)
	nodes := []*Redis{NewRedis(c), NewRedis(c), NewRedis(c)}
	rule := Rule{Limit: 20, Window: time.Minute}
	key := "test:" + uuid.NewString()
	now := time.Now()
	var mu sync.Mutex
	reached, maxN := 0, 0
	var wg sync.WaitGroup
	for i := range 60 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			n, r, err := nodes[i%3].Hit(context.Background(), key, rule, now.Add(time.Duration(i)*time.Millisecond))
			if err != nil {
				t.Error(err)
				return
			}
			mu.Lock()
			defer mu.Unlock()
			if r {
				reached++
			}
			maxN = max(maxN, n)
		}()
	}
	wg.Wait()
	if reached != 1 || maxN != 21 {
		t.Errorf("reached %d times, highest count %d; want once, and counts trimmed to limit+1 at most", reached, maxN)
	}
	// Past the window the count starts again.
	if n, r, _ := nodes[0].Hit(context.Background(), key, rule, now.Add(2*time.Minute)); n != 1 || r {
		t.Errorf("after the window: n=%d reached=%v, want 1, false", n, r)
	}
}

func TestRedisSeeCountsDistinct(t *testing.T) {
	t.Parallel()
	c := testRedis(t)
	a, b := NewRedis(c), NewRedis(c)
	rule := Rule{Limit: 3, Window: time.Hour}
	key := "test:" + uuid.NewString()
	now := time.Now()
	crossed := 0
	for i := range 12 {
		node := a
		if i%2 == 1 {
			node = b
		}
		_, x, err := node.See(context.Background(), key, "10.0.0."+strconv.Itoa(i%4), rule, now.Add(time.Duration(i)*time.Second))
		if err != nil {
			t.Fatal(err)
		}
		if x {
			crossed++
			if i != 3 {
				t.Errorf("crossed at use %d, want at the 4th distinct address (3)", i)
			}
		}
	}
	if crossed != 1 {
		t.Errorf("crossed %d times, want 1", crossed)
	}
}
