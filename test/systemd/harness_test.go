// Package systemd tests the daemon as systemd runs it: socket activation
// (systemd-socket-activate, or a listening socket the test holds and
// passes by $LISTEN_FDS), sd_notify readiness, status, reload, stop and
// watchdog messages on a notification socket the test owns, and the
// zero-downtime restart through an emulated file-descriptor store. The
// unit files are checked with systemd-analyze. Everything runs the built
// bin/pacemaker.
package systemd

import (
	"bufio"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/syncbuf"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// The daemons here are built with -race: this suite covers start-up with
// connections taken over, reload and shutdown, where races hide.
func TestMain(m *testing.M) { os.Exit(daemon.MainRace(m)) }

// need skips the test loudly when a tool is missing (on this project's
// machines and CI every one is installed by scripts/install-deps.sh).
func need(t *testing.T, tools ...string) {
	t.Helper()
	for _, tool := range tools {
		if _, err := exec.LookPath(tool); err != nil {
			t.Skipf("SKIPPED: %s not found (Debian package systemd / dash); install it to run this test", tool)
		}
	}
}

// notifyMsg is one sd_notify datagram, split into its assignments.
type notifyMsg struct {
	raw    string
	fields map[string]string
	at     time.Time
}

func (m notifyMsg) has(key, value string) bool {
	v, ok := m.fields[key]
	return ok && (value == "" || v == value)
}

// storedFD is one descriptor in the emulated fd store.
type storedFD struct {
	name string
	file *os.File
}

// manager emulates the parts of systemd's service manager the daemon talks
// to: the notification socket (READY, STATUS, WATCHDOG, ...), the
// file-descriptor store (FDSTORE=1, FDSTOREREMOVE=1) and BARRIER=1.
type manager struct {
	t    *testing.T
	path string
	conn *net.UnixConn
	msgs chan notifyMsg

	mu    sync.Mutex
	store []storedFD
	all   []notifyMsg
}

func newManager(t *testing.T) *manager {
	t.Helper()
	// Unix socket paths are short (108 bytes); t.TempDir can be longer.
	dir, err := os.MkdirTemp("", "pm-notify-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) })
	m := &manager{t: t, path: filepath.Join(dir, "notify"), msgs: make(chan notifyMsg, 1024)}
	m.conn, err = net.ListenUnixgram("unixgram", &net.UnixAddr{Name: m.path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		m.conn.Close()
		m.mu.Lock()
		for _, s := range m.store {
			s.file.Close()
		}
		m.mu.Unlock()
	})
	go m.loop()
	return m
}

func (m *manager) loop() {
	buf := make([]byte, 64<<10)
	oob := make([]byte, unix.CmsgSpace(253*4))
	for {
		n, oobn, _, _, err := m.conn.ReadMsgUnix(buf, oob)
		if err != nil {
			close(m.msgs)
			return
		}
		var files []*os.File
		if cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn]); err == nil {
			for _, c := range cmsgs {
				fds, _ := unix.ParseUnixRights(&c)
				for _, fd := range fds {
					files = append(files, os.NewFile(uintptr(fd), "stored"))
				}
			}
		}
		msg := notifyMsg{raw: string(buf[:n]), fields: map[string]string{}, at: time.Now()}
		for _, line := range strings.Split(msg.raw, "\n") {
			if k, v, ok := strings.Cut(line, "="); ok {
				msg.fields[k] = v
			}
		}
		m.mu.Lock()
		switch {
		case msg.has("BARRIER", "1"):
			for _, f := range files { // closing it is the answer
				f.Close()
			}
		case msg.has("FDSTORE", "1"):
			for _, f := range files {
				m.store = append(m.store, storedFD{name: msg.fields["FDNAME"], file: f})
			}
		case msg.has("FDSTOREREMOVE", "1"):
			kept := m.store[:0]
			for _, s := range m.store {
				if s.name == msg.fields["FDNAME"] {
					s.file.Close()
				} else {
					kept = append(kept, s)
				}
			}
			m.store = kept
		default:
			for _, f := range files {
				f.Close()
			}
		}
		m.all = append(m.all, msg)
		m.mu.Unlock()
		m.msgs <- msg
	}
}

// expect waits for a message for which match is true, skipping others.
func (m *manager) expect(what string, timeout time.Duration, match func(notifyMsg) bool) notifyMsg {
	m.t.Helper()
	deadline := time.After(timeout)
	for {
		select {
		case msg, ok := <-m.msgs:
			if !ok {
				m.t.Fatalf("notification socket closed while waiting for %s", what)
			}
			if match(msg) {
				return msg
			}
		case <-deadline:
			m.t.Fatalf("no %s within %v; got so far:\n%s", what, timeout, m.history())
		}
	}
}

func (m *manager) history() string {
	m.mu.Lock()
	defer m.mu.Unlock()
	var b strings.Builder
	for _, msg := range m.all {
		fmt.Fprintf(&b, "  %s %q\n", msg.at.Format("15:04:05.000"), msg.raw)
	}
	return b.String()
}

// takeStore returns the stored descriptors (what systemd would pass to the
// next process), leaving them in the store as systemd does.
func (m *manager) stored() []storedFD {
	m.mu.Lock()
	defer m.mu.Unlock()
	return append([]storedFD(nil), m.store...)
}

// proc is one daemon process.
type proc struct {
	t    *testing.T
	cmd  *exec.Cmd
	log  *syncbuf.Buffer
	done chan struct{}
}

// procOptions says how to start the daemon.
type procOptions struct {
	config string   // YAML
	args   []string // extra flags
	env    []string
	// files are passed as descriptors 3, 4, ... with $LISTEN_FDS,
	// $LISTEN_FDNAMES (names) and $LISTEN_PID set to the daemon's pid
	// (through sh, which execs the daemon and so keeps its pid).
	files []*os.File
	names []string
	// activate runs the daemon under systemd-socket-activate listening on
	// this address; the daemon starts on the first connection.
	activate string
}

func startProc(t *testing.T, o procOptions) *proc {
	t.Helper()
	bin := filepath.Join(daemon.Build(t), "pacemaker")
	dir := t.TempDir()
	cfg := filepath.Join(dir, "pacemaker.yaml")
	if err := os.WriteFile(cfg, []byte(o.config), 0o600); err != nil {
		t.Fatal(err)
	}
	argv := append([]string{bin, "--config", cfg, "--log-level", "debug"}, o.args...)
	env := []string{"PATH=" + os.Getenv("PATH")}
	env = append(env, o.env...)
	// sh sets the pid-bound variables to its own pid, then execs (keeping
	// that pid), exactly as systemd sets them for the process it starts.
	script := `export WATCHDOG_PID=$$; [ -z "$LISTEN_FDS" ] || export LISTEN_PID=$$; exec "$@"`
	if o.activate != "" {
		sa := []string{"systemd-socket-activate", "-l", o.activate, "--fdname=pacemaker"}
		for _, kv := range env {
			name, _, _ := strings.Cut(kv, "=")
			if name != "PATH" {
				sa = append(sa, "-E", kv)
			}
		}
		// WATCHDOG_PID from sh's environment: socket-activate execs the
		// daemon in its own process, so the pid stays.
		argv = append(append(sa, "-E", "WATCHDOG_PID"), argv...)
	}
	if len(o.files) > 0 {
		env = append(env, fmt.Sprintf("LISTEN_FDS=%d", len(o.files)), "LISTEN_FDNAMES="+strings.Join(o.names, ":"))
	}
	p := &proc{t: t, log: &syncbuf.Buffer{}, done: make(chan struct{})}
	p.cmd = exec.Command("sh", append([]string{"-c", script, "sh"}, argv...)...)
	p.cmd.Dir = dir
	p.cmd.Env = env
	p.cmd.Stdout, p.cmd.Stderr = p.log, p.log
	p.cmd.ExtraFiles = o.files
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	t.Cleanup(func() {
		if !p.exited() {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
		daemon.CheckRace(t, p.log.String())
		if t.Failed() {
			t.Logf("daemon log (%s):\n%s", strings.Join(argv, " "), p.log.String())
		}
	})
	return p
}

func (p *proc) signal(sig syscall.Signal) {
	p.t.Helper()
	if err := p.cmd.Process.Signal(sig); err != nil {
		p.t.Fatalf("signal %v: %v", sig, err)
	}
}

func (p *proc) exited() bool {
	select {
	case <-p.done:
		return true
	default:
		return false
	}
}

// wait returns the exit code, failing the test after timeout.
func (p *proc) wait(timeout time.Duration) int {
	p.t.Helper()
	select {
	case <-p.done:
		return p.cmd.ProcessState.ExitCode()
	case <-time.After(timeout):
		p.t.Fatalf("daemon did not exit within %v", timeout)
		return -1
	}
}

func (p *proc) waitLog(substr string, timeout time.Duration) {
	p.t.Helper()
	deadline := time.Now().Add(timeout)
	for !strings.Contains(p.log.String(), substr) {
		if time.Now().After(deadline) {
			p.t.Fatalf("daemon log has no %q after %v", substr, timeout)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// client is one Pacemaker connection speaking raw frames, so that any
// close or reset the server causes is seen, never retried away. It is a
// restartload.Conn.
type client struct {
	nc net.Conn
	fr *wire.FrameReader
	id int32
}

func dial(addr string) (*client, error) {
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return nil, err
	}
	return &client{nc: nc, fr: wire.NewFrameReader(bufio.NewReader(nc), 1<<20)}, nil
}

// do sends m and returns the answer.
func (c *client) do(m *wire.Message) (*wire.Message, error) {
	c.id++
	m.ID, m.HasID = c.id, true
	_ = c.nc.SetDeadline(time.Now().Add(20 * time.Second))
	if _, err := c.nc.Write(wire.AppendFrame(nil, m)); err != nil {
		return nil, err
	}
	body, err := c.fr.Next()
	if err != nil {
		return nil, err
	}
	var resp wire.Message
	if err := wire.Decode(body, &resp); err != nil {
		return nil, err
	}
	if resp.ID != c.id {
		return nil, fmt.Errorf("answer id %d to request %d", resp.ID, c.id)
	}
	return &resp, nil
}

func (c *client) Put(key, value string) error {
	resp, err := c.do(&wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: key, Details: []byte(value)}})
	if err == nil && resp.Type != wire.SendPulseResponse {
		err = fmt.Errorf("SEND_PULSE answered with %s", resp)
	}
	return err
}

func (c *client) Get(key string) (string, bool, error) {
	resp, err := c.do(&wire.Message{Type: wire.GetPulse, Field: wire.FieldPath, Path: key})
	if err != nil {
		return "", false, err
	}
	if resp.Type != wire.GetPulseResponse {
		return "", false, fmt.Errorf("GET_PULSE answered with %s", resp)
	}
	return string(resp.Pulse.Details), resp.Pulse.Details != nil, nil
}

func (c *client) Close() error { return c.nc.Close() }

// freeAddr returns 127.0.0.1:port with a port that was free a moment ago.
func freeAddr(t *testing.T) string {
	t.Helper()
	return fmt.Sprintf("127.0.0.1:%d", daemon.FreePort(t, "127.0.0.1"))
}
