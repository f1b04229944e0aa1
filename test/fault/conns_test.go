package fault

import (
	"bufio"
	"fmt"
	"net"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/procmem"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// TestHalfOpenConnections opens thousands of connections that never send a
// byte, from four loopback addresses, against a daemon whose total and
// per-peer limits they exceed. The daemon must accept exactly up to each
// limit, refuse (close) and count the rest, keep the accepted ones open
// past the frame timeout (there is no idle timeout), close those that
// start a frame and stall, and keep answering a well-behaved client.
func TestHalfOpenConnections(t *testing.T) {
	const (
		maxConns         = 2500
		maxPerPeer       = 900
		perAddress       = 1000
		slowloris        = 100
		frameTimeoutSecs = 1
	)
	peers := []string{"127.0.0.2", "127.0.0.3", "127.0.0.4", "127.0.0.5"}
	limit := raiseFileLimit(t, 1<<16)
	if need := uint64(len(peers)*perAddress + 1000); limit < need {
		t.Skipf("RLIMIT_NOFILE is %d and cannot be raised to %d (not root?)", limit, need)
	}
	p := start(t, fmt.Sprintf("pacemaker.max.connections: %d\npacemaker.max.connections.per.peer: %d\npacemaker.frame.timeout.secs: %d\n",
		maxConns, maxPerPeer, frameTimeoutSecs), nil)
	baseline(t, p.Addr(), nil)
	p.waitMetric(t, "only the well-behaved client to be left", func(m metricSet) bool { return m["pacemaker_open_connections"] == 0 })
	rssIdle := procmem.MustRSS(t, p.PID())
	s := startSteady(t, p.Addr(), nil)
	before := p.scrape(t)

	// Dial one address after the other, each sequentially, so the daemon
	// sees the connections in a known order and the counts are exact.
	// Every peer is loopback and gets loopbackReserve extra.
	t0 := time.Now()
	conns := make([][]*net.TCPConn, len(peers))
	for i, src := range peers {
		for range perAddress {
			nc, err := dialFrom(src, p.Addr())
			if err != nil {
				t.Fatalf("connect from %s after %d connections: %v (a refusal must be a close, never a failed connect)", src, len(conns[i]), err)
			}
			conns[i] = append(conns[i], nc)
		}
	}
	t.Cleanup(func() {
		for _, cs := range conns {
			for _, nc := range cs {
				nc.Close()
			}
		}
	})
	dialTime := time.Since(t0)
	attempts := float64(len(peers) * perAddress)
	m := p.waitMetric(t, "every connection to be accepted or refused", func(m metricSet) bool {
		opened := m["pacemaker_connections_opened_total"] - before["pacemaker_connections_opened_total"]
		refused := m.rejected("max connections") + m.rejected("max connections per peer") -
			before.rejected("max connections") - before.rejected("max connections per peer")
		return opened+refused >= attempts
	})
	t.Logf("%d connections from %d addresses dialed in %v", int(attempts), len(peers), dialTime.Round(time.Millisecond))

	// Which connections did the daemon refuse? Its close arrives as EOF.
	// It counts a refusal just before it closes, so a close may still be
	// on its way: probe again while more look open than the limit allows.
	open := make([][]*net.TCPConn, len(peers))
	copy(open, conns)
	for range 5 {
		n := 0
		for i := range open {
			open[i] = stillOpen(open[i])
			n += len(open[i])
		}
		if n <= maxConns+loopbackReserve-1 {
			break
		}
	}

	perPeer := maxPerPeer + loopbackReserve
	total := maxConns + loopbackReserve - 1 // the well-behaved client holds one
	want := []int{perPeer, perPeer, total - 2*perPeer, 0}
	for i, src := range peers {
		t.Logf("%s: %d accepted, %d refused", src, len(open[i]), perAddress-len(open[i]))
		if len(open[i]) != want[i] {
			t.Errorf("%s: %d connections accepted, want %d", src, len(open[i]), want[i])
		}
	}
	perPeerRefused := 2 * (perAddress - perPeer)
	totalRefused := len(peers)*perAddress - 2*perPeer - want[2] - perPeerRefused
	if got := m.rejected("max connections per peer") - before.rejected("max connections per peer"); got != float64(perPeerRefused) {
		t.Errorf("rejected_total{reason=\"max connections per peer\"} grew by %v, want %d", got, perPeerRefused)
	}
	if got := m.rejected("max connections") - before.rejected("max connections"); got != float64(totalRefused) {
		t.Errorf("rejected_total{reason=\"max connections\"} grew by %v, want %d", got, totalRefused)
	}
	if got := m["pacemaker_open_connections"]; got != float64(maxConns+loopbackReserve) {
		t.Errorf("open_connections %v, want %d", got, maxConns+loopbackReserve)
	}
	rssFull := procmem.MustRSS(t, p.PID())
	held := int64(maxConns + loopbackReserve)
	t.Logf("daemon RSS: %s idle, %s with %d connections open (%.1f KiB per connection)",
		mib(rssIdle), mib(rssFull), held, float64(rssFull-rssIdle)/float64(held)/1024)
	s.Finish(t, fmt.Sprintf("while %d connections were dialed", int(attempts)))
	// The well-behaved client's slot is free only once the daemon has seen
	// its close; a new client dialed before that would be refused.
	p.waitMetric(t, "the well-behaved client's connection to be closed", func(m metricSet) bool {
		return m["pacemaker_open_connections"] == float64(maxConns+loopbackReserve-1)
	})

	// No idle timeout: twice the frame timeout later, all are still open.
	s = startSteady(t, p.Addr(), nil)
	time.Sleep(2 * frameTimeoutSecs * time.Second)
	m = p.scrape(t)
	if got := m["pacemaker_open_connections"]; got != float64(maxConns+loopbackReserve) {
		t.Errorf("after %ds idle: open_connections %v, want %d (idle connections must never be closed)", 2*frameTimeoutSecs, got, maxConns+loopbackReserve)
	}
	if n := m.rejected("frame timeout"); n != 0 {
		t.Errorf("idle connections counted as %v frame timeouts", n)
	}

	// Slowloris: start a frame on some and stall; the daemon closes them
	// after the frame timeout, and only them.
	stalled := open[0][:slowloris]
	t0 = time.Now()
	for _, nc := range stalled {
		if _, err := nc.Write([]byte{0, 0}); err != nil {
			t.Fatal(err)
		}
	}
	p.waitMetric(t, fmt.Sprintf("%d stalled frames to time out", slowloris), func(m metricSet) bool {
		return m.rejected("frame timeout") >= slowloris
	})
	t.Logf("%d stalled frames closed %v after they started (pacemaker.frame.timeout.secs %d)",
		slowloris, time.Since(t0).Round(time.Millisecond), frameTimeoutSecs)
	m = p.waitMetric(t, "the stalled connections to be gone", func(m metricSet) bool {
		return m["pacemaker_open_connections"] == float64(maxConns+loopbackReserve-slowloris)
	})

	// Connections idle all along still answer: every one of them sends a
	// request, which also shows what an active connection costs.
	active := append(append([]*net.TCPConn{}, open[1]...), open[2]...)
	var wg sync.WaitGroup
	var failed atomic.Int64
	work := make(chan *net.TCPConn)
	for range 16 {
		wg.Go(func() {
			for nc := range work {
				_ = nc.SetDeadline(time.Now().Add(hangBound))
				_, err := nc.Write(frame(&wire.Message{Type: wire.Exists, Field: wire.FieldPath, Path: "/a", ID: 7, HasID: true}))
				var body []byte
				if err == nil {
					body, err = wire.NewFrameReader(bufio.NewReader(nc), 1<<16).Next()
				}
				var resp wire.Message
				if err == nil {
					err = wire.Decode(body, &resp)
				}
				if err != nil || resp.Type != wire.ExistsResponse || resp.MessageID() != 7 {
					if failed.Add(1) == 1 {
						t.Errorf("idle connection %s: %v %s", nc.LocalAddr(), err, resp.String())
					}
				}
				_ = nc.SetDeadline(time.Time{})
			}
		})
	}
	for _, nc := range active {
		work <- nc
	}
	close(work)
	wg.Wait()
	if n := failed.Load(); n > 0 {
		t.Fatalf("%d of %d idle connections did not answer", n, len(active))
	}
	rssActive := procmem.MustRSS(t, p.PID())
	t.Logf("daemon RSS %s after %d of the idle connections each sent a request: %.1f KiB per connection that has served a request",
		mib(rssActive), len(active), (float64(rssActive-rssFull)/float64(len(active))+float64(rssFull-rssIdle)/float64(held))/1024)
	s.Finish(t, "while connections sat idle and stalled frames timed out")

	// Closing them frees the slots: the refused address gets in again.
	for _, cs := range conns {
		for _, nc := range cs {
			nc.Close()
		}
	}
	p.waitMetric(t, "every connection to be closed", func(m metricSet) bool { return m["pacemaker_open_connections"] == 0 })
	r := dialRaw(t, peers[3], p.Addr())
	r.send(t, frame(&wire.Message{Type: wire.Exists, Field: wire.FieldPath, Path: "/a", ID: 1, HasID: true}))
	if m := r.next(t); m.Type != wire.ExistsResponse {
		t.Fatalf("after the flood: %s", m)
	}
}

// stillOpen returns the connections on which nothing arrives within 50 ms:
// those the daemon did not close.
func stillOpen(cs []*net.TCPConn) []*net.TCPConn {
	var mu sync.Mutex
	var open []*net.TCPConn
	var wg sync.WaitGroup
	work := make(chan *net.TCPConn)
	for range 64 {
		wg.Go(func() {
			buf := make([]byte, 1)
			for nc := range work {
				_ = nc.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
				if _, err := nc.Read(buf); err == nil || isDeadline(err) {
					mu.Lock()
					open = append(open, nc)
					mu.Unlock()
				}
				_ = nc.SetReadDeadline(time.Time{})
			}
		})
	}
	for _, nc := range cs {
		work <- nc
	}
	close(work)
	wg.Wait()
	return open
}

func isDeadline(err error) bool {
	ne, ok := err.(net.Error)
	return ok && ne.Timeout()
}
