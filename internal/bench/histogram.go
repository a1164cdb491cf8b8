package bench

import (
	"math"
	"math/bits"
	"time"
)

// The histogram is log-linear, as in HdrHistogram: values below 2·subCount
// nanoseconds get a bucket each; above that every power of two is split into
// subCount equal buckets, so a bucket is never wider than 1/subCount of its
// lower bound. Quantiles report a bucket's midpoint, which is within
// 1/(2·subCount) ≈ 0.4% of every value the bucket holds.
const (
	subBits  = 7
	subCount = 1 << subBits // 128
	// maxValue bounds what is recorded (about 18 minutes); larger values
	// count in the last bucket, and Max still reports them exactly.
	maxValue   = 1<<40 - 1
	numBuckets = 2*subCount + (40-subBits-1-1)*subCount + subCount
)

// RelativeError is the largest relative difference between a quantile the
// Histogram reports and the exact quantile of the values it recorded.
const RelativeError = 1.0 / (2 * subCount)

// Histogram records durations with bounded relative error and answers
// quantiles over them. Its zero value is empty and ready to use. A Histogram
// is not safe for concurrent use; merge per-goroutine histograms instead.
type Histogram struct {
	counts []uint64
	n      uint64
	sum    float64
	min    int64
	max    int64
}

func bucketOf(v int64) int {
	if v < 0 {
		v = 0
	}
	if v > maxValue {
		v = maxValue
	}
	u := uint64(v)
	if u < 2*subCount {
		return int(u)
	}
	e := bits.Len64(u) - (subBits + 1) // u>>e lies in [subCount, 2·subCount)
	return 2*subCount + (e-1)*subCount + int(u>>e) - subCount
}

// bucketBounds returns the smallest value of bucket i and its width.
func bucketBounds(i int) (lo, width int64) {
	if i < 2*subCount {
		return int64(i), 1
	}
	e := (i-2*subCount)/subCount + 1
	m := (i-2*subCount)%subCount + subCount
	return int64(m) << e, 1 << e
}

// Record adds one duration. Negative durations count as zero.
func (h *Histogram) Record(d time.Duration) {
	v := int64(d)
	if v < 0 {
		v = 0
	}
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
	}
	h.counts[bucketOf(v)]++
	if h.n == 0 || v < h.min {
		h.min = v
	}
	if v > h.max {
		h.max = v
	}
	h.n++
	h.sum += float64(v)
}

// Merge adds every value o recorded to h. o is unchanged.
func (h *Histogram) Merge(o *Histogram) {
	if o == nil || o.n == 0 {
		return
	}
	if h.counts == nil {
		h.counts = make([]uint64, numBuckets)
	}
	for i, c := range o.counts {
		h.counts[i] += c
	}
	if h.n == 0 || o.min < h.min {
		h.min = o.min
	}
	h.max = max(h.max, o.max)
	h.n += o.n
	h.sum += o.sum
}

// Count returns the number of values recorded.
func (h *Histogram) Count() int64 { return int64(h.n) }

// Max returns the largest value recorded, exactly; zero when empty.
func (h *Histogram) Max() time.Duration { return time.Duration(h.max) }

// Min returns the smallest value recorded, exactly; zero when empty.
func (h *Histogram) Min() time.Duration { return time.Duration(h.min) }

// Mean returns the mean of the values recorded; zero when empty.
func (h *Histogram) Mean() time.Duration {
	if h.n == 0 {
		return 0
	}
	return time.Duration(h.sum / float64(h.n))
}

// Quantile returns the value at quantile q (0 ≤ q ≤ 1): the value of rank
// ⌈q·n⌉ among the n values in ascending order (rank 1 for q = 0), within
// RelativeError. It is exact for q = 0 and q = 1, and zero when empty.
func (h *Histogram) Quantile(q float64) time.Duration {
	if h.n == 0 {
		return 0
	}
	rank := uint64(math.Ceil(q * float64(h.n)))
	rank = max(rank, 1)
	if rank >= h.n {
		return time.Duration(h.max)
	}
	if rank == 1 {
		return time.Duration(h.min)
	}
	var seen uint64
	for i, c := range h.counts {
		seen += c
		if seen >= rank {
			lo, w := bucketBounds(i)
			v := lo + (w-1)/2
			return time.Duration(min(max(v, h.min), h.max))
		}
	}
	return time.Duration(h.max)
}

// Summary returns the usual quantiles of h.
func (h *Histogram) Summary() Latency {
	return Latency{
		Count:  h.Count(),
		P50Ms:  ms(h.Quantile(0.50)),
		P90Ms:  ms(h.Quantile(0.90)),
		P99Ms:  ms(h.Quantile(0.99)),
		P999Ms: ms(h.Quantile(0.999)),
		MaxMs:  ms(h.Max()),
		MeanMs: ms(h.Mean()),
	}
}

// Latency summarises a Histogram for reports: the count, quantiles, maximum
// and mean, in milliseconds rounded to the microsecond.
type Latency struct {
	Count  int64   `json:"count"`
	P50Ms  float64 `json:"p50_ms"`
	P90Ms  float64 `json:"p90_ms"`
	P99Ms  float64 `json:"p99_ms"`
	P999Ms float64 `json:"p999_ms"`
	MaxMs  float64 `json:"max_ms"`
	MeanMs float64 `json:"mean_ms"`
}

func ms(d time.Duration) float64 { return math.Round(float64(d)/1e3) / 1e3 }
