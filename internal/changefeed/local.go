package changefeed

import "context"

// Local is the Feed of a single node: Publish delivers to its own
// subscribers only, and it is always live. It serves the embedded SQLite
// deployment, where one process owns the data.
type Local struct {
	hub *hub
}

var _ Feed = (*Local)(nil)

// NewLocal returns a Local feed. Close releases its goroutine.
func NewLocal() *Local { return &Local{hub: newHub()} }

// Publish queues e for this node's subscribers and returns at once.
func (l *Local) Publish(ctx context.Context, e Event) error {
	if _, err := encode(e); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return err
	}
	if !l.Live() {
		return ErrClosed
	}
	l.hub.post(e)
	return nil
}

// Subscribe implements Feed.
func (l *Local) Subscribe(fn func(Event)) (cancel func()) { return l.hub.subscribe(fn) }

// Live reports true until Close.
func (l *Local) Live() bool {
	l.hub.mu.Lock()
	defer l.hub.mu.Unlock()
	return !l.hub.closed
}

// Close implements Feed.
func (l *Local) Close() error {
	l.hub.close()
	return nil
}

// Unlinked is the Feed of a node that shares data with others it is not
// linked to (or could not link to): it delivers this node's own events, like
// Local, but is never live, so that a node caches nothing for long on its
// word.
type Unlinked struct{ *Local }

var _ Feed = Unlinked{}

// NewUnlinked returns an Unlinked feed. Close releases its goroutine.
func NewUnlinked() Unlinked { return Unlinked{NewLocal()} }

// Live reports false: the node cannot learn of other nodes' changes.
func (Unlinked) Live() bool { return false }
