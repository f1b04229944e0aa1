package systemd

import (
	"errors"
	"fmt"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"
)

// heldSocket is the listening socket systemd would hold for
// pacemaker.socket: the test keeps it open across daemon processes.
func heldSocket(t *testing.T) (*os.File, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close() // f is a duplicate: the socket keeps listening
	t.Cleanup(func() { f.Close() })
	return f, addr
}

// load is Storm-like traffic during a restart: workers on long-lived
// connections writing heartbeats, and new connections arriving.
type load struct {
	addr string
	stop chan struct{}
	wg   sync.WaitGroup

	refused   atomic.Int64 // connects refused
	broken    atomic.Int64 // established connections that failed
	connects  atomic.Int64
	writes    atomic.Int64
	maxStallN atomic.Int64 // longest wait for one answer, ns

	mu    sync.Mutex
	acked map[string]string // key → last value the server acknowledged
	errs  []string
}

func startLoad(t *testing.T, addr string, workers int) *load {
	t.Helper()
	l := &load{addr: addr, stop: make(chan struct{}), acked: map[string]string{}}
	for w := range workers {
		c, err := dial(addr)
		if err != nil {
			t.Fatalf("worker %d: connect: %v", w, err)
		}
		l.wg.Add(1)
		go l.worker(w, c)
	}
	l.wg.Add(1)
	go l.connector()
	return l
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

// worker writes its heartbeat over and over on one connection, as a Storm
// worker does, and never reconnects: a close is a broken connection.
func (l *load) worker(w int, c *client) {
	defer l.wg.Done()
	defer c.close()
	key := fmt.Sprintf("/workerbeats/topo-1/sup-%d-6700", w)
	for seq := 0; !l.stopped(); seq++ {
		value := fmt.Sprintf("beat-%d", seq)
		start := time.Now()
		if err := c.put(key, value); err != nil {
			l.fail(&l.broken, "worker %d: %v", w, err)
			return
		}
		l.noteStall(time.Since(start))
		l.writes.Add(1)
		l.mu.Lock()
		l.acked[key] = value
		l.mu.Unlock()
		time.Sleep(2 * time.Millisecond)
	}
}

// connector opens a new connection, sends one request and closes, over and
// over: a refused connect is what systemd holding the socket prevents.
func (l *load) connector() {
	defer l.wg.Done()
	for i := 0; !l.stopped(); i++ {
		c, err := dial(l.addr)
		if err != nil {
			if errors.Is(err, syscall.ECONNREFUSED) {
				l.fail(&l.refused, "connect %d: %v", i, err)
			} else {
				l.fail(&l.broken, "connect %d: %v", i, err)
			}
			time.Sleep(5 * time.Millisecond)
			continue
		}
		l.connects.Add(1)
		key := fmt.Sprintf("/workerbeats/topo-2/new-%d", i)
		start := time.Now()
		err = c.put(key, "x")
		c.close()
		l.noteStall(time.Since(start))
		if err != nil {
			l.fail(&l.broken, "new connection %d: %v", i, err)
			continue
		}
		l.mu.Lock()
		l.acked[key] = "x"
		l.mu.Unlock()
		time.Sleep(5 * time.Millisecond)
	}
}

func (l *load) noteStall(d time.Duration) {
	for {
		cur := l.maxStallN.Load()
		if int64(d) <= cur || l.maxStallN.CompareAndSwap(cur, int64(d)) {
			return
		}
	}
}

func (l *load) finish() {
	close(l.stop)
	l.wg.Wait()
}

func (l *load) report(t *testing.T) {
	t.Logf("restart under load: %d writes on long-lived connections, %d new connections; refused %d, broken %d; longest answer %v",
		l.writes.Load(), l.connects.Load(), l.refused.Load(), l.broken.Load(), time.Duration(l.maxStallN.Load()).Round(time.Millisecond))
	l.mu.Lock()
	defer l.mu.Unlock()
	for _, e := range l.errs {
		t.Logf("  %s", e)
	}
}

// lost counts acknowledged heartbeats the server no longer has (or has
// with an older value).
func (l *load) lost(t *testing.T, extra map[string]string) int {
	t.Helper()
	c, err := dial(l.addr)
	if err != nil {
		t.Fatalf("connect to check keys: %v", err)
	}
	defer c.close()
	l.mu.Lock()
	want := map[string]string{}
	for k, v := range l.acked {
		want[k] = v
	}
	l.mu.Unlock()
	for k, v := range extra {
		want[k] = v
	}
	lost := 0
	for k, v := range want {
		got, ok, err := c.get(k)
		if err != nil {
			t.Fatalf("get %s: %v", k, err)
		}
		if !ok || got != v {
			if lost < 5 {
				t.Errorf("key %s: got %q (present %v), want %q", k, got, ok, v)
			}
			lost++
		}
	}
	return lost
}

// preload writes n heartbeats on a connection of its own, before the restart.
func preload(t *testing.T, addr string, n int) map[string]string {
	t.Helper()
	c, err := dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.close()
	keys := map[string]string{}
	for i := range n {
		k, v := fmt.Sprintf("/workerbeats/topo-0/pre-%d", i), fmt.Sprintf("v%d", i)
		if err := c.put(k, v); err != nil {
			t.Fatal(err)
		}
		keys[k] = v
	}
	return keys
}

// TestRestartBehindHeldSocket: the listening socket outlives the daemon
// (systemd holds it for pacemaker.socket), so a restart refuses no
// connection: clients that connect meanwhile wait in the backlog and the
// next process serves them. Without a file-descriptor store the old
// process closes its connections, so they may break, and heartbeats go.
func TestRestartBehindHeldSocket(t *testing.T) {
	t.Parallel()
	need(t, "sh")
	sock, addr := heldSocket(t)
	opts := procOptions{files: []*os.File{sock}, names: []string{"pacemaker"}}
	p1 := startProc(t, opts)
	p1.waitLog("pacemaker serving", 15*time.Second)

	l := startLoad(t, addr, 8)
	time.Sleep(300 * time.Millisecond)
	p1.signal(syscall.SIGTERM)
	if code := p1.wait(15 * time.Second); code != 0 {
		t.Fatalf("first daemon exit status %d", code)
	}
	time.Sleep(200 * time.Millisecond) // nobody accepts: connects must queue, not fail
	p2 := startProc(t, opts)
	p2.waitLog("pacemaker serving", 15*time.Second)
	time.Sleep(300 * time.Millisecond)
	l.finish()
	l.report(t)
	if n := l.refused.Load(); n != 0 {
		t.Errorf("%d connects refused during the restart; want 0", n)
	}
	if l.connects.Load() < 10 {
		t.Errorf("only %d connects during the test", l.connects.Load())
	}
}

// TestRestartWithFDStore: as systemd does with FileDescriptorStoreMax=,
// the test's notification socket keeps what the stopping daemon stores
// (FDSTORE=1) and passes it, with the held listening socket, to the next
// daemon ($LISTEN_FDNAMES). Clients then notice nothing: no refused
// connect, no broken connection, no lost heartbeat; and the next daemon
// empties the store (FDSTOREREMOVE=1) once it has taken everything up.
func TestRestartWithFDStore(t *testing.T) {
	t.Parallel()
	need(t, "sh")
	m := newManager(t)
	sock, addr := heldSocket(t)
	p1 := startProc(t, procOptions{files: []*os.File{sock}, names: []string{"pacemaker"}, env: []string{"NOTIFY_SOCKET=" + m.path}})
	m.expect("READY=1", 15*time.Second, func(msg notifyMsg) bool { return msg.has("READY", "1") })
	pre := preload(t, addr, 2000)

	const workers = 20
	l := startLoad(t, addr, workers)
	time.Sleep(300 * time.Millisecond)
	restartAt := time.Now()
	p1.signal(syscall.SIGTERM)
	m.expect("STOPPING=1", 5*time.Second, func(msg notifyMsg) bool { return msg.has("STOPPING", "1") })
	if code := p1.wait(15 * time.Second); code != 0 {
		t.Fatalf("first daemon exit status %d", code)
	}
	p1.waitLog("stored heartbeats and connections in systemd's fd store", time.Second)

	stored := m.stored()
	files := []*os.File{sock}
	names := []string{"pacemaker"}
	for _, s := range stored {
		files = append(files, s.file)
		names = append(names, s.name)
	}
	t.Logf("fd store after the first daemon exited: %v", names[1:])
	if len(stored) != 2 {
		t.Fatalf("stored %d descriptors (%v); want the state and the connection carrier", len(stored), names[1:])
	}
	p2 := startProc(t, procOptions{files: files, names: names, env: []string{"NOTIFY_SOCKET=" + m.path}})
	m.expect("READY=1 from the next daemon", 15*time.Second, func(msg notifyMsg) bool { return msg.has("READY", "1") })
	t.Logf("restart took %v from SIGTERM to READY=1", time.Since(restartAt).Round(time.Millisecond))
	p2.waitLog("took over from the previous process", time.Second)
	time.Sleep(300 * time.Millisecond)
	l.finish()
	l.report(t)

	if n := l.refused.Load(); n != 0 {
		t.Errorf("%d connects refused during the restart; want 0", n)
	}
	if n := l.broken.Load(); n != 0 {
		t.Errorf("%d connections broke during the restart; want 0", n)
	}
	lost := l.lost(t, pre)
	t.Logf("lost heartbeats: %d of %d", lost, len(pre)+workers)
	if lost != 0 {
		t.Errorf("%d acknowledged heartbeats lost across the restart; want 0", lost)
	}
	if left := m.stored(); len(left) != 0 {
		t.Errorf("%d descriptors left in the fd store after the next daemon took them up; want 0", len(left))
	}
	p2.signal(syscall.SIGTERM)
	if code := p2.wait(15 * time.Second); code != 0 {
		t.Errorf("second daemon exit status %d", code)
	}
}
