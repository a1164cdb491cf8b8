package core

import (
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/store"
)

// BenchmarkCountRequest measures what counting a request costs the request
// path, from all CPUs at once, beside the cheapest counter there is (one
// shared atomic add) measured in the same run: compare the two.
func BenchmarkCountRequest(b *testing.B) {
	// The meter needs only the Core's clock, as New makes it.
	c := &Core{now: func() time.Time { return time.Now().UTC().Truncate(time.Microsecond) }}
	sc := &Scope{core: c, tenant: store.Tenant{ID: "01a245aa-0000-7000-8000-000000000001"}}
	b.Run("Meter", func(b *testing.B) {
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				sc.CountRequest()
			}
		})
	})
	b.Run("AtomicBaseline", func(b *testing.B) {
		var n atomic.Int64
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				n.Add(1)
			}
		})
	})
}
