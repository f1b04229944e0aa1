// Package fault attacks the built pacemaker daemon the way a broken or
// hostile network does — garbage, truncated and oversized frames, SASL out
// of order, thousands of half-open connections, slowloris frames, write
// floods, kill -9 — and checks that it keeps serving a well-behaved client,
// stays within its limits and counts every rejection in /metrics.
//
// Nothing here asserts on timing: latencies and memory are measured and
// logged (go test -v shows them; docs/robustness.md quotes them). The only
// time bounds are generous ones that tell a hang from slowness.
package fault

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/worker"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

func TestMain(m *testing.M) { os.Exit(daemon.Main(m)) }

// hangBound separates "slow" from "stuck" wherever a test must wait: far
// above anything a healthy daemon needs on a loaded 2-core machine.
const hangBound = 10 * time.Second

// loopbackReserve mirrors internal/server/health.go: loopback peers may
// open this many connections past each limit (room for the health check
// and an operator's pacemakerctl). Every peer in these tests is loopback.
const loopbackReserve = 16

// proc is a started daemon with its metrics endpoint.
type proc struct {
	*daemon.Proc
	metrics string // base URL of pacemaker.metrics.listen
}

// start runs the daemon with config plus a metrics listener, at log level
// info (debug would log every one of thousands of connections).
func start(t *testing.T, config string, files map[string]string, env ...string) *proc {
	t.Helper()
	p, metrics := daemon.StartWithMetrics(t, daemon.Options{Config: config, Files: files, Env: env, LogLevel: "info"}, hangBound)
	return &proc{Proc: p, metrics: metrics}
}

// metricSet is one scrape: series ("name{l1=\"v1\",l2=\"v2\"}", labels in
// name order as Prometheus prints them) → value.
type metricSet map[string]float64

func (p *proc) scrape(t *testing.T) metricSet {
	t.Helper()
	hc := http.Client{Timeout: hangBound}
	resp, err := hc.Get(p.metrics + "/metrics")
	if err != nil {
		t.Fatalf("scrape %s: %v", p.metrics, err)
	}
	defer resp.Body.Close()
	m := metricSet{}
	sc := bufio.NewScanner(resp.Body)
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := sc.Text()
		if line == "" || line[0] == '#' {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		if i < 0 {
			continue
		}
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			continue
		}
		m[line[:i]] = v
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("scrape %s: %v", p.metrics, err)
	}
	return m
}

// rejected is pacemaker_rejected_total for one reason (0 before the first).
func (m metricSet) rejected(reason string) float64 {
	return m[`pacemaker_rejected_total{reason="`+reason+`"}`]
}

// authFailures sums pacemaker_auth_failures_total over every reason.
func (m metricSet) authFailures(reason string) float64 {
	var n float64
	for k, v := range m {
		if strings.HasPrefix(k, "pacemaker_auth_failures_total{") && (reason == "" || strings.Contains(k, `reason="`+reason+`"`)) {
			n += v
		}
	}
	return n
}

// waitMetric polls until cond holds for the scraped metrics.
func (p *proc) waitMetric(t *testing.T, what string, cond func(metricSet) bool) metricSet {
	t.Helper()
	deadline := time.Now().Add(hangBound)
	for {
		m := p.scrape(t)
		if cond(m) {
			return m
		}
		if time.Now().After(deadline) {
			t.Fatalf("waited %v for %s; metrics: open=%v rejected=%v", hangBound, what,
				m["pacemaker_open_connections"], m.matching("pacemaker_rejected_total"))
		}
		time.Sleep(25 * time.Millisecond)
	}
}

func (m metricSet) matching(prefix string) map[string]float64 {
	out := map[string]float64{}
	for k, v := range m {
		if strings.HasPrefix(k, prefix) {
			out[k] = v
		}
	}
	return out
}

func mib(n int64) string { return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20)) }

// latencies collects round-trip times.
type latencies struct {
	mu sync.Mutex
	d  []time.Duration
}

func (l *latencies) add(d time.Duration) {
	l.mu.Lock()
	l.d = append(l.d, d)
	l.mu.Unlock()
}

// summary is "n=… p50=… p99=… max=…".
func (l *latencies) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return worker.Summarize(l.d)
}

// startSteady starts the well-behaved worker against addr (its 50 keys
// under /workerbeats/steady-topo); mech authenticates it (nil: none, as
// Storm's workers connect).
func startSteady(t *testing.T, addr string, mech auth.ClientMechanism) *worker.Worker {
	t.Helper()
	return worker.Start(t, addr, mech, "steady-topo", 50)
}

// baseline runs the well-behaved client alone for a moment, so the logs
// show its latency undisturbed next to its latency under attack.
func baseline(t *testing.T, addr string, mech auth.ClientMechanism) {
	t.Helper()
	s := startSteady(t, addr, mech)
	time.Sleep(500 * time.Millisecond)
	s.Finish(t, "baseline, no attack")
}

// frame is one encoded request.
func frame(m *wire.Message) []byte { return wire.AppendFrame(nil, m) }

// dialFrom connects to addr from a given loopback source address ("" = any).
func dialFrom(src, addr string) (*net.TCPConn, error) {
	d := net.Dialer{Timeout: hangBound}
	if src != "" {
		d.LocalAddr = &net.TCPAddr{IP: net.ParseIP(src)}
	}
	nc, err := d.Dial("tcp", addr)
	if err != nil {
		return nil, err
	}
	return nc.(*net.TCPConn), nil
}

// raw is a connection that speaks bytes, not the protocol: the attacker.
type raw struct {
	nc *net.TCPConn
	br *bufio.Reader
	fr *wire.FrameReader
}

func dialRaw(t *testing.T, src, addr string) *raw {
	t.Helper()
	nc, err := dialFrom(src, addr)
	if err != nil {
		t.Fatalf("connect to %s from %q: %v", addr, src, err)
	}
	t.Cleanup(func() { nc.Close() })
	br := bufio.NewReader(nc)
	return &raw{nc: nc, br: br, fr: wire.NewFrameReader(br, wire.DefaultMaxFrame)}
}

// send writes b, failing the test on error.
func (r *raw) send(t *testing.T, b []byte) {
	t.Helper()
	_ = r.nc.SetWriteDeadline(time.Now().Add(hangBound))
	if _, err := r.nc.Write(b); err != nil {
		t.Fatalf("write %d bytes: %v", len(b), err)
	}
}

// next reads one answer.
func (r *raw) next(t *testing.T) *wire.Message {
	t.Helper()
	_ = r.nc.SetReadDeadline(time.Now().Add(hangBound))
	defer r.nc.SetReadDeadline(time.Time{})
	body, err := r.fr.Next()
	if err != nil {
		t.Fatalf("read an answer: %v", err)
	}
	m := new(wire.Message)
	if err := wire.Decode(body, m); err != nil {
		t.Fatalf("decode the answer: %v", err)
	}
	return m
}

// closedByPeer waits until the server closes the connection (EOF or reset)
// and returns how long that took; it fails the test if the server sends
// anything first or keeps the connection open past hangBound.
func (r *raw) closedByPeer(t *testing.T) time.Duration {
	t.Helper()
	d, got, err := r.waitClose(hangBound)
	switch {
	case errors.Is(err, os.ErrDeadlineExceeded):
		t.Fatalf("server kept the connection open for %v (sent %d bytes)", hangBound, got)
	case err != nil:
		t.Fatalf("waiting for the server to close: %v", err)
	case got > 0:
		t.Fatalf("server sent %d bytes before closing; want a bare close", got)
	}
	return d
}

// waitClose reads until EOF or reset (err nil), an error, or the timeout
// (os.ErrDeadlineExceeded), returning the time taken and the bytes read.
func (r *raw) waitClose(timeout time.Duration) (time.Duration, int, error) {
	t0 := time.Now()
	_ = r.nc.SetReadDeadline(t0.Add(timeout))
	defer r.nc.SetReadDeadline(time.Time{})
	got := 0
	buf := make([]byte, 4096)
	for {
		n, err := r.br.Read(buf)
		got += n
		if err != nil {
			if errors.Is(err, io.EOF) || errors.Is(err, syscall.ECONNRESET) {
				err = nil
			}
			return time.Since(t0), got, err
		}
	}
}

// raiseFileLimit lifts RLIMIT_NOFILE to want (soft and hard) for this
// process and the daemons it starts, as far as the kernel allows, and
// returns the soft limit in force.
func raiseFileLimit(t *testing.T, want uint64) uint64 {
	t.Helper()
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatalf("getrlimit: %v", err)
	}
	if lim.Cur >= want {
		return lim.Cur
	}
	raised := syscall.Rlimit{Cur: want, Max: max(want, lim.Max)}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
		// Not root: go as far as the hard limit.
		raised = syscall.Rlimit{Cur: lim.Max, Max: lim.Max}
		if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &raised); err != nil {
			t.Fatalf("setrlimit: %v", err)
		}
	}
	return raised.Cur
}
