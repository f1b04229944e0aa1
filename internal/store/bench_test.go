package store

import (
	"fmt"
	"testing"
)

// BenchmarkRewrite is the steady state: every worker rewrites its own key,
// with Storm's 4-executor and a 4 KiB heartbeat.
func BenchmarkRewrite(b *testing.B) {
	for _, size := range []int{1382, 4096} {
		b.Run(fmt.Sprint(size), func(b *testing.B) {
			s := New(Limits{})
			keys := make([]string, 4000)
			for i := range keys {
				keys[i] = fmt.Sprintf("/workerbeats/topo-%d/sup-%d-%d", i%50, i, 6700+i%4)
				_ = s.Put(keys[i], make([]byte, size))
			}
			val := make([]byte, size)
			b.ReportAllocs()
			b.SetBytes(int64(len(val)))
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				i := 0
				for pb.Next() {
					_ = s.Put(keys[i%len(keys)], val)
					i++
				}
			})
		})
	}
}

// BenchmarkChildren lists a 1,000-worker topology among 1M keys.
func BenchmarkChildren(b *testing.B) {
	s := New(Limits{})
	for i := range 1_000_000 {
		_ = s.Put(fmt.Sprintf("/workerbeats/topo-%d/sup-%d-6700", i/1000, i%1000), []byte{1})
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; b.Loop(); i++ {
		if n := len(s.Children(fmt.Sprintf("/workerbeats/topo-%d", i%1000))); n != 1000 {
			b.Fatal(n)
		}
	}
}
