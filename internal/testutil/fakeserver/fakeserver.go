// Package fakeserver is a Pacemaker server for tests that answers as the
// test says: a real TCP listener on loopback speaking the wire protocol
// (frames and HBMessage), with crafted answers — a hostile or broken
// server that the real one would never be.
package fakeserver

import (
	"bufio"
	"net"
	"sync"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// Answer returns the answer to req (its ID is set by the server); nil
// closes the connection.
type Answer func(req *wire.Message) *wire.Message

// Start serves answer on a loopback port until the test ends and returns
// the address.
func Start(t testing.TB, answer Answer) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	conns := map[net.Conn]struct{}{}
	t.Cleanup(func() {
		ln.Close()
		mu.Lock()
		for c := range conns {
			c.Close()
		}
		mu.Unlock()
		wg.Wait()
	})
	wg.Go(func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns[nc] = struct{}{}
			mu.Unlock()
			wg.Go(func() { serve(nc, answer) })
		}
	})
	return ln.Addr().String()
}

func serve(nc net.Conn, answer Answer) {
	defer nc.Close()
	br := bufio.NewReaderSize(nc, 64<<10)
	fr := wire.NewFrameReader(br, wire.DefaultMaxFrame)
	w := bufio.NewWriterSize(nc, 64<<10)
	var out []byte
	for {
		body, err := fr.Next()
		if err != nil {
			return
		}
		req := new(wire.Message)
		if err := wire.Decode(body, req); err != nil {
			return
		}
		resp := answer(req)
		if resp == nil {
			return
		}
		resp.ID, resp.HasID = req.MessageID(), true
		out = wire.AppendFrame(out[:0], resp)
		if _, err := w.Write(out); err != nil {
			return
		}
		if br.Buffered() == 0 { // answer a pipelined burst in one write
			if err := w.Flush(); err != nil {
				return
			}
		}
	}
}

// Nodes is a GET_ALL_NODES_FOR_PATH answer.
func Nodes(names ...string) *wire.Message {
	return &wire.Message{Type: wire.GetAllNodesForPathResponse, Field: wire.FieldNodes, Nodes: names}
}

// NoPulse is a GET_PULSE answer for a missing key.
func NoPulse(path string) *wire.Message {
	return &wire.Message{Type: wire.GetPulseResponse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: path}}
}
