package systemd

import (
	"fmt"
	"net"
	"os"
	"syscall"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/restartload"
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

// startLoad is Storm-like traffic during a restart over the raw client:
// workers rewriting their heartbeat on long-lived connections, never
// reconnecting (a close is a broken connection), and new connections
// arriving, each writing once.
func startLoad(t *testing.T, addr string, workers int) *restartload.Load {
	t.Helper()
	return restartload.Start(t, restartload.Options{
		Dial: func() (restartload.Conn, error) {
			c, err := dial(addr)
			if err != nil {
				return nil, err
			}
			return c, nil
		},
		Workers: workers,
		WorkerBeat: func(w, n int) (string, string) {
			return fmt.Sprintf("/workerbeats/topo-1/sup-%d-6700", w), fmt.Sprintf("beat-%d", n)
		},
		NewBeat:     func(n int) (string, string) { return fmt.Sprintf("/workerbeats/topo-2/new-%d", n), "x" },
		WorkerPause: 2 * time.Millisecond,
		NewPause:    5 * time.Millisecond,
	})
}

// preload writes n heartbeats on a connection of its own, before the restart.
func preload(t *testing.T, addr string, n int) map[string]string {
	t.Helper()
	c, err := dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	keys := map[string]string{}
	for i := range n {
		k, v := fmt.Sprintf("/workerbeats/topo-0/pre-%d", i), fmt.Sprintf("v%d", i)
		if err := c.Put(k, v); err != nil {
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
	n := l.Finish()
	t.Logf("restart under load: %s", n)
	if n.Refused != 0 {
		t.Errorf("%d connects refused during the restart; want 0", n.Refused)
	}
	if n.NewConns < 10 {
		t.Errorf("only %d new connections during the test", n.NewConns)
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
	n := l.Finish()
	t.Logf("restart under load: %s", n)

	if n.Refused != 0 {
		t.Errorf("%d connects refused during the restart; want 0", n.Refused)
	}
	if k := n.Broken + n.DialErrs; k != 0 {
		t.Errorf("%d connections broke or failed to connect during the restart; want 0", k)
	}
	lost := l.Lost(t, pre)
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
