package wire_test

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

func sendPulse4KiB() *wire.Message {
	return &wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse,
		Pulse: wire.Pulse{ID: "/workerbeats/topo-1-1700000000/3a9c7c1e-1f7e-4d2c-9f0e-5b6f1c2d3e4f-6700", Details: bytes.Repeat([]byte{0x5a}, 4096)},
		ID:    42, HasID: true}
}

func nodesResponse(n int) *wire.Message {
	m := &wire.Message{Type: wire.GetAllNodesForPathResponse, Field: wire.FieldNodes, ID: 7, HasID: true}
	for i := range n {
		m.Nodes = append(m.Nodes, fmt.Sprintf("3a9c7c1e-1f7e-4d2c-9f0e-%012d-6700", i))
	}
	return m
}

func BenchmarkDecodeSendPulse(b *testing.B) {
	enc := wire.AppendMessage(nil, sendPulse4KiB())
	for _, dec := range decoders {
		b.Run(dec.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			var m wire.Message
			for b.Loop() {
				if err := dec.fn(enc, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
	b.Run("thrift", func(b *testing.B) { // Apache Thrift's Go library, for scale
		b.ReportAllocs()
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, _, err := refDecode(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
}

func BenchmarkDecodeGetAllNodesResponse100(b *testing.B) {
	enc := wire.AppendMessage(nil, nodesResponse(100))
	for _, dec := range decoders {
		b.Run(dec.name, func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(enc)))
			var m wire.Message // reused: the nodes slice keeps its capacity
			for b.Loop() {
				if err := dec.fn(enc, &m); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}

func BenchmarkAppendFrameSendPulseResponse(b *testing.B) {
	m := &wire.Message{Type: wire.SendPulseResponse, ID: 42, HasID: true}
	benchAppend(b, m)
}

func BenchmarkAppendFrameGetPulseResponse4KiB(b *testing.B) {
	m := sendPulse4KiB()
	m.Type = wire.GetPulseResponse
	benchAppend(b, m)
}

func BenchmarkAppendFrameGetAllNodesResponse100(b *testing.B) {
	benchAppend(b, nodesResponse(100))
}

func benchAppend(b *testing.B, m *wire.Message) {
	b.ReportAllocs()
	out := wire.AppendFrame(nil, m)
	b.SetBytes(int64(len(out)))
	for b.Loop() {
		out = wire.AppendFrame(out[:0], m)
	}
}

// BenchmarkFrameReader reads 4 KiB SEND_PULSE frames from a buffered stream.
func BenchmarkFrameReader(b *testing.B) {
	frame := wire.AppendFrame(nil, sendPulse4KiB())
	stream := bytes.Repeat(frame, 64)
	r := bytes.NewReader(stream)
	br := bufio.NewReaderSize(r, 64<<10)
	fr := wire.NewFrameReader(br, wire.DefaultMaxFrame)
	b.ReportAllocs()
	b.SetBytes(int64(len(frame)))
	for b.Loop() {
		if _, err := fr.Next(); err == io.EOF {
			r.Reset(stream)
			br.Reset(r)
			if _, err := fr.Next(); err != nil {
				b.Fatal(err)
			}
		} else if err != nil {
			b.Fatal(err)
		}
	}
}

// TestHotPathAllocs holds the server's hot path to zero allocations, so a
// regression fails the tests and not only a benchmark nobody reads.
func TestHotPathAllocs(t *testing.T) {
	if testing.CoverMode() != "" {
		t.Skip("coverage instrumentation allocates")
	}
	pulse := wire.AppendMessage(nil, sendPulse4KiB())
	nodes := wire.AppendMessage(nil, nodesResponse(100))
	var m wire.Message
	_ = wire.DecodeView(nodes, &m) // grow the nodes slice once
	out := make([]byte, 0, 16<<10)
	for _, tc := range []struct {
		name string
		fn   func()
	}{
		{"DecodeView SEND_PULSE 4 KiB", func() { _ = wire.DecodeView(pulse, &m) }},
		{"DecodeView GET_ALL_NODES_FOR_PATH_RESPONSE 100, reused", func() { _ = wire.DecodeView(nodes, &m) }},
		{"AppendFrame SEND_PULSE_RESPONSE", func() {
			out = wire.AppendFrame(out[:0], &wire.Message{Type: wire.SendPulseResponse, ID: 1, HasID: true})
		}},
		{"AppendFrame GET_PULSE_RESPONSE 4 KiB", func() { out = wire.AppendFrame(out[:0], sendPulseResp) }},
	} {
		if n := testing.AllocsPerRun(100, tc.fn); n != 0 {
			t.Errorf("%s: %v allocs/op, want 0", tc.name, n)
		}
	}
}

var sendPulseResp = func() *wire.Message {
	m := sendPulse4KiB()
	m.Type = wire.GetPulseResponse
	return m
}()
