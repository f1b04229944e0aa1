package server

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"errors"
	"io"
	"log/slog"
	"net"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/syncbuf"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

type testServer struct {
	srv  *Server
	addr string
	log  *syncbuf.Buffer
}

func defaultSettings() Settings {
	return Settings{Method: auth.None, MaxFrame: wire.DefaultMaxFrame, FrameTimeout: 30 * time.Second,
		HandshakeTimeout: 30 * time.Second, MaxConns: 1000, MaxConnsPerPeer: 1000}
}

// withSettings runs test with the default settings.
func withSettings(t *testing.T, test func(t *testing.T, s Settings)) {
	t.Helper()
	test(t, defaultSettings())
}

func startServer(t *testing.T, s Settings, limits store.Limits) *testServer {
	t.Helper()
	lb := &syncbuf.Buffer{}
	log := slog.New(slog.NewTextHandler(lb, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv := New(store.New(limits), log, s)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	for srv.Listening() == 0 {
		time.Sleep(time.Millisecond)
	}
	t.Cleanup(func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
	})
	return &testServer{srv: srv, addr: ln.Addr().String(), log: lb}
}

type rawConn struct {
	t  *testing.T
	nc net.Conn
	fr *wire.FrameReader
}

func (ts *testServer) dial(t *testing.T) *rawConn {
	t.Helper()
	nc, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return &rawConn{t: t, nc: nc, fr: wire.NewFrameReader(bufio.NewReader(nc), wire.DefaultMaxFrame)}
}

func (r *rawConn) send(m *wire.Message) {
	r.t.Helper()
	if _, err := r.nc.Write(wire.AppendFrame(nil, m)); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) sendRaw(b []byte) {
	r.t.Helper()
	if _, err := r.nc.Write(b); err != nil {
		r.t.Fatal(err)
	}
}

func (r *rawConn) recv() *wire.Message {
	r.t.Helper()
	body, err := r.fr.Next()
	if err != nil {
		r.t.Fatalf("recv: %v", err)
	}
	var m wire.Message
	if err := wire.Decode(body, &m); err != nil {
		r.t.Fatal(err)
	}
	return &m
}

// expectClosed waits for the server to close the connection.
func (r *rawConn) expectClosed() {
	r.t.Helper()
	_, err := r.fr.Next()
	if !errors.Is(err, io.EOF) && !errors.Is(err, io.ErrUnexpectedEOF) && !isReset(err) {
		r.t.Fatalf("want the server to close, got %v", err)
	}
}

func isReset(err error) bool { return err != nil && strings.Contains(err.Error(), "reset") }

func path(t wire.MessageType, p string, id int32) *wire.Message {
	return &wire.Message{Type: t, Field: wire.FieldPath, Path: p, ID: id, HasID: true}
}

func pulse(id string, details string, mid int32) *wire.Message {
	return &wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: id, Details: []byte(details)}, ID: mid, HasID: true}
}

func TestEveryRequestType(t *testing.T) {
	withSettings(t, func(t *testing.T, s Settings) {
		ts := startServer(t, s, store.Limits{})
		c := ts.dial(t)
		steps := []struct {
			req  *wire.Message
			want *wire.Message
		}{
			{pulse("/wb/t1/a:1", "one", 0), &wire.Message{Type: wire.SendPulseResponse, ID: 0, HasID: true}},
			{pulse("/wb/t1/b:2", "", 1), &wire.Message{Type: wire.SendPulseResponse, ID: 1, HasID: true}},
			{pulse("/wb/t2/c:3", "three", 2), &wire.Message{Type: wire.SendPulseResponse, ID: 2, HasID: true}},
			{path(wire.GetPulse, "/wb/t1/a:1", 3), &wire.Message{Type: wire.GetPulseResponse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: "/wb/t1/a:1", Details: []byte("one")}, ID: 3, HasID: true}},
			{path(wire.GetPulse, "/wb/t1/b:2", 4), &wire.Message{Type: wire.GetPulseResponse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: "/wb/t1/b:2", Details: []byte{}}, ID: 4, HasID: true}},
			{path(wire.GetPulse, "/wb/nope", 5), &wire.Message{Type: wire.GetPulseResponse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: "/wb/nope"}, ID: 5, HasID: true}},
			{path(wire.Exists, "/wb/t1/a:1", 6), &wire.Message{Type: wire.ExistsResponse, Field: wire.FieldBool, Bool: true, ID: 6, HasID: true}},
			{path(wire.Exists, "/wb/t1", 7), &wire.Message{Type: wire.ExistsResponse, Field: wire.FieldBool, Bool: false, ID: 7, HasID: true}},
			{path(wire.CreatePath, "/wb/t9", 8), &wire.Message{Type: wire.CreatePathResponse, ID: 8, HasID: true}},
			{path(wire.GetAllPulseForPath, "/wb", 9), &wire.Message{Type: wire.GetAllPulseForPathResponse, ID: 9, HasID: true}},
			{path(wire.GetAllNodesForPath, "/wb", 10), &wire.Message{Type: wire.GetAllNodesForPathResponse, Field: wire.FieldNodes, Nodes: []string{"t1", "t2"}, ID: 10, HasID: true}},
			{path(wire.GetAllNodesForPath, "/wb/t1", 11), &wire.Message{Type: wire.GetAllNodesForPathResponse, Field: wire.FieldNodes, Nodes: []string{"a:1", "b:2"}, ID: 11, HasID: true}},
			{path(wire.GetAllNodesForPath, "/none", 12), &wire.Message{Type: wire.GetAllNodesForPathResponse, Field: wire.FieldNodes, Nodes: []string{}, ID: 12, HasID: true}},
			{path(wire.DeletePulseID, "/wb/t1/a:1", 13), &wire.Message{Type: wire.DeletePulseIDResponse, ID: 13, HasID: true}},
			{path(wire.Exists, "/wb/t1/a:1", 14), &wire.Message{Type: wire.ExistsResponse, Field: wire.FieldBool, Bool: false, ID: 14, HasID: true}},
			{path(wire.DeletePath, "/wb/t1", 15), &wire.Message{Type: wire.DeletePathResponse, ID: 15, HasID: true}},
			{path(wire.GetAllNodesForPath, "/wb", 16), &wire.Message{Type: wire.GetAllNodesForPathResponse, Field: wire.FieldNodes, Nodes: []string{"t2"}, ID: 16, HasID: true}},
			// No message_id: Storm answers with its default, -1.
			{&wire.Message{Type: wire.CreatePath, Field: wire.FieldPath, Path: "/x"}, &wire.Message{Type: wire.CreatePathResponse, ID: -1, HasID: true}},
			// An answer type sent as a request: answered NOT_AUTHORIZED, connection kept.
			{&wire.Message{Type: wire.SendPulseResponse, ID: 17, HasID: true}, &wire.Message{Type: wire.NotAuthorized, ID: 17, HasID: true}},
		}
		for i, s := range steps {
			c.send(s.req)
			got := c.recv()
			if got.Field == wire.FieldNodes {
				slices.Sort(got.Nodes)
			}
			if !bytes.Equal(wire.AppendMessage(nil, got), wire.AppendMessage(nil, s.want)) {
				t.Fatalf("step %d %s:\n got %s\nwant %s", i, s.req, got, s.want)
			}
		}
	})
}

func TestPipelinedBurstAnsweredInOrder(t *testing.T) {
	withSettings(t, func(t *testing.T, s Settings) {
		ts := startServer(t, s, store.Limits{})
		c := ts.dial(t)
		var burst []byte
		for i := range int32(100) {
			burst = wire.AppendFrame(burst, pulse("/wb/t/w", strings.Repeat("x", int(i)), i))
		}
		c.sendRaw(burst)
		for i := range int32(100) {
			if m := c.recv(); m.Type != wire.SendPulseResponse || m.ID != i {
				t.Fatalf("answer %d: %s", i, m)
			}
		}
	})
}

// TestBadInputClosesOnlyThatConnection: every kind of malformed input costs
// its own connection, is logged with the peer, and leaves others served.
func TestBadInputClosesOnlyThatConnection(t *testing.T) {
	withSettings(t, func(t *testing.T, s Settings) {
		frame := func(body []byte) []byte {
			return append([]byte{byte(len(body) >> 24), byte(len(body) >> 16), byte(len(body) >> 8), byte(len(body))}, body...)
		}
		unhex := func(s string) []byte { b, _ := hex.DecodeString(s); return b }
		tests := []struct {
			name string
			send []byte
			log  string
		}{
			{"truncated thrift body", frame(unhex("0800010000000a0c00020b0001000000ff")), "malformed frame"},
			{"unknown enum value", frame(unhex("08000100000063" + "00")), "unknown message type 99"},
			{"wrong field type for data", frame(unhex("080001000000040b000200000000" + "00")), "SEND_PULSE without a pulse"},
			{"pulse without details", frame(wire.AppendMessage(nil, &wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: "/a"}})), "without a pulse with details"},
			{"read without path", frame(wire.AppendMessage(nil, &wire.Message{Type: wire.GetPulse})), "GET_PULSE without a path"},
			{"SASL request on a NONE server", wire.AppendFrame(nil, wire.NewControl(wire.ControlSaslRequest)), "auth.method NONE"},
			{"SASL token on a NONE server", wire.AppendFrame(nil, wire.NewSaslToken([]byte("x"))), "auth.method NONE"},
			{"negative length", []byte{0xff, 0xff, 0xff, 0xf0}, "frame length out of range"},
			{"huge length", []byte{0x7f, 0xff, 0xff, 0xff}, "frame length out of range"},
			{"garbage", []byte("GET / HTTP/1.1\r\nHost: x\r\n\r\n"), "frame length out of range"},
			{"trailing bytes after message", frame(append(wire.AppendMessage(nil, path(wire.Exists, "/a", 1)), 0, 0)), "malformed frame"},
		}
		ts := startServer(t, s, store.Limits{})
		good := ts.dial(t)
		for _, tt := range tests {
			t.Run(tt.name, func(t *testing.T) {
				bad := ts.dial(t)
				bad.sendRaw(tt.send)
				bad.expectClosed()
				good.send(path(wire.Exists, "/still-serving", 1))
				if m := good.recv(); m.Type != wire.ExistsResponse {
					t.Fatalf("good connection got %s", m)
				}
				deadline := time.Now().Add(2 * time.Second)
				for !strings.Contains(ts.log.String(), tt.log) && time.Now().Before(deadline) {
					time.Sleep(10 * time.Millisecond)
				}
				if l := ts.log.String(); !strings.Contains(l, tt.log) || !strings.Contains(l, "peer=127.0.0.1:") {
					t.Fatalf("log lacks %q with the peer:\n%s", tt.log, l)
				}
			})
		}
	})
}

func TestTruncatedFrameAtEOF(t *testing.T) {
	withSettings(t, func(t *testing.T, s Settings) {
		ts := startServer(t, s, store.Limits{})
		c := ts.dial(t)
		f := wire.AppendFrame(nil, pulse("/a", "hello", 1))
		c.sendRaw(f[:len(f)-3])
		_ = c.nc.(*net.TCPConn).CloseWrite()
		c.expectClosed()
		waitLog(t, ts, "in the middle of a frame")
	})
}

func waitLog(t *testing.T, ts *testServer, s string) {
	t.Helper()
	deadline := time.Now().Add(3 * time.Second)
	for !strings.Contains(ts.log.String(), s) {
		if time.Now().After(deadline) {
			t.Fatalf("log lacks %q:\n%s", s, ts.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestStalledFrameTimesOutIdleDoesNot: a frame that started must finish
// within the frame timeout, but an idle connection is never closed.
func TestStalledFrameTimesOutIdleDoesNot(t *testing.T) {
	withSettings(t, func(t *testing.T, s Settings) {
		s.FrameTimeout = 300 * time.Millisecond
		ts := startServer(t, s, store.Limits{})
		idle := ts.dial(t)
		stalled := ts.dial(t)
		stalled.sendRaw([]byte{0, 0, 0, 40, 8})
		stalled.expectClosed()
		waitLog(t, ts, "frame stalled")
		time.Sleep(2 * s.FrameTimeout)
		idle.send(path(wire.Exists, "/a", 5))
		if m := idle.recv(); m.Type != wire.ExistsResponse || m.ID != 5 {
			t.Fatalf("idle connection: %s", m)
		}
	})
}

func TestConnectionLimits(t *testing.T) {
	withSettings(t, func(t *testing.T, s Settings) {
		s.MaxConnsPerPeer = 2
		ts := startServer(t, s, store.Limits{})
		// Loopback peers get loopbackReserve extra connections.
		var conns []*rawConn
		for range 2 + loopbackReserve {
			c := ts.dial(t)
			c.send(path(wire.Exists, "/a", 1))
			c.recv()
			conns = append(conns, c)
		}
		over := ts.dial(t)
		over.expectClosed()
		waitLog(t, ts, "max connections per peer")
		conns[0].nc.Close()
		deadline := time.Now().Add(3 * time.Second)
		for ts.srv.OpenConns() > 1+loopbackReserve && time.Now().Before(deadline) {
			time.Sleep(10 * time.Millisecond)
		}
		again := ts.dial(t)
		again.send(path(wire.Exists, "/a", 2))
		if m := again.recv(); m.ID != 2 {
			t.Fatalf("after a close: %s", m)
		}
	})
}

func TestStoreLimitAnswersNotAuthorized(t *testing.T) {
	withSettings(t, func(t *testing.T, s Settings) {
		ts := startServer(t, s, store.Limits{MaxKeys: 1})
		c := ts.dial(t)
		c.send(pulse("/a", "x", 1))
		if m := c.recv(); m.Type != wire.SendPulseResponse {
			t.Fatalf("first: %s", m)
		}
		c.send(pulse("/b", "x", 2))
		if m := c.recv(); m.Type != wire.NotAuthorized || m.ID != 2 {
			t.Fatalf("over the key limit: %s", m)
		}
		waitLog(t, ts, "reason=\"max keys\"")
		c.send(pulse("/a", "rewrite", 3))
		if m := c.recv(); m.Type != wire.SendPulseResponse {
			t.Fatalf("rewrite at the limit: %s", m)
		}
	})
}

func TestShutdownAnswersWhatWasReceived(t *testing.T) {
	withSettings(t, func(t *testing.T, s Settings) {
		ts := startServer(t, s, store.Limits{})
		c := ts.dial(t)
		c.send(pulse("/a", "x", 1))
		c.recv()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := ts.srv.Shutdown(ctx); err != nil {
			t.Fatal(err)
		}
		c.expectClosed()
		if _, err := net.DialTimeout("tcp", ts.addr, time.Second); err == nil {
			t.Fatal("still accepting after Shutdown")
		}
	})
}

func TestHealthAndWedge(t *testing.T) {
	withSettings(t, func(t *testing.T, s Settings) {
		ts := startServer(t, s, store.Limits{})
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		if err := ts.srv.Health(ctx); err != nil {
			t.Fatalf("healthy server: %v", err)
		}
		ts.srv.Wedge()
		ctx2, cancel2 := context.WithTimeout(context.Background(), 500*time.Millisecond)
		defer cancel2()
		if err := ts.srv.Health(ctx2); err == nil {
			t.Fatal("wedged server passed its health check")
		}
	})
}
