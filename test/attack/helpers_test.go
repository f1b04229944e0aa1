// Package attack attacks the built pacemaker daemon the way a hostile
// client on the network would, one class of attack per test (issue 14):
// every test runs on loopback only, is bounded in count and time, and
// asserts that the daemon is still alive, that an honest client kept being
// answered (its latency is logged, not asserted) and that the daemon's RSS,
// read from /proc, stayed within a stated bound.
package attack

import (
	"context"
	"fmt"
	"math"
	"net/http"
	"os"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
)

func TestMain(m *testing.M) { os.Exit(daemon.Main(m)) }

// hangBound tells a hang from slowness wherever a test must wait.
const hangBound = 15 * time.Second

// target is a started daemon with its metrics/health endpoint.
type target struct {
	*daemon.Proc
	metrics string // base URL of pacemaker.metrics.listen
}

// startDaemon runs the daemon with config plus a metrics listener, logging
// at info (debug would log every attacking connection).
func startDaemon(t *testing.T, config string) *target {
	t.Helper()
	mport := daemon.FreePort(t, "127.0.0.1")
	config += fmt.Sprintf("pacemaker.metrics.listen: \"127.0.0.1:%d\"\n", mport)
	p := &target{
		Proc:    daemon.Start(t, daemon.Options{Config: config, LogLevel: "info"}),
		metrics: fmt.Sprintf("http://127.0.0.1:%d", mport),
	}
	deadline := time.Now().Add(hangBound)
	for {
		resp, err := http.Get(p.metrics + "/healthz")
		if err == nil {
			resp.Body.Close()
			return p
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics endpoint %s: %v", p.metrics, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// alive fails the test unless the daemon is still running.
func (p *target) alive(t *testing.T) {
	t.Helper()
	if p.Exited() {
		t.Fatalf("the daemon died during the attack")
	}
}

// rss is a process's resident set size from /proc/<pid>/status.
func rss(pid int) (int64, error) {
	path := fmt.Sprintf("/proc/%d/status", pid)
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("%s: no VmRSS line", path)
}

// rssWatch samples a process's RSS every 20 ms and keeps the peak.
type rssWatch struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

func watchRSS(pid int) *rssWatch {
	w := &rssWatch{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		for {
			if n, err := rss(pid); err == nil && n > w.peak.Load() {
				w.peak.Store(n)
			}
			select {
			case <-w.stop:
				return
			case <-time.After(20 * time.Millisecond):
			}
		}
	}()
	return w
}

// finish stops sampling and returns the peak.
func (w *rssWatch) finish() int64 {
	close(w.stop)
	<-w.done
	return w.peak.Load()
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// honest is a well-behaved worker: it writes its heartbeat and reads it
// back every few milliseconds on one connection, measuring each round trip.
type honest struct {
	mu     sync.Mutex
	lat    []time.Duration
	errs   atomic.Int64
	first  atomic.Pointer[error]
	stop   chan struct{}
	done   chan struct{}
	rounds atomic.Int64
}

func startHonest(t *testing.T, addr string) *honest {
	t.Helper()
	c, err := client.Dial(context.Background(), addr, client.Options{})
	if err != nil {
		t.Fatalf("honest client: %v", err)
	}
	h := &honest{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(h.done)
		defer c.Close()
		beat := make([]byte, 600)
		for i := 0; ; i++ {
			select {
			case <-h.stop:
				return
			case <-time.After(2 * time.Millisecond):
			}
			key := fmt.Sprintf("/workerbeats/honest-topo/sup-%d-6700", i%20)
			copy(beat, fmt.Sprintf("beat %d", i))
			ctx, cancel := context.WithTimeout(context.Background(), hangBound)
			t0 := time.Now()
			err := c.SendPulse(ctx, key, beat)
			if err == nil {
				var got []byte
				var ok bool
				got, ok, err = c.GetPulse(ctx, key)
				if err == nil && (!ok || string(got) != string(beat)) {
					err = fmt.Errorf("read back %q: found=%v, %d bytes", key, ok, len(got))
				}
			}
			cancel()
			if err != nil {
				if h.errs.Add(1) == 1 {
					h.first.Store(&err)
				}
				if c.Err() != nil {
					return
				}
				continue
			}
			d := time.Since(t0)
			h.mu.Lock()
			h.lat = append(h.lat, d)
			h.mu.Unlock()
			h.rounds.Add(1)
		}
	}()
	return h
}

// finish stops the client, logs its latency and fails the test on any
// error or when it was never answered. It returns the latency summary.
func (h *honest) finish(t *testing.T, phase string) string {
	t.Helper()
	close(h.stop)
	<-h.done
	s := h.summary()
	t.Logf("%s: honest client write+read round trips: %s", phase, s)
	if n := h.errs.Load(); n > 0 {
		t.Errorf("%s: honest client saw %d errors; first: %v", phase, n, *h.first.Load())
	}
	if h.rounds.Load() == 0 {
		t.Errorf("%s: honest client was never answered", phase)
	}
	return s
}

// summary is "n=… p50=… p99=… max=…".
func (h *honest) summary() string {
	h.mu.Lock()
	d := slices.Clone(h.lat)
	h.mu.Unlock()
	if len(d) == 0 {
		return "n=0"
	}
	slices.Sort(d)
	q := func(p float64) time.Duration { return d[min(len(d)-1, int(math.Ceil(p*float64(len(d))))-1)] }
	return fmt.Sprintf("n=%d p50=%v p99=%v max=%v", len(d), q(0.50).Round(time.Microsecond),
		q(0.99).Round(time.Microsecond), d[len(d)-1].Round(time.Microsecond))
}
