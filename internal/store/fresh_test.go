package store

import (
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

func TestWriteTimes(t *testing.T) {
	s := New(Limits{})
	now := int64(1_000_000)
	s.now = func() int64 { return now }
	puts := []struct {
		key string
		at  int64
	}{
		{"/workerbeats/t1/w1", 10},
		{"/workerbeats/t1/w2", 20},
		{"/workerbeats/t2/w1", 30},
		{"/workerbeatsx/t3/w1", 40}, // shares the prefix's letters only
		{"/other/t1/w1", 50},
		{"/workerbeats/t1/w1", 60}, // a rewrite moves the write time
	}
	for _, p := range puts {
		now = p.at
		if err := s.Put(p.key, []byte("hb")); err != nil {
			t.Fatal(err)
		}
	}
	s.Restore("/workerbeats/t2/w2", []byte("hb"), time.Unix(0, 5))

	for _, tc := range []struct {
		prefix string
		want   map[string]int64
	}{
		{"/workerbeats/", map[string]int64{
			"/workerbeats/t1/w1": 60, "/workerbeats/t1/w2": 20, "/workerbeats/t2/w1": 30, "/workerbeats/t2/w2": 5}},
		{"/workerbeats/t2/", map[string]int64{"/workerbeats/t2/w1": 30, "/workerbeats/t2/w2": 5}},
		{"/none/", map[string]int64{}},
		{"", map[string]int64{
			"/workerbeats/t1/w1": 60, "/workerbeats/t1/w2": 20, "/workerbeats/t2/w1": 30, "/workerbeats/t2/w2": 5,
			"/workerbeatsx/t3/w1": 40, "/other/t1/w1": 50}},
	} {
		got := map[string]int64{}
		s.WriteTimes(tc.prefix, func(key string, written int64) { got[key] = written })
		if !maps.Equal(got, tc.want) {
			t.Errorf("WriteTimes(%q) = %v, want %v", tc.prefix, got, tc.want)
		}
	}

	// PutAt takes the caller's time (the loop's wake-up), not the store's
	// clock, for a new key and for a rewrite alike.
	for _, at := range []int64{70, 80} {
		if err := s.PutAt("/given/t1/w1", []byte("hb"), at); err != nil {
			t.Fatal(err)
		}
		got := map[string]int64{}
		s.WriteTimes("/given/", func(key string, written int64) { got[key] = written })
		if want := map[string]int64{"/given/t1/w1": at}; !maps.Equal(got, want) {
			t.Errorf("after PutAt(…, %d): WriteTimes = %v, want %v", at, got, want)
		}
	}

	s.Delete("/workerbeats/t1/w2")
	n := 0
	s.WriteTimes("/workerbeats/t1/", func(string, int64) { n++ })
	if n != 1 {
		t.Errorf("after a delete, %d keys under /workerbeats/t1/, want 1", n)
	}
}

// TestWriteTimesWhileWriting runs the walk against writers on every shard
// (with -race, it proves the walk reads under the shards' locks).
func TestWriteTimesWhileWriting(t *testing.T) {
	s := New(Limits{})
	keys := make([]string, 2000)
	for i := range keys {
		keys[i] = stormKey(i%10, i)
		if err := s.Put(keys[i], []byte("hb")); err != nil {
			t.Fatal(err)
		}
	}
	var stop atomic.Bool
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			for i := w; !stop.Load(); i++ {
				_ = s.Put(keys[i%len(keys)], []byte("heartbeat"))
			}
		})
	}
	for range 20 {
		n := 0
		s.WriteTimes("/workerbeats/", func(string, int64) { n++ })
		if n != len(keys) {
			t.Errorf("walk saw %d keys, want %d", n, len(keys))
		}
	}
	stop.Store(true)
	wg.Wait()
}

// freshBenchKeys is the store size the freshness walk is measured at.
const freshBenchKeys = 100_000

func freshBenchStore(b *testing.B) (*Store, []string) {
	s := New(Limits{})
	keys := make([]string, freshBenchKeys)
	for i := range keys {
		keys[i] = stormKey(i/1000, i) // 100 topologies × 1,000 workers
		if err := s.Put(keys[i], make([]byte, 1382)); err != nil {
			b.Fatal(err)
		}
	}
	return s, keys
}

// BenchmarkWriteTimes is one freshness walk over 100k heartbeats, as each
// scrape of /metrics does; shard-hold-ns is the mean time one shard's lock
// is held (what a writer may wait).
func BenchmarkWriteTimes(b *testing.B) {
	s, _ := freshBenchStore(b)
	cutoff := time.Now().UnixNano()
	b.ReportAllocs()
	b.ResetTimer()
	for b.Loop() {
		late := 0
		s.WriteTimes("/workerbeats/", func(_ string, written int64) {
			if written < cutoff {
				late++
			}
		})
		if late != freshBenchKeys {
			b.Fatal(late)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/shardCount, "shard-hold-ns")
}

// BenchmarkRewriteDuringWalk is BenchmarkRewrite's steady state at 100k
// keys while another goroutine walks the store without pause (a scrape
// storm): compare its ns/op and p999-put-ns with walk=off. (A maximum
// would measure the shared machine's scheduler, not the store.)
func BenchmarkRewriteDuringWalk(b *testing.B) {
	for _, walk := range []bool{false, true} {
		name := "walk=off"
		if walk {
			name = "walk=on"
		}
		b.Run(name, func(b *testing.B) {
			s, keys := freshBenchStore(b)
			var stop atomic.Bool
			var wg sync.WaitGroup
			if walk {
				wg.Go(func() {
					for !stop.Load() {
						s.WriteTimes("/workerbeats/", func(string, int64) {})
					}
				})
			}
			val := make([]byte, 1382)
			var took []time.Duration
			b.ResetTimer()
			for i := 0; b.Loop(); i++ {
				start := time.Now()
				_ = s.Put(keys[i%len(keys)], val)
				took = append(took, time.Since(start))
			}
			b.StopTimer()
			stop.Store(true)
			wg.Wait()
			slices.Sort(took)
			b.ReportMetric(float64(took[len(took)*999/1000].Nanoseconds()), "p999-put-ns")
		})
	}
}
