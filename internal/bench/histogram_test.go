package bench

import (
	"math"
	"math/rand/v2"
	"slices"
	"testing"
	"time"
)

// within reports whether got is within the histogram's error bound of want.
func within(got, want time.Duration) bool {
	return math.Abs(float64(got-want)) <= float64(want)*RelativeError+1
}

func TestHistogramQuantiles(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for _, tc := range []struct {
		name string
		gen  func() time.Duration
	}{
		{"Uniform1ms", func() time.Duration { return time.Duration(rng.Int64N(int64(time.Millisecond))) }},
		{"LogUniform1nsTo100s", func() time.Duration { return time.Duration(math.Exp(rng.Float64() * math.Log(100e9))) }},
		{"LogNormal", func() time.Duration { return time.Duration(math.Exp(rng.NormFloat64()*1.5 + 13)) }},
		{"Small", func() time.Duration { return time.Duration(rng.Int64N(300)) }},
		{"HeavyTail", func() time.Duration {
			if rng.IntN(1000) == 0 {
				return time.Duration(rng.Int64N(int64(10 * time.Second)))
			}
			return time.Duration(rng.Int64N(int64(2 * time.Millisecond)))
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			for _, n := range []int{1, 2, 7, 1000, 100_000} {
				var h Histogram
				ref := make([]time.Duration, n)
				for i := range ref {
					ref[i] = tc.gen()
					h.Record(ref[i])
				}
				slices.Sort(ref)
				if h.Count() != int64(n) {
					t.Fatalf("n=%d: Count() = %d", n, h.Count())
				}
				for _, q := range []float64{0, 0.001, 0.1, 0.5, 0.9, 0.99, 0.999, 0.9999, 1} {
					rank := max(int(math.Ceil(q*float64(n))), 1)
					want := ref[rank-1]
					if got := h.Quantile(q); !within(got, want) {
						t.Errorf("n=%d: Quantile(%v) = %v, want %v within %.2f%%", n, q, got, want, RelativeError*100)
					}
				}
				if h.Max() != ref[n-1] || h.Min() != ref[0] {
					t.Errorf("n=%d: Min, Max = %v, %v, want exactly %v, %v", n, h.Min(), h.Max(), ref[0], ref[n-1])
				}
			}
		})
	}
}

func TestHistogramMerge(t *testing.T) {
	rng := rand.New(rand.NewPCG(3, 4))
	var a, b, all Histogram
	for i := range 20_000 {
		d := time.Duration(math.Exp(rng.Float64() * math.Log(10e9)))
		all.Record(d)
		if i%3 == 0 {
			a.Record(d)
		} else {
			b.Record(d)
		}
	}
	var m Histogram // the zero value merges too
	m.Merge(&a)
	m.Merge(&b)
	m.Merge(nil)
	m.Merge(new(Histogram))
	for _, q := range []float64{0, 0.5, 0.99, 0.999, 1} {
		if got, want := m.Quantile(q), all.Quantile(q); got != want {
			t.Errorf("merged Quantile(%v) = %v, want %v as if recorded together", q, got, want)
		}
	}
	if m.Count() != all.Count() || m.Mean() != all.Mean() {
		t.Errorf("merged Count, Mean = %d, %v, want %d, %v", m.Count(), m.Mean(), all.Count(), all.Mean())
	}
}

func TestHistogramEdges(t *testing.T) {
	var h Histogram
	if h.Quantile(0.5) != 0 || h.Max() != 0 || h.Mean() != 0 {
		t.Errorf("empty histogram answers non-zero")
	}
	h.Record(-5)            // counts as zero
	h.Record(2 * time.Hour) // beyond the bucketed range: still exact as Max
	h.Record(3 * time.Millisecond)
	if got := h.Quantile(1); got != 2*time.Hour {
		t.Errorf("Quantile(1) = %v, want 2h", got)
	}
	if got := h.Quantile(0); got != 0 {
		t.Errorf("Quantile(0) = %v, want 0", got)
	}
	if got := h.Quantile(0.5); !within(got, 3*time.Millisecond) {
		t.Errorf("Quantile(0.5) = %v, want 3ms", got)
	}
}

// Every value falls in a bucket whose bounds hold it, buckets are
// contiguous, and none is wider than the error bound allows.
func TestHistogramBuckets(t *testing.T) {
	prevEnd := int64(0)
	for i := range numBuckets {
		lo, w := bucketBounds(i)
		if lo != prevEnd {
			t.Fatalf("bucket %d starts at %d, want %d (contiguous)", i, lo, prevEnd)
		}
		if lo > 0 && float64(w-1)/2 > float64(lo)*RelativeError {
			t.Fatalf("bucket %d [%d, +%d) is too wide for the error bound", i, lo, w)
		}
		for _, v := range []int64{lo, lo + w - 1} {
			if got := bucketOf(v); got != i {
				t.Fatalf("bucketOf(%d) = %d, want %d", v, got, i)
			}
		}
		prevEnd = lo + w
	}
	if prevEnd != maxValue+1 {
		t.Errorf("buckets end at %d, want %d", prevEnd, maxValue+1)
	}
}
