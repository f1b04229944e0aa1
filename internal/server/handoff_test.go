package server

import (
	"context"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/syncbuf"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// TestHandoffKeepsConnections: a client keeps its connection across a
// hand-over from one server to its successor, including a frame that was
// half-sent when the hand-over happened, and never sees a close.
func TestHandoffKeepsConnections(t *testing.T) {
	old := startServer(t, defaultSettings(), store.Limits{})
	c := old.dial(t)
	c.send(pulse("/wb/t/w1", "before", 1))
	if m := c.recv(); m.Type != wire.SendPulseResponse {
		t.Fatal(m)
	}
	half := wire.AppendFrame(nil, pulse("/wb/t/w2", "across", 2))
	c.sendRaw(half[:9])
	time.Sleep(50 * time.Millisecond) // let the server read the first half

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	handed, err := old.srv.HandOver(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(handed) != 1 || len(handed[0].Pending) != 9 {
		t.Fatalf("handed %d connections, pending %v", len(handed), handed)
	}

	lb := &syncbuf.Buffer{}
	succ := New(store.New(store.Limits{}), slog.New(slog.NewTextHandler(lb, nil)), defaultSettings())
	ln, _ := net.Listen("tcp", "127.0.0.1:0")
	go succ.Serve(ln)
	defer succ.Shutdown(context.Background())
	for _, hc := range handed {
		if err := succ.TakeOver(hc); err != nil {
			t.Fatal(err)
		}
	}
	c.sendRaw(half[9:])
	if m := c.recv(); m.Type != wire.SendPulseResponse || m.ID != 2 {
		t.Fatalf("answer to the frame sent across the hand-over: %s", m)
	}
	if v, ok := succ.Store().Get("/wb/t/w2"); !ok || string(v) != "across" {
		t.Fatalf("successor store: %q %v", v, ok)
	}
	c.send(path(wire.Exists, "/wb/t/w2", 3))
	if m := c.recv(); m.Type != wire.ExistsResponse || !m.Bool {
		t.Fatalf("after hand-over: %s", m)
	}
}
