package ansible

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// The Vagrantfile is valid, and brings up exactly the test bed inventory's
// hosts (VMs cannot boot here: Vagrant only reads the file).
func TestVagrantfile(t *testing.T) {
	needTool(t, "vagrant", "vagrant")
	dir := filepath.Join(repoRoot(t), "vagrant")
	env := []string{
		"VAGRANT_DOTFILE_PATH=" + t.TempDir(), // not vagrant/.vagrant
		"VAGRANT_CHECKPOINT_DISABLE=1",        // no version check over the network
		"VAGRANT_NO_COLOR=1",
		"VAGRANT_DEFAULT_PROVIDER=libvirt", // Debian's provider; it needs no running libvirtd to list machines
	}
	r := run(t, 2*time.Minute, dir, env, "vagrant", "validate")
	if r.err != nil || !strings.Contains(r.stdout, "validated successfully") {
		t.Fatalf("vagrant validate: %v\n%s", r.err, r)
	}

	// `vagrant status` lists the machines the Vagrantfile defines, in order.
	r = run(t, 2*time.Minute, dir, env, "vagrant", "status", "--machine-readable")
	if strings.Contains(r.stdout, "ProviderNotFound") || strings.Contains(r.stdout, "ProviderNotUsable") {
		t.Skipf("SKIP: vagrant status needs the libvirt provider (apt-get install vagrant-libvirt):\n%s", r.stdout)
	}
	if r.err != nil {
		t.Fatalf("vagrant status: %v\n%s", r.err, r)
	}
	var machines []string
	for _, l := range lines(r.stdout) {
		f := strings.Split(l, ",")
		if len(f) >= 4 && f[2] == "state" && f[1] != "" {
			machines = append(machines, f[1])
		}
	}
	groups := inventoryGroups(t, filepath.Join(ansibleDir(t), "inventory", "testbed"))
	var hosts []string
	for _, g := range []string{"pacemaker", "nimbus", "supervisors"} {
		hosts = append(hosts, groups[g]...)
	}
	if !slices.Equal(machines, hosts) {
		t.Errorf("Vagrant machines %v, test bed inventory hosts %v (groups %s)", machines, hosts, groupsString(groups))
	}
	if len(groups["pacemaker"]) != 2 || len(groups["nimbus"]) != 1 || len(groups["supervisors"]) != 2 {
		t.Errorf("test bed: want 2 pacemaker, 1 nimbus, 2 supervisors; have %s", groupsString(groups))
	}

	// The local profile (make test-vagrant): three of the hosts, and an
	// inventory of just those next to Vagrant's state.
	dot := t.TempDir()
	local := append(slices.Clone(env[1:]), "VAGRANT_DOTFILE_PATH="+dot, "PACEMAKER_TESTBED=local")
	r = run(t, 2*time.Minute, dir, local, "vagrant", "status", "--machine-readable")
	if r.err != nil {
		t.Fatalf("PACEMAKER_TESTBED=local vagrant status: %v\n%s", r.err, r)
	}
	machines = machines[:0]
	for _, l := range lines(r.stdout) {
		if f := strings.Split(l, ","); len(f) >= 4 && f[2] == "state" && f[1] != "" {
			machines = append(machines, f[1])
		}
	}
	if want := []string{"pm1", "nimbus1", "sup1"}; !slices.Equal(machines, want) {
		t.Errorf("PACEMAKER_TESTBED=local: machines %v, want %v", machines, want)
	}
	localGroups := inventoryGroups(t, filepath.Join(dot, "testbed-inventory"))
	if got := groupsString(localGroups); got != groupsString(map[string][]string{"pacemaker": {"pm1"}, "nimbus": {"nimbus1"}, "supervisors": {"sup1"}}) {
		t.Errorf("PACEMAKER_TESTBED=local inventory: %s", got)
	}

	// The provisioner runs the playbook the booted test runs, with the same
	// inventory; vagrant validate does not look at provisioner paths.
	vf, err := os.ReadFile(filepath.Join(dir, "Vagrantfile"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{`"site.yml"`, `"inventory", "testbed"`, `"ansible.cfg"`, `ansible.limit = "all"`, `ansible.groups = GROUPS`} {
		if !strings.Contains(string(vf), want) {
			t.Errorf("Vagrantfile does not contain %s", want)
		}
	}
}

// The test bed's scripts: check.sh, the box build, make test-vagrant's
// driver and the qemu wrapper.
func TestVagrantScripts(t *testing.T) {
	needTool(t, "shellcheck", "shellcheck")
	scripts := []string{"vagrant/check.sh", "vagrant/box/build.sh", "vagrant/test-local.sh", "vagrant/libvirt/qemu-tcg"}
	r := run(t, time.Minute, repoRoot(t), nil, "shellcheck", scripts...)
	if r.err != nil {
		t.Errorf("shellcheck %s: %v\n%s", strings.Join(scripts, " "), r.err, r)
	}
}
