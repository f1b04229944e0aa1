package booted

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/nspawn"
)

// load is Storm-like traffic into a container: workers writing heartbeats
// on long-lived connections, and new connections arriving meanwhile.
type load struct {
	m    *nspawn.Machine
	addr string
	stop chan struct{}
	wg   sync.WaitGroup

	refused  atomic.Int64 // connects refused: nobody held the port
	dialErrs atomic.Int64 // other connect failures
	broken   atomic.Int64 // established connections that failed a request
	writes   atomic.Int64
	connects atomic.Int64

	mu    sync.Mutex
	acked map[string]string // key → value the server acknowledged
	errs  []string
}

func startLoad(t *testing.T, m *nspawn.Machine, addr string, workers int) *load {
	t.Helper()
	l := &load{m: m, addr: addr, stop: make(chan struct{}), acked: map[string]string{}}
	for w := range workers {
		c, err := l.dial()
		if err != nil {
			t.Fatalf("worker %d: %v", w, err)
		}
		l.wg.Add(1)
		go l.worker(w, c)
	}
	l.wg.Add(1)
	go l.connector()
	return l
}

// dial connects from inside the container's network.
func (l *load) dial() (*client.Conn, error) {
	var c *client.Conn
	err := l.m.InNetns(func() (err error) {
		c, err = client.Dial(context.Background(), l.addr, client.Options{DialTimeout: 5 * time.Second})
		return err
	})
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) {
			l.fail(&l.refused, "connect: %v", err)
		} else {
			l.fail(&l.dialErrs, "connect: %v", err)
		}
		return nil, err
	}
	l.connects.Add(1)
	return c, nil
}

func (l *load) fail(counter *atomic.Int64, format string, args ...any) {
	counter.Add(1)
	l.mu.Lock()
	if len(l.errs) < 20 {
		l.errs = append(l.errs, fmt.Sprintf(format, args...))
	}
	l.mu.Unlock()
}

func (l *load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// worker writes a new key every few milliseconds on one connection; when
// the connection breaks it counts it and connects again.
func (l *load) worker(w int, c *client.Conn) {
	defer l.wg.Done()
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	for n := 0; !l.stopped(); n++ {
		if c == nil {
			var err error
			if c, err = l.dial(); err != nil {
				time.Sleep(50 * time.Millisecond)
				continue
			}
		}
		key, value := fmt.Sprintf("/restart/w%d/k%d", w, n), fmt.Sprintf("w%d-%d", w, n)
		ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
		err := c.SendPulse(ctx, key, []byte(value))
		cancel()
		if err != nil {
			l.fail(&l.broken, "worker %d: write %s: %v", w, key, err)
			c.Close()
			c = nil
			continue
		}
		l.writes.Add(1)
		l.mu.Lock()
		l.acked[key] = value
		l.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
}

// connector opens a fresh connection every 20 ms, writes once and closes:
// clients that arrive while the service restarts.
func (l *load) connector() {
	defer l.wg.Done()
	for n := 0; !l.stopped(); n++ {
		c, err := l.dial()
		if err == nil {
			key, value := fmt.Sprintf("/restart/new/k%d", n), fmt.Sprintf("new-%d", n)
			ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
			if err := c.SendPulse(ctx, key, []byte(value)); err != nil {
				l.fail(&l.broken, "new connection: write %s: %v", key, err)
			} else {
				l.mu.Lock()
				l.acked[key] = value
				l.mu.Unlock()
			}
			cancel()
			c.Close()
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
}

// lost reads back every acknowledged key on a new connection and returns
// how many are missing or wrong.
func (l *load) lost(t *testing.T) int {
	t.Helper()
	c, err := l.dial()
	if err != nil {
		t.Fatalf("read back: %v", err)
	}
	defer c.Close()
	lost := 0
	for key, want := range l.acked {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		got, found, err := c.GetPulse(ctx, key)
		cancel()
		if err != nil {
			t.Fatalf("read back %s: %v", key, err)
		}
		if !found || string(got) != want {
			if lost < 5 {
				t.Logf("lost %s: found %v, %q, want %q", key, found, got, want)
			}
			lost++
		}
	}
	return lost
}

func (l *load) summary() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return fmt.Sprintf("%d writes acknowledged, %d connects, %d refused, %d other connect errors, %d broken; first errors: %q",
		l.writes.Load(), l.connects.Load(), l.refused.Load(), l.dialErrs.Load(), l.broken.Load(), l.errs)
}
