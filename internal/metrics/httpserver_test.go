package metrics

import (
	"bufio"
	"fmt"
	"io"
	"net"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/store"
)

// serveLimited serves f's metrics the way the daemon does, with a cap of
// n connections, and returns the address.
func serveLimited(t *testing.T, f *fixture, n int) (string, *Limiter) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	lim := NewLimiter(n)
	hs := f.m.NewServer(lim)
	go hs.Serve(lim.Listener(ln))
	t.Cleanup(func() { hs.Close() })
	return ln.Addr().String(), lim
}

// get sends one keep-alive request for path with extra header bytes on c
// and returns the status code.
func get(c net.Conn, br *bufio.Reader, path string, pad int) (int, error) {
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	req := fmt.Sprintf("GET %s HTTP/1.1\r\nHost: x\r\nX-Pad: %s\r\n\r\n", path, strings.Repeat("a", pad))
	if _, err := io.WriteString(c, req); err != nil {
		return 0, err
	}
	resp, err := http.ReadResponse(br, nil)
	if err != nil {
		return 0, err
	}
	_, _ = io.Copy(io.Discard, resp.Body)
	resp.Body.Close()
	return resp.StatusCode, nil
}

// waitAllIdle waits until every connection lim holds is idle.
func waitAllIdle(t *testing.T, lim *Limiter) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(time.Millisecond) {
		lim.mu.Lock()
		idle := 0
		for _, ci := range lim.conns {
			if ci.idle {
				idle++
			}
		}
		all := idle == len(lim.conns)
		lim.mu.Unlock()
		if all {
			return
		}
		if time.Now().After(deadline) {
			t.Fatal("connections not idle after their answers")
		}
	}
}

// TestMetricsConnectionCap: at the cap, a new connection evicts the one
// idle longest instead of waiting; the cap never grows.
func TestMetricsConnectionCap(t *testing.T) {
	f := start(t, store.Limits{})
	addr, lim := serveLimited(t, f, 3)
	type kept struct {
		c  net.Conn
		br *bufio.Reader
	}
	var conns []kept
	for i := range 6 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		k := kept{c, bufio.NewReader(c)}
		if code, err := get(k.c, k.br, "/healthz", 0); err != nil || code != http.StatusOK {
			t.Fatalf("connection %d: /healthz = %d, %v", i, code, err)
		}
		conns = append(conns, k)
		if n := lim.Open(); n > 3 {
			t.Fatalf("%d connections held; cap 3", n)
		}
		waitAllIdle(t, lim) // the server marks a connection idle a moment after its answer
	}
	// The first three were evicted, oldest first; the last three work.
	for i, k := range conns {
		_, err := get(k.c, k.br, "/healthz", 0)
		if evicted := i < 3; evicted != (err != nil) {
			t.Errorf("connection %d: evicted %v, err %v", i, evicted, err)
		}
	}
}

// TestMetricsHeaderLimit: headers past 8 KiB are refused (431), never
// buffered.
func TestMetricsHeaderLimit(t *testing.T) {
	f := start(t, store.Limits{})
	addr, _ := serveLimited(t, f, 4)
	for _, tt := range []struct {
		pad  int
		want int
	}{{4 << 10, http.StatusOK}, {64 << 10, http.StatusRequestHeaderFieldsTooLarge}} {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		code, err := get(c, bufio.NewReader(c), "/healthz", tt.pad)
		c.Close()
		if err != nil || code != tt.want {
			t.Errorf("%d header bytes: %d, %v; want %d", tt.pad, code, err, tt.want)
		}
	}
}
