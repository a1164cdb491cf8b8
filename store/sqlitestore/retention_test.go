package sqlitestore

import (
	"testing"

	"github.com/bulkheadhq/bulkhead/store/storetest"
	"github.com/bulkheadhq/bulkhead/tenant"
)

// BenchmarkExpireRecords reports the retention purge rate, records/s; see
// storetest.BenchExpireRecords.
func BenchmarkExpireRecords(b *testing.B) {
	for _, iso := range []tenant.Isolation{tenant.Pooled, tenant.Silo} {
		b.Run(string(iso), func(b *testing.B) {
			s, tid := benchStore(b, nil, iso, 0)
			storetest.BenchExpireRecords(b, s, tid)
		})
	}
}
