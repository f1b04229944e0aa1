package server

import (
	"bufio"
	"fmt"
	"net"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// benchRoundTrips pipelines batches of requests over one loopback
// connection and reads the answers; it reports per-request cost.
func benchRoundTrips(b *testing.B, make func(i int) *wire.Message) {
	ts := startServer(&testing.T{}, defaultSettings(), store.Limits{})
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		b.Fatal(err)
	}
	defer nc.Close()
	fr := wire.NewFrameReader(bufio.NewReaderSize(nc, 1<<20), wire.DefaultMaxFrame)
	const batch = 64
	var out []byte
	b.ReportAllocs()
	b.ResetTimer()
	for done := 0; done < b.N; {
		n := min(batch, b.N-done)
		out = out[:0]
		for i := range n {
			out = wire.AppendFrame(out, make(done+i))
		}
		if _, err := nc.Write(out); err != nil {
			b.Fatal(err)
		}
		for range n {
			if _, err := fr.Next(); err != nil {
				b.Fatal(err)
			}
		}
		done += n
	}
}

func BenchmarkSendPulse4KiB(b *testing.B) {
	details := make([]byte, 4096)
	keys := make([]string, 4000)
	for i := range keys {
		keys[i] = fmt.Sprintf("/workerbeats/topo-%d/sup-%d-6700", i%40, i)
	}
	m := &wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse, HasID: true}
	b.SetBytes(4096)
	benchRoundTrips(b, func(i int) *wire.Message {
		m.Pulse = wire.Pulse{ID: keys[i%len(keys)], Details: details}
		m.ID = int32(i % 100)
		return m
	})
}

func BenchmarkGetPulse(b *testing.B) {
	m := &wire.Message{Type: wire.GetPulse, Field: wire.FieldPath, Path: "/workerbeats/t/s-6700", HasID: true}
	benchRoundTrips(b, func(i int) *wire.Message { m.ID = int32(i % 100); return m })
}
