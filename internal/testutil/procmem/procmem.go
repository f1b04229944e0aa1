// Package procmem reads a process's resident memory from /proc, for the
// fault and attack tests that bound the daemon's RSS while they attack it.
package procmem

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// RSS is pid's resident set size in bytes (VmRSS in /proc/<pid>/status).
func RSS(pid int) (int64, error) {
	return rssFrom(fmt.Sprintf("/proc/%d/status", pid))
}

func rssFrom(path string) (int64, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, fmt.Errorf("read RSS: %w", err)
	}
	for line := range strings.Lines(string(b)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			if err != nil {
				return 0, fmt.Errorf("%s: VmRSS line %q: %w", path, line, err)
			}
			return kb << 10, nil
		}
	}
	return 0, fmt.Errorf("%s: no VmRSS line", path)
}

// MustRSS is RSS, failing the test when it cannot be read.
func MustRSS(t testing.TB, pid int) int64 {
	t.Helper()
	n, err := RSS(pid)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// Peak is a running sampler of one process's RSS that keeps the highest.
type Peak struct {
	peak atomic.Int64
	stop chan struct{}
	done chan struct{}
}

// Watch reads pid's RSS now (failing the test if it cannot: a watch that
// read nothing would pass any bound) and then every interval until Finish.
// A failed later sample is skipped: the process may be exiting.
func Watch(t testing.TB, pid int, every time.Duration) *Peak {
	t.Helper()
	p := &Peak{stop: make(chan struct{}), done: make(chan struct{})}
	p.peak.Store(MustRSS(t, pid))
	go func() {
		defer close(p.done)
		for {
			select {
			case <-p.stop:
				return
			case <-time.After(every):
			}
			if n, err := RSS(pid); err == nil && n > p.peak.Load() {
				p.peak.Store(n)
			}
		}
	}()
	return p
}

// Finish stops sampling and returns the highest RSS seen, in bytes.
func (p *Peak) Finish() int64 {
	close(p.stop)
	<-p.done
	return p.peak.Load()
}
