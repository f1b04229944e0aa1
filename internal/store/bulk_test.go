package store

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"
)

// keyShapes are the key forms a client may write, each with a DELETE_PATH
// that removes them all.
var keyShapes = []struct {
	name string
	key  func(i int) string
	path string
}{
	{"canonical", func(i int) string { return fmt.Sprintf("/t/d%03d/k%d", i%100, i) }, "/t"},
	{"one directory", func(i int) string { return fmt.Sprintf("/t/k%d", i) }, "/t"},
	{"no leading slash", func(i int) string { return fmt.Sprintf("x/%08d", i) }, "x"},
	{"trailing slash", func(i int) string { return fmt.Sprintf("/t/k%d/", i) }, "/t"},
	{"double slash", func(i int) string { return fmt.Sprintf("/t//k%d", i) }, "/t"},
	{"whole store", func(i int) string { return fmt.Sprintf("/t%d/k%d", i%7, i) }, "/"},
}

// keys returns every indexed key.
func (x *index) keys() []string {
	x.mu.RLock()
	defer x.mu.RUnlock()
	var out []string
	for key := range x.bare {
		out = append(out, key)
	}
	x.root.walk("", func(key string) { out = append(out, key) })
	return out
}

// checkConsistent fails unless the index lists exactly the stored keys and
// the counters match them.
func checkConsistent(t *testing.T, s *Store) {
	t.Helper()
	var keys []string
	var bytes int64
	_ = s.Snapshot(func(k string, v []byte, _ time.Time) error {
		keys = append(keys, k)
		bytes += Cost(k, v)
		return nil
	})
	inIndex := s.idx.keys()
	slices.Sort(keys)
	slices.Sort(inIndex)
	if !slices.Equal(keys, inIndex) {
		t.Fatalf("map has %d keys, index %d", len(keys), len(inIndex))
	}
	if s.Keys() != int64(len(keys)) || s.Bytes() != bytes {
		t.Fatalf("counters say %d keys, %d bytes; the map holds %d, %d", s.Keys(), s.Bytes(), len(keys), bytes)
	}
}

// TestBulkDeleteEveryShape: DELETE_PATH removes every key shape, leaves the
// rest, and compacts each shard at most once (no dying value is copied).
func TestBulkDeleteEveryShape(t *testing.T) {
	const n = 20000
	for _, sh := range keyShapes {
		t.Run(sh.name, func(t *testing.T) {
			s := New(Limits{})
			value := make([]byte, 1000)
			for i := range n {
				if err := s.Put(sh.key(i), value); err != nil {
					t.Fatal(err)
				}
			}
			if sh.path != "/" {
				_ = s.Put("/other/k", value)
			}
			before := compactions(s)
			if got := s.DeletePath(sh.path); got != n {
				t.Fatalf("DeletePath(%q) removed %d keys, want %d", sh.path, got, n)
			}
			if c := compactions(s) - before; c > shardCount {
				t.Errorf("%d compactions for one delete; want at most one per shard (%d)", c, shardCount)
			}
			if got := s.Children(sh.path); len(got) != 0 {
				t.Errorf("Children(%q) = %d names after the delete", sh.path, len(got))
			}
			checkConsistent(t, s)
		})
	}
}

func compactions(s *Store) int {
	n := 0
	for i := range s.shards {
		s.shards[i].mu.Lock()
		n += s.shards[i].compactions
		s.shards[i].mu.Unlock()
	}
	return n
}

// TestBulkDeleteUnderConcurrentWrites: keys written below a path while it
// is deleted either survive or go, but index and map always agree (run
// with -race).
func TestBulkDeleteUnderConcurrentWrites(t *testing.T) {
	s := New(Limits{})
	for i := range 20000 {
		_ = s.Put(fmt.Sprintf("/t/d%d/k%d", i%50, i), []byte("v"))
	}
	var wg sync.WaitGroup
	stop := make(chan struct{})
	for w := range 2 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				key := fmt.Sprintf("/t/d%d/k%d", i%50, i%3000)
				if (i+w)%3 == 0 {
					s.Delete(key)
				} else {
					_ = s.Put(key, []byte("w"))
				}
				s.Children("/t")
			}
		})
	}
	for range 20 {
		s.DeletePath("/t")
		s.DeletePath("/t/d7")
	}
	close(stop)
	wg.Wait()
	checkConsistent(t, s)
	s.DeletePath("/")
	checkConsistent(t, s)
	if s.Keys() != 0 {
		t.Fatalf("%d keys left after deleting /", s.Keys())
	}
}

// TestSweepCompactsOnce: a sweep that expires most keys compacts each
// shard at most once and keeps what was rewritten.
func TestSweepCompactsOnce(t *testing.T) {
	s, expire := sweepStore()
	fillTopo(s, 20000, 50)
	expire()
	value := make([]byte, 1024)
	for i := range 100 {
		_ = s.Put(fmt.Sprintf("/t/d%d/k%d", i%50, i), value)
	}
	before := compactions(s)
	if got := s.Sweep(); got != 19900 {
		t.Fatalf("Sweep dropped %d keys, want 19900", got)
	}
	if c := compactions(s) - before; c > shardCount {
		t.Errorf("%d compactions for one sweep; want at most one per shard", c)
	}
	checkConsistent(t, s)
}

// BenchmarkDeletePath deletes 100,000 keys of each shape with one
// DeletePath: every shape must cost about the same.
func BenchmarkDeletePath(b *testing.B) {
	const n = 100000
	value := make([]byte, 1024)
	for _, sh := range keyShapes {
		b.Run(sh.name, func(b *testing.B) {
			s := New(Limits{})
			for b.Loop() {
				b.StopTimer()
				for i := range n {
					_ = s.Put(sh.key(i), value)
				}
				b.StartTimer()
				if got := s.DeletePath(sh.path); got != n {
					b.Fatalf("removed %d", got)
				}
			}
			b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/key")
		})
	}
}

// fillTopo stores n keys of 1 KiB under /t, in dirs directories.
func fillTopo(s *Store, n, dirs int) {
	value := make([]byte, 1024)
	for i := range n {
		_ = s.Put(fmt.Sprintf("/t/d%d/k%d", i%dirs, i), value)
	}
}

// sweepStore is a store with a one-minute TTL and a clock the caller moves
// past it with expire.
func sweepStore() (s *Store, expire func()) {
	s = New(Limits{})
	now := int64(1_000_000_000_000)
	s.now = func() int64 { return now }
	s.SetTTL(time.Minute)
	return s, func() { now += int64(2 * time.Minute) }
}

// BenchmarkSweep expires 100,000 keys of 1 KiB with one sweep.
func BenchmarkSweep(b *testing.B) {
	const n = 100000
	s, expire := sweepStore()
	for b.Loop() {
		b.StopTimer()
		fillTopo(s, n, 100)
		expire()
		b.StartTimer()
		if got := s.Sweep(); got != n {
			b.Fatalf("dropped %d", got)
		}
	}
	b.ReportMetric(float64(b.Elapsed().Nanoseconds())/float64(b.N)/n, "ns/key")
}

// stallProbe measures, while fn runs, the longest a reader and a writer of
// other keys waited for one operation: a bulk delete must let them through
// between its batches.
func stallProbe(b *testing.B, s *Store, fn func()) {
	const probes = 64
	for i := range probes {
		_ = s.Put(fmt.Sprintf("/probe/k%d", i), []byte("v"))
	}
	stop := make(chan struct{})
	var worst time.Duration
	var mu sync.Mutex
	var wg sync.WaitGroup
	for w := range 2 {
		wg.Go(func() {
			var mine time.Duration
			for i := 0; ; i++ {
				select {
				case <-stop:
					mu.Lock()
					worst = max(worst, mine)
					mu.Unlock()
					return
				default:
				}
				key := fmt.Sprintf("/probe/k%d", i%probes)
				t0 := time.Now()
				if w == 0 {
					s.Get(key)
				} else {
					_ = s.Put(key, []byte("w"))
				}
				mine = max(mine, time.Since(t0))
				time.Sleep(50 * time.Microsecond)
			}
		})
	}
	fn()
	close(stop)
	wg.Wait()
	b.ReportMetric(float64(worst.Microseconds())/1000, "max-stall-ms")
}

// BenchmarkDeletePathStall deletes 200,000 keys of 1 KiB while two other
// clients read and write: it reports the longest they waited.
func BenchmarkDeletePathStall(b *testing.B) {
	s := New(Limits{})
	for b.Loop() {
		b.StopTimer()
		fillTopo(s, 200000, 200)
		b.StartTimer()
		stallProbe(b, s, func() { s.DeletePath("/t") })
	}
}

// BenchmarkSweepStall expires 200,000 keys of 1 KiB while two other clients
// read and write: it reports the longest they waited.
func BenchmarkSweepStall(b *testing.B) {
	s, expire := sweepStore()
	for b.Loop() {
		b.StopTimer()
		fillTopo(s, 200000, 200)
		expire()
		b.StartTimer()
		stallProbe(b, s, func() { s.Sweep() })
	}
}
