package audit

import (
	"context"
	"fmt"
	"testing"

	"github.com/bulkheadhq/bulkhead/store"
)

func BenchmarkHash(b *testing.B) {
	e := &store.AuditEntry{Seq: 123456, Time: testEpoch, Actor: "user:0192f0a4-0000-7000-8000-000000000001",
		Action: "record.update", Resource: "record:notes/0192f0a4-0000-7000-8000-0000000000aa",
		RequestID: "0192f0a4-0000-7000-8000-0000000000bb", Outcome: Success, PrevHash: make([]byte, 32)}
	b.ReportAllocs()
	for b.Loop() {
		Hash(TenantChain(tenantA), e)
	}
}

// BenchmarkAppend measures Append against the in-memory fake: hashing, and
// signing at every CheckpointEvery-th entry. Store cost is not included.
func BenchmarkAppend(b *testing.B) {
	for _, every := range []int{DefaultCheckpointEvery, 1} {
		b.Run(fmt.Sprintf("CheckpointEvery=%d", every), func(b *testing.B) {
			ctx := context.Background()
			l := New(Config{SigningKey: testKey(1), CheckpointEvery: every, NowFunc: testClock()})
			tx := newFakeAuditTx(tenantA)
			ev := testEvent(1)
			b.ReportAllocs()
			for b.Loop() {
				if _, err := l.Append(ctx, tx, TenantChain(tx.Tenant()), ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

// BenchmarkVerify verifies a chain of 1,000 entries with 10 checkpoints per
// op, read from the in-memory fake.
func BenchmarkVerify(b *testing.B) {
	bb := setup(b, 1000)
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		r, err := bb.log.Verify(ctx, bb.chain, TenantChain(bb.chain.Tenant()))
		if err != nil || !r.OK {
			b.Fatalf("Verify = %+v, %v", r, err)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/1000, "ns/entry")
}
