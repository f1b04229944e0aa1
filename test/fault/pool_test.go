package fault

import (
	"context"
	"fmt"
	"slices"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
)

// TestPoolFailover: two daemons behind client.Pool as Storm's
// PacemakerClientPool uses them, one killed with SIGKILL mid-run while
// workers write heartbeats and a Nimbus-like reader lists and reads them
// from every server. No write may fail, no read may fail, and the merged
// reads must end up showing every worker's newest heartbeat.
func TestPoolFailover(t *testing.T) {
	for _, victim := range []string{"the write server", "the other server"} {
		t.Run("kill "+victim, func(t *testing.T) { poolFailover(t, victim == "the write server") })
	}
}

func poolFailover(t *testing.T, killWriter bool) {
	const workers = 8
	const runFor = 1500 * time.Millisecond
	p1 := daemon.Start(t, daemon.Options{LogLevel: "info"})
	p2 := daemon.Start(t, daemon.Options{LogLevel: "info"})
	byAddr := map[string]*daemon.Proc{p1.Addr(): p1, p2.Addr(): p2}
	pool := client.NewPool([]string{p1.Addr(), p2.Addr()}, client.Options{DialTimeout: 2 * time.Second})
	defer pool.Close()
	victim := byAddr[pool.Addrs()[1]]
	if killWriter {
		victim = byAddr[pool.Addrs()[0]] // writes start on the pool's first server
	}
	ctx := context.Background()
	path := func(w int) string { return fmt.Sprintf("/workerbeats/pool-topo/sup-%d-6700", w) }

	var writeFailed, readFailed atomic.Int64
	var wlat, rlat latencies
	last := make([]atomic.Int64, workers) // newest beat each worker wrote
	deadline := time.Now().Add(runFor)
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			for i := int64(1); time.Now().Before(deadline); i++ {
				t0 := time.Now()
				if err := pool.SendPulse(ctx, path(w), []byte(strconv.FormatInt(i, 10))); err != nil {
					writeFailed.Add(1)
					t.Errorf("worker %d beat %d: %v", w, i, err)
					continue
				}
				wlat.add(time.Since(t0))
				last[w].Store(i)
				time.Sleep(5 * time.Millisecond)
			}
		})
	}
	// Nimbus: list the workers and read each from every server, newest wins.
	newer := func(a, b []byte) bool {
		x, _ := strconv.ParseInt(string(a), 10, 64)
		y, _ := strconv.ParseInt(string(b), 10, 64)
		return x > y
	}
	wg.Go(func() {
		for time.Now().Before(deadline) {
			t0 := time.Now()
			if _, err := pool.Children(ctx, "/workerbeats/pool-topo"); err != nil {
				readFailed.Add(1)
				t.Errorf("merged listing: %v", err)
			}
			if _, _, err := pool.GetPulse(ctx, path(0), newer); err != nil {
				readFailed.Add(1)
				t.Errorf("merged read: %v", err)
			}
			rlat.add(time.Since(t0))
			time.Sleep(10 * time.Millisecond)
		}
	})
	time.Sleep(runFor / 3)
	if err := victim.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	wg.Wait()
	if victim.Wait(hangBound) == 0 || !victim.Exited() {
		t.Fatal("the killed daemon did not die")
	}
	t.Logf("killed %s %v into a %v run; heartbeat writes: %s; merged reads (list + get): %s",
		victim.Addr(), runFor/3, runFor, wlat.summary(), rlat.summary())
	if n := writeFailed.Load() + readFailed.Load(); n > 0 {
		t.Fatalf("%d heartbeat writes and %d reads failed", writeFailed.Load(), readFailed.Load())
	}

	// Every worker wrote after the kill; the merged reads show all of
	// them, each at its newest beat.
	names, err := pool.Children(ctx, "/workerbeats/pool-topo")
	if err != nil || len(names) != workers {
		t.Fatalf("merged listing after the kill: %q, %v; want %d workers", names, err, workers)
	}
	for w := range workers {
		b, ok, err := pool.GetPulse(ctx, path(w), newer)
		if err != nil || !ok || string(b) != strconv.FormatInt(last[w].Load(), 10) {
			t.Errorf("worker %d: merged read %q %v %v, want its newest beat %d", w, b, ok, err, last[w].Load())
		}
	}
	if !slices.IsSorted(names) {
		t.Errorf("merged listing not sorted: %q", names)
	}
}
