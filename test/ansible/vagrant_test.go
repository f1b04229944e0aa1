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

func TestVagrantCheckScript(t *testing.T) {
	needTool(t, "shellcheck", "shellcheck")
	r := run(t, time.Minute, repoRoot(t), nil, "shellcheck", "vagrant/check.sh")
	if r.err != nil {
		t.Errorf("shellcheck vagrant/check.sh: %v\n%s", r.err, r)
	}
}
