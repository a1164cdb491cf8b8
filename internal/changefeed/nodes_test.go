package changefeed

import (
	"context"
	"errors"
	"testing"
)

// nodes makes feeds for the tests every networked Feed passes: feeds made
// by one nodes share a channel, as the nodes of one deployment do, and no
// other test's.
type nodes struct {
	// open returns a new feed, closed when the test ends; onLive, if not
	// nil, is its options.onLive.
	open func(t *testing.T, onLive func(bool)) Feed
	// kill ends the connection f subscribes on, from the server's side.
	kill func(t *testing.T, f Feed)
}

// testNodes: two feeds (two nodes) each deliver the other's events and
// their own; when the server ends one's subscription, it is not live until
// it has subscribed again, and then delivers a Reset, while live; after
// Close it delivers nothing.
func testNodes(t *testing.T, n nodes) {
	ctx := context.Background()
	onLive, liveCh := liveChanges()
	a := n.open(t, onLive)
	b := n.open(t, nil)
	expectLive(t, liveCh, true)
	if !a.Live() || !b.Live() {
		t.Fatalf("new feeds: Live = %v, %v; want true", a.Live(), b.Live())
	}
	ca, cb := collect(t, a), collect(t, b)

	fromA := Event{Kind: KindAPIKey, Tenant: tid, Key: "key-a"}
	fromB := Event{Kind: KindSession, Tenant: tid, Key: "user-b"}
	if err := a.Publish(ctx, fromA); err != nil {
		t.Fatal(err)
	}
	if err := b.Publish(ctx, fromB); err != nil {
		t.Fatal(err)
	}
	for _, c := range []*collector{ca, cb} {
		for _, want := range []Event{fromA, fromB} {
			if before := c.expect(t, want); len(before) > 0 {
				t.Errorf("before %+v: %+v", want, before)
			}
		}
	}

	// The server ends a's subscription.
	n.kill(t, a)
	expectLive(t, liveCh, false)
	expectLive(t, liveCh, true)
	ca.expect(t, Reset)
	if live := <-ca.liveAtReset; !live {
		t.Error("Reset delivered while not live")
	}
	if !a.Live() {
		t.Error("not live after the Reset")
	}
	// Subscribed again: a hears b.
	again := Event{Kind: KindTenant, Tenant: tid}
	if err := b.Publish(ctx, again); err != nil {
		t.Fatal(err)
	}
	ca.expect(t, again)
	cb.expect(t, again)
	if err := a.Publish(ctx, fromA); err != nil {
		t.Fatal(err)
	}
	cb.expect(t, fromA)
	ca.expect(t, fromA)

	// Closed, a delivers nothing more; b goes on.
	ca.stopped.Store(true)
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if a.Live() {
		t.Error("Live after Close")
	}
	if err := a.Publish(ctx, fromA); !errors.Is(err, ErrClosed) {
		t.Errorf("Publish after Close = %v, want ErrClosed", err)
	}
	last := Event{Kind: KindPlan, Key: "after-close"}
	if err := b.Publish(ctx, last); err != nil {
		t.Fatal(err)
	}
	cb.expect(t, last)
	if n := ca.late.Load(); n > 0 {
		t.Errorf("%d events delivered after Close", n)
	}
}
