package breaker

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"sync"
)

// errHostFailed marks, for a host's breaker, a call the host failed.
var errHostFailed = errors.New("host failed")

// Hosts is one breaker per destination host of one kind of outgoing call
// (the tenants' OpenID providers, the security-events webhook): one
// tenant's broken identity provider opens its own host's breaker, never
// another's. It reports under the kind's name alone, so that no tenant's
// host is named in metrics or /readyz: open while any host's breaker is
// open, half-open while any is half-open and none open, else closed. The
// log names the host. It is safe for concurrent use.
type Hosts struct {
	kind string
	s    Settings

	mu       sync.Mutex
	breakers map[string]*Breaker
	states   map[string]string // hosts whose breaker is not closed
	reported string
}

// NewHosts returns a group of per-host breakers of kind, each made with s
// (s.Name and s.IsFailure are set by NewHosts; s.Report receives the
// aggregate state under kind).
func NewHosts(kind string, s Settings) *Hosts {
	h := &Hosts{kind: kind, s: s, breakers: map[string]*Breaker{}, states: map[string]string{}, reported: Closed}
	if s.Report != nil {
		s.Report.Set(kind, Closed)
	}
	return h
}

// reporterFunc adapts a function to Reporter.
type reporterFunc func(name, state string)

func (f reporterFunc) Set(name, state string) { f(name, state) }

// Breaker returns host's breaker, made on first use.
func (h *Hosts) Breaker(host string) *Breaker {
	h.mu.Lock()
	b := h.breakers[host]
	h.mu.Unlock()
	if b != nil {
		return b
	}
	s := h.s
	s.Name = h.kind
	s.Attrs = append(s.Attrs[:len(s.Attrs):len(s.Attrs)], slog.String("host", host))
	s.IsFailure = func(err error) bool { return errors.Is(err, errHostFailed) }
	s.Report = reporterFunc(func(_, state string) { h.set(host, state) })
	nb := New(s)
	h.mu.Lock()
	defer h.mu.Unlock()
	if b = h.breakers[host]; b == nil {
		b = nb
		h.breakers[host] = b
	}
	return b
}

// set records host's state and reports the aggregate if it changed.
func (h *Hosts) set(host, state string) {
	h.mu.Lock()
	if state == Closed {
		delete(h.states, host)
	} else {
		h.states[host] = state
	}
	agg := Closed
	for _, st := range h.states {
		if st == Open {
			agg = Open
			break
		}
		agg = HalfOpen
	}
	changed := agg != h.reported
	h.reported = agg
	h.mu.Unlock()
	if changed && h.s.Report != nil {
		h.s.Report.Set(h.kind, agg)
	}
}

// State returns host's breaker's state.
func (h *Hosts) State(host string) string { return h.Breaker(host).State() }

// Transport returns a RoundTripper that sends each request through its
// host's breaker and then next (http.DefaultTransport if nil). A request
// whose host's breaker is open fails at once with an *OpenError; an error
// of the connection, a timeout, or a 5xx answer counts as a failure of the
// host; a request its caller cancelled counts for nothing.
func (h *Hosts) Transport(next http.RoundTripper) http.RoundTripper {
	if next == nil {
		next = http.DefaultTransport
	}
	return &transport{h: h, next: next}
}

type transport struct {
	h    *Hosts
	next http.RoundTripper
}

func (t *transport) RoundTrip(req *http.Request) (*http.Response, error) {
	done, err := t.h.Breaker(req.URL.Host).Allow()
	if err != nil {
		if req.Body != nil {
			req.Body.Close()
		}
		return nil, err
	}
	resp, err := t.next.RoundTrip(req)
	switch {
	case err != nil && errors.Is(err, context.Canceled):
		done(context.Canceled)
	case err != nil:
		done(fmt.Errorf("%w: %w", errHostFailed, err))
	case resp.StatusCode >= 500:
		done(fmt.Errorf("%w: %s answered %d", errHostFailed, req.URL.Host, resp.StatusCode))
	default:
		done(nil)
	}
	return resp, err
}
