package client

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/server"
	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

func startServer(t *testing.T) (addr string, stop func()) {
	t.Helper()
	srv := server.New(store.New(store.Limits{}), slog.New(slog.NewTextHandler(io.Discard, nil)), server.Settings{
		Method: auth.None, MaxFrame: wire.DefaultMaxFrame, FrameTimeout: 10 * time.Second, HandshakeTimeout: 10 * time.Second,
		MaxConns: 1000, MaxConnsPerPeer: 1000})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	var once sync.Once
	stop = func() {
		once.Do(func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = srv.Shutdown(ctx)
		})
	}
	t.Cleanup(stop)
	return ln.Addr().String(), stop
}

func TestConnOperations(t *testing.T) {
	addr, _ := startServer(t)
	ctx := context.Background()
	c, err := Dial(ctx, addr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendPulse(ctx, "/wb/t/w1", []byte("hb")); err != nil {
		t.Fatal(err)
	}
	if err := c.CreatePath(ctx, "/wb/t"); err != nil {
		t.Fatal(err)
	}
	b, ok, err := c.GetPulse(ctx, "/wb/t/w1")
	if err != nil || !ok || string(b) != "hb" {
		t.Fatalf("get: %q %v %v", b, ok, err)
	}
	if _, ok, _ := c.GetPulse(ctx, "/missing"); ok {
		t.Fatal("missing key found")
	}
	if ok, _ := c.Exists(ctx, "/wb/t/w1"); !ok {
		t.Fatal("exists false")
	}
	if n, _ := c.Children(ctx, "/wb"); !slices.Equal(n, []string{"t"}) {
		t.Fatalf("children %q", n)
	}
	if err := c.DeletePulseID(ctx, "/wb/t/w1"); err != nil {
		t.Fatal(err)
	}
	if err := c.DeletePath(ctx, "/wb"); err != nil {
		t.Fatal(err)
	}
	if ok, _ := c.Exists(ctx, "/wb/t/w1"); ok {
		t.Fatal("exists after delete")
	}
}

// TestConcurrentCallers shares one pipelined connection among goroutines;
// each must get its own answer.
func TestConcurrentCallers(t *testing.T) {
	addr, _ := startServer(t)
	ctx := context.Background()
	c, err := Dial(ctx, addr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var wg sync.WaitGroup
	errs := make(chan error, 32)
	for g := range 32 {
		wg.Go(func() {
			for i := range 50 {
				key := fmt.Sprintf("/wb/t/g%d", g)
				val := fmt.Sprintf("%d-%d", g, i)
				if err := c.SendPulse(ctx, key, []byte(val)); err != nil {
					errs <- err
					return
				}
				b, _, err := c.GetPulse(ctx, key)
				if err != nil || string(b) != val {
					errs <- fmt.Errorf("goroutine %d got %q want %q (%v)", g, b, val, err)
					return
				}
			}
		})
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
}

func TestBrokenConnectionFailsRequests(t *testing.T) {
	addr, stop := startServer(t)
	ctx := context.Background()
	c, err := Dial(ctx, addr, Options{})
	if err != nil {
		t.Fatal(err)
	}
	stop()
	deadline := time.Now().Add(3 * time.Second)
	for c.Err() == nil && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if err := c.SendPulse(ctx, "/a", nil); !errors.Is(err, ErrClosed) {
		t.Fatalf("want ErrClosed, got %v", err)
	}
}

// TestPoolFailoverAndMergedReads: two servers behind the pool, one stopped
// mid-run: no write fails, and reads still merge what the survivor has.
func TestPoolFailoverAndMergedReads(t *testing.T) {
	a1, stop1 := startServer(t)
	a2, stop2 := startServer(t)
	ctx := context.Background()
	p := NewPool([]string{a1, a2}, Options{DialTimeout: time.Second})
	defer p.Close()
	for i := range 20 {
		if err := p.SendPulse(ctx, fmt.Sprintf("/wb/t/w%d", i), []byte("x")); err != nil {
			t.Fatal(err)
		}
	}
	// Stop whichever server writes went to.
	first := p.Addrs()[0]
	if first == a1 {
		stop1()
	} else {
		stop2()
	}
	var failed []string
	p.WriteFailed = func(addr string, err error) { failed = append(failed, addr) }
	for i := 20; i < 40; i++ {
		if err := p.SendPulse(ctx, fmt.Sprintf("/wb/t/w%d", i), []byte("x")); err != nil {
			t.Fatalf("write %d after a server died: %v", i, err)
		}
	}
	if len(failed) != 1 || failed[0] != first {
		t.Fatalf("WriteFailed heard of %q, want the stopped server %s once (writes then stay on the survivor)", failed, first)
	}
	names, err := p.Children(ctx, "/wb/t")
	if err != nil {
		t.Fatal(err)
	}
	if len(names) < 20 {
		t.Fatalf("merged listing has %d names, want at least the 20 written after the failover", len(names))
	}
	if _, ok, err := p.GetPulse(ctx, "/wb/t/w39", nil); err != nil || !ok {
		t.Fatalf("get from survivor: %v %v", ok, err)
	}
}
