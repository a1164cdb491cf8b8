package ratelimit

import (
	"context"
	"fmt"
	"runtime"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bulkheadhq/bulkhead/tenant"
)

// benchTenant returns a tenant ID shaped like the real ones (canonical UUID
// text, 36 bytes).
func benchTenant(i int) tenant.ID {
	return tenant.ID(fmt.Sprintf("0192%04x-%04x-7000-8000-%012x", i>>16, i&0xffff, i))
}

func benchKeys(n int, actors bool) []Key {
	keys := make([]Key, n)
	for i := range keys {
		keys[i] = Key{Owner: string(benchTenant(i))}
		if actors {
			keys[i].Actor = fmt.Sprintf("0193%04x-0000-7000-8000-%012x", i&0xffff, i)
		}
	}
	return keys
}

// benchLimit admits every request, like a tenant within its plan (a denial
// costs the same work).
// The burst is never exhausted and the buckets never refill, so no bucket is
// evicted and reinserted during the run.
var benchLimit = Limit{Rate: 100, Burst: 1 << 40}

func BenchmarkLocalAllow(b *testing.B) {
	l := NewLocal()
	keys := benchKeys(1000, false)
	ctx := context.Background()
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		l.Allow(ctx, keys[i%len(keys)], benchLimit)
		i++
	}
}

func BenchmarkLocalAllowParallel(b *testing.B) {
	l := NewLocal()
	keys := benchKeys(1000, false)
	ctx := context.Background()
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1)) * 7919
		for pb.Next() {
			l.Allow(ctx, keys[i%len(keys)], benchLimit)
			i++
		}
	})
}

// BenchmarkLocalAdmitParallel is the per-request call: tenant and credential
// buckets together.
func BenchmarkLocalAdmitParallel(b *testing.B) {
	l := NewLocal()
	keys := benchKeys(1000, true)
	ctx := context.Background()
	ls := Limits{Tenant: benchLimit, Actor: benchLimit}
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1)) * 7919
		for pb.Next() {
			l.Admit(ctx, keys[i%len(keys)], ls)
			i++
		}
	})
}

// BenchmarkLocalAllowParallelOneTenant is the flood: every goroutine on one
// tenant's bucket, one shard mutex.
func BenchmarkLocalAllowParallelOneTenant(b *testing.B) {
	l := NewLocal()
	key := Key{Owner: string(benchTenant(0))}
	ctx := context.Background()
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			l.Allow(ctx, key, Limit{Rate: 10, Burst: 20})
		}
	})
}

func BenchmarkInflight(b *testing.B) {
	var f Inflight
	keys := benchKeys(1000, false)
	b.ReportAllocs()
	i := 0
	for b.Loop() {
		if s, ok := f.Acquire(tenant.ID(keys[i%len(keys)].Owner), 8); ok {
			s.Release()
		}
		i++
	}
}

func BenchmarkInflightParallel(b *testing.B) {
	var f Inflight
	keys := benchKeys(1000, false)
	var seq atomic.Int64
	b.ReportAllocs()
	b.ResetTimer()
	b.RunParallel(func(pb *testing.PB) {
		i := int(seq.Add(1)) * 7919
		for pb.Next() {
			if s, ok := f.Acquire(tenant.ID(keys[i%len(keys)].Owner), 8); ok {
				s.Release()
			}
			i++
		}
	})
}

func BenchmarkRedisAllow(b *testing.B) {
	c := redisTestClient(b)
	r := newTestRedis(b, RedisConfig{Client: c, Prefix: testPrefix(b, c)}) // 10s: measure Redis, not the fallback
	keys := benchKeys(1000, true)
	ctx := context.Background()
	b.Run("Serial", func(b *testing.B) {
		b.ReportAllocs()
		i := 0
		for b.Loop() {
			r.Allow(ctx, keys[i%len(keys)], benchLimit)
			i++
		}
	})
	b.Run("AdmitParallel", func(b *testing.B) {
		ls := Limits{Tenant: benchLimit, Actor: benchLimit}
		var seq atomic.Int64
		b.ReportAllocs()
		b.ResetTimer()
		b.RunParallel(func(pb *testing.PB) {
			i := int(seq.Add(1)) * 7919
			for pb.Next() {
				r.Admit(ctx, keys[i%len(keys)], ls)
				i++
			}
		})
	})
	if f := r.Fallbacks(); f > 0 {
		b.Logf("%d decisions fell back to Local", f)
	}
}

// BenchmarkLocalMemoryPerKey reports the heap held per idle bucket after
// 100,000 tenants each made one request (B/key), with a credential bucket
// each too (B/tenant+actor), and what is left after they refill and are
// swept (B/key-after-sweep). It measures once; b.N is ignored.
func BenchmarkLocalMemoryPerKey(b *testing.B) {
	const n = 100_000
	for _, actors := range []bool{false, true} {
		name, unit := "TenantOnly", "B/key"
		if actors {
			name, unit = "TenantAndActor", "B/tenant+actor"
		}
		b.Run(name, func(b *testing.B) {
			keys := benchKeys(n, actors) // the caller's strings: not counted
			l, clock := newFakeLocal()
			ctx := context.Background()
			ls := Limits{Tenant: Limit{Rate: 10, Burst: 20}, Actor: Limit{Rate: 5, Burst: 10}}
			before := heapInUse()
			for _, k := range keys {
				l.Admit(ctx, k, ls)
			}
			after := heapInUse()
			clock.Advance(time.Hour)
			l.Sweep()
			swept := heapInUse()
			runtime.KeepAlive(keys)
			if l.Len() != 0 {
				b.Fatalf("Len() = %d after sweep, want 0", l.Len())
			}
			for b.Loop() {
			}
			b.ReportMetric(float64(after-before)/n, unit)
			b.ReportMetric(float64(swept-before)/n, unit+"-after-sweep")
		})
	}
}

func heapInUse() int64 {
	runtime.GC()
	runtime.GC()
	var ms runtime.MemStats
	runtime.ReadMemStats(&ms)
	return int64(ms.HeapAlloc)
}
