package fault

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/syncbuf"
)

// activated is a daemon started the way systemd starts it from
// pacemaker.socket: the listening socket is fd 3, announced by LISTEN_FDS
// and LISTEN_PID. The test holds the socket, as systemd does, so it stays
// open — and keeps queueing connections — while the daemon is dead.
type activated struct {
	cmd  *exec.Cmd
	log  syncbuf.Buffer
	done chan struct{}
}

// startActivated runs bin/pacemaker with sock as its only passed socket.
// Its own fallback port is a free one, so a daemon that ignores LISTEN_FDS
// binds somewhere harmless and the test can tell.
func startActivated(t *testing.T, sock *os.File, config string) *activated {
	t.Helper()
	bin := filepath.Join(daemon.Build(t), "pacemaker")
	// LISTEN_PID must be the daemon's own pid: let a shell export its pid
	// and exec the daemon in its place, as systemd does after fork.
	cmd := exec.Command("/bin/sh", "-c", `LISTEN_PID=$$; export LISTEN_PID; exec "$0" "$@"`,
		bin, "--config", config, "--listen", "127.0.0.1", "--port", strconv.Itoa(daemon.FreePort(t, "127.0.0.1")), "--log-level", "info")
	for _, kv := range os.Environ() {
		if !strings.HasPrefix(kv, "PACEMAKER_") && !strings.HasPrefix(kv, "LISTEN_") {
			cmd.Env = append(cmd.Env, kv)
		}
	}
	cmd.Env = append(cmd.Env, "LISTEN_FDS=1", "LISTEN_FDNAMES=pacemaker.socket")
	cmd.ExtraFiles = []*os.File{sock}
	a := &activated{cmd: cmd, done: make(chan struct{})}
	cmd.Stdout, cmd.Stderr = &a.log, &a.log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", bin, err)
	}
	go func() { _ = cmd.Wait(); close(a.done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-a.done:
		case <-time.After(hangBound):
			_ = cmd.Process.Kill()
			<-a.done
		}
		if t.Failed() {
			t.Logf("pacemaker log (pid %d):\n%s", cmd.Process.Pid, a.log.String())
		}
	})
	return a
}

// serving waits for the daemon's "serving" line and reports whether it
// serves addr (the passed socket) rather than a port of its own.
func (a *activated) serving(t *testing.T, addr string) bool {
	t.Helper()
	deadline := time.Now().Add(hangBound)
	for {
		for line := range strings.Lines(a.log.String()) {
			if strings.Contains(line, "pacemaker serving") {
				return strings.Contains(line, addr)
			}
		}
		select {
		case <-a.done:
			t.Fatalf("the daemon exited at start:\n%s", a.log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("the daemon did not start within %v:\n%s", hangBound, a.log.String())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestKill9RestartBehindHeldSocket: workers write heartbeats through a
// listening socket the test holds (as systemd's pacemaker.socket does)
// while the daemon behind it is killed with SIGKILL and restarted, twice.
// No connect may be refused; the workers reconnect and every one of them
// ends up stored in the last daemon.
func TestKill9RestartBehindHeldSocket(t *testing.T) {
	const workers = 8
	const runFor = 3 * time.Second
	const kills = 2
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	sock, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	ln.Close() // sock keeps the socket; only the daemons accept on it
	defer sock.Close()
	addr := ln.Addr().String()
	config := filepath.Join(t.TempDir(), "pacemaker.yaml")
	if err := os.WriteFile(config, nil, 0o600); err != nil {
		t.Fatal(err)
	}

	d := startActivated(t, sock, config)
	if !d.serving(t, addr) {
		t.Fatalf("the daemon ignored LISTEN_FDS and bound its own port instead of the passed socket:\n%s", d.log.String())
	}

	var refused, dialFailed, broken atomic.Int64
	var firstDialErr atomic.Pointer[error]
	var lat latencies
	last := make([]atomic.Int64, workers)
	lastOK := make([]atomic.Int64, workers) // unix nanos of each worker's last stored beat
	worstStall := make([]time.Duration, workers)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			var c *client.Conn
			defer func() {
				if c != nil {
					c.Close()
				}
			}()
			key := fmt.Sprintf("/workerbeats/restart-topo/sup-%d-6700", w)
			lastOK[w].Store(time.Now().UnixNano())
			for i := int64(1); ; {
				select {
				case <-stop:
					return
				default:
				}
				if c == nil {
					nc, err := client.Dial(context.Background(), addr, client.Options{DialTimeout: hangBound})
					if err != nil {
						if errors.Is(err, syscall.ECONNREFUSED) {
							refused.Add(1)
						}
						if dialFailed.Add(1) == 1 {
							firstDialErr.Store(&err)
						}
						time.Sleep(10 * time.Millisecond)
						continue
					}
					c = nc
				}
				ctx, cancel := context.WithTimeout(context.Background(), hangBound)
				t0 := time.Now()
				err := c.SendPulse(ctx, key, []byte(strconv.FormatInt(i, 10)))
				cancel()
				if err != nil {
					// The daemon died under this connection: reconnect
					// and send the same beat again, as Storm's client does.
					broken.Add(1)
					c.Close()
					c = nil
					continue
				}
				now := time.Now()
				lat.add(now.Sub(t0))
				worstStall[w] = max(worstStall[w], time.Duration(now.UnixNano()-lastOK[w].Load()))
				lastOK[w].Store(now.UnixNano())
				last[w].Store(i)
				i++
				time.Sleep(2 * time.Millisecond)
			}
		})
	}

	for k := range kills {
		time.Sleep(runFor / (kills + 1))
		if err := d.cmd.Process.Signal(syscall.SIGKILL); err != nil {
			t.Fatal(err)
		}
		select {
		case <-d.done:
		case <-time.After(hangBound):
			t.Fatal("SIGKILL did not kill the daemon")
		}
		t0 := time.Now()
		d = startActivated(t, sock, config)
		if !d.serving(t, addr) {
			t.Fatalf("restart %d: the daemon does not serve the passed socket:\n%s", k+1, d.log.String())
		}
		t.Logf("kill -9 #%d: successor serving the held socket %v after the kill", k+1, time.Since(t0).Round(time.Millisecond))
	}
	time.Sleep(runFor / (kills + 1))
	close(stop)
	wg.Wait()

	t.Logf("heartbeat writes: %s; %d requests lost with a killed daemon and re-sent; connects refused: %d",
		lat.summary(), broken.Load(), refused.Load())
	t.Logf("longest time a worker went without a stored heartbeat: %v", slices.Max(worstStall).Round(time.Millisecond))
	if n := dialFailed.Load(); n > 0 {
		t.Errorf("%d connects failed (%d refused); first: %v", n, refused.Load(), *firstDialErr.Load())
	}
	if broken.Load() == 0 {
		t.Error("no request was lost to a kill: the kills did not happen under load")
	}

	// The last daemon holds every worker's heartbeat at its newest beat.
	c, err := client.Dial(context.Background(), addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	for w := range workers {
		b, ok, err := c.GetPulse(context.Background(), fmt.Sprintf("/workerbeats/restart-topo/sup-%d-6700", w))
		if err != nil || !ok || string(b) != strconv.FormatInt(last[w].Load(), 10) {
			t.Errorf("worker %d after the restarts: %q %v %v, want beat %d", w, b, ok, err, last[w].Load())
		}
	}
}
