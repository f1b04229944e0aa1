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
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/procmem"
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

// watchRSS samples a process's RSS every 20 ms and keeps the peak.
func watchRSS(t *testing.T, pid int) *procmem.Peak { return procmem.Watch(t, pid, 20*time.Millisecond) }

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// startHonest starts a well-behaved worker against addr (its 20 keys under
// /workerbeats/honest-topo); Finish reports its latency.
func startHonest(t *testing.T, addr string) *worker.Worker {
	t.Helper()
	return worker.Start(t, addr, nil, "honest-topo", 20)
}
