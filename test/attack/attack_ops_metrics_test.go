package attack

import (
	"bufio"
	"bytes"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/procmem"
)

// openFDs counts a process's open descriptors.
func openFDs(pid int) int {
	ents, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	return len(ents)
}

// healthPoller asks /healthz on a fresh connection every 50 ms.
type healthPoller struct {
	ok, failed atomic.Int64
	worst      atomic.Int64 // nanoseconds
	first      atomic.Pointer[error]
	stop, done chan struct{}
}

func pollHealth(url string) *healthPoller {
	hp := &healthPoller{stop: make(chan struct{}), done: make(chan struct{})}
	hc := &http.Client{Timeout: hangBound, Transport: &http.Transport{DisableKeepAlives: true}}
	go func() {
		defer close(hp.done)
		for {
			select {
			case <-hp.stop:
				return
			case <-time.After(50 * time.Millisecond):
			}
			t0 := time.Now()
			resp, err := hc.Get(url + "/healthz")
			if err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
				if resp.StatusCode != http.StatusOK {
					err = fmt.Errorf("status %s", resp.Status)
				}
			}
			if err != nil {
				if hp.failed.Add(1) == 1 {
					hp.first.Store(&err)
				}
				continue
			}
			hp.ok.Add(1)
			if d := int64(time.Since(t0)); d > hp.worst.Load() {
				hp.worst.Store(d)
			}
		}
	}()
	return hp
}

func (hp *healthPoller) finish() string {
	close(hp.stop)
	<-hp.done
	return fmt.Sprintf("%d answered (slowest %v), %d failed", hp.ok.Load(), time.Duration(hp.worst.Load()).Round(time.Millisecond), hp.failed.Load())
}

// TestMetricsPortFlood: 1,000 idle keep-alive connections, then 200
// clients sending 1 MiB of headers, against the metrics port. The daemon
// holds at most its metrics connection cap, its RSS stays bounded, and
// /healthz and the heartbeat port keep answering throughout.
func TestMetricsPortFlood(t *testing.T) {
	const idleConns, bigHeaders, headerBytes = 1000, 200, 1 << 20
	p := startDaemon(t, "")
	addr := strings.TrimPrefix(p.metrics, "http://")
	idle, _ := procmem.RSS(p.PID())
	fdsIdle := openFDs(p.PID())
	h := startHonest(t, p.Addr())
	hp := pollHealth(p.metrics)
	w := watchRSS(t, p.PID())

	// Phase 1: idle keep-alive connections, each after one request.
	var held []net.Conn
	defer func() {
		for _, c := range held {
			c.Close()
		}
	}()
	maxFDs := 0
	for i := range idleConns {
		c, err := net.DialTimeout("tcp", addr, hangBound)
		if err != nil {
			t.Fatalf("idle connection %d: %v", i, err)
		}
		held = append(held, c)
		_ = c.SetDeadline(time.Now().Add(hangBound))
		// A connection the daemon already evicted fails here: fine.
		if _, err := c.Write([]byte("GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n")); err == nil {
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil {
				_, _ = io.Copy(io.Discard, resp.Body)
				resp.Body.Close()
			}
		}
		if i%100 == 99 {
			maxFDs = max(maxFDs, openFDs(p.PID()))
		}
	}
	fdsAfterIdle := openFDs(p.PID())

	// Phase 2: large headers.
	header := bytes.Repeat([]byte("a"), 4096)
	var wg sync.WaitGroup
	var refused atomic.Int64
	for range bigHeaders {
		wg.Go(func() {
			c, err := net.DialTimeout("tcp", addr, hangBound)
			if err != nil {
				return
			}
			defer c.Close()
			_ = c.SetDeadline(time.Now().Add(hangBound))
			if _, err := c.Write([]byte("GET /metrics HTTP/1.1\r\nHost: x\r\n")); err != nil {
				return
			}
			for sent := 0; sent < headerBytes; sent += len(header) + 12 {
				if _, err := fmt.Fprintf(c, "X-Pad: %s\r\n", header); err != nil {
					refused.Add(1)
					return
				}
			}
			_, _ = c.Write([]byte("\r\n"))
			if resp, err := http.ReadResponse(bufio.NewReader(c), nil); err == nil && resp.StatusCode != http.StatusOK {
				refused.Add(1)
			}
		})
	}
	wg.Wait()
	maxFDs = max(maxFDs, openFDs(p.PID()))
	peak := w.Finish()
	health := hp.finish()
	lat := h.Finish(t, "during the metrics-port flood")
	t.Logf("RESULT metrics-port flood: %d idle keep-alive + %d x 1 MiB headers (%d refused): daemon fds %d idle, %d after the idle ones, %d at most; peak RSS %s (idle %s); /healthz %s; honest client %s",
		idleConns, bigHeaders, refused.Load(), fdsIdle, fdsAfterIdle, maxFDs, mib(peak), mib(idle), health, lat)
	p.alive(t)
	if hp.failed.Load() > 0 {
		t.Errorf("/healthz failed %d times; first: %v", hp.failed.Load(), *hp.first.Load())
	}
	// The cap (64), the heartbeat connections and the daemon's own.
	if maxFDs > fdsIdle+64+16 {
		t.Errorf("the daemon held %d descriptors (%d idle): the metrics port's cap did not hold", maxFDs, fdsIdle)
	}
	if peak > idle+64<<20 {
		t.Errorf("peak RSS %s (idle %s)", mib(peak), mib(idle))
	}
	// The heartbeat port still accepts new connections.
	if c, err := net.DialTimeout("tcp", p.Addr(), hangBound); err != nil {
		t.Errorf("heartbeat port after the flood: %v", err)
	} else {
		c.Close()
	}
}
