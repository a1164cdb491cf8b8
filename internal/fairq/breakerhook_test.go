package fairq

import (
	"sync"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/tenant"
)

func TestBreakerOpenFunc(t *testing.T) {
	t.Parallel()
	var mu sync.Mutex
	var opened []tenant.ID
	b := setup(t, Config{Slots: 4, BreakerThreshold: 3, BreakerWindow: 10 * time.Second, BreakerCooldown: 5 * time.Second,
		BreakerOpenFunc: func(tid tenant.ID) { mu.Lock(); opened = append(opened, tid); mu.Unlock() }})
	for range 2 {
		b.mustGet(t, "a", 1, Interactive).Release(OutcomeTimeout)
	}
	b.mustGet(t, "b", 1, Interactive).Release(OutcomeTimeout)
	mu.Lock()
	if len(opened) != 0 {
		t.Fatalf("BreakerOpenFunc called for %v before any breaker opened", opened)
	}
	mu.Unlock()
	b.mustGet(t, "a", 1, Interactive).Release(OutcomeTimeout)
	// Open: more timeouts do not open it again.
	b.mustGet(t, "a", 1, Interactive).Release(OutcomeTimeout)
	mu.Lock()
	defer mu.Unlock()
	if len(opened) != 1 || opened[0] != "a" {
		t.Errorf("BreakerOpenFunc calls = %v, want [a]", opened)
	}
}
