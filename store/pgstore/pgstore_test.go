package pgstore

import (
	"strings"
	"sync"
	"testing"

	"github.com/bulkheadhq/bulkhead/store"
	"github.com/bulkheadhq/bulkhead/store/storetest"
)

// TestPostgresConformance runs the conformance suite against stores that
// connect as the application role, so that row-level security binds every
// statement (a superuser would pass the isolation cases vacuously).
//
// The suite's platform, lifecycle and platform-audit cases inspect the
// whole control plane (every plan, every tenant, the platform chain), so
// each gets a database of its own. The tenant-data, filter, concurrency
// and isolation cases touch only tenants they create, with fresh UUIDs, so
// each of those groups shares one database, which keeps the run short; the
// subtests stay independent.
func TestPostgresConformance(t *testing.T) {
	superURL(t)
	t.Parallel()
	var mu sync.Mutex
	shared := map[string]*testDB{}
	storetest.Run(t, func(st *testing.T) store.Store {
		var d *testDB
		switch group := strings.Split(st.Name(), "/")[1]; group {
		case "Pooled", "Silo", "Concurrency", "Isolation":
			mu.Lock()
			if d = shared[group]; d == nil {
				d = newTestDB(st, t, true)
				shared[group] = d
			}
			mu.Unlock()
		default:
			d = newTestDB(st, st, true)
		}
		return openStore(st, d, nil)
	}, storetest.Caps{})
}
