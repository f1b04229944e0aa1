package server

import (
	"bufio"
	"fmt"
	"net"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/auth/digest"
	"github.com/storm-pacemaker/pacemaker/internal/handoff"
	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// serverConns returns the server's connections (for white-box checks).
func serverConns(srv *Server) []*conn {
	srv.mu.Lock()
	defer srv.mu.Unlock()
	var out []*conn
	for c := range srv.conns {
		out = append(out, c)
	}
	return out
}

// sendChunked writes b in pieces of n bytes with a pause between, so the
// server sees frames split across reads and waits.
func sendChunked(r *rawConn, b []byte, n int, pause time.Duration) {
	r.t.Helper()
	for len(b) > 0 {
		k := min(n, len(b))
		r.sendRaw(b[:k])
		b = b[k:]
		time.Sleep(pause)
	}
}

// TestLargeFramesAmongSmallOnes: frames larger than the read buffer (read
// on the blocking path by the callback loop) mixed with small ones, sent
// whole and in odd-sized pieces, are all answered in order.
func TestLargeFramesAmongSmallOnes(t *testing.T) {
	sizes := []int{10, readBufferSize + 1, 3, 100 << 10, readBufferSize - 64, 0, 2 * readBufferSize, 7}
	var burst []byte
	for i, n := range sizes {
		burst = wire.AppendFrame(burst, pulse(fmt.Sprintf("/wb/t/w%d", i), strings.Repeat(string(rune('a'+i)), n), int32(i)))
	}
	sends := []struct {
		name  string
		chunk int
		pause time.Duration
	}{
		{"one write", len(burst), 0},
		{"7001-byte pieces", 7001, 2 * time.Millisecond},
		{"5-byte pieces at first", 5, 0},
	}
	withSettings(t, func(t *testing.T, s Settings) {
		ts := startServer(t, s, store.Limits{})
		for _, send := range sends {
			t.Run(send.name, func(t *testing.T) {
				c := ts.dial(t)
				if send.chunk == 5 {
					sendChunked(c, burst[:200], 5, time.Millisecond)
					c.sendRaw(burst[200:])
				} else {
					sendChunked(c, burst, send.chunk, send.pause)
				}
				for i := range sizes {
					if m := c.recv(); m.Type != wire.SendPulseResponse || m.ID != int32(i) {
						t.Fatalf("answer %d: %s", i, m)
					}
				}
				for i, n := range sizes {
					v, ok := ts.srv.Store().Get(fmt.Sprintf("/wb/t/w%d", i))
					if !ok || len(v) != n || (n > 0 && v[n-1] != byte('a'+i)) {
						t.Fatalf("stored %d: %d bytes, found %v", i, len(v), ok)
					}
				}
				c.send(path(wire.GetPulse, "/wb/t/w4", 99))
				if m := c.recv(); m.ID != 99 || len(m.Pulse.Details) != sizes[4] {
					t.Fatalf("read back: %s", m)
				}
			})
		}
	})
}

// TestEachFrameGetsItsOwnTimeout: the frame timeout runs from when a frame
// starts, so a stream whose frames each arrive within it is served even
// when it stays mid-frame for longer in all; a large frame that stalls is
// closed like a small one.
func TestEachFrameGetsItsOwnTimeout(t *testing.T) {
	withSettings(t, func(t *testing.T, s Settings) {
		// Each frame takes 600 ms of a 1 s timeout; both together, 1.2 s.
		s.FrameTimeout = time.Second
		ts := startServer(t, s, store.Limits{})
		c := ts.dial(t)
		f1 := wire.AppendFrame(nil, pulse("/a", "first", 1))
		f2 := wire.AppendFrame(nil, pulse("/b", "second", 2))
		c.sendRaw(f1[:6])
		time.Sleep(600 * time.Millisecond)
		c.sendRaw(append(f1[6:len(f1):len(f1)], f2[:7]...))
		if m := c.recv(); m.ID != 1 {
			t.Fatalf("first: %s", m)
		}
		time.Sleep(600 * time.Millisecond)
		c.sendRaw(f2[7:])
		if m := c.recv(); m.ID != 2 {
			t.Fatalf("second: %s", m)
		}
		if strings.Contains(ts.log.String(), "frame stalled") {
			t.Fatalf("a frame that arrived in time was timed out:\n%s", ts.log.String())
		}

		big := wire.AppendFrame(nil, pulse("/big", strings.Repeat("x", 100<<10), 3))
		stalled := ts.dial(t)
		stalled.sendRaw(big[:50<<10])
		stalled.expectClosed()
		waitLog(t, ts, "frame stalled")
		c.send(path(wire.Exists, "/a", 4))
		if m := c.recv(); m.ID != 4 || !m.Bool {
			t.Fatalf("other connection after the stall: %s", m)
		}
	})
}

// TestEndOfStreamWithTheLastBytes: a FIN that arrives together with the
// last bytes raises no further readiness event; the callback loop must
// still see it at once (TCP_INQ), whether it ends a whole request (the
// client half-closes and waits for the answer and the close) or cuts a
// frame short.
func TestEndOfStreamWithTheLastBytes(t *testing.T) {
	withSettings(t, func(t *testing.T, s Settings) {
		ts := startServer(t, s, store.Limits{})
		whole := ts.dial(t)
		whole.sendRaw(append(wire.AppendFrame(nil, pulse("/a", "x", 1)), wire.AppendFrame(nil, path(wire.Exists, "/a", 2))...))
		_ = whole.nc.(*net.TCPConn).CloseWrite()
		for id := int32(1); id <= 2; id++ {
			if m := whole.recv(); m.ID != id {
				t.Fatalf("answer %d: %s", id, m)
			}
		}
		_ = whole.nc.SetReadDeadline(time.Now().Add(time.Second))
		whole.expectClosed()

		for _, step := range []int{1, 3} {
			cut := ts.dial(t)
			f := wire.AppendFrame(nil, pulse("/b", "cut short", 3))
			sendChunked(cut, f[:len(f)-2], step, time.Millisecond)
			_ = cut.nc.(*net.TCPConn).CloseWrite()
			_ = cut.nc.SetReadDeadline(time.Now().Add(time.Second))
			cut.expectClosed()
		}
		waitLog(t, ts, "in the middle of a frame")

		// Deterministically: the request and the FIN are both queued before
		// the server sees the socket at all (adopted, as after a hand-over).
		ln, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		defer ln.Close()
		client, err := net.Dial("tcp", ln.Addr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer client.Close()
		sc, err := ln.Accept()
		if err != nil {
			t.Fatal(err)
		}
		if _, err := client.Write(wire.AppendFrame(nil, path(wire.Exists, "/a", 4))); err != nil {
			t.Fatal(err)
		}
		_ = client.(*net.TCPConn).CloseWrite()
		time.Sleep(20 * time.Millisecond)
		f, err := sc.(*net.TCPConn).File()
		sc.Close()
		if err != nil {
			t.Fatal(err)
		}
		if err := ts.srv.TakeOver(handoff.Conn{File: f, Peer: "test"}); err != nil {
			t.Fatal(err)
		}
		adopted := &rawConn{t: t, nc: client, fr: wire.NewFrameReader(bufio.NewReader(client), wire.DefaultMaxFrame)}
		_ = client.SetReadDeadline(time.Now().Add(time.Second))
		if m := adopted.recv(); m.ID != 4 {
			t.Fatalf("adopted: %s", m)
		}
		adopted.expectClosed()
	})
}

// handshake runs DIGEST-MD5 over r as Storm's client does.
func handshake(t *testing.T, r *rawConn, mech auth.ClientMechanism) {
	t.Helper()
	ex, err := mech.NewClientExchange("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Start(); err != nil {
		t.Fatal(err)
	}
	r.send(wire.NewControl(wire.ControlSaslRequest))
	for {
		m := r.recv()
		if m.Type == wire.ControlMessage {
			if code, err := wire.ParseControl(m); err != nil || code != wire.ControlSaslComplete {
				t.Fatalf("control %d %v", code, err)
			}
			return
		}
		tok, err := wire.ParseSaslToken(m)
		if err != nil {
			t.Fatalf("during the handshake: %s: %v", m, err)
		}
		resp, err := ex.Step(tok)
		if err != nil {
			t.Fatal(err)
		}
		if resp != nil {
			r.send(wire.NewSaslToken(resp))
		}
	}
}

// TestSASLHandshake: DIGEST-MD5 handshake frames, a read after it, a
// failed handshake and a handshake that stalls past its deadline.
func TestSASLHandshake(t *testing.T) {
	secret := digest.SecretFromCredentials("storm", "secret")
	withSettings(t, func(t *testing.T, s Settings) {
		s.Method, s.Mechanism = auth.Digest, digest.NewMechanism(secret)
		s.HandshakeTimeout = 300 * time.Millisecond
		ts := startServer(t, s, store.Limits{})
		ts.srv.Store().Put("/wb/t/w", []byte("beat"))

		c := ts.dial(t)
		c.send(path(wire.GetPulse, "/wb/t/w", 1))
		if m := c.recv(); m.Type != wire.NotAuthorized {
			t.Fatalf("read before authenticating: %s", m)
		}
		waitLog(t, ts, `msg="read refused: not authenticated" peer=`)
		handshake(t, c, digest.NewClientMechanism(secret, "topo"))
		time.Sleep(2 * s.HandshakeTimeout) // the handshake deadline is gone
		c.send(path(wire.GetPulse, "/wb/t/w", 2))
		if m := c.recv(); m.Type != wire.GetPulseResponse || string(m.Pulse.Details) != "beat" {
			t.Fatalf("read after authenticating: %s", m)
		}
		waitLog(t, ts, "client authenticated")
		waitLog(t, ts, "identity=topo ") // the name, not its base64 (dG9wbw==)

		wrong := ts.dial(t)
		wrong.send(wire.NewControl(wire.ControlSaslRequest))
		ex, _ := digest.NewClientMechanism(digest.SecretFromCredentials("storm", "wrong"), "topo").NewClientExchange("")
		resp, err := ex.Step(mustToken(t, wrong.recv()))
		if err != nil {
			t.Fatal(err)
		}
		wrong.send(wire.NewSaslToken(resp))
		wrong.expectClosed()
		waitLog(t, ts, "authentication failed")

		slow := ts.dial(t)
		slow.send(wire.NewControl(wire.ControlSaslRequest))
		mustToken(t, slow.recv())
		slow.expectClosed()
		waitLog(t, ts, "authentication handshake timed out")
	})
}

func mustToken(t *testing.T, m *wire.Message) []byte {
	t.Helper()
	tok, err := wire.ParseSaslToken(m)
	if err != nil {
		t.Fatalf("want a SASL token, got %s: %v", m, err)
	}
	return tok
}

// TestShutdownDuringPipelinedTraffic: a client that never stops sending
// cannot hold up Shutdown or a hand-over, and every request it gets an
// answer to was stored.
func TestShutdownDuringPipelinedTraffic(t *testing.T) {
	for _, handoff := range []bool{false, true} {
		name := "shutdown"
		if handoff {
			name = "handoff"
		}
		t.Run(name, func(t *testing.T) {
			withSettings(t, func(t *testing.T, s Settings) {
				ts := startServer(t, s, store.Limits{})
				c := ts.dial(t)
				var burst []byte
				for i := range int32(64) {
					burst = wire.AppendFrame(burst, pulse(fmt.Sprintf("/wb/t/w%d", i), "x", i))
				}
				stop := make(chan struct{})
				var wg sync.WaitGroup
				wg.Add(1)
				go func() { // write until the server stops taking it
					defer wg.Done()
					for {
						select {
						case <-stop:
							return
						default:
						}
						if _, err := c.nc.Write(burst); err != nil {
							return
						}
					}
				}()
				answered := 0
				for range 500 {
					c.recv()
					answered++
				}
				handed := stopServer(t, ts.srv, handoff)
				close(stop)
				for _, hc := range handed {
					hc.File.Close()
				}
				if handoff && len(handed) != 1 {
					t.Fatalf("handed over %d connections", len(handed))
				}
				c.nc.Close()
				wg.Wait()
			})
		})
	}
}
