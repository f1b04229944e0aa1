// Package worker is the well-behaved Storm worker of the fault and attack
// tests: on one connection it writes its heartbeat and reads it back, over
// and over, while a test attacks the daemon, counting every error and wrong
// answer and timing every round trip. Its latency is reported, never
// asserted: the machines these tests run on are shared.
package worker

import (
	"context"
	"fmt"
	"math"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/client"
)

// requestTimeout tells a hang from slowness.
const requestTimeout = 15 * time.Second

// Worker is one running well-behaved client.
type Worker struct {
	mu     sync.Mutex
	lat    []time.Duration
	errs   atomic.Int64
	first  atomic.Pointer[error]
	rounds atomic.Int64
	stop   chan struct{}
	done   chan struct{}
}

// Start connects to addr (mech authenticates; nil: none, as Storm's workers
// connect) and writes 600-byte heartbeats under /workerbeats/<topology>/,
// cycling through keys worker keys, one round trip every 2 ms.
func Start(t testing.TB, addr string, mech auth.ClientMechanism, topology string, keys int) *Worker {
	t.Helper()
	c, err := client.Dial(context.Background(), addr, client.Options{Auth: mech})
	if err != nil {
		t.Fatalf("well-behaved client: %v", err)
	}
	w := &Worker{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer c.Close()
		beat := make([]byte, 600) // a small worker's heartbeat
		for i := 0; ; i++ {
			select {
			case <-w.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			key := fmt.Sprintf("/workerbeats/%s/sup-%d-6700", topology, i%keys)
			copy(beat, fmt.Sprintf("beat %d", i))
			t0 := time.Now()
			if err := roundTrip(c, key, beat); err != nil {
				if w.errs.Add(1) == 1 {
					w.first.Store(&err)
				}
				if c.Err() != nil {
					return // the connection is gone; nothing more to measure
				}
				continue
			}
			d := time.Since(t0)
			w.mu.Lock()
			w.lat = append(w.lat, d)
			w.mu.Unlock()
			w.rounds.Add(1)
		}
	}()
	return w
}

// roundTrip writes beat under key and reads it back.
func roundTrip(c *client.Conn, key string, beat []byte) error {
	ctx, cancel := context.WithTimeout(context.Background(), requestTimeout)
	defer cancel()
	if err := c.SendPulse(ctx, key, beat); err != nil {
		return err
	}
	got, ok, err := c.GetPulse(ctx, key)
	if err == nil && (!ok || string(got) != string(beat)) {
		err = fmt.Errorf("read back %q: found=%v, %d bytes", key, ok, len(got))
	}
	return err
}

// Rounds returns the round trips completed so far.
func (w *Worker) Rounds() int64 { return w.rounds.Load() }

// Finish stops the worker, logs its latency for phase and fails the test on
// any error or when no round trip completed. It returns the latency summary.
func (w *Worker) Finish(t testing.TB, phase string) string {
	t.Helper()
	close(w.stop)
	<-w.done
	s := w.Summary()
	t.Logf("%s: well-behaved client write+read round trips: %s", phase, s)
	if n := w.errs.Load(); n > 0 {
		t.Errorf("%s: well-behaved client saw %d errors; first: %v", phase, n, *w.first.Load())
	}
	if w.rounds.Load() == 0 {
		t.Errorf("%s: well-behaved client completed no round trip", phase)
	}
	return s
}

// Summary is "n=… p50=… p99=… max=…" of the round trips so far.
func (w *Worker) Summary() string {
	w.mu.Lock()
	d := slices.Clone(w.lat)
	w.mu.Unlock()
	return Summarize(d)
}

// Summarize is "n=… p50=… p99=… max=…" of d.
func Summarize(d []time.Duration) string {
	if len(d) == 0 {
		return "n=0"
	}
	d = slices.Clone(d)
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(math.Ceil(p*float64(len(d))))-1)] }
	return fmt.Sprintf("n=%d p50=%v p99=%v max=%v", len(d), q(0.50).Round(time.Microsecond),
		q(0.99).Round(time.Microsecond), d[len(d)-1].Round(time.Microsecond))
}
