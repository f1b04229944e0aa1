package systemd

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// activate starts the daemon under systemd-socket-activate and makes the
// first connection, which starts it (retrying on another port if the
// chosen one was taken meanwhile).
func activate(t *testing.T, m *manager, o procOptions) (*proc, *client, string) {
	t.Helper()
	need(t, "systemd-socket-activate", "sh")
	o.env = append(o.env, "NOTIFY_SOCKET="+m.path)
	for attempt := 0; ; attempt++ {
		o.activate = freeAddr(t)
		p := startProc(t, o)
		var c *client
		var err error
		for i := 0; i < 100; i++ {
			if c, err = dial(o.activate); err == nil || p.exited() {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if err == nil {
			t.Cleanup(func() { c.Close() })
			return p, c, o.activate
		}
		if attempt == 2 || !strings.Contains(p.log.String(), "Address already in use") {
			t.Fatalf("cannot connect to the socket-activated daemon on %s: %v\n%s", o.activate, err, p.log.String())
		}
	}
}

// TestNotifyLifecycle: under systemd-socket-activate the daemon serves on
// the passed socket (and says the config's port differs), sends READY=1
// with a STATUS= line, refreshes STATUS=, reloads with RELOADING=1 +
// MONOTONIC_USEC and READY=1 (also when the new config is rejected), and
// stops with STOPPING=1 and exit status 0.
func TestNotifyLifecycle(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	p, c, _ := activate(t, m, procOptions{config: "pacemaker.port: 6699\n"})

	ready := m.expect("READY=1", 15*time.Second, func(msg notifyMsg) bool { return msg.has("READY", "1") })
	if s := ready.fields["STATUS"]; !strings.HasPrefix(s, "serving ") || !strings.Contains(s, "auth NONE") {
		t.Errorf("STATUS with READY=1 is %q; want \"serving N keys ..., auth NONE\"", s)
	}
	p.waitLog("serving on the sockets systemd passed", 5*time.Second)
	p.waitLog("pacemaker.port differs from the socket systemd passed", 5*time.Second)
	if strings.Contains(p.log.String(), "bound own listener") {
		t.Error("daemon bound its own listener although systemd passed one")
	}
	if err := c.Put("/workerbeats/t1/s1-6700", "beat"); err != nil {
		t.Fatalf("request on the activating connection: %v", err)
	}

	// The periodic refresh shows the stored heartbeat.
	m.expect("a refreshed STATUS=", 15*time.Second, func(msg notifyMsg) bool {
		return !msg.has("READY", "") && strings.HasPrefix(msg.fields["STATUS"], "serving 1 keys")
	})

	// Reload: RELOADING=1 with the current CLOCK_MONOTONIC, then READY=1.
	var ts unix.Timespec
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	before := ts.Nano() / 1000
	p.signal(syscall.SIGHUP)
	reloading := m.expect("RELOADING=1", 5*time.Second, func(msg notifyMsg) bool { return msg.has("RELOADING", "1") })
	usec, err := strconv.ParseInt(reloading.fields["MONOTONIC_USEC"], 10, 64)
	_ = unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts)
	if err != nil || usec < before || usec > ts.Nano()/1000 {
		t.Errorf("RELOADING=1 came with MONOTONIC_USEC=%q; want a CLOCK_MONOTONIC time in [%d, %d]", reloading.fields["MONOTONIC_USEC"], before, ts.Nano()/1000)
	}
	m.expect("READY=1 after the reload", 5*time.Second, func(msg notifyMsg) bool { return msg.has("READY", "1") })
	p.waitLog("config reloaded", 5*time.Second)

	// A broken config is rejected; the daemon still says READY=1 and serves.
	cfg := filepath.Join(p.cmd.Dir, "pacemaker.yaml")
	if err := os.WriteFile(cfg, []byte("pacemaker.auth.method: BOGUS\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	p.signal(syscall.SIGHUP)
	m.expect("RELOADING=1", 5*time.Second, func(msg notifyMsg) bool { return msg.has("RELOADING", "1") })
	m.expect("READY=1 after the rejected reload", 5*time.Second, func(msg notifyMsg) bool { return msg.has("READY", "1") })
	p.waitLog("reload rejected", 5*time.Second)
	if v, ok, err := c.Get("/workerbeats/t1/s1-6700"); err != nil || !ok || v != "beat" {
		t.Errorf("after the rejected reload: %q %v %v", v, ok, err)
	}

	p.signal(syscall.SIGTERM)
	m.expect("STOPPING=1", 5*time.Second, func(msg notifyMsg) bool { return msg.has("STOPPING", "1") })
	if code := p.wait(15 * time.Second); code != 0 {
		t.Errorf("exit status %d after SIGTERM; want 0", code)
	}
}

// TestConfigErrorBeforeReady: a bad config exits with status 2 and the
// reason on stderr (the journal), without READY=1.
func TestConfigErrorBeforeReady(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	p := startProc(t, procOptions{config: "pacemaker.port: nope\n", env: []string{"NOTIFY_SOCKET=" + m.path}})
	if code := p.wait(15 * time.Second); code != 2 {
		t.Fatalf("exit status %d; want 2\n%s", code, p.log.String())
	}
	if !strings.Contains(p.log.String(), "pacemaker.port") {
		t.Errorf("the reason does not name the key:\n%s", p.log.String())
	}
	for _, msg := range m.stored() {
		t.Errorf("stored descriptor %q from a daemon that never started", msg.name)
	}
	time.Sleep(100 * time.Millisecond)
	if h := m.history(); strings.Contains(h, "READY=1") {
		t.Errorf("READY=1 from a daemon with a bad config:\n%s", h)
	}
}

// TestWatchdog: with WatchdogSec=1s the daemon pings every ~0.5 s while
// healthy; wedged on purpose (--test-wedge-on-sigusr2, SIGUSR2: a test hook
// compiled only with -tags pacemaker_testhooks, as daemon.Build does) it stops,
// as systemd needs to kill and restart it.
func TestWatchdog(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	p, _, _ := activate(t, m, procOptions{
		args: []string{"--test-wedge-on-sigusr2"},
		env:  []string{"WATCHDOG_USEC=1000000"},
	})
	m.expect("READY=1", 15*time.Second, func(msg notifyMsg) bool { return msg.has("READY", "1") })
	isPing := func(msg notifyMsg) bool { return msg.has("WATCHDOG", "1") }
	var pings []time.Time
	for len(pings) < 4 {
		pings = append(pings, m.expect("WATCHDOG=1", 2*time.Second, isPing).at)
	}
	for i := 1; i < len(pings); i++ {
		if gap := pings[i].Sub(pings[i-1]); gap > 800*time.Millisecond {
			t.Errorf("watchdog pings %v apart; want about half of WatchdogSec=1s", gap)
		}
	}

	// The first check waits for the listener: no false alarm at start.
	if strings.Contains(p.log.String(), "health check failed") {
		t.Errorf("health check failed before the daemon was wedged:\n%s", p.log.String())
	}

	p.signal(syscall.SIGUSR2)
	p.waitLog("wedging", 5*time.Second)
	time.Sleep(600 * time.Millisecond) // a check already under way may still ping
	drain(m)
	deadline := time.After(2500 * time.Millisecond)
	for {
		select {
		case msg := <-m.msgs:
			if isPing(msg) {
				t.Fatalf("watchdog ping %q from a wedged daemon", msg.raw)
			}
		case <-deadline:
			p.waitLog("health check failed", time.Second)
			return
		}
	}
}

// TestWatchdogFirstPing: the first self-check waits for the listener, not
// for a whole period, so with WatchdogSec=60s (checks every 30 s) the first
// ping follows READY=1 long before 30 s, and no false "health check failed"
// is logged.
func TestWatchdogFirstPing(t *testing.T) {
	t.Parallel()
	m := newManager(t)
	p, _, _ := activate(t, m, procOptions{env: []string{"WATCHDOG_USEC=60000000"}})
	m.expect("READY=1", 15*time.Second, func(msg notifyMsg) bool { return msg.has("READY", "1") })
	m.expect("WATCHDOG=1 before the first period", 20*time.Second, func(msg notifyMsg) bool { return msg.has("WATCHDOG", "1") })
	if strings.Contains(p.log.String(), "health check failed") {
		t.Errorf("health check failed at start:\n%s", p.log.String())
	}
}

func drain(m *manager) {
	for {
		select {
		case <-m.msgs:
		default:
			return
		}
	}
}
