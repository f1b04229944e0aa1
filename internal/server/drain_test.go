package server

import (
	"context"
	"errors"
	"fmt"
	"github.com/storm-pacemaker/pacemaker/internal/handoff"
	"io"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// stopServer stops srv, by a hand-over or a plain stop, failing t when that
// does not end within a bound that tells a hang from slowness.
func stopServer(t *testing.T, srv *Server, handOver bool) []handoff.Conn {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	var handed []handoff.Conn
	var err error
	if handOver {
		handed, err = srv.HandOver(ctx)
	} else {
		err = srv.Shutdown(ctx)
	}
	if err != nil {
		t.Fatalf("handoff %v: %v", handOver, err)
	}
	return handed
}

// TestStopAnswersQueuedRequests: requests waiting in the socket's receive
// queue when the server stops are answered, and then the connection is
// closed cleanly (a stop) or passed on with nothing pending (a hand-over).
// The request path is wedged first, so the requests wait unread in the
// kernel when the stop begins.
func TestStopAnswersQueuedRequests(t *testing.T) {
	const queued = 50
	for _, handoff := range []bool{false, true} {
		t.Run(fmt.Sprintf("handoff=%v", handoff), func(t *testing.T) {
			ts := startServer(t, defaultSettings(), store.Limits{})
			c := ts.dial(t)
			for deadline := time.Now().Add(10 * time.Second); ts.srv.OpenConns() == 0; {
				if time.Now().After(deadline) {
					t.Fatal("connection not accepted")
				}
				time.Sleep(time.Millisecond)
			}
			ts.srv.Wedge()
			// The reader answers this one and then waits at the wedge, or
			// already waits there; either way the burst after it stays in
			// the kernel, unread.
			c.send(pulse("/wb/t/w", "first", 0))
			time.Sleep(50 * time.Millisecond)
			var burst []byte
			for i := range int32(queued) {
				burst = wire.AppendFrame(burst, pulse(fmt.Sprintf("/wb/t/w%d", i), "x", i+1))
			}
			c.sendRaw(burst)
			time.Sleep(50 * time.Millisecond)

			handed := stopServer(t, ts.srv, handoff)
			for i := range int32(queued + 1) {
				if m := c.recv(); m.Type != wire.SendPulseResponse || m.ID != i {
					t.Fatalf("answer %d: %v", i, m)
				}
			}
			if handoff {
				if len(handed) != 1 || len(handed[0].Pending) != 0 {
					t.Fatalf("handed %d connections, pending %v", len(handed), handed)
				}
				handed[0].File.Close()
			}
			if _, err := c.fr.Next(); !errors.Is(err, io.EOF) {
				t.Fatalf("after the answers: %v; want a clean close", err)
			}
		})
	}
}
