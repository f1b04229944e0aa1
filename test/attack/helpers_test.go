// Package attack attacks the built pacemaker daemon the way a hostile
// client on the network would, one class of attack per test (issue 14):
// every test runs on loopback only, is bounded in count and time, and
// asserts that the daemon is still alive, that an honest client kept being
// answered (its latency is logged, not asserted) and that the daemon's RSS,
// read from /proc, stayed within a stated bound.
package attack

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/worker"
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
	p, metrics := daemon.StartWithMetrics(t, daemon.Options{Config: config, LogLevel: "info"}, hangBound)
	return &target{Proc: p, metrics: metrics}
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

// startHonest starts a well-behaved worker against addr (its 20 keys under
// /workerbeats/honest-topo); Finish reports its latency.
func startHonest(t *testing.T, addr string) *worker.Worker {
	t.Helper()
	return worker.Start(t, addr, nil, "honest-topo", 20)
}
