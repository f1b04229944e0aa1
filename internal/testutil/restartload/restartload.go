// Package restartload is Storm-like traffic kept up while a test restarts
// the daemon: workers writing heartbeats on long-lived connections and new
// connections arriving meanwhile. It counts refused connects, other connect
// failures and broken connections, times the longest wait for an answer,
// keeps the first errors, and remembers every acknowledged write so the
// test can read them back once the restart is over. How to connect (from
// inside a container, with a raw-frame client) and whether a worker
// reconnects after a break are the test's to say.
package restartload

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/client"
)

// Conn is one connection to the daemon. Put and Get must give up after a
// bounded time: a hang is an error, not a stalled load.
type Conn interface {
	Put(key, value string) error
	Get(key string) (value string, found bool, err error)
	Close() error
}

// Client is an internal/client connection as a Conn: it writes with
// SEND_PULSE and reads with GET_PULSE, each bounded in time.
type Client struct{ *client.Conn }

func (c Client) Put(key, value string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	return c.SendPulse(ctx, key, []byte(value))
}

func (c Client) Get(key string) (string, bool, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	v, found, err := c.GetPulse(ctx, key)
	return string(v), found, err
}

// Options say how the load connects and what it writes.
type Options struct {
	Dial    func() (Conn, error)
	Workers int // long-lived connections, each connected before Start returns
	// Reconnect: a worker whose connection broke connects again and goes
	// on, as Storm's client does. Without it the worker stops: for a test
	// in which no connection may break, a close is a broken connection.
	Reconnect bool
	// WorkerBeat is the key and value of worker w's n-th write; NewBeat
	// those of the one write on the n-th new connection.
	WorkerBeat func(w, n int) (key, value string)
	NewBeat    func(n int) (key, value string)
	// WorkerPause is the pause between one worker's writes, NewPause the
	// one between new connections.
	WorkerPause, NewPause time.Duration
}

const (
	// keptErrors bounds the error texts kept for the summary: a restart
	// that breaks everything must not fill the log.
	keptErrors = 20
	// redialPause is how long a reconnecting worker waits after a failed
	// connect before it tries again.
	redialPause = 50 * time.Millisecond
)

// Load is the running traffic; Finish stops it.
type Load struct {
	o    Options
	stop chan struct{}
	wg   sync.WaitGroup

	writes     atomic.Int64
	reconnects atomic.Int64
	newConns   atomic.Int64
	refused    atomic.Int64
	dialErrs   atomic.Int64
	broken     atomic.Int64
	longestN   atomic.Int64 // longest wait for one answer, ns

	mu    sync.Mutex
	acked map[string]string // key → last value the server acknowledged
	errs  []string
}

// Start connects o.Workers workers (failing the test if one cannot
// connect) and starts them and the stream of new connections.
func Start(t testing.TB, o Options) *Load {
	t.Helper()
	l := &Load{o: o, stop: make(chan struct{}), acked: map[string]string{}}
	for w := range o.Workers {
		c, err := o.Dial()
		if err != nil {
			l.Finish() // the workers already started
			t.Fatalf("worker %d: connect: %v", w, err)
		}
		l.wg.Add(1)
		go l.worker(w, c)
	}
	l.wg.Add(1)
	go l.connector()
	return l
}

// Counts are the figures of a finished load.
type Counts struct {
	Workers    int
	Writes     int64         // writes acknowledged on the workers' connections
	Reconnects int64         // workers' connects after a broken connection
	NewConns   int64         // new connections that connected
	Refused    int64         // connects refused: nobody held the port
	DialErrs   int64         // other connect failures
	Broken     int64         // established connections that failed a request
	Longest    time.Duration // longest wait for one answer
	Errors     []string      // the first failures, at most keptErrors (20)
}

func (c Counts) String() string {
	return fmt.Sprintf("%d writes acknowledged; %d connects (%d workers, %d reconnects, %d new connections); %d refused, %d other connect errors, %d broken; longest answer %v; first errors: %q",
		c.Writes, int64(c.Workers)+c.Reconnects+c.NewConns, c.Workers, c.Reconnects, c.NewConns, c.Refused, c.DialErrs, c.Broken, c.Longest.Round(time.Millisecond), c.Errors)
}

// Finish stops the traffic, waits for every connection to close and
// returns the figures.
func (l *Load) Finish() Counts {
	select {
	case <-l.stop:
	default:
		close(l.stop)
	}
	l.wg.Wait()
	l.mu.Lock()
	defer l.mu.Unlock()
	return Counts{
		Workers:    l.o.Workers,
		Writes:     l.writes.Load(),
		Reconnects: l.reconnects.Load(),
		NewConns:   l.newConns.Load(),
		Refused:    l.refused.Load(),
		DialErrs:   l.dialErrs.Load(),
		Broken:     l.broken.Load(),
		Longest:    time.Duration(l.longestN.Load()),
		Errors:     append([]string(nil), l.errs...),
	}
}

// Acked returns a copy of every key the server acknowledged, with the last
// value acknowledged for it.
func (l *Load) Acked() map[string]string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return maps.Clone(l.acked)
}

// Lost reads back, on a connection of its own, every acknowledged write
// and extra (keys the test wrote itself) and returns how many the server
// no longer has or has with another value; it logs the first five. Call it
// after Finish.
func (l *Load) Lost(t testing.TB, extra map[string]string) int {
	t.Helper()
	c, err := l.o.Dial()
	if err != nil {
		t.Fatalf("read back: connect: %v", err)
	}
	defer c.Close()
	want := l.Acked()
	maps.Copy(want, extra)
	lost := 0
	for key, value := range want {
		got, found, err := c.Get(key)
		if err != nil {
			t.Fatalf("read back %s: %v", key, err)
		}
		if !found || got != value {
			if lost < 5 {
				t.Logf("lost %s: found %v, %q, want %q", key, found, got, value)
			}
			lost++
		}
	}
	return lost
}

func (l *Load) stopped() bool {
	select {
	case <-l.stop:
		return true
	default:
		return false
	}
}

// fail counts a failure and keeps its text while fewer than keptErrors are.
func (l *Load) fail(counter *atomic.Int64, format string, args ...any) {
	counter.Add(1)
	l.mu.Lock()
	if len(l.errs) < keptErrors {
		l.errs = append(l.errs, fmt.Sprintf(format, args...))
	}
	l.mu.Unlock()
}

// dial connects for who, counting a failure as refused or as another
// connect error.
func (l *Load) dial(who string) (Conn, error) {
	c, err := l.o.Dial()
	if err != nil {
		counter := &l.dialErrs
		if errors.Is(err, syscall.ECONNREFUSED) {
			counter = &l.refused
		}
		l.fail(counter, "%s: connect: %v", who, err)
		return nil, err
	}
	return c, nil
}

// put writes key and times the answer; an acknowledged write is recorded.
func (l *Load) put(c Conn, key, value string) error {
	start := time.Now()
	err := c.Put(key, value)
	for d := int64(time.Since(start)); ; {
		cur := l.longestN.Load()
		if d <= cur || l.longestN.CompareAndSwap(cur, d) {
			break
		}
	}
	if err == nil {
		l.mu.Lock()
		l.acked[key] = value
		l.mu.Unlock()
	}
	return err
}

// worker writes on one connection until Finish; when the connection breaks
// it counts it and, with Options.Reconnect, connects again.
func (l *Load) worker(w int, c Conn) {
	defer l.wg.Done()
	defer func() {
		if c != nil {
			c.Close()
		}
	}()
	who := fmt.Sprintf("worker %d", w)
	for n := 0; !l.stopped(); n++ {
		if c == nil {
			var err error
			if c, err = l.dial(who); err != nil {
				time.Sleep(redialPause)
				continue
			}
			l.reconnects.Add(1)
		}
		key, value := l.o.WorkerBeat(w, n)
		if err := l.put(c, key, value); err != nil {
			l.fail(&l.broken, "%s: write %s: %v", who, key, err)
			if !l.o.Reconnect {
				return
			}
			c.Close()
			c = nil
			continue
		}
		l.writes.Add(1)
		time.Sleep(l.o.WorkerPause)
	}
}

// connector opens a new connection, writes once and closes, over and over:
// the clients that arrive while the daemon restarts.
func (l *Load) connector() {
	defer l.wg.Done()
	for n := 0; !l.stopped(); n++ {
		who := fmt.Sprintf("new connection %d", n)
		if c, err := l.dial(who); err == nil {
			l.newConns.Add(1)
			key, value := l.o.NewBeat(n)
			if err := l.put(c, key, value); err != nil {
				l.fail(&l.broken, "%s: write %s: %v", who, key, err)
			}
			c.Close()
		}
		time.Sleep(l.o.NewPause)
	}
}
