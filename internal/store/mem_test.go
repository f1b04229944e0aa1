package store

import (
	"fmt"
	"math/rand/v2"
	"runtime"
	"testing"
)

// stormKey is a worker heartbeat key shaped like Storm's:
// /workerbeats/<topology-id>/<supervisor-uuid>-<port>.
func stormKey(topology, worker int) string {
	r := rand.New(rand.NewPCG(uint64(worker), uint64(topology)))
	return fmt.Sprintf("/workerbeats/bench-topology-%d-1700000000/%08x-%04x-4%03x-%04x-%012x-%d",
		topology+1, r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff, 0x8000|r.Uint32()&0x3fff,
		r.Uint64()&0xffffffffffff, 6700+worker%4)
}

// heapAfterGC returns the live heap and the heap's spans in use (live
// objects plus their size-class rounding and span tails) after a collection.
func heapAfterGC() (alloc, inuse uint64) {
	var ms runtime.MemStats
	runtime.GC()
	runtime.GC()
	runtime.ReadMemStats(&ms)
	return ms.HeapAlloc, ms.HeapInuse
}

// BenchmarkFillStormHeap stores 1 M Storm-shaped heartbeats (1,000
// topologies × 1,000 workers, 1,382-byte values, as bench --mode fill does)
// and reports the live heap per key after a collection: "heap-B/key" is
// everything, "overhead-B/key" is that minus the value bytes themselves, and
// "inuse-overhead-B/key" counts whole spans (what the process holds).
// Run alone: go test -run '^$' -bench FillStormHeap -benchtime 1x ./internal/store/
func BenchmarkFillStormHeap(b *testing.B) {
	const topologies, workers, valueSize = 1000, 1000, 1382
	keys := topologies * workers
	if testing.Short() {
		keys = 100_000
	}
	value := make([]byte, valueSize)
	for b.Loop() {
		baseAlloc, baseInuse := heapAfterGC()
		s := New(Limits{})
		for i := range keys {
			if err := s.Put(stormKey(i/workers, i%workers), value); err != nil {
				b.Fatal(err)
			}
		}
		// Nimbus lists every topology, so any per-directory listing cache is
		// part of the steady state.
		for t := range topologies {
			s.Children(fmt.Sprintf("/workerbeats/bench-topology-%d-1700000000", t+1))
		}
		alloc, inuse := heapAfterGC()
		perKey := func(n uint64) float64 { return float64(n) / float64(keys) }
		b.ReportMetric(perKey(alloc-baseAlloc), "heap-B/key")
		b.ReportMetric(perKey(alloc-baseAlloc)-valueSize, "overhead-B/key")
		b.ReportMetric(perKey(inuse-baseInuse)-valueSize, "inuse-overhead-B/key")
		runtime.KeepAlive(s)
	}
}
