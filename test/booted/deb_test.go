package booted

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/nspawn"
)

// addr is where pacemaker.socket listens inside the container.
const addr = "127.0.0.1:6699"

// rootOptions: a small Debian 12 server, the same root the Ansible tests
// boot (the containers have no network to fetch the deb's dependency,
// procps).
var rootOptions = nspawn.Options{Packages: nspawn.HostPackages}

// Where the container finds the repository, and how its admin adds it:
// the published key as a keyring of its own, named by signed-by.
const (
	repoDir     = "/srv/storm-pacemaker"
	keyringPath = "/etc/apt/keyrings/storm-pacemaker.gpg"
	sourceLine  = "deb [signed-by=" + keyringPath + "] file:" + repoDir + "/apt stable main\n"
)

// TestDebOnBootedSystemd is the life of the package on a Debian 12 host
// that installs it as hosts do, from the signed apt repository: apt-get
// update and install, socket activation on the first connection, STATUS in
// systemctl status, reload, a restart under load, a repository re-signed
// with a wrong key that apt refuses, an upgrade from the repository that
// keeps the admin's config and the heartbeats, remove and purge. Each step
// needs the ones before it.
func TestDebOnBootedSystemd(t *testing.T) {
	p := packages(t)
	key, badKey := signingKeys(t)
	m := nspawn.Boot(t, rootOptions)
	// The repository lives in the container's file system, as a mirror on
	// a local disk would; republishing replaces it there.
	hostRepo := filepath.Join(m.Root, repoDir)
	publish(t, hostRepo, key, []string{p.oldDeb})

	step(t, m, "install from the repository", func(t *testing.T) {
		addRepository(t, m, hostRepo)
		out := m.MustRun(t, "apt-get", "install", "-y", "-q", "--no-install-recommends", "storm-pacemaker")
		if strings.Contains(out, "Could not execute systemctl") {
			t.Errorf("apt-get install:\n%s", out)
		}
		expectRun(t, m, []check{
			{"installed version", []string{"dpkg-query", "-W", "-f", "${Version} ${Status}", "storm-pacemaker"}, "1.0.0-1 install ok installed"},
			{"from the repository", []string{"apt-cache", "policy", "storm-pacemaker"}, "file:" + repoDir + "/apt stable/main amd64 Packages"},
			{"binary version", []string{"pacemaker", "--version"}, oldVersion},
			{"system user", []string{"getent", "passwd", "pacemaker"}, ":/nonexistent:/usr/sbin/nologin"},
			{"keytab directory", []string{"stat", "-c", "%U:%G %a", "/etc/pacemaker/keytabs"}, "root:pacemaker 750"},
			{"config file", []string{"stat", "-c", "%U:%G %a", "/etc/pacemaker/pacemaker.yaml"}, "root:root 644"},
			{"socket enabled", []string{"systemctl", "is-enabled", "pacemaker.socket"}, "enabled"},
			{"socket listening", []string{"systemctl", "is-active", "pacemaker.socket"}, "active"},
			{"service static", []string{"systemctl", "is-enabled", "pacemaker.service"}, "static"},
			{"man page", []string{"test", "-s", "/usr/share/man/man8/pacemaker.8.gz"}, ""},
		})
		// Socket-activated: nothing runs until a client connects.
		if out := m.Run("systemctl", "is-active", "pacemaker.service").Stdout; strings.TrimSpace(out) != "inactive" {
			t.Errorf("pacemaker.service is %q before any connection, want inactive", strings.TrimSpace(out))
		}
	})

	var pid string
	step(t, m, "activation on connect", func(t *testing.T) {
		ctl(t, m, "v1", "send", "/booted/k", "-")
		if got := ctl(t, m, "", "get", "/booted/k"); got != "v1" {
			t.Errorf("get /booted/k = %q, want v1", got)
		}
		pid = mainPID(t, m)
		if user := strings.TrimSpace(m.MustRun(t, "stat", "-c", "%U", "/proc/"+pid)); user != "pacemaker" {
			t.Errorf("the daemon runs as %q, want pacemaker", user)
		}
		status := waitStatus(t, m, `Status: "serving`)
		if !regexp.MustCompile(`Status: "serving \d+ keys \([^)]*\), \d+ connections, auth NONE"`).MatchString(status) {
			t.Errorf("systemctl status has no STATUS line of the daemon:\n%s", status)
		}
		if !strings.Contains(status, "TriggeredBy: ● pacemaker.socket") && !strings.Contains(status, "TriggeredBy: pacemaker.socket") {
			t.Errorf("systemctl status does not show the socket as the trigger:\n%s", status)
		}
	})

	step(t, m, "reload", func(t *testing.T) {
		m.MustRun(t, "systemctl", "reload", "pacemaker.service")
		if got := mainPID(t, m); got != pid {
			t.Errorf("reload replaced the process: MainPID %s, was %s", got, pid)
		}
		if got := ctl(t, m, "", "get", "/booted/k"); got != "v1" {
			t.Errorf("after reload, get /booted/k = %q, want v1", got)
		}
		if out := m.MustRun(t, "journalctl", "-q", "-o", "cat", "-u", "pacemaker.service"); !strings.Contains(strings.ToLower(out), "reload") {
			t.Errorf("the journal does not mention the reload:\n%s", out)
		}
	})

	step(t, m, "restart under load", func(t *testing.T) {
		l := startLoad(t, m, addr, 8)
		time.Sleep(500 * time.Millisecond)
		start := time.Now()
		m.MustRun(t, "systemctl", "restart", "pacemaker.service")
		took := time.Since(start)
		time.Sleep(time.Second)
		n := l.Finish()
		newPID := mainPID(t, m)
		t.Logf("restart took %v; %s", took.Round(time.Millisecond), n)
		if newPID == pid {
			t.Errorf("MainPID still %s after restart", pid)
		}
		pid = newPID
		if n.Refused != 0 || n.DialErrs != 0 {
			t.Errorf("connections failed during the restart (the socket must hold the port): %s", n)
		}
		if n.Writes == 0 {
			t.Fatal("no write was acknowledged")
		}
		if handsOver(t, m) {
			// The fd store carries connections and heartbeats across.
			if n.Broken != 0 {
				t.Errorf("connections broke although the service hands them over: %s", n)
			}
			if lost := l.Lost(t, nil); lost != 0 {
				t.Errorf("%d of %d acknowledged keys lost across the restart", lost, len(l.Acked()))
			}
			if got := ctl(t, m, "", "get", "/booted/k"); got != "v1" {
				t.Errorf("after restart, get /booted/k = %q, want v1", got)
			}
			// The stopping process asked systemd (D-Bus) and knew it was a restart.
			if out := m.MustRun(t, "journalctl", "-q", "-o", "cat", "-u", "pacemaker.service"); !strings.Contains(out, "for the next process\" job=restart") {
				t.Errorf("the journal does not say the hand-over was for a restart:\n%s", out)
			}
		}
	})

	step(t, m, "a repository signed with another key is refused", func(t *testing.T) {
		publish(t, hostRepo, badKey, []string{p.newDeb})
		// A host that knows the repository keeps its verified index
		// (apt warns and exits 0) and upgrades nothing.
		r := m.Run("apt-get", "update")
		if out := r.Stdout + r.Stderr; !strings.Contains(out, "NO_PUBKEY") || !strings.Contains(out, "The repository is not updated") {
			t.Errorf("apt-get update took a repository signed with another key: %v\n%s", r.Err, r)
		}
		m.Run("apt-get", "upgrade", "-y", "-q")
		expectRun(t, m, []check{
			{"nothing upgraded", []string{"dpkg-query", "-W", "-f", "${Version}", "storm-pacemaker"}, "1.0.0-1"},
			{"candidate unchanged", []string{"apt-cache", "policy", "storm-pacemaker"}, "Candidate: 1.0.0-1"},
		})
		// A host that never saw it fails the update and has no candidate.
		m.MustRun(t, "sh", "-c", "rm -f /var/lib/apt/lists/*storm-pacemaker*")
		r = m.Run("apt-get", "update")
		if r.ExitCode() != 100 || !strings.Contains(r.Stderr, "is not signed") {
			t.Errorf("apt-get update of a new repository signed with another key: exit %d, want 100 and \"is not signed\"\n%s", r.ExitCode(), r)
		}
		if out := m.MustRun(t, "apt-cache", "policy", "storm-pacemaker"); strings.Contains(out, "file:"+repoDir) {
			t.Errorf("apt offers packages of a repository signed with another key:\n%s", out)
		}
		if r := m.Run("apt-get", "install", "-y", "-q", "--reinstall", "storm-pacemaker"); !strings.Contains(r.Stdout, "cannot be downloaded") {
			t.Errorf("apt-get install --reinstall from a repository signed with another key: %v\n%s", r.Err, r)
		}
	})

	edited := []byte(nil)
	step(t, m, "upgrade from the repository keeps the edited config", func(t *testing.T) {
		conf := filepath.Join(m.Root, "etc/pacemaker/pacemaker.yaml")
		b, err := os.ReadFile(conf)
		if err != nil {
			t.Fatal(err)
		}
		edited = append(b, "\n# edited by the admin\npacemaker.max.keys: 500000\n"...)
		if err := os.WriteFile(conf, edited, 0o644); err != nil {
			t.Fatal(err)
		}
		publish(t, hostRepo, key, []string{p.newDeb})
		m.MustRun(t, "apt-get", "update")
		out := m.MustRun(t, "apt-get", "upgrade", "-y", "-q")
		if got, _ := os.ReadFile(conf); string(got) != string(edited) {
			t.Errorf("the upgrade changed the edited config:\n%s\napt-get:\n%s", got, out)
		}
		if matches, _ := filepath.Glob(conf + ".dpkg-*"); len(matches) > 0 {
			t.Errorf("the upgrade left %v", matches)
		}
		expectRun(t, m, []check{
			{"installed version", []string{"dpkg-query", "-W", "-f", "${Version}", "storm-pacemaker"}, "1.0.1-1"},
			{"binary version", []string{"pacemaker", "--version"}, newVersion},
			{"config in effect", []string{"pacemaker", "--print-config"}, "pacemaker.max.keys: 500000"},
			{"socket still enabled", []string{"systemctl", "is-enabled", "pacemaker.socket"}, "enabled"},
			{"socket still listening", []string{"systemctl", "is-active", "pacemaker.socket"}, "active"},
		})
		// The running service was restarted onto the new binary.
		newPID := mainPID(t, m)
		if newPID == pid {
			t.Errorf("the upgrade did not restart the service (MainPID %s)", pid)
		}
		if exe := m.MustRun(t, "readlink", "/proc/"+newPID+"/exe"); strings.TrimSpace(exe) != "/usr/bin/pacemaker" {
			t.Errorf("the service runs %q, want the new /usr/bin/pacemaker", strings.TrimSpace(exe))
		}
		if handsOver(t, m) {
			if got := ctl(t, m, "", "get", "/booted/k"); got != "v1" {
				t.Errorf("after the upgrade, get /booted/k = %q, want v1", got)
			}
		}
	})

	step(t, m, "remove", func(t *testing.T) {
		// What an admin put there: a keytab and a JAAS file.
		m.WriteFile(t, "/etc/pacemaker/keytabs/pacemaker.keytab", []byte("not really a keytab"), 0o640)
		m.WriteFile(t, "/etc/pacemaker/jaas.conf", []byte("PacemakerDigest {\n};\n"), 0o640)
		m.MustRun(t, "apt-get", "remove", "-y", "-q", "storm-pacemaker")
		for _, unit := range []string{"pacemaker.socket", "pacemaker.service"} {
			if out := strings.TrimSpace(m.Run("systemctl", "is-active", unit).Stdout); out != "inactive" {
				t.Errorf("%s is %q after remove, want inactive", unit, out)
			}
		}
		if r := m.Run("pacemakerctl", "--version"); r.Err == nil {
			t.Error("pacemakerctl still installed after remove")
		}
		if _, err := os.Stat(filepath.Join(m.Root, "etc/pacemaker/pacemaker.yaml")); err != nil {
			t.Errorf("remove deleted the config (only purge may): %v", err)
		}
		if accepts(m) {
			t.Error("port 6699 still accepts connections after remove")
		}
		// A stop, not a restart: said so, and nothing handed to no one.
		if out := m.MustRun(t, "journalctl", "-q", "-o", "cat", "-u", "pacemaker.service"); !strings.Contains(out, "stopping, not restarting (systemd stop job)") {
			t.Errorf("the journal does not say the remove stopped the daemon for good:\n%s", out)
		}
	})

	step(t, m, "purge", func(t *testing.T) {
		r := m.Run("apt-get", "purge", "-y", "-q", "storm-pacemaker")
		if r.Err != nil {
			t.Fatalf("apt-get purge: %v\n%s", r.Err, r)
		}
		gone := []string{"/etc/pacemaker/pacemaker.yaml", "/usr/bin/pacemaker", "/lib/systemd/system/pacemaker.socket",
			"/etc/systemd/system/sockets.target.wants/pacemaker.socket", "/etc/systemd/system/pacemaker.socket"}
		for _, p := range gone {
			if _, err := os.Lstat(filepath.Join(m.Root, p)); err == nil {
				t.Errorf("%s is still there after purge", p)
			}
		}
		// The admin's secrets stay, and purge says so.
		for _, p := range []string{"/etc/pacemaker/keytabs/pacemaker.keytab", "/etc/pacemaker/jaas.conf"} {
			if _, err := os.Stat(filepath.Join(m.Root, p)); err != nil {
				t.Errorf("purge deleted %s, which the admin made: %v", p, err)
			}
		}
		if !strings.Contains(r.Stderr+r.Stdout, "/etc/pacemaker/keytabs is not empty and was kept") {
			t.Errorf("purge does not tell that it kept the keytabs:\n%s", r)
		}
		// dpkg forgets a purged package (or keeps it as "un").
		if r := m.Run("dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "storm-pacemaker"); !strings.Contains(r.Stderr, "no packages found") &&
			strings.TrimSpace(r.Stdout) != "un" {
			t.Errorf("dpkg still knows storm-pacemaker after purge:\n%s", r)
		}
		// The user stays (files elsewhere may carry its id), as Debian's
		// policy for system users says.
		m.MustRun(t, "getent", "passwd", "pacemaker")
	})
}

// TestDebWithoutSystemd installs and purges the deb where systemd is not
// running (a chroot, an image build, a container): the maintainer scripts
// must neither fail nor try to start anything, and still create the user
// and enable the socket for the next boot.
func TestDebWithoutSystemd(t *testing.T) {
	p := packages(t)
	root := nspawn.NewRoot(t, rootOptions)
	deb := "/root/" + filepath.Base(p.oldDeb)
	b, err := os.ReadFile(p.oldDeb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, deb), b, 0o644); err != nil {
		t.Fatal(err)
	}
	start := time.Now()
	if r := nspawn.Exec(t, root, "dpkg", "-i", deb); r.Err != nil {
		t.Fatalf("dpkg -i without systemd: %v\n%s", r.Err, r)
	}
	t.Logf("dpkg -i without systemd took %v", time.Since(start).Round(time.Millisecond))
	if !fileHasLine(t, filepath.Join(root, "etc/passwd"), "pacemaker:") {
		t.Error("no pacemaker user after installing without systemd")
	}
	if target, err := os.Readlink(filepath.Join(root, "etc/systemd/system/sockets.target.wants/pacemaker.socket")); err != nil ||
		!strings.HasSuffix(target, "/systemd/system/pacemaker.socket") {
		t.Errorf("pacemaker.socket not enabled for the next boot: %q, %v", target, err)
	}
	if r := nspawn.Exec(t, root, "dpkg", "--purge", "storm-pacemaker"); r.Err != nil {
		t.Fatalf("dpkg --purge without systemd: %v\n%s", r.Err, r)
	}
	if _, err := os.Lstat(filepath.Join(root, "etc/systemd/system/sockets.target.wants/pacemaker.socket")); err == nil {
		t.Error("purge left the socket enabled")
	}
}

// addRepository does what the README tells an admin: the repository's key
// in a keyring of its own, a source naming it, apt-get update.
func addRepository(t *testing.T, m *nspawn.Machine, hostRepo string) {
	t.Helper()
	// The container has no network: Debian's own mirror is taken out, so
	// that apt-get update fails for our repository's sake only.
	m.WriteFile(t, "/etc/apt/sources.list", nil, 0o644)
	pub, err := os.ReadFile(filepath.Join(hostRepo, "storm-pacemaker.gpg"))
	if err != nil {
		t.Fatal(err)
	}
	m.WriteFile(t, keyringPath, pub, 0o644)
	m.WriteFile(t, "/etc/apt/sources.list.d/storm-pacemaker.list", []byte(sourceLine), 0o644)
	update := m.MustRun(t, "apt-get", "update")
	if strings.Contains(update, "W:") || strings.Contains(update, "E:") {
		t.Errorf("apt-get update warned:\n%s", update)
	}
}

type check struct {
	name string
	args []string
	want string // a substring of stdout
}

func expectRun(t *testing.T, m *nspawn.Machine, checks []check) {
	t.Helper()
	for _, c := range checks {
		r := m.Run(c.args...)
		if r.Err != nil || !strings.Contains(r.Stdout, c.want) {
			t.Errorf("%s: %s: %v, want %q in\n%s", c.name, strings.Join(c.args, " "), r.Err, c.want, r)
		}
	}
}

// step runs a subtest and stops the test when it fails, with the units'
// journal: later steps build on it.
func step(t *testing.T, m *nspawn.Machine, name string, fn func(t *testing.T)) {
	t.Helper()
	start := time.Now()
	ok := t.Run(name, fn)
	t.Logf("step %q took %v", name, time.Since(start).Round(10*time.Millisecond))
	if !ok {
		r := m.Run("journalctl", "-b", "--no-pager", "-o", "short-monotonic", "-u", "pacemaker.socket", "-u", "pacemaker.service")
		t.Logf("journal of the pacemaker units:\n%s%s", r.Stdout, r.Stderr)
		t.FailNow()
	}
}

// ctl runs the installed pacemakerctl in the container against the socket.
func ctl(t *testing.T, m *nspawn.Machine, stdin string, args ...string) string {
	t.Helper()
	r := m.RunInput(strings.NewReader(stdin), append([]string{"pacemakerctl", "--servers", addr}, args...)...)
	if r.Err != nil {
		t.Fatalf("pacemakerctl %s: %v\n%s", strings.Join(args, " "), r.Err, r)
	}
	return r.Stdout
}

func mainPID(t *testing.T, m *nspawn.Machine) string {
	t.Helper()
	pid := strings.TrimSpace(m.MustRun(t, "systemctl", "show", "-p", "MainPID", "--value", "pacemaker.service"))
	if pid == "" || pid == "0" {
		t.Fatalf("pacemaker.service has no main process (MainPID %q)", pid)
	}
	return pid
}

// waitStatus returns `systemctl status pacemaker` once it shows want (the
// daemon refreshes STATUS= every few seconds).
func waitStatus(t *testing.T, m *nspawn.Machine, want string) string {
	t.Helper()
	var out string
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(200 * time.Millisecond) {
		out = m.Run("systemctl", "status", "--no-pager", "-l", "pacemaker.service").Stdout
		if strings.Contains(out, want) {
			break
		}
	}
	return out
}

// handsOver: the installed unit keeps descriptors across restarts, so
// connections and heartbeats must survive them.
func handsOver(t *testing.T, m *nspawn.Machine) bool {
	t.Helper()
	n := strings.TrimSpace(m.MustRun(t, "systemctl", "show", "-p", "FileDescriptorStoreMax", "--value", "pacemaker.service"))
	return n != "" && n != "0"
}

// accepts says whether something accepts connections on addr in the
// container.
func accepts(m *nspawn.Machine) bool {
	var nc net.Conn
	err := m.InNetns(func() (err error) {
		nc, err = net.DialTimeout("tcp", addr, 2*time.Second)
		return err
	})
	if err != nil {
		return false
	}
	nc.Close()
	return true
}

func fileHasLine(t *testing.T, path, prefix string) bool {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if strings.HasPrefix(s.Text(), prefix) {
			return true
		}
	}
	return false
}
