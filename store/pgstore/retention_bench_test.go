package pgstore

import (
	"testing"

	"github.com/bulkheadhq/bulkhead/store/storetest"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// BenchmarkExpireRecords reports the retention purge rate, records/s; see
// storetest.BenchExpireRecords.
func BenchmarkExpireRecords(b *testing.B) {
	superURL(b)
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		b.Run(string(iso), func(b *testing.B) {
			s, tid := benchStore(b, iso, 0)
			storetest.BenchExpireRecords(b, s, tid)
		})
	}
}
