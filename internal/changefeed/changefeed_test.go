package changefeed

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/bulkheadhq/bulkhead/tenant"
)

const tid = tenant.ID("0190d5a0-0000-7000-8000-00000000000a")

func TestLocal(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := NewLocal()
	a, b := collect(t, f), collect(t, f)
	if !f.Live() {
		t.Error("a new Local feed is not live")
	}
	events := []Event{
		{Kind: KindTenant, Tenant: tid},
		{Kind: KindAPIKey, Tenant: tid, Key: "key1"},
		{Kind: KindPlan, Key: "free"},
		{Kind: KindSession, Tenant: tid, Key: "user1"},
	}
	for _, e := range events {
		if err := f.Publish(ctx, e); err != nil {
			t.Fatalf("Publish(%+v) = %v", e, err)
		}
	}
	for _, c := range []*collector{a, b} {
		for _, want := range events {
			if got := c.next(t); got != want {
				t.Errorf("delivered %+v, want %+v", got, want)
			}
		}
	}

	// A cancelled subscriber receives nothing more; the others do.
	var cancelled atomic.Int32
	cancel := f.Subscribe(func(Event) { cancelled.Add(1) })
	cancel()
	cancel() // idempotent
	f.Publish(ctx, Event{Kind: KindPlan, Key: "pro"})
	a.expect(t, Event{Kind: KindPlan, Key: "pro"})
	b.expect(t, Event{Kind: KindPlan, Key: "pro"})
	if n := cancelled.Load(); n != 0 {
		t.Errorf("a cancelled subscriber was called %d times", n)
	}

	for _, bad := range []Event{{Kind: "nonsense"}, {}, {Kind: KindAPIKey, Tenant: tid, Key: strings.Repeat("k", maxPayload)}} {
		if err := f.Publish(ctx, bad); err == nil {
			t.Errorf("Publish(%.40v) = nil, want an error", bad)
		}
	}
	cctx, cancelCtx := context.WithCancel(ctx)
	cancelCtx()
	if err := f.Publish(cctx, Event{Kind: KindPlan, Key: "x"}); !errors.Is(err, context.Canceled) {
		t.Errorf("Publish with a cancelled context = %v", err)
	}

	a.stopped.Store(true)
	b.stopped.Store(true)
	if err := f.Close(); err != nil {
		t.Fatal(err)
	}
	f.Close() // idempotent
	if f.Live() {
		t.Error("a closed Local feed is live")
	}
	if err := f.Publish(ctx, Event{Kind: KindPlan, Key: "free"}); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	f.Subscribe(func(Event) { t.Error("a subscriber after Close was called") })()
	if n := a.late.Load() + b.late.Load(); n > 0 {
		t.Errorf("%d events delivered after Close", n)
	}
}

// A subscriber that blocks holds up delivery, not the publisher; when too
// many events wait, they are replaced by one Reset, which the events after
// it follow.
func TestSlowSubscriber(t *testing.T) {
	t.Parallel()
	ctx := context.Background()
	f := NewLocal()
	defer f.Close()
	started, release := make(chan struct{}), make(chan struct{})
	var got []Event
	done := make(chan struct{})
	f.Subscribe(func(e Event) {
		if len(got) == 0 {
			close(started)
			<-release
		}
		got = append(got, e)
		if e.Key == "last" {
			close(done)
		}
	})
	f.Publish(ctx, Event{Kind: KindPlan, Key: "first"})
	<-started
	const extra = 10
	for i := range maxQueue + extra {
		key := fmt.Sprint(i)
		if i == maxQueue+extra-1 {
			key = "last"
		}
		if err := f.Publish(ctx, Event{Kind: KindPlan, Key: key}); err != nil {
			t.Fatal(err)
		}
	}
	close(release)
	<-done
	want := []Event{{Kind: KindPlan, Key: "first"}, Reset}
	for i := maxQueue; i < maxQueue+extra; i++ {
		want = append(want, Event{Kind: KindPlan, Key: fmt.Sprint(i)})
	}
	want[len(want)-1].Key = "last"
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("delivered %d events: %v…, want %v", len(got), got[:min(len(got), 5)], want)
	}
}

func TestDecode(t *testing.T) {
	t.Parallel()
	e := Event{Kind: KindAPIKey, Tenant: tid, Key: "key1"}
	b, err := encode(e)
	if err != nil {
		t.Fatal(err)
	}
	if got, err := decode(b); err != nil || got != e {
		t.Errorf("decode(encode(%+v)) = %+v, %v", e, got, err)
	}
	t.Logf("payload: %s", b)
	// What cannot be read as an event drops everything.
	for _, p := range []string{"", "{", `{"kind":"future"}`, `"tenant"`} {
		if got, err := decode([]byte(p)); err == nil || got != Reset {
			t.Errorf("decode(%q) = %+v, %v; want Reset and an error", p, got, err)
		}
	}
}

// A feed that cannot subscribe by its context's deadline (the server
// accepts the connection but never answers) is not returned.
func TestNewWithoutAnswer(t *testing.T) {
	t.Parallel()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var held []net.Conn
	var mu sync.Mutex
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			held = append(held, c)
			mu.Unlock()
		}
	}()
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for _, c := range held {
			c.Close()
		}
		mu.Unlock()
	})
	addr := ln.Addr().String()
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if f, err := NewRedis(ctx, redis.NewClient(&redis.Options{Addr: addr, ContextTimeoutEnabled: true}), nil); err == nil {
		f.Close()
		t.Error("NewRedis on a server that never answers = nil error")
	}
	ctx, cancel = context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	if f, err := NewPostgres(ctx, "postgres://x@"+addr+"/x?sslmode=disable", nil); err == nil {
		f.Close()
		t.Error("NewPostgres on a server that never answers = nil error")
	}
}
