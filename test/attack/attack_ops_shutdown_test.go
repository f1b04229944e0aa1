package attack

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// TestShutdownAnswersQueuedRequests: requests that have fully arrived in
// the sockets' receive queues when SIGTERM comes are answered before the
// connections close, and so are those of clients still waiting in the
// listener's accept queue; no client sees a reset. The daemon's test switch
// wedges its request path first, so the requests are certain to wait in
// the kernel, unread, when the signal arrives.
func TestShutdownAnswersQueuedRequests(t *testing.T) {
	const conns, backlog, queued = 40, 10, 25
	p := daemon.Start(t, daemon.Options{Args: []string{"--test-wedge-on-sigusr2"}})
	type client struct {
		nc *net.TCPConn
		fr *wire.FrameReader
	}
	req := func(i, id int) []byte {
		return wire.AppendFrame(nil, &wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse,
			Pulse: wire.Pulse{ID: fmt.Sprintf("/shutdown/c%d", i), Details: []byte("beat")}, ID: int32(id), HasID: true})
	}
	cs := make([]client, conns)
	for i := range cs {
		nc, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		cs[i] = client{nc: nc.(*net.TCPConn), fr: wire.NewFrameReader(bufio.NewReader(nc), wire.DefaultMaxFrame)}
	}
	if !p.WaitLog(fmt.Sprintf("connection opened\" peer=%s", cs[conns-1].nc.LocalAddr()), hangBound) {
		t.Fatal("the daemon did not accept every connection")
	}
	if err := p.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	if !p.WaitLog("wedging", hangBound) {
		t.Fatal("the daemon did not wedge")
	}
	for i, c := range cs {
		// Each reader answers this one and then waits at the wedge, or
		// already waits there; either way the burst after it stays in the
		// kernel, unread.
		_ = c.nc.SetDeadline(time.Now().Add(hangBound))
		if _, err := c.nc.Write(req(i, 0)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(100 * time.Millisecond)
	// More clients connect while the accept loop is wedged: they wait in
	// the listener's accept queue, their requests in their own sockets.
	for range backlog {
		nc, err := net.Dial("tcp", p.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
		cs = append(cs, client{nc: nc.(*net.TCPConn), fr: wire.NewFrameReader(bufio.NewReader(nc), wire.DefaultMaxFrame)})
		_ = nc.SetDeadline(time.Now().Add(hangBound))
	}
	want := make([]int, len(cs))
	for i, c := range cs {
		var burst []byte
		for id := 1; id <= queued; id++ {
			burst = append(burst, req(i, id)...)
		}
		if i < conns {
			want[i] = queued + 1
		} else {
			want[i] = queued
		}
		if _, err := c.nc.Write(burst); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(200 * time.Millisecond) // on the wire, into the receive queues
	t0 := time.Now()
	if err := p.Signal(syscall.SIGTERM); err != nil {
		t.Fatal(err)
	}
	var mu sync.Mutex
	answered, resets, lost := 0, 0, 0
	var wg sync.WaitGroup
	for i, c := range cs {
		wg.Go(func() {
			n := 0
			var err error
			for {
				if _, err = c.fr.Next(); err != nil {
					break
				}
				n++
			}
			mu.Lock()
			defer mu.Unlock()
			answered += n
			lost += want[i] - n
			if !errors.Is(err, io.EOF) {
				resets++
				if resets == 1 {
					t.Logf("first connection error: %v", err)
				}
			}
		})
	}
	wg.Wait()
	code := p.Wait(hangBound)
	t.Logf("RESULT shutdown with %d x %d requests queued: %d answered, %d lost, %d connections ended by an error (reset) instead of a close; exit %d after %v",
		len(cs), queued, answered, lost, resets, code, time.Since(t0).Round(time.Millisecond))
	if lost > 0 || resets > 0 {
		t.Errorf("%d queued requests lost, %d connections reset", lost, resets)
	}
	if code != 0 {
		t.Errorf("exit code %d", code)
	}
}
