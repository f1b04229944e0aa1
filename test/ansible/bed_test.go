package ansible

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/nspawn"
)

// A bed is a set of booted systemd hosts (systemd-nspawn containers with
// systemd as PID 1, from internal/testutil/nspawn) on one private Ethernet
// segment: a bridge inside a network namespace of its own, with a veth into
// each container, so the hosts reach each other by address and nothing
// touches this machine's own network.
type bed struct {
	t        *testing.T
	netns    string
	hosts    map[string]*bedHost
	order    []string
	hostVars map[string]string // host → more inventory variables ("k=v k=v")
}

type bedHost struct {
	name string
	addr string // address on the bed's network, /24
	root string // the container's / as seen from this machine
	m    *nspawn.Machine
}

// bootBed boots one container per host (name → address) and connects them.
func bootBed(t *testing.T, hosts map[string]string, order []string) *bed {
	t.Helper()
	needTool(t, "ip", "iproute2")
	b := &bed{t: t, netns: fmt.Sprintf("pm-ansible-%d", os.Getpid()), hosts: map[string]*bedHost{}, order: order,
		hostVars: map[string]string{}}
	for _, name := range order {
		m := nspawn.Boot(t, nspawn.Options{Packages: nspawn.HostPackages})
		b.hosts[name] = &bedHost{name: name, addr: hosts[name], root: m.Root, m: m}
	}
	// Registered after the machines' cleanups, so it runs before them.
	t.Cleanup(b.removeNetns)
	b.must("ip", "netns", "add", b.netns)
	b.must("ip", "-n", b.netns, "link", "add", "br0", "type", "bridge")
	b.must("ip", "-n", b.netns, "link", "set", "br0", "up")
	for i, name := range order {
		h := b.hosts[name]
		pid := strconv.Itoa(h.m.InitPID)
		peer := fmt.Sprintf("v%d", i)
		b.must("ip", "link", "add", peer, "netns", b.netns, "type", "veth", "peer", "name", "eth0", "netns", pid)
		b.must("ip", "-n", b.netns, "link", "set", peer, "master", "br0", "up")
		b.must("nsenter", "-t", pid, "-n", "ip", "addr", "add", h.addr+"/24", "dev", "eth0")
		b.must("nsenter", "-t", pid, "-n", "ip", "link", "set", "eth0", "up")
		// The inventory name, so journal lines and facts say which host.
		if err := os.WriteFile(filepath.Join(h.root, "etc", "hostname"), []byte(name+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		b.must("nsenter", "-t", pid, "-u", "hostname", name)
		t.Logf("%s is %s at %s", name, h.m.Name, h.addr)
	}
	return b
}

func (b *bed) must(name string, args ...string) string {
	b.t.Helper()
	r := run(b.t, 2*time.Minute, "", nil, name, args...)
	if r.err != nil {
		b.t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), r.err, r)
	}
	return r.stdout
}

// exec runs a command inside a host, in all its namespaces.
func (b *bed) exec(host string, args ...string) result {
	b.t.Helper()
	r := b.hosts[host].m.Run(args...)
	return result{stdout: r.Stdout, stderr: r.Stderr, err: r.Err}
}

// execNet runs a program of this machine inside a host's network only.
func (b *bed) execNet(host string, args ...string) result {
	b.t.Helper()
	pid := strconv.Itoa(b.hosts[host].m.InitPID)
	return run(b.t, time.Minute, "", nil, "nsenter", append([]string{"-t", pid, "-n"}, args...)...)
}

// inventory writes an inventory that only says how Ansible reaches each host:
// nsenter into its init's namespaces, as root already (so no become: the
// hosts have no sudo). Everything else comes from the test bed inventory,
// as it does under Vagrant.
func (b *bed) inventory() string {
	b.t.Helper()
	var s strings.Builder
	for _, name := range b.order {
		fmt.Fprintf(&s, "%s ansible_connection=community.docker.nsenter ansible_nsenter_pid=%d ansible_become=false ansible_python_interpreter=/usr/bin/python3 %s\n",
			name, b.hosts[name].m.InitPID, b.hostVars[name])
	}
	path := filepath.Join(b.t.TempDir(), "bed.ini")
	if err := os.WriteFile(path, []byte(s.String()), 0o644); err != nil {
		b.t.Fatal(err)
	}
	return path
}

// serve serves dir over HTTP on the bed's network at addr (host:port, an
// address of the bridge's /24 that no host has), as the machine hosting a
// Vagrant bed serves the repository to it; it returns the paths asked for
// so far. The bridge gets the address; the server stops with the test.
func (b *bed) serve(dir, addr string) (requested func() []string) {
	b.t.Helper()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		b.t.Fatal(err)
	}
	b.must("ip", "-n", b.netns, "addr", "add", host+"/24", "dev", "br0")
	// A socket belongs to the network namespace its thread was in when it
	// was made: listen from a thread that entered the bed's, and let it
	// die with the goroutine.
	lc := make(chan net.Listener, 1)
	errc := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		f, err := os.Open("/var/run/netns/" + b.netns)
		if err != nil {
			errc <- err
			return
		}
		defer f.Close()
		if err := unix.Setns(int(f.Fd()), unix.CLONE_NEWNET); err != nil {
			errc <- fmt.Errorf("enter %s: %w", b.netns, err)
			return
		}
		l, err := net.Listen("tcp", addr)
		if err != nil {
			errc <- err
			return
		}
		lc <- l
	}()
	var l net.Listener
	select {
	case l = <-lc:
	case err := <-errc:
		b.t.Fatalf("serve %s on %s: %v", dir, addr, err)
	}
	var mu sync.Mutex
	var paths []string
	files := http.FileServer(http.Dir(dir))
	srv := &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			mu.Lock()
			paths = append(paths, r.URL.Path)
			mu.Unlock()
			files.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: 10 * time.Second,
	}
	go srv.Serve(l)
	b.t.Cleanup(func() { srv.Close() })
	return func() []string {
		mu.Lock()
		defer mu.Unlock()
		return slices.Clone(paths)
	}
}

// removeNetns deletes the bridge's namespace; the veths go with it and
// with their containers.
func (b *bed) removeNetns() {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if out, err := exec.CommandContext(ctx, "ip", "netns", "del", b.netns).CombinedOutput(); err != nil {
		b.t.Logf("ip netns del %s: %v %s", b.netns, err, out)
	}
}
