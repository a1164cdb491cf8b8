package observe

import (
	"slices"
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// Names of the circuit breakers around what a node depends on.
const (
	BreakerDatabase       = "database"
	BreakerRedis          = "redis"
	BreakerOIDC           = "oidc"
	BreakerSecurityEvents = "security_events"
	BreakerVault          = "vault"
)

// States of a circuit breaker, as gobreaker names them.
const (
	BreakerClosed   = "closed"
	BreakerHalfOpen = "half-open"
	BreakerOpen     = "open"
)

// Breakers holds the current state of each circuit breaker of a node, for
// /readyz, per-tenant health and the console, and exports it as the gauge
// bulkhead_breaker_state{breaker} (0 closed, 1 half-open, 2 open) and the
// counter bulkhead_breaker_transitions_total{breaker,to}. It is safe for
// concurrent use.
type Breakers struct {
	mu     sync.RWMutex
	states map[string]string

	gauge       *prometheus.GaugeVec
	transitions *prometheus.CounterVec
}

func newBreakers(reg prometheus.Registerer) *Breakers {
	b := &Breakers{
		states: map[string]string{},
		gauge: prometheus.NewGaugeVec(prometheus.GaugeOpts{
			Name: "bulkhead_breaker_state",
			Help: "State of each circuit breaker of this node: 0 closed, 1 half-open, 2 open.",
		}, []string{"breaker"}),
		transitions: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "bulkhead_breaker_transitions_total",
			Help: "Circuit breaker state changes, by breaker and the state changed to.",
		}, []string{"breaker", "to"}),
	}
	reg.MustRegister(b.gauge, b.transitions)
	return b
}

// Set records that breaker name is now in state (BreakerClosed,
// BreakerHalfOpen or BreakerOpen). The first Set of a name registers it
// without counting a transition.
func (b *Breakers) Set(name, state string) {
	b.mu.Lock()
	prev, known := b.states[name]
	b.states[name] = state
	b.mu.Unlock()
	b.gauge.WithLabelValues(name).Set(breakerValue(state))
	if known && prev != state {
		b.transitions.WithLabelValues(name, state).Inc()
	}
}

// State returns breaker name's state; a breaker never Set is closed.
func (b *Breakers) State(name string) string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	if s, ok := b.states[name]; ok {
		return s
	}
	return BreakerClosed
}

// NotClosed returns the names of the breakers that are open or half-open,
// sorted.
func (b *Breakers) NotClosed() []string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	var names []string
	for n, s := range b.states {
		if s != BreakerClosed {
			names = append(names, n)
		}
	}
	slices.Sort(names)
	return names
}

// All returns every known breaker's state by name.
func (b *Breakers) All() map[string]string {
	b.mu.RLock()
	defer b.mu.RUnlock()
	m := make(map[string]string, len(b.states))
	for n, s := range b.states {
		m[n] = s
	}
	return m
}

func breakerValue(state string) float64 {
	switch state {
	case BreakerOpen:
		return 2
	case BreakerHalfOpen:
		return 1
	}
	return 0
}
