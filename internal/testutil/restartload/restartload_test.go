package restartload

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/server"
	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// serve runs a real server over st on addr ("127.0.0.1:0": a free port)
// and returns its address and a stop that shuts it down (closing every
// connection and the port); the test's end stops it too.
func serve(t *testing.T, st *store.Store, addr string) (string, func()) {
	t.Helper()
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	srv := server.New(st, slog.New(slog.DiscardHandler), server.Settings{Method: auth.None, MaxFrame: wire.DefaultMaxFrame,
		FrameTimeout: 30 * time.Second, HandshakeTimeout: 30 * time.Second, MaxConns: 1000, MaxConnsPerPeer: 1000})
	done := make(chan struct{})
	go func() { _ = srv.Serve(ln); close(done) }()
	stop := func() {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = srv.Shutdown(ctx)
		<-done
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func options(addr string, workers int, reconnect bool) Options {
	return Options{
		Dial: func() (Conn, error) {
			c, err := client.Dial(context.Background(), addr, client.Options{DialTimeout: 5 * time.Second})
			if err != nil {
				return nil, err
			}
			return Client{Conn: c}, nil
		},
		Workers:     workers,
		Reconnect:   reconnect,
		WorkerBeat:  func(w, n int) (string, string) { return fmt.Sprintf("/t/w%d/k%d", w, n), fmt.Sprintf("w%d-%d", w, n) },
		NewBeat:     func(n int) (string, string) { return fmt.Sprintf("/t/new/k%d", n), fmt.Sprintf("new-%d", n) },
		WorkerPause: 2 * time.Millisecond,
		NewPause:    5 * time.Millisecond,
	}
}

// waitFor polls cond until it holds, failing the test after 10 s.
func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("no %s within 10 s", what)
		}
	}
}

// TestSteadyLoad: against a server that stays up nothing fails, every
// acknowledged write reads back, and a key nobody wrote counts as lost.
func TestSteadyLoad(t *testing.T) {
	addr, _ := serve(t, store.New(store.Limits{}), "127.0.0.1:0")
	l := Start(t, options(addr, 3, true))
	waitFor(t, "writes and new connections", func() bool { return l.writes.Load() >= 30 && l.newConns.Load() >= 5 })
	n := l.Finish()
	t.Log(n)
	if n.Refused+n.DialErrs+n.Broken+n.Reconnects != 0 || len(n.Errors) != 0 {
		t.Errorf("failures against a steady server: %s", n)
	}
	if len(l.Acked()) < int(n.Writes) {
		t.Errorf("%d keys acknowledged, fewer than the %d writes", len(l.Acked()), n.Writes)
	}
	if lost := l.Lost(t, nil); lost != 0 {
		t.Errorf("%d acknowledged writes lost", lost)
	}
	if lost := l.Lost(t, map[string]string{"/t/never-written": "x"}); lost != 1 {
		t.Errorf("Lost with a key never written = %d; want 1", lost)
	}
}

// TestServerRestart: the server goes away (its connections closed, its
// port refusing) and comes back on the same port over the same store.
// Every worker's connection breaks; with Reconnect the workers connect
// again and go on, without it they stop. The error list stays bounded.
func TestServerRestart(t *testing.T) {
	for _, reconnect := range []bool{true, false} {
		t.Run(fmt.Sprintf("reconnect=%v", reconnect), func(t *testing.T) {
			const workers = 2
			st := store.New(store.Limits{})
			addr, stop := serve(t, st, "127.0.0.1:0")
			l := Start(t, options(addr, workers, reconnect))
			waitFor(t, "writes", func() bool { return l.writes.Load() >= 10 })
			stop()
			waitFor(t, "refused connects", func() bool { return l.refused.Load() > keptErrors })
			serve(t, st, addr)
			newConns := l.newConns.Load()
			waitFor(t, "new connections after the restart", func() bool { return l.newConns.Load() > newConns+5 })
			if reconnect {
				waitFor(t, "reconnects", func() bool { return l.reconnects.Load() >= workers })
			}
			n := l.Finish()
			t.Log(n)
			if n.Refused == 0 {
				t.Errorf("no connect refused while the port was closed: %s", n)
			}
			if n.Broken < workers {
				t.Errorf("%d broken connections; want at least one a worker: %s", n.Broken, n)
			}
			if reconnect && n.Reconnects < workers {
				t.Errorf("%d reconnects; want at least one a worker: %s", n.Reconnects, n)
			}
			if !reconnect && n.Reconnects != 0 {
				t.Errorf("%d reconnects without Reconnect: %s", n.Reconnects, n)
			}
			if len(n.Errors) != keptErrors {
				t.Errorf("kept %d errors of %d failures; want %d", len(n.Errors), n.Refused+n.DialErrs+n.Broken, keptErrors)
			}
			if lost := l.Lost(t, nil); lost != 0 {
				t.Errorf("%d acknowledged writes lost although the store stayed", lost)
			}
		})
	}
}
