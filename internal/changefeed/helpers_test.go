package changefeed

import (
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// wait is how long a test waits for something that should happen soon. It
// only bounds a test that would otherwise hang: nothing is asserted about
// how long anything takes.
const wait = 30 * time.Second

// collector gathers what a subscriber of a feed receives.
type collector struct {
	feed   Feed
	events chan Event
	// liveAtReset records Live() as each Reset is delivered.
	liveAtReset chan bool
	stopped     atomic.Bool // set when the feed is closed; no event may follow
	late        atomic.Int32
}

func collect(t *testing.T, f Feed) *collector {
	t.Helper()
	c := &collector{feed: f, events: make(chan Event, 10_000), liveAtReset: make(chan bool, 100)}
	f.Subscribe(func(e Event) {
		if c.stopped.Load() {
			c.late.Add(1)
		}
		if e.Kind == KindReset {
			c.liveAtReset <- f.Live()
		}
		c.events <- e
	})
	return c
}

// next returns the next event, failing t if none comes.
func (c *collector) next(t *testing.T) Event {
	t.Helper()
	select {
	case e := <-c.events:
		return e
	case <-time.After(wait):
		t.Fatalf("no event within %v", wait)
		return Event{}
	}
}

// expect reads events until want, failing t if it does not come; events
// before it are returned.
func (c *collector) expect(t *testing.T, want Event) (before []Event) {
	t.Helper()
	deadline := time.After(wait)
	for {
		select {
		case e := <-c.events:
			if e == want {
				return before
			}
			before = append(before, e)
		case <-deadline:
			t.Fatalf("no %+v within %v (got %+v)", want, wait, before)
			return nil
		}
	}
}

// liveChanges returns an onLive hook and the channel it reports to.
func liveChanges() (func(bool), chan bool) {
	ch := make(chan bool, 100)
	return func(live bool) { ch <- live }, ch
}

// expectLive waits for the next change of Live, failing t unless it is
// want.
func expectLive(t *testing.T, ch chan bool, want bool) {
	t.Helper()
	select {
	case got := <-ch:
		if got != want {
			t.Fatalf("Live changed to %v, want %v", got, want)
		}
	case <-time.After(wait):
		t.Fatalf("Live did not change to %v within %v", want, wait)
	}
}

// freezer forwards TCP connections to a server until frozen: then the
// connections it carries stay open but carry nothing either way (what is
// sent is dropped), as when a network drops packets without resetting
// anything. Connections made after the freeze are forwarded as usual.
type freezer struct {
	addr  string
	mu    sync.Mutex
	pairs []*atomic.Bool // each forwarded connection's frozen flag
}

func newFreezer(t *testing.T, target string) *freezer {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f := &freezer{addr: ln.Addr().String()}
	var wg sync.WaitGroup
	var connsMu sync.Mutex
	var conns []net.Conn
	t.Cleanup(func() {
		ln.Close()
		connsMu.Lock()
		for _, c := range conns {
			c.Close()
		}
		connsMu.Unlock()
		wg.Wait()
	})
	pipe := func(dst, src net.Conn, frozen *atomic.Bool) {
		defer dst.Close()
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 && !frozen.Load() {
				if _, err := dst.Write(buf[:n]); err != nil {
					return
				}
			}
			if err != nil {
				return
			}
		}
	}
	wg.Go(func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", target)
			if err != nil {
				c.Close()
				continue
			}
			connsMu.Lock()
			conns = append(conns, c, up)
			connsMu.Unlock()
			frozen := new(atomic.Bool)
			f.mu.Lock()
			f.pairs = append(f.pairs, frozen)
			f.mu.Unlock()
			wg.Go(func() { pipe(up, c, frozen) })
			wg.Go(func() { pipe(c, up, frozen) })
		}
	})
	return f
}

// freeze stops the connections carried so far.
func (f *freezer) freeze() {
	f.mu.Lock()
	defer f.mu.Unlock()
	for _, p := range f.pairs {
		p.Store(true)
	}
}
