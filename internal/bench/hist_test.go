package bench

import (
	"math/rand/v2"
	"sync"
	"testing"
	"time"
)

func TestBucketBounds(t *testing.T) {
	tests := []struct {
		name string
		v    uint64
	}{
		{"zero", 0},
		{"one", 1},
		{"last exact", subBuckets - 1},
		{"first shared", subBuckets},
		{"microsecond", 1000},
		{"odd", 123457},
		{"millisecond", 1_000_000},
		{"second", 1_000_000_000},
		{"minute", 60_000_000_000},
		{"largest", 1<<maxExponent - 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := bucketOf(tt.v)
			if b < 0 || b >= bucketCount {
				t.Fatalf("bucketOf(%d) = %d, outside [0,%d)", tt.v, b, bucketCount)
			}
			hi := bucketHigh(b)
			if hi < tt.v {
				t.Fatalf("bucketHigh(%d) = %d < value %d", b, hi, tt.v)
			}
			if tt.v > 0 && float64(hi-tt.v)/float64(tt.v) > 1.0/subBuckets {
				t.Fatalf("value %d reported as %d: error above 1/%d", tt.v, hi, subBuckets)
			}
			if bucketOf(hi) != b {
				t.Fatalf("bucketHigh(%d) = %d maps to bucket %d", b, hi, bucketOf(hi))
			}
		})
	}
}

func TestBucketsMonotonic(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	prev := uint64(0)
	for range 10000 {
		v := prev + uint64(rng.Int64N(1<<20))
		if v >= 1<<maxExponent {
			break
		}
		if bucketOf(v) < bucketOf(prev) {
			t.Fatalf("bucketOf(%d) = %d < bucketOf(%d) = %d", v, bucketOf(v), prev, bucketOf(prev))
		}
		prev = v
	}
}

func TestQuantiles(t *testing.T) {
	h := NewHistogram()
	// 1 ms … 1000 ms, once each.
	for i := 1; i <= 1000; i++ {
		h.Record(time.Duration(i) * time.Millisecond)
	}
	tests := []struct {
		q    float64
		want time.Duration
	}{
		{0, time.Millisecond},
		{0.5, 500 * time.Millisecond},
		{0.9, 900 * time.Millisecond},
		{0.99, 990 * time.Millisecond},
		{0.999, 999 * time.Millisecond},
		{1, 1000 * time.Millisecond},
	}
	for _, tt := range tests {
		got := h.Quantile(tt.q)
		if got < tt.want || float64(got-tt.want) > float64(tt.want)/subBuckets {
			t.Errorf("Quantile(%v) = %v, want %v (within 1/%d above)", tt.q, got, tt.want, subBuckets)
		}
	}
	if h.Count() != 1000 || h.Min() != time.Millisecond || h.Max() != time.Second {
		t.Errorf("count %d min %v max %v", h.Count(), h.Min(), h.Max())
	}
	if m := h.Mean(); m != 500500*time.Microsecond {
		t.Errorf("mean %v, want 500.5ms", m)
	}
}

func TestHistogramEmptyAndNegative(t *testing.T) {
	h := NewHistogram()
	if h.Quantile(0.99) != 0 || h.Max() != 0 || h.Min() != 0 || h.Mean() != 0 {
		t.Fatal("empty histogram reports values")
	}
	h.Record(-time.Second)
	if h.Max() != 0 || h.Count() != 1 {
		t.Fatalf("negative recorded as %v (count %d), want 0", h.Max(), h.Count())
	}
	s := h.Summary()
	if s.Count != 1 || s.P99 != 0 {
		t.Fatalf("summary %+v", s)
	}
}

func TestMerge(t *testing.T) {
	a, b := NewHistogram(), NewHistogram()
	for i := range 100 {
		a.Record(time.Duration(i+1) * time.Microsecond)
		b.Record(time.Duration(i+101) * time.Microsecond)
	}
	a.Merge(b)
	a.Merge(NewHistogram())
	if a.Count() != 200 || a.Min() != time.Microsecond || a.Max() != 200*time.Microsecond {
		t.Fatalf("merged: count %d min %v max %v", a.Count(), a.Min(), a.Max())
	}
	if q := a.Quantile(0.5); q < 100*time.Microsecond || q > 101*time.Microsecond {
		t.Fatalf("merged median %v", q)
	}
}

func TestHistogramConcurrent(t *testing.T) {
	h := NewHistogram()
	var wg sync.WaitGroup
	for g := range 8 {
		wg.Go(func() {
			for i := range 1000 {
				h.Record(time.Duration(g*1000+i) * time.Microsecond)
			}
		})
	}
	wg.Wait()
	if h.Count() != 8000 || h.Max() != 7999*time.Microsecond || h.Min() != 0 {
		t.Fatalf("count %d min %v max %v", h.Count(), h.Min(), h.Max())
	}
}
