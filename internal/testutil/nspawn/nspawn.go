// Package nspawn boots a real systemd (Debian 12's, as PID 1) in a
// systemd-nspawn container for tests, following
// ../shared/docs/booted-systemd.md: a debootstrap root made once and cached,
// an overlay on it per container so every boot starts clean and the cache
// stays untouched, `systemd-nspawn --boot` from cgroups of its own, and
// commands run inside with nsenter (machinectl and systemd-run -M need a
// host D-Bus, which these machines do not have).
//
// Typical use:
//
//	m := nspawn.Boot(t, nspawn.Options{})
//	m.CopyIn(t, debPath, "/root/pacemaker.deb")
//	m.MustRun(t, "apt-get", "install", "-y", "/root/pacemaker.deb")
//	out := m.MustRun(t, "systemctl", "is-active", "pacemaker.socket")
//
// Boot skips the test, saying exactly why, when it cannot work here: not
// root, or a tool missing. Anything else fails the test.
package nspawn

import (
	"bytes"
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/syncbuf"
)

// Suite is the Debian release the root is made of.
const Suite = "bookworm"

// BasePackages are in every root: systemd to boot (and systemd-sysv for
// its /sbin/init), dbus as on any real host.
var BasePackages = []string{"systemd", "systemd-sysv", "dbus"}

// HostPackages make a root look like a small Debian server that Ansible can
// manage: python3 for Ansible, python3-apt for its apt module, python3-yaml
// for the storm_yaml_settings module (the containers have no network to
// fetch them), iproute2 for test networks, and procps, which every Debian
// install but minbase has (pacemaker.service's ExecReload= runs its kill).
// The package tests and the Ansible tests both boot this one root, so a
// fresh machine runs debootstrap once.
var HostPackages = []string{"iproute2", "procps", "python3", "python3-apt", "python3-yaml"}

// CacheEnv names the directory roots are cached in. Unset: under
// $XDG_CACHE_HOME/pacemaker-nspawn when that is set, else in the
// repository's test/booted/.cache (gitignored).
const CacheEnv = "PACEMAKER_NSPAWN_CACHE"

// Options say what to boot.
type Options struct {
	// Packages are Debian packages installed in the root besides
	// BasePackages. Each set of packages is a root of its own in the cache.
	Packages []string
	// NspawnArgs are extra systemd-nspawn arguments, e.g. --bind-ro=...
	NspawnArgs []string
	// BootTimeout bounds the wait for `systemctl is-system-running`
	// (default 2 minutes: five hosts booting on two busy cores take a while).
	BootTimeout time.Duration
}

// Machine is a booted container.
type Machine struct {
	Name    string // machine name (also its hostname)
	Root    string // the container's / as seen from this machine
	InitPID int    // the container's systemd, in this machine's PID namespace

	t       testing.TB
	nspawn  *exec.Cmd
	console *syncbuf.Buffer
	exited  chan struct{}
	cgroups []string
	stopped atomic.Bool
}

// Boot boots a container on a fresh overlay of the cached root and stops it
// when the test ends.
func Boot(t testing.TB, opt Options) *Machine {
	t.Helper()
	needRoot(t)
	m := &Machine{
		Name:    machineName(),
		t:       t,
		console: &syncbuf.Buffer{},
		exited:  make(chan struct{}),
	}
	m.Root = NewRoot(t, opt)
	t.Cleanup(m.Stop) // registered after NewRoot's: runs before the overlay goes
	if err := os.WriteFile(filepath.Join(m.Root, "etc", "hostname"), []byte(m.Name+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	var err error
	m.nspawn, m.cgroups, err = nspawnCmd(m.Name, append([]string{"-D", m.Root, "--boot", "--console=pipe"}, opt.NspawnArgs...))
	if err != nil {
		t.Fatal(err)
	}
	m.nspawn.Stdout, m.nspawn.Stderr = m.console, m.console
	start := time.Now()
	if err := m.nspawn.Start(); err != nil {
		t.Fatalf("start systemd-nspawn: %v", err)
	}
	go func() { m.nspawn.Wait(); close(m.exited) }()
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("container %s console:\n%s", m.Name, tail(m.console.String(), 60))
		}
	})
	timeout := opt.BootTimeout
	if timeout == 0 {
		timeout = 2 * time.Minute
	}
	m.waitRunning(timeout)
	t.Logf("booted %s in %v", m.Name, time.Since(start).Round(10*time.Millisecond))
	return m
}

// NewRoot returns a fresh, writable root: an overlay on the cached root
// (or a copy where overlayfs is missing), removed when the test ends.
func NewRoot(t testing.TB, opt Options) string {
	t.Helper()
	needRoot(t)
	lower := CachedRoot(t, opt.Packages)
	work := t.TempDir()
	root := filepath.Join(work, "root")
	upper, ovlWork := filepath.Join(work, "upper"), filepath.Join(work, "work")
	for _, d := range []string{root, upper, ovlWork} {
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + ovlWork
	if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
		// No overlayfs: a copy costs a few seconds more.
		t.Logf("overlay mount failed (%v); copying the root instead", err)
		if out, err := exec.Command("cp", "-a", lower+"/.", root).CombinedOutput(); err != nil {
			t.Fatalf("copy root: %v\n%s", err, out)
		}
		return root
	}
	t.Cleanup(func() {
		if err := unix.Unmount(root, 0); err != nil {
			unix.Unmount(root, unix.MNT_DETACH)
		}
	})
	return root
}

// Exec runs one command in a container on root without booting it: no
// systemd runs (/run/systemd/system is absent), as in a chroot, an image
// build or a Docker container.
func Exec(t testing.TB, root string, args ...string) Result {
	t.Helper()
	needRoot(t)
	cmd, cgroups, err := nspawnCmd(machineName(), append([]string{"-D", root, "--console=pipe", "--"}, args...))
	if err != nil {
		t.Fatal(err)
	}
	defer func() {
		for _, dir := range cgroups {
			removeCgroup(dir)
		}
	}()
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	done := make(chan error, 1)
	if err := cmd.Start(); err != nil {
		t.Fatalf("start systemd-nspawn: %v", err)
	}
	go func() { done <- cmd.Wait() }()
	select {
	case err = <-done:
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		<-done
		err = fmt.Errorf("%s: timed out after 2m", strings.Join(args, " "))
	}
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

// nspawnCmd is systemd-nspawn with args, started from cgroups of its own
// in every hierarchy it uses, entered before exec, so the container's
// cgroups do not land at the machine's root. The caller removes them.
func nspawnCmd(name string, args []string) (*exec.Cmd, []string, error) {
	var cgroups, enter []string
	for _, hier := range []string{"systemd", "unified"} {
		dir := filepath.Join("/sys/fs/cgroup", hier, name)
		if _, err := os.Stat(filepath.Dir(dir)); err != nil {
			continue
		}
		if err := os.Mkdir(dir, 0o755); err != nil {
			return nil, cgroups, fmt.Errorf("create cgroup: %w", err)
		}
		cgroups = append(cgroups, dir)
		enter = append(enter, "echo $$ > "+filepath.Join(dir, "cgroup.procs"))
	}
	// --register=no --keep-unit: there is no host D-Bus to register with.
	args = append([]string{"-q", "--machine=" + name, "--register=no", "--keep-unit", "--private-network"}, args...)
	script := strings.Join(append(enter, `exec systemd-nspawn "$@"`), "; ")
	cmd := exec.Command("sh", append([]string{"-c", script, "sh"}, args...)...)
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	return cmd, cgroups, nil
}

var seq atomic.Int64

func machineName() string {
	return fmt.Sprintf("pm-test-%d-%d", os.Getpid(), seq.Add(1))
}

func needRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("SKIP: systemd-nspawn containers need root (mounts, cgroups, namespaces)")
	}
	needTool(t, "systemd-nspawn", "systemd-container")
	needTool(t, "nsenter", "util-linux")
}

// waitRunning finds the container's init (the child of nspawn) and polls
// systemd until it reports the system up.
func (m *Machine) waitRunning(timeout time.Duration) {
	m.t.Helper()
	deadline := time.Now().Add(timeout)
	last := ""
	for time.Now().Before(deadline) {
		select {
		case <-m.exited:
			m.t.Fatalf("systemd-nspawn exited while booting %s: %v\n%s", m.Name, m.nspawn.ProcessState, tail(m.console.String(), 40))
		default:
		}
		// nspawn's first child is its own helper, which forks the
		// container's init and exits; only a child that runs systemd is
		// init (taking the helper would poll a process that is gone).
		if m.InitPID != 0 && !isSystemd(m.InitPID) {
			m.InitPID = 0
		}
		if m.InitPID == 0 {
			out, _ := exec.Command("ps", "-o", "pid=", "--ppid", strconv.Itoa(m.nspawn.Process.Pid)).Output()
			for _, f := range strings.Fields(string(out)) {
				if pid, err := strconv.Atoi(f); err == nil && isSystemd(pid) {
					m.InitPID = pid
				}
			}
		}
		if m.InitPID != 0 {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			out, _ := exec.CommandContext(ctx, "nsenter", "-t", strconv.Itoa(m.InitPID), "-a", "systemctl", "is-system-running").Output()
			cancel()
			last = strings.TrimSpace(string(out))
			switch last {
			case "running", "degraded":
				return
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	m.t.Fatalf("%s: systemd not up within %v (is-system-running: %q)", m.Name, timeout, last)
}

// isSystemd reports whether process pid runs systemd.
func isSystemd(pid int) bool {
	comm, err := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
	return err == nil && strings.TrimSpace(string(comm)) == "systemd"
}

// Result is what a command run in the container did.
type Result struct {
	Stdout, Stderr string
	Err            error
}

// ExitCode is the command's exit status (-1 if it did not exit).
func (r Result) ExitCode() int {
	var ee *exec.ExitError
	if errors.As(r.Err, &ee) {
		return ee.ExitCode()
	}
	if r.Err != nil {
		return -1
	}
	return 0
}

func (r Result) String() string {
	return fmt.Sprintf("stdout:\n%s\nstderr:\n%s", r.Stdout, r.Stderr)
}

// Run runs a command in all of the container's namespaces, as its root,
// with a plain environment, and waits at most two minutes.
func (m *Machine) Run(args ...string) Result {
	return m.RunInput(nil, args...)
}

// RunInput is Run with stdin.
func (m *Machine) RunInput(stdin io.Reader, args ...string) Result {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, "nsenter", append([]string{"-t", strconv.Itoa(m.InitPID), "-a", "--"}, args...)...)
	cmd.Env = []string{
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"HOME=/root", "LANG=C.UTF-8", "TERM=dumb",
		"DEBIAN_FRONTEND=noninteractive", "SYSTEMD_PAGER=", "SYSTEMD_COLORS=0",
	}
	cmd.Stdin = stdin
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = fmt.Errorf("%s: %w", strings.Join(args, " "), ctx.Err())
	}
	return Result{Stdout: stdout.String(), Stderr: stderr.String(), Err: err}
}

// MustRun is Run that fails the test unless the command exits 0, and
// returns its stdout.
func (m *Machine) MustRun(t testing.TB, args ...string) string {
	t.Helper()
	r := m.Run(args...)
	if r.Err != nil {
		t.Fatalf("in %s: %s: %v\n%s", m.Name, strings.Join(args, " "), r.Err, r)
	}
	return r.Stdout
}

// CopyIn copies a file of this machine to path in the container.
func (m *Machine) CopyIn(t testing.TB, src, path string) {
	t.Helper()
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	m.WriteFile(t, path, b, 0o644)
}

// WriteFile writes a file in the container, as root.
func (m *Machine) WriteFile(t testing.TB, path string, data []byte, mode os.FileMode) {
	t.Helper()
	dst := filepath.Join(m.Root, path)
	if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(dst, data, mode); err != nil {
		t.Fatal(err)
	}
}

// InNetns calls fn on an OS thread inside the container's network
// namespace: sockets fn creates (net.Dial, net.Listen) belong to the
// container's network and keep working from any goroutine afterwards.
// Goroutines fn starts run in this machine's network, not the container's.
func (m *Machine) InNetns(fn func() error) error {
	errc := make(chan error, 1)
	go func() {
		// Never unlocked: the thread ends with this goroutine, so no other
		// goroutine is ever scheduled into the container's network.
		runtime.LockOSThread()
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/net", m.InitPID))
		if err != nil {
			errc <- fmt.Errorf("open network namespace of %s: %w", m.Name, err)
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter network namespace of %s: %w", m.Name, err)
			return
		}
		errc <- fn()
	}()
	return <-errc
}

// Stop halts the container (systemd shuts down cleanly on SIGTERM to
// nspawn) and removes its cgroups. Boot registers it as a cleanup; calling
// it earlier is fine.
func (m *Machine) Stop() {
	if m.stopped.Swap(true) {
		return
	}
	if m.nspawn != nil && m.nspawn.Process != nil {
		m.nspawn.Process.Signal(syscall.SIGTERM)
		select {
		case <-m.exited:
		case <-time.After(20 * time.Second):
			m.nspawn.Process.Kill()
			<-m.exited
		}
	}
	for _, dir := range m.cgroups {
		removeCgroup(dir)
	}
}

// removeCgroup removes a cgroup and those nspawn made in it, deepest first
// (rmdir is the only way to remove a cgroup, and only an empty one).
func removeCgroup(dir string) {
	var dirs []string
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, path)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		os.Remove(dirs[i])
	}
}

var rootMu sync.Mutex

// ErrNoDebootstrap: the root is not cached and debootstrap is not installed.
var ErrNoDebootstrap = errors.New("debootstrap not installed (Debian package debootstrap; scripts/install-deps.sh installs it)")

// CachedRoot returns the directory of a Debian root with BasePackages and
// packages, made with debootstrap on first use (about a minute, quietly)
// and kept in the cache (see CacheEnv). Boot never writes to it.
func CachedRoot(t testing.TB, packages []string) string {
	t.Helper()
	root, err := MakeRoot(packages, t.Logf)
	if errors.Is(err, ErrNoDebootstrap) {
		t.Skipf("SKIP: %v", err)
	}
	if err != nil {
		t.Fatal(err)
	}
	return root
}

// MakeRoot is CachedRoot outside a test (the Vagrant box build starts from
// the same root): logf reports a debootstrap when one runs.
func MakeRoot(packages []string, logf func(format string, args ...any)) (string, error) {
	pkgs := append(slices.Clone(BasePackages), packages...)
	slices.Sort(pkgs)
	pkgs = slices.Compact(pkgs)
	sum := sha256.Sum256([]byte(Suite + ":" + strings.Join(pkgs, ",")))
	cache, err := cacheDir()
	if err != nil {
		return "", err
	}
	dir := filepath.Join(cache, fmt.Sprintf("%s-%x", Suite, sum[:6]))
	root, done := filepath.Join(dir, "root"), filepath.Join(dir, "complete")
	if _, err := os.Stat(done); err == nil {
		return root, nil
	}

	// One debootstrap at a time, in this process and across processes.
	rootMu.Lock()
	defer rootMu.Unlock()
	if err := os.MkdirAll(cache, 0o755); err != nil {
		return "", err
	}
	lock, err := os.OpenFile(filepath.Join(cache, "lock"), os.O_CREATE|os.O_RDWR, 0o644)
	if err != nil {
		return "", err
	}
	defer lock.Close()
	if err := unix.Flock(int(lock.Fd()), unix.LOCK_EX); err != nil {
		return "", fmt.Errorf("lock %s: %w", lock.Name(), err)
	}
	if _, err := os.Stat(done); err == nil {
		return root, nil
	}
	if _, err := exec.LookPath("debootstrap"); err != nil {
		return "", ErrNoDebootstrap
	}
	if err := os.RemoveAll(dir); err != nil {
		return "", err
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return "", err
	}
	mirror := DebianMirror()
	logf("making a Debian %s root with debootstrap from %s (once; cached in %s)", Suite, mirror, dir)
	start := time.Now()
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Minute)
	defer cancel()
	logPath := filepath.Join(dir, "debootstrap.log")
	logFile, err := os.Create(logPath)
	if err != nil {
		return "", err
	}
	cmd := exec.CommandContext(ctx, "debootstrap", "--variant=minbase",
		"--include="+strings.Join(pkgs, ","), Suite, root, mirror)
	cmd.Stdout, cmd.Stderr = logFile, logFile
	err = cmd.Run()
	logFile.Close()
	if err != nil {
		b, _ := os.ReadFile(logPath)
		return "", fmt.Errorf("debootstrap: %w\n%s", err, tail(string(b), 40))
	}
	// Nothing in the root needs the downloaded packages any more.
	os.RemoveAll(filepath.Join(root, "var", "cache", "apt", "archives"))
	os.MkdirAll(filepath.Join(root, "var", "cache", "apt", "archives", "partial"), 0o755)
	if err := os.WriteFile(done, []byte(strings.Join(pkgs, "\n")+"\n"), 0o644); err != nil {
		return "", err
	}
	logf("debootstrap took %v", time.Since(start).Round(time.Second))
	return root, nil
}

func cacheDir() (string, error) {
	if d := os.Getenv(CacheEnv); d != "" {
		return d, nil
	}
	if d := os.Getenv("XDG_CACHE_HOME"); d != "" {
		return filepath.Join(d, "pacemaker-nspawn"), nil
	}
	out, err := exec.Command("go", "env", "GOMOD").Output()
	mod := strings.TrimSpace(string(out))
	if err != nil || mod == "" || mod == os.DevNull {
		return "", fmt.Errorf("find the repository (go env GOMOD): %v; or set %s", err, CacheEnv)
	}
	return filepath.Join(filepath.Dir(mod), "test", "booted", ".cache"), nil
}

// DebianMirror is the first URI of this machine's Debian sources (the only
// mirror reachable on our machines), or deb.debian.org.
func DebianMirror() string {
	b, err := os.ReadFile("/etc/apt/sources.list.d/debian.sources")
	if err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if rest, ok := strings.CutPrefix(strings.TrimSpace(l), "URIs:"); ok {
				if f := strings.Fields(rest); len(f) > 0 {
					return f[0]
				}
			}
		}
	}
	if b, err := os.ReadFile("/etc/apt/sources.list"); err == nil {
		for _, l := range strings.Split(string(b), "\n") {
			if f := strings.Fields(l); len(f) >= 3 && f[0] == "deb" {
				for _, w := range f[1:] {
					if strings.HasPrefix(w, "http") {
						return w
					}
				}
			}
		}
	}
	return "http://deb.debian.org/debian"
}

func needTool(t testing.TB, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("SKIP: %s not installed (Debian package %s; scripts/install-deps.sh installs it)", name, pkg)
	}
}

func tail(s string, n int) string {
	lines := strings.Split(strings.TrimRight(s, "\n"), "\n")
	if len(lines) > n {
		lines = append([]string{"..."}, lines[len(lines)-n:]...)
	}
	return strings.Join(lines, "\n")
}
