package attack

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"os"
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/procmem"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// bulkKeys is how many keys the bulk-delete tests write:
// PACEMAKER_ATTACK_KEYS overrides the default (1000000 reproduces the
// figures in docs/robustness.md; the default keeps `make test` short).
func bulkKeys(t *testing.T, def int) int {
	if v := os.Getenv("PACEMAKER_ATTACK_KEYS"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n <= 0 {
			t.Fatalf("PACEMAKER_ATTACK_KEYS=%q: want a positive number", v)
		}
		return n
	}
	return def
}

// fill writes n keys named by key(i), size bytes each, over 4 connections
// pipelining 512 requests at a time.
func fill(t *testing.T, addr string, n, size int, key func(i int) string) {
	t.Helper()
	const conns, batch = 4, 512
	value := make([]byte, size)
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	for c := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.DialTimeout("tcp", addr, hangBound)
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			fr := wire.NewFrameReader(bufio.NewReaderSize(nc, 64<<10), wire.DefaultMaxFrame)
			var out []byte
			var m wire.Message
			for lo := c * batch; lo < n; lo += conns * batch {
				out = out[:0]
				hi := min(lo+batch, n)
				for i := lo; i < hi; i++ {
					out = wire.AppendFrame(out, &wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse,
						Pulse: wire.Pulse{ID: key(i), Details: value}})
				}
				_ = nc.SetDeadline(time.Now().Add(hangBound))
				if _, err := nc.Write(out); err != nil {
					errs <- err
					return
				}
				for i := lo; i < hi; i++ {
					body, err := fr.Next()
					if err == nil {
						err = wire.Decode(body, &m)
					}
					if err == nil && m.Type != wire.SendPulseResponse {
						err = fmt.Errorf("write %s answered %s", key(i), m.Type)
					}
					if err != nil {
						errs <- err
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatalf("fill %d keys: %v", n, err)
	}
}

// settledRSS waits up to limit for the daemon's RSS to fall to at most
// want and returns how long that took (limit when it did not) and the RSS.
func settledRSS(t *testing.T, pid int, want int64, limit time.Duration) (time.Duration, int64) {
	t.Helper()
	t0 := time.Now()
	for {
		n := procmem.MustRSS(t, pid)
		if n <= want || time.Since(t0) >= limit {
			return time.Since(t0), n
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// memoryBack is the RSS a daemon must come back to once every one of n
// keys of size bytes is gone: its idle RSS, a quarter of what it held, and
// 64 MiB: the daemon leaves smaller drops to the runtime (trim.go).
func memoryBack(idle int64, n, size int) int64 { return idle + int64(n*size)/4 + 64<<20 }

// bulkDelete fills n keys of size bytes, then deletes them with one
// DELETE_PATH while an honest client runs, and reports the delete's time,
// the peak RSS, the honest client's latency and how soon RSS came back.
func bulkDelete(t *testing.T, n, size int, path string, key func(i int) string) {
	p := startDaemon(t, "pacemaker.max.keys: 20000000\npacemaker.max.stored.bytes: 17179869184\n")
	idle, _ := procmem.RSS(p.PID())
	fill(t, p.Addr(), n, size, key)
	full, _ := procmem.RSS(p.PID())
	t.Logf("%d keys of %d bytes: RSS %s (idle %s)", n, size, mib(full), mib(idle))

	h := startHonest(t, p.Addr())
	time.Sleep(300 * time.Millisecond)
	w := watchRSS(t, p.PID())
	c, err := client.Dial(context.Background(), p.Addr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 4*hangBound)
	defer cancel()
	t0 := time.Now()
	if err := c.DeletePath(ctx, path); err != nil {
		t.Fatalf("DELETE_PATH %s: %v", path, err)
	}
	took := time.Since(t0)
	time.Sleep(300 * time.Millisecond)
	lat := h.Finish(t, "during DELETE_PATH")
	peak := w.Finish()
	left, err := c.Children(ctx, path)
	if err != nil || len(left) != 0 {
		t.Errorf("after DELETE_PATH %s: %d children left (err %v)", path, len(left), err)
	}
	time.Sleep(time.Until(t0.Add(took + 2*time.Second)))
	at2s, _ := procmem.RSS(p.PID())
	back, now := settledRSS(t, p.PID(), memoryBack(idle, n, size), 20*time.Second)
	t.Logf("RESULT DELETE_PATH %s of %d x %d B: took %v, peak RSS %s (full %s), honest client %s; RSS %s 2 s after, %s after %v",
		path, n, size, took.Round(time.Millisecond), mib(peak), mib(full), lat, mib(at2s), mib(now), (back + 2*time.Second).Round(10*time.Millisecond))
	p.alive(t)
	// The delete must not copy what it deletes: peak RSS within 1.25x of
	// the full store's.
	if peak > full+full/4 {
		t.Errorf("peak RSS %s during the delete; the full store was %s", mib(peak), mib(full))
	}
	if now > memoryBack(idle, n, size) {
		t.Errorf("RSS %s 20 s after deleting every key (idle %s)", mib(now), mib(idle))
	}
}

// TestBulkDeletePath: DELETE_PATH of a large topology (1 KiB heartbeats,
// 1,000 per directory) costs O(keys deleted), copies none of the dying
// values and never stalls other clients for long.
func TestBulkDeletePath(t *testing.T) {
	n := bulkKeys(t, 100000)
	bulkDelete(t, n, 1024, "/delete-topo", func(i int) string {
		return fmt.Sprintf("/delete-topo/n%04d/k%04d", i/1000, i%1000)
	})
}

// TestBulkDeleteKeysWithoutSlash: keys without a leading slash cost the
// same as any other shape.
func TestBulkDeleteKeysWithoutSlash(t *testing.T) {
	n := bulkKeys(t, 160000)
	bulkDelete(t, n, 16, "x", func(i int) string { return fmt.Sprintf("x/%08d", i) })
}

// TestTTLSweepOfManyKeys: a TTL sweep dropping every key at once never
// stalls the honest client for long.
func TestTTLSweepOfManyKeys(t *testing.T) {
	n := bulkKeys(t, 100000)
	p := startDaemon(t, "pacemaker.heartbeat.ttl.secs: 4\npacemaker.max.keys: 20000000\npacemaker.max.stored.bytes: 17179869184\n")
	idle, _ := procmem.RSS(p.PID())
	fill(t, p.Addr(), n, 1024, func(i int) string { return fmt.Sprintf("/ttl-topo/n%04d/k%04d", i/1000, i%1000) })
	full, _ := procmem.RSS(p.PID())
	h := startHonest(t, p.Addr()) // rewrites its own keys: they never expire
	c, err := client.Dial(context.Background(), p.Addr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	t0 := time.Now()
	for {
		names, err := c.Children(context.Background(), "/ttl-topo")
		if err != nil {
			t.Fatal(err)
		}
		if len(names) == 0 {
			break
		}
		if time.Since(t0) > 4*hangBound {
			t.Fatalf("%d directories left %v after the TTL", len(names), time.Since(t0))
		}
		time.Sleep(100 * time.Millisecond)
	}
	time.Sleep(500 * time.Millisecond)
	lat := h.Finish(t, "during the TTL sweep")
	back, now := settledRSS(t, p.PID(), memoryBack(idle, n, 1024), 20*time.Second)
	t.Logf("RESULT TTL sweep of %d x 1 KiB: gone %v after the fill, honest client %s; RSS full %s, %s after %v",
		n, time.Since(t0).Round(time.Millisecond), lat, mib(full), mib(now), back.Round(10*time.Millisecond))
	p.alive(t)
}
