// Package daemon runs the real bin/pacemaker for tests: build the binaries
// once per test process, start the daemon on a free loopback port with a
// config of the test's choosing, wait until it accepts, and stop it — with
// its log at hand for assertions and printed when the test fails.
//
// Typical use:
//
//	func TestMain(m *testing.M) { os.Exit(daemon.Main(m)) }
//
//	func TestX(t *testing.T) {
//		p := daemon.Start(t, daemon.Options{Config: "pacemaker.auth.method: NONE\n"})
//		conn, err := net.Dial("tcp", p.Addr())
//		...
//	}
//
// TestMain is optional: it only removes the built binaries afterwards.
package daemon

import (
	"errors"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/syncbuf"
)

// BinDirEnv, when set, names a directory that already holds pacemaker and
// pacemakerctl (e.g. bin/ after `make build`); Build then compiles nothing.
// Tests that use the test hooks (test/systemd's TestWatchdog) need a
// pacemaker built with -tags pacemaker_testhooks there.
const BinDirEnv = "PACEMAKER_TEST_BIN_DIR"

// DirPlaceholder in Options.Config and Options.Files is replaced by the
// daemon's private directory, so a config can name files written beside it.
const DirPlaceholder = "{{dir}}"

var build struct {
	once sync.Once
	race bool // set by MainRace
	dir  string
	tmp  string // removed by Main
	err  error
}

// RepoRoot returns the module's root directory (where go.mod is).
func RepoRoot(t testing.TB) string {
	t.Helper()
	out, err := exec.Command("go", "env", "GOMOD").Output()
	if err != nil {
		t.Fatalf("go env GOMOD: %v", err)
	}
	mod := strings.TrimSpace(string(out))
	if mod == "" || mod == os.DevNull {
		t.Fatal("go env GOMOD: not inside the pacemaker module")
	}
	return filepath.Dir(mod)
}

// TestHooksTag is the build tag that compiles the daemon's test hooks
// (internal/daemon/testhooks.go), such as --test-wedge-on-sigusr2. Build
// compiles with it; shipped binaries never have it.
const TestHooksTag = "pacemaker_testhooks"

// Build compiles cmd/pacemaker (with the test hooks) and cmd/pacemakerctl
// once per test process and returns the directory holding both; with
// $PACEMAKER_TEST_BIN_DIR it returns that directory instead.
func Build(t testing.TB) string {
	t.Helper()
	if dir := os.Getenv(BinDirEnv); dir != "" {
		for _, name := range []string{"pacemaker", "pacemakerctl"} {
			if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
				t.Fatalf("%s=%s: %v", BinDirEnv, dir, err)
			}
		}
		return dir
	}
	root := RepoRoot(t)
	build.once.Do(func() {
		build.tmp, build.err = os.MkdirTemp("", "pacemaker-testbin-")
		if build.err != nil {
			return
		}
		build.dir = build.tmp
		args := []string{"build", "-tags", TestHooksTag, "-o", build.dir + string(filepath.Separator)}
		cgo := "CGO_ENABLED=0"
		if build.race {
			args, cgo = append(args, "-race"), "CGO_ENABLED=1"
		}
		cmd := exec.Command("go", append(args, "./cmd/pacemaker", "./cmd/pacemakerctl")...)
		cmd.Dir = root
		cmd.Env = append(os.Environ(), cgo)
		if out, err := cmd.CombinedOutput(); err != nil {
			build.err = fmt.Errorf("go %s: %v\n%s", strings.Join(cmd.Args[1:], " "), err, out)
		}
	})
	if build.err != nil {
		t.Fatal(build.err)
	}
	return build.dir
}

// MainRace is Main for a suite whose daemons are built with the race
// detector (unless BinDirEnv names prebuilt ones): a data race the daemon
// reports fails the test that started it (see CheckRace).
func MainRace(m *testing.M) int {
	build.race = true
	return Main(m)
}

// raceReport starts every report of a race-enabled binary.
const raceReport = "WARNING: DATA RACE"

// CheckRace fails t when a daemon's log holds a data race report.
func CheckRace(t testing.TB, log string) {
	t.Helper()
	if i := strings.Index(log, raceReport); i >= 0 {
		t.Errorf("the daemon reported a data race:\n%s", log[i:min(len(log), i+4000)])
	}
}

// Main runs the tests and then removes the binaries Build made.
func Main(m *testing.M) int {
	code := m.Run()
	if build.tmp != "" {
		os.RemoveAll(build.tmp)
	}
	return code
}

// Options says how to start the daemon.
type Options struct {
	// Config is the YAML config file's content ("" = an empty file, i.e.
	// Storm's defaults: auth NONE). It is always passed with --config, so
	// /etc/pacemaker/pacemaker.yaml on the host never leaks in.
	Config string
	// Files are written into the daemon's directory before it starts
	// (name → content), e.g. a JAAS file the config points at with
	// "{{dir}}/jaas.conf".
	Files map[string]string
	// Args are extra command-line flags.
	Args []string
	// Env adds NAME=value pairs. The test process's own PACEMAKER_*
	// variables are never passed on.
	Env []string
	// Port to listen on; 0 picks a free one.
	Port int
	// Listen is the address to bind; "" means 127.0.0.1.
	Listen string
	// LogLevel is passed as --log-level; "" means debug.
	LogLevel string
	// NoWait returns at once instead of waiting for the port, for tests of
	// a daemon that may not start (see Proc.WaitReady and Proc.Wait).
	NoWait bool
	// StartTimeout bounds the wait for the port (default 15 s).
	StartTimeout time.Duration
}

// Proc is one running daemon.
type Proc struct {
	t      testing.TB
	cmd    *exec.Cmd
	dir    string
	config string
	host   string
	port   int
	log    *syncbuf.Buffer
	done   chan struct{}
	err    error // Wait's result, valid once done is closed
	stopMu sync.Mutex
}

// Start starts bin/pacemaker and waits until its port accepts connections.
// The daemon is stopped when the test ends, and its log is printed if the
// test failed.
func Start(t testing.TB, opts Options) *Proc {
	t.Helper()
	bin := filepath.Join(Build(t), "pacemaker")
	dir := t.TempDir()
	for name, content := range opts.Files {
		path := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(path, []byte(strings.ReplaceAll(content, DirPlaceholder, dir)), 0o600); err != nil {
			t.Fatal(err)
		}
	}
	config := filepath.Join(dir, "pacemaker.yaml")
	if err := os.WriteFile(config, []byte(strings.ReplaceAll(opts.Config, DirPlaceholder, dir)), 0o600); err != nil {
		t.Fatal(err)
	}
	host := opts.Listen
	if host == "" {
		host = "127.0.0.1"
	}
	level := opts.LogLevel
	if level == "" {
		level = "debug"
	}

	// A free port can be taken between our probe and the daemon's bind;
	// try a few ports before giving up.
	var lastLog string
	for attempt := 0; attempt < 3; attempt++ {
		port := opts.Port
		if port == 0 {
			port = FreePort(t, host)
		}
		p := &Proc{t: t, dir: dir, config: config, host: host, port: port, log: &syncbuf.Buffer{}, done: make(chan struct{})}
		args := append([]string{"--config", config, "--port", strconv.Itoa(port), "--listen", host, "--log-level", level}, opts.Args...)
		p.cmd = exec.Command(bin, args...)
		p.cmd.Dir = dir
		p.cmd.Env = append(cleanEnv(), opts.Env...)
		p.cmd.Stdout = p.log
		p.cmd.Stderr = p.log
		if err := p.cmd.Start(); err != nil {
			t.Fatalf("start %s: %v", bin, err)
		}
		go func() { p.err = p.cmd.Wait(); close(p.done) }()
		t.Cleanup(func() {
			p.Stop()
			CheckRace(t, p.Log())
			if t.Failed() {
				t.Logf("pacemaker log (%s %s):\n%s", bin, strings.Join(args, " "), p.Log())
			}
		})
		if opts.NoWait {
			return p
		}
		timeout := opts.StartTimeout
		if timeout == 0 {
			timeout = 15 * time.Second
		}
		err := p.WaitReady(timeout)
		if err == nil {
			return p
		}
		lastLog = p.Log()
		if opts.Port == 0 && strings.Contains(lastLog, "address already in use") {
			continue
		}
		t.Fatalf("pacemaker did not start: %v\nlog:\n%s", err, lastLog)
	}
	t.Fatalf("pacemaker did not start: port taken three times\nlog:\n%s", lastLog)
	return nil
}

// FreePort returns a TCP port on host that was free a moment ago.
func FreePort(t testing.TB, host string) int {
	t.Helper()
	ln, err := net.Listen("tcp", net.JoinHostPort(host, "0"))
	if err != nil {
		t.Fatalf("find a free port on %s: %v", host, err)
	}
	defer ln.Close()
	return ln.Addr().(*net.TCPAddr).Port
}

func cleanEnv() []string {
	var env []string
	for _, kv := range os.Environ() {
		// systemd's variables too: a CI runner under systemd must not make
		// test daemons talk to its notify socket or adopt its fds.
		if !strings.HasPrefix(kv, "PACEMAKER_") && !strings.HasPrefix(kv, "NOTIFY_SOCKET=") &&
			!strings.HasPrefix(kv, "WATCHDOG_") && !strings.HasPrefix(kv, "LISTEN_") && !strings.HasPrefix(kv, "GOMEMLIMIT=") {
			env = append(env, kv)
		}
	}
	return env
}

// WaitReady waits until the daemon's port accepts connections; it fails at
// once if the daemon exits first.
func (p *Proc) WaitReady(timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case <-p.done:
			return fmt.Errorf("exited before accepting connections: %v", p.err)
		default:
		}
		c, err := net.DialTimeout("tcp", p.Addr(), time.Second)
		if err == nil {
			c.Close()
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("port %s not accepting after %v: %v", p.Addr(), timeout, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// Addr is host:port of the daemon's listener.
func (p *Proc) Addr() string { return net.JoinHostPort(p.host, strconv.Itoa(p.port)) }

// Port is the daemon's TCP port.
func (p *Proc) Port() int { return p.port }

// Dir is the daemon's private directory (config, Files, working directory).
func (p *Proc) Dir() string { return p.dir }

// ConfigPath is the config file passed with --config; rewrite it and send
// SIGHUP to test a reload.
func (p *Proc) ConfigPath() string { return p.config }

// PID is the daemon's process id.
func (p *Proc) PID() int { return p.cmd.Process.Pid }

// Log returns everything the daemon wrote to stdout and stderr so far.
func (p *Proc) Log() string { return p.log.String() }

// WaitLog waits until the log contains substr.
func (p *Proc) WaitLog(substr string, timeout time.Duration) bool {
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.Log(), substr) {
		if time.Now().After(deadline) {
			return false
		}
		time.Sleep(20 * time.Millisecond)
	}
	return true
}

// Signal sends sig to the daemon.
func (p *Proc) Signal(sig os.Signal) error { return p.cmd.Process.Signal(sig) }

// Exited reports whether the daemon has exited.
func (p *Proc) Exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// Wait waits up to timeout for the daemon to exit by itself and returns its
// exit code (-1 if it did not exit in time or was killed by a signal).
func (p *Proc) Wait(timeout time.Duration) int {
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		return -1
	}
}

// Stop sends SIGTERM, waits up to 15 s (then SIGKILL) and returns nil if the
// daemon exited with status 0. Calling it again returns the same result.
func (p *Proc) Stop() error {
	p.stopMu.Lock()
	defer p.stopMu.Unlock()
	if !p.Exited() {
		_ = p.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-p.done:
		case <-time.After(15 * time.Second):
			_ = p.cmd.Process.Kill()
			<-p.done
			return errors.New("pacemaker ignored SIGTERM for 15 s; killed")
		}
	}
	return p.err
}

// StartWithMetrics is Start with pacemaker.metrics.listen on a free
// loopback port added to opts.Config. It returns once /healthz answers,
// with the endpoint's base URL.
func StartWithMetrics(t testing.TB, opts Options, timeout time.Duration) (*Proc, string) {
	t.Helper()
	mport := FreePort(t, "127.0.0.1")
	opts.Config += fmt.Sprintf("pacemaker.metrics.listen: \"127.0.0.1:%d\"\n", mport)
	p := Start(t, opts)
	base := fmt.Sprintf("http://127.0.0.1:%d", mport)
	deadline := time.Now().Add(timeout)
	for {
		resp, err := http.Get(base + "/healthz")
		if err == nil {
			resp.Body.Close()
			return p, base
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics endpoint %s: %v", base, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}
