package ansible

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/storm-pacemaker/pacemaker/internal/packaging"
	"github.com/storm-pacemaker/pacemaker/internal/packaging/repo"
)

// DebEnv names a .deb to install instead of one built from the tree.
const DebEnv = "PACEMAKER_TEST_DEB"

// debVersion is the version (in the Makefile's git describe form) of the
// deb the test builds.
const debVersion = "1.0.0-ansible.test"

// A storm.yaml as an operator left it: Storm's settings, a comment, and an
// earlier attempt at Pacemaker that the role must comment out, not duplicate.
const operatorStormYAML = `# Storm cluster settings (kept by the operator)
storm.zookeeper.servers:
  - "zk1.example.com"
nimbus.seeds: ["nimbus1"]
pacemaker.port: 6627
storm.local.dir: /var/storm
`

// A JAAS file with a section of Storm's own that must survive.
const operatorJAAS = `StormServer {
    org.apache.zookeeper.server.auth.DigestLoginModule required
    user_super="adminsecret";
};
`

// TestSitePlaybookOnBootedHosts runs site.yml against the test bed inventory
// on five booted Debian hosts, twice (the second run must change nothing),
// pm1 installing from the signed repository served over HTTP on the bed's
// network and pm2 from the package file, then verify.yml, then checks the
// hosts itself; finally it moves pm1 to
// another port and lowers a limit, which restarts the socket and reloads.
// The playbooks run as an operator runs them: ansible-playbook with the
// repository's ansible.cfg, the test bed inventory and one more inventory
// that only says how to reach each host.
func TestSitePlaybookOnBootedHosts(t *testing.T) {
	if testing.Short() {
		t.Skip("SKIP: boots five systemd hosts (about three minutes on two idle cores); not with -short")
	}
	needTool(t, "ansible-playbook", "ansible")
	deb := testDeb(t)
	testbed := filepath.Join(ansibleDir(t), "inventory", "testbed")
	hosts, order, groups := testbedHosts(t, testbed)

	b := bootBed(t, hosts, order)
	preseed(t, b.hosts["nimbus1"].root, "opt/storm/conf/storm.yaml", operatorStormYAML, 0o644)
	preseed(t, b.hosts["nimbus1"].root, "opt/storm/conf/storm_jaas.conf", operatorJAAS, 0o640)
	preseed(t, b.hosts["sup1"].root, "opt/storm/conf/storm.yaml", operatorStormYAML, 0o644)
	// The hosts have no network beyond the bed: Debian's own mirror is
	// taken out, so that apt's updates fail for the repository's sake only.
	for _, h := range order {
		preseed(t, b.hosts[h].root, "etc/apt/sources.list", "", 0o644)
	}
	// The test bed inventory installs from the signed repository at its
	// pacemaker_repo_url, served here on the bed's network as the machine
	// hosting a Vagrant bed serves it. pm2 takes the air-gapped way, the
	// package file from the controller.
	repoURL := testbedRepoURL(t, testbed)
	requested := b.serve(publishRepo(t, deb), strings.TrimPrefix(repoURL, "http://"))
	b.hostVars["pm2"] = "pacemaker_install_method=file pacemaker_package_file_deb=" + deb
	site := ansibleRun{conn: b.inventory(), inventory: testbed, facts: t.TempDir()}
	var extra []string
	t.Cleanup(func() {
		if t.Failed() {
			for _, h := range groups["pacemaker"] {
				r := b.exec(h, "journalctl", "--no-pager", "-n", "60", "-u", "pacemaker.service", "-u", "pacemaker.socket")
				t.Logf("%s journal:\n%s", h, r.stdout)
			}
		}
	})

	first := site.playbook(t, "site.yml", extra...)
	first.requireOK(t)
	for _, h := range order {
		if first.Stats[h].Changed == 0 {
			t.Errorf("first run changed nothing on %s", h)
		}
	}
	for _, h := range groups["pacemaker"] {
		for _, handler := range []string{"Restart pacemaker", "Restart the pacemaker socket"} {
			if !first.ran(handler, h) {
				t.Errorf("first run: handler %q did not run on %s", handler, h)
			}
		}
	}

	checkInstallMethods(t, b, repoURL, requested())

	second := site.playbook(t, "site.yml", extra...)
	second.requireOK(t)
	for _, h := range order {
		if n := second.Stats[h].Changed; n != 0 {
			t.Errorf("second run: %s changed=%d (%v); want changed=0", h, n, second.changedTasks(h))
		}
	}
	t.Logf("idempotence: second run changed=0 on %d hosts", len(order))

	verify := site.playbook(t, "verify.yml")
	verify.requireOK(t)

	checkPacemakerHosts(t, b, groups["pacemaker"], hosts)
	checkStormHosts(t, b, groups, hosts)

	// Another port and a smaller limit on pm1, applied with the role's tags
	// for configuration changes: the socket unit moves to the new port, the
	// daemon reloads, and the role's own probe finds it there.
	moved := site.playbook(t, "site.yml", append(extra, "--limit", "pm1",
		"--tags", "pacemaker_configure,pacemaker_verify",
		"-e", "pacemaker_port=6700", "-e", "pacemaker_max_keys=500000")...)
	moved.requireOK(t)
	for _, handler := range []string{"Restart the pacemaker socket", "Reload pacemaker"} {
		if !moved.ran(handler, "pm1") {
			t.Errorf("port and limit change: handler %q did not run on pm1", handler)
		}
	}
	var cfg map[string]any
	readYAML(t, filepath.Join(b.hosts["pm1"].root, "etc/pacemaker/pacemaker.yaml"), &cfg)
	if cfg["pacemaker.port"] != 6700 || cfg["pacemaker.max.keys"] != 500000 {
		t.Errorf("pm1 pacemaker.yaml after the change: port %v, max keys %v", cfg["pacemaker.port"], cfg["pacemaker.max.keys"])
	}
	// Reads need DIGEST here: Nimbus's credentials. exists exits 1 for an
	// answered "no such key", 3 when the server cannot be reached.
	ctl := []string{filepath.Join(b.hosts["pm1"].root, "usr/bin/pacemakerctl"), "--auth", "DIGEST",
		"--jaas", filepath.Join(b.hosts["nimbus1"].root, "opt/storm/conf/storm_jaas.conf"), "--timeout", "5s"}
	pm1 := hosts["pm1"]
	if r := b.execNet("nimbus1", append(ctl, "--servers", pm1+":6700", "exists", "/pacemaker-test/none")...); exitCode(r.err) != 1 {
		t.Errorf("pm1 does not answer on %s:6700 after the move: %v\n%s", pm1, r.err, r)
	}
	if r := b.execNet("nimbus1", append(ctl, "--servers", pm1+":6699", "exists", "/pacemaker-test/none")...); exitCode(r.err) != 3 {
		t.Errorf("pm1 still answers on %s:6699 after the move to 6700: %v\n%s", pm1, r.err, r)
	}
	if r := b.exec("pm1", "journalctl", "--no-pager", "-u", "pacemaker.service", "--grep", "config reloaded"); r.err != nil {
		t.Errorf("pm1 journal has no reload: %v\n%s", r.err, r)
	}
}

func exitCode(err error) int {
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode()
	}
	if err != nil {
		return -1
	}
	return 0
}

// testDeb is $PACEMAKER_TEST_DEB, or else a deb built now from this tree the
// way `make deb` builds it (internal/packaging), so that the playbook
// installs what this commit would ship rather than whatever lies in dist/.
func testDeb(t *testing.T) string {
	t.Helper()
	if p := os.Getenv(DebEnv); p != "" {
		if _, err := os.Stat(p); err != nil {
			t.Fatalf("%s=%s: %v", DebEnv, p, err)
		}
		return p
	}
	root, dir := repoRoot(t), t.TempDir()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	start := time.Now()
	paths, err := packaging.BuildAll(ctx, root, debVersion, "", []string{runtime.GOARCH}, []string{"deb"},
		filepath.Join(dir, "dist"), filepath.Join(dir, "build"))
	if err != nil {
		t.Fatalf("build the deb: %v", err)
	}
	t.Logf("built %s in %v", filepath.Base(paths[0]), time.Since(start).Round(time.Second))
	return paths[0]
}

// publishRepo publishes deb as `make repo` does, signed with a throwaway
// key, and returns the repository's directory.
func publishRepo(t *testing.T, deb string) string {
	t.Helper()
	for _, tool := range repo.Tools {
		needTool(t, tool.Name, tool.Package)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	dir := t.TempDir()
	key, err := repo.ThrowawayKey(ctx, filepath.Join(dir, "key"))
	if err != nil {
		t.Fatal(err)
	}
	defer key.Close()
	out := filepath.Join(dir, "repo")
	if err := repo.Publish(ctx, out, []string{deb}, key); err != nil {
		t.Fatal(err)
	}
	return out
}

// testbedRepoURL is the test bed inventory's pacemaker_repo_url, an
// http://address:port on the bed's network.
func testbedRepoURL(t *testing.T, inventory string) string {
	t.Helper()
	var vars map[string]any
	readYAML(t, filepath.Join(inventory, "group_vars", "pacemaker.yml"), &vars)
	url, _ := vars["pacemaker_repo_url"].(string)
	if vars["pacemaker_install_method"] != "repo" || !strings.HasPrefix(url, "http://") {
		t.Fatalf("test bed inventory: pacemaker_install_method %v, pacemaker_repo_url %q; want repo and an http:// URL",
			vars["pacemaker_install_method"], url)
	}
	return url
}

// checkInstallMethods: pm1 installed from the repository over HTTP, apt
// having checked it with the key the role put in a keyring of its own; pm2
// installed the file from the controller and knows no repository.
func checkInstallMethods(t *testing.T, b *bed, repoURL string, requested []string) {
	t.Helper()
	policy := b.exec("pm1", "apt-cache", "policy", "storm-pacemaker")
	if policy.err != nil || !strings.Contains(policy.stdout, repoURL+"/apt stable/main amd64 Packages") ||
		!strings.Contains(policy.stdout, "Installed: 1.0.0~ansible.test-1") {
		t.Errorf("pm1: storm-pacemaker is not installed from %s: %v\n%s", repoURL, policy.err, policy.stdout)
	}
	source, err := os.ReadFile(filepath.Join(b.hosts["pm1"].root, "etc/apt/sources.list.d/storm-pacemaker.list"))
	if want := "deb [signed-by=/etc/apt/keyrings/storm-pacemaker.gpg] " + repoURL + "/apt stable main"; err != nil ||
		!strings.Contains(string(source), want) {
		t.Errorf("pm1: apt source %q (%v), want %q", source, err, want)
	}
	for _, want := range []string{"/storm-pacemaker.gpg", "/apt/dists/stable/InRelease",
		"/apt/pool/main/s/storm-pacemaker/storm-pacemaker_1.0.0~ansible.test-1_amd64.deb"} {
		if !slices.Contains(requested, want) {
			t.Errorf("the repository was never asked for %s (asked: %q)", want, requested)
		}
	}
	if r := b.exec("pm2", "dpkg-query", "-W", "-f", "${Version}", "storm-pacemaker"); r.stdout != "1.0.0~ansible.test-1" {
		t.Errorf("pm2: storm-pacemaker %q installed from the file, want 1.0.0~ansible.test-1: %v", r.stdout, r.err)
	}
	if _, err := os.Stat(filepath.Join(b.hosts["pm2"].root, "etc/apt/sources.list.d/storm-pacemaker.list")); err == nil {
		t.Error("pm2 (install method file) got the repository added")
	}
}

// testbedHosts reads the test bed inventory: each host's address, the hosts
// in group order, and the groups.
func testbedHosts(t *testing.T, inventory string) (map[string]string, []string, map[string][]string) {
	t.Helper()
	r := run(t, time.Minute, ansibleDir(t), ansibleEnv(t), "ansible-inventory", "-i", inventory, "--list")
	if r.err != nil {
		t.Fatalf("ansible-inventory: %v\n%s", r.err, r)
	}
	var inv struct {
		Meta struct {
			HostVars map[string]struct {
				Address string `json:"testbed_address"`
			} `json:"hostvars"`
		} `json:"_meta"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &inv); err != nil {
		t.Fatal(err)
	}
	groups := inventoryGroups(t, inventory)
	addrs := map[string]string{}
	var order []string
	for _, g := range []string{"pacemaker", "nimbus", "supervisors"} {
		for _, h := range groups[g] {
			addrs[h] = inv.Meta.HostVars[h].Address
			order = append(order, h)
		}
	}
	for _, h := range []string{"pm1", "pm2", "nimbus1", "sup1", "sup2"} {
		if addrs[h] == "" {
			t.Fatalf("test bed inventory: host %s has no testbed_address (groups %s)", h, groupsString(groups))
		}
	}
	return addrs, order, groups
}

func preseed(t *testing.T, root, rel, content string, mode os.FileMode) {
	t.Helper()
	path := filepath.Join(root, rel)
	if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(path, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
}

// playRun is what the json stdout callback reports.
type playRun struct {
	Plays []struct {
		Tasks []struct {
			Task struct {
				Name string `json:"name"`
			} `json:"task"`
			Hosts map[string]struct {
				Changed bool   `json:"changed"`
				Failed  bool   `json:"failed"`
				Skipped bool   `json:"skipped"`
				Msg     any    `json:"msg"`
				Stderr  string `json:"stderr"`
			} `json:"hosts"`
		} `json:"tasks"`
	} `json:"plays"`
	Stats map[string]struct {
		Changed     int `json:"changed"`
		Failures    int `json:"failures"`
		Unreachable int `json:"unreachable"`
		Ok          int `json:"ok"`
	} `json:"stats"`
	name string
	err  error
	raw  result
}

// ansibleRun says how the test runs ansible-playbook against the bed.
type ansibleRun struct {
	conn      string // the bed's "how to connect" inventory
	inventory string // the test bed inventory
	facts     string // fact cache shared by the runs
}

// playbook runs one playbook as an operator would, plus the json callback
// for the test to read and a fact cache (with ansible.cfg's smart
// gathering, only the first run gathers facts: they do not change here).
func (a ansibleRun) playbook(t *testing.T, name string, args ...string) *playRun {
	t.Helper()
	env := append(ansibleEnv(t), "ANSIBLE_STDOUT_CALLBACK=json", "ANSIBLE_FORKS=5",
		"ANSIBLE_CACHE_PLUGIN=ansible.builtin.jsonfile", "ANSIBLE_CACHE_PLUGIN_CONNECTION="+a.facts,
		"ANSIBLE_CACHE_PLUGIN_TIMEOUT=3600")
	conn, inventory := a.conn, a.inventory
	start := time.Now()
	r := run(t, 8*time.Minute, ansibleDir(t), env, "ansible-playbook",
		append([]string{"-i", conn, "-i", inventory, name}, args...)...)
	p := &playRun{name: name, err: r.err, raw: r}
	if err := json.Unmarshal([]byte(r.stdout), p); err != nil {
		t.Fatalf("%s: output is not the json callback's (%v; exit %v)\n%s", name, err, r.err, r)
	}
	t.Logf("%s %s: %s, %s", name, strings.Join(args, " "), time.Since(start).Round(time.Second), p.recap())
	return p
}

func (p *playRun) recap() string {
	var hosts []string
	for h := range p.Stats {
		hosts = append(hosts, h)
	}
	sort.Strings(hosts)
	var s []string
	for _, h := range hosts {
		st := p.Stats[h]
		s = append(s, fmt.Sprintf("%s ok=%d changed=%d failed=%d unreachable=%d", h, st.Ok, st.Changed, st.Failures, st.Unreachable))
	}
	return strings.Join(s, "; ")
}

// requireOK stops the test when a task failed or a host was unreachable.
func (p *playRun) requireOK(t *testing.T) {
	t.Helper()
	bad := p.err != nil
	var msgs []string
	for _, play := range p.Plays {
		for _, task := range play.Tasks {
			for h, r := range task.Hosts {
				if r.Failed {
					bad = true
					msgs = append(msgs, fmt.Sprintf("%s: %s: %v %s", h, task.Task.Name, r.Msg, r.Stderr))
				}
			}
		}
	}
	for h, st := range p.Stats {
		if st.Failures > 0 || st.Unreachable > 0 {
			bad = true
			msgs = append(msgs, fmt.Sprintf("%s: failures=%d unreachable=%d", h, st.Failures, st.Unreachable))
		}
	}
	if bad {
		t.Fatalf("%s failed (exit %v):\n%s\nstderr:\n%s", p.name, p.err, strings.Join(msgs, "\n"), p.raw.stderr)
	}
}

// ran reports whether a task (or handler) of that name ran on host and changed it.
func (p *playRun) ran(task, host string) bool {
	for _, play := range p.Plays {
		for _, tk := range play.Tasks {
			if strings.HasSuffix(tk.Task.Name, task) {
				if r, ok := tk.Hosts[host]; ok && r.Changed {
					return true
				}
			}
		}
	}
	return false
}

func (p *playRun) changedTasks(host string) []string {
	var out []string
	for _, play := range p.Plays {
		for _, tk := range play.Tasks {
			if r, ok := tk.Hosts[host]; ok && r.Changed {
				out = append(out, tk.Task.Name)
			}
		}
	}
	return out
}

// checkPacemakerHosts looks at each server as an operator would: units,
// files and modes, and pacemakerctl from the Nimbus host's network with
// Nimbus's JAAS file against every server.
func checkPacemakerHosts(t *testing.T, b *bed, servers []string, addrs map[string]string) {
	t.Helper()
	for _, h := range servers {
		root := b.hosts[h].root
		for _, unit := range [][]string{{"is-enabled", "pacemaker.socket"}, {"is-active", "pacemaker.socket"}} {
			if r := b.exec(h, append([]string{"systemctl"}, unit...)...); r.err != nil {
				t.Errorf("%s: systemctl %s: %v %s", h, strings.Join(unit, " "), r.err, r.stdout)
			}
		}
		gid := groupID(t, root, "pacemaker")
		for _, f := range []string{"etc/pacemaker/jaas.conf", "etc/pacemaker/pacemaker.yaml"} {
			checkMode(t, filepath.Join(root, f), 0o640, 0, gid)
		}
		var cfg map[string]any
		readYAML(t, filepath.Join(root, "etc/pacemaker/pacemaker.yaml"), &cfg)
		if cfg["pacemaker.auth.method"] != "DIGEST" || cfg["pacemaker.port"] != 6699 {
			t.Errorf("%s: pacemaker.yaml: auth %v port %v", h, cfg["pacemaker.auth.method"], cfg["pacemaker.port"])
		}
		// Only what the inventory sets, and where the role put the JAAS
		// file: every other key keeps the daemon's default.
		if len(cfg) != 3 || cfg["java.security.auth.login.config"] != "/etc/pacemaker/jaas.conf" {
			t.Errorf("%s: pacemaker.yaml has %v, want only pacemaker.port, pacemaker.auth.method and java.security.auth.login.config", h, cfg)
		}
	}

	// This machine runs the packaged pacemakerctl inside nimbus1's network.
	ctl := filepath.Join(b.hosts[servers[0]].root, "usr/bin/pacemakerctl")
	jaas := filepath.Join(b.hosts["nimbus1"].root, "opt/storm/conf/storm_jaas.conf")
	for _, h := range servers {
		server := addrs[h] + ":6699"
		key := "/pacemaker-test/" + h
		base := []string{ctl, "--servers", server, "--auth", "DIGEST", "--jaas", jaas}
		steps := [][]string{{"send", key, "-"}, {"get", key}, {"delete", key}}
		for _, step := range steps {
			r := b.execNet("nimbus1", append(base, step...)...)
			if r.err != nil {
				t.Errorf("pacemakerctl %s on %s (%s) from nimbus1: %v\n%s", step[0], h, server, r.err, r)
			}
		}
	}
}

// checkStormHosts reads storm.yaml on every Storm host: the keys Storm needs,
// each once, the operator's settings kept, and the old pacemaker.port
// commented out; Nimbus's JAAS file has its section next to Storm's own.
func checkStormHosts(t *testing.T, b *bed, groups map[string][]string, addrs map[string]string) {
	t.Helper()
	var servers []any
	for _, h := range groups["pacemaker"] {
		servers = append(servers, addrs[h])
	}
	for _, h := range append(slices.Clone(groups["nimbus"]), groups["supervisors"]...) {
		path := filepath.Join(b.hosts[h].root, "opt/storm/conf/storm.yaml")
		var conf map[string]any
		raw := readYAML(t, path, &conf) // Go's YAML refuses duplicate keys
		method := "NONE"
		if slices.Contains(groups["nimbus"], h) {
			method = "DIGEST"
		}
		want := map[string]any{
			"storm.cluster.state.store": "org.apache.storm.cluster.PaceMakerStateStorageFactory",
			"pacemaker.servers":         servers,
			"pacemaker.port":            6699,
			"pacemaker.auth.method":     method,
		}
		if method != "NONE" {
			want["java.security.auth.login.config"] = "/opt/storm/conf/storm_jaas.conf"
		}
		for k, v := range want {
			if fmt.Sprint(conf[k]) != fmt.Sprint(v) {
				t.Errorf("%s: %s = %v, want %v", h, k, conf[k], v)
			}
		}
		if h == "nimbus1" || h == "sup1" {
			if fmt.Sprint(conf["storm.zookeeper.servers"]) != "[zk1.example.com]" || conf["storm.local.dir"] != "/var/storm" {
				t.Errorf("%s: the operator's settings were lost:\n%s", h, raw)
			}
			if !strings.Contains(raw, "# pacemaker.port: 6627") {
				t.Errorf("%s: the old pacemaker.port is not commented out:\n%s", h, raw)
			}
		}
	}
	jaas, err := os.ReadFile(filepath.Join(b.hosts["nimbus1"].root, "opt/storm/conf/storm_jaas.conf"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"StormServer {", "PacemakerDigest {", `username="pacemaker"`, `password="testbed-digest-secret";`} {
		if !strings.Contains(string(jaas), want) {
			t.Errorf("nimbus1 storm_jaas.conf lacks %q:\n%s", want, jaas)
		}
	}
	checkMode(t, filepath.Join(b.hosts["nimbus1"].root, "opt/storm/conf/storm_jaas.conf"), 0o640, 0, 0)
	for _, h := range groups["supervisors"] {
		if _, err := os.Stat(filepath.Join(b.hosts[h].root, "opt/storm/conf/storm_jaas.conf")); err == nil {
			t.Errorf("%s: a supervisor got a JAAS file; workers keep auth NONE", h)
		}
	}
}

func readYAML(t *testing.T, path string, v any) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v\n%s", path, err, b)
	}
	return string(b)
}

func checkMode(t *testing.T, path string, mode os.FileMode, uid, gid int) {
	t.Helper()
	st, err := os.Stat(path)
	if err != nil {
		t.Error(err)
		return
	}
	if st.Mode().Perm() != mode {
		t.Errorf("%s: mode %v, want %v", path, st.Mode().Perm(), mode)
	}
	if sys, ok := st.Sys().(*syscall.Stat_t); ok && (int(sys.Uid) != uid || int(sys.Gid) != gid) {
		t.Errorf("%s: owner %d:%d, want %d:%d", path, sys.Uid, sys.Gid, uid, gid)
	}
}

// groupID looks a group up in a host's /etc/group.
func groupID(t *testing.T, root, name string) int {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(root, "etc", "group"))
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range lines(string(b)) {
		f := strings.Split(l, ":")
		if len(f) >= 3 && f[0] == name {
			id, _ := strconv.Atoi(f[2])
			return id
		}
	}
	t.Fatalf("%s: no group %s", root, name)
	return -1
}
