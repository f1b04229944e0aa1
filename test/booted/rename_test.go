package booted

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/packaging"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/nspawn"
)

// TestDebReplacesPackageNamedPacemaker: on a host with a package named
// pacemaker that owns the same unit and /etc/pacemaker (this project's
// package before the rename; ClusterLabs' has the same paths), `apt-get
// install storm-pacemaker` from the repository removes it in the same run
// (Conflicts and Replaces) and takes over: the admin's edited config stays
// without a prompt, and the socket is enabled and serves. (Heartbeats are
// not handed over here: the old package's prerm stops its service.)
func TestDebReplacesPackageNamedPacemaker(t *testing.T) {
	p := packages(t)
	key, _ := signingKeys(t)
	old := preRenameDeb(t)
	m := nspawn.Boot(t, rootOptions)
	m.CopyIn(t, old, "/root/pacemaker.deb")
	m.MustRun(t, "apt-get", "install", "-y", "-q", "--no-install-recommends", "/root/pacemaker.deb")
	if got := m.MustRun(t, "dpkg-query", "-W", "-f", "${Status}", "pacemaker"); got != "install ok installed" {
		t.Fatalf("the package named pacemaker: %q", got)
	}
	conf := filepath.Join(m.Root, "etc/pacemaker/pacemaker.yaml")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	edited := append(b, "\n# edited by the admin\npacemaker.max.keys: 500000\n"...)
	if err := os.WriteFile(conf, edited, 0o644); err != nil {
		t.Fatal(err)
	}

	hostRepo := filepath.Join(m.Root, repoDir)
	publish(t, hostRepo, key, []string{p.oldDeb})
	addRepository(t, m, hostRepo)
	out := m.MustRun(t, "apt-get", "install", "-y", "-q", "--no-install-recommends", "storm-pacemaker")
	if !strings.Contains(out, "The following packages will be REMOVED:\n  pacemaker\n") {
		t.Errorf("apt-get install storm-pacemaker did not remove pacemaker:\n%s", out)
	}
	if got, _ := os.ReadFile(conf); string(got) != string(edited) {
		t.Errorf("the edited config did not survive the switch:\n%s\napt-get:\n%s", got, out)
	}
	if matches, _ := filepath.Glob(conf + ".dpkg-*"); len(matches) > 0 {
		t.Errorf("the switch left %v", matches)
	}
	status := strings.TrimSpace(m.Run("dpkg-query", "-W", "-f", "${db:Status-Abbrev}", "pacemaker").Stdout)
	t.Logf("the package named pacemaker is now %q", status)
	if strings.HasPrefix(status, "ii") {
		t.Errorf("pacemaker is still installed: %q", status)
	}
	expectRun(t, m, []check{
		{"installed", []string{"dpkg-query", "-W", "-f", "${Version} ${Status}", "storm-pacemaker"}, "1.0.0-1 install ok installed"},
		{"owns the config", []string{"dpkg-query", "-S", "/etc/pacemaker/pacemaker.yaml"}, "storm-pacemaker: /etc/pacemaker/pacemaker.yaml"},
		{"config in effect", []string{"pacemaker", "--print-config"}, "pacemaker.max.keys: 500000"},
		{"socket enabled", []string{"systemctl", "is-enabled", "pacemaker.socket"}, "enabled"},
		{"socket listening", []string{"systemctl", "is-active", "pacemaker.socket"}, "active"},
	})
	ctl(t, m, "v1", "send", "/renamed/k", "-")
	if got := ctl(t, m, "", "get", "/renamed/k"); got != "v1" {
		t.Errorf("after the switch, get /renamed/k = %q, want v1", got)
	}

	// What the README warns of: the old package stays as config-files
	// ("rc"), and purging it runs its postrm, whose deb-systemd-helper
	// purge forgets pacemaker.socket's enablement, which belongs to the
	// unit name both packages share. Enabling the socket again mends it.
	if status != "rc" {
		return
	}
	m.MustRun(t, "apt-get", "purge", "-y", "-q", "pacemaker")
	if out := strings.TrimSpace(m.Run("systemctl", "is-enabled", "pacemaker.socket").Stdout); out == "enabled" {
		t.Log("purging the old package no longer disables the socket: the README's warning can go")
	}
	m.MustRun(t, "systemctl", "enable", "--now", "pacemaker.socket")
	expectRun(t, m, []check{
		{"socket enabled again", []string{"systemctl", "is-enabled", "pacemaker.socket"}, "enabled"},
		{"config kept", []string{"pacemaker", "--print-config"}, "pacemaker.max.keys: 500000"},
		{"still installed", []string{"dpkg-query", "-W", "-f", "${Status}", "storm-pacemaker"}, "install ok installed"},
	})
	if got := ctl(t, m, "", "get", "/renamed/k"); got != "v1" {
		t.Errorf("after purging the old package, get /renamed/k = %q, want v1", got)
	}
}

// preRenameDeb packages the amd64 binaries of oldVersion as this project's
// package was before the rename: named pacemaker, its documents under
// /usr/share/doc/pacemaker, no Conflicts or Replaces. It is built from a
// copy of the tree whose nfpm.yaml says so.
func preRenameDeb(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	tree := t.TempDir()
	entries, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range entries {
		if e.Name() != "packaging" {
			if err := os.Symlink(filepath.Join(root, e.Name()), filepath.Join(tree, e.Name())); err != nil {
				t.Fatal(err)
			}
		}
	}
	if err := os.CopyFS(filepath.Join(tree, "packaging"), os.DirFS(filepath.Join(root, "packaging"))); err != nil {
		t.Fatal(err)
	}
	cfg := filepath.Join(tree, packaging.ConfigPath)
	text, err := os.ReadFile(cfg)
	if err != nil {
		t.Fatal(err)
	}
	s := strings.NewReplacer(
		"name: storm-pacemaker\n", "name: pacemaker\n",
		"/usr/share/doc/storm-pacemaker", "/usr/share/doc/pacemaker",
		"/usr/share/licenses/storm-pacemaker", "/usr/share/licenses/pacemaker",
		"/usr/share/lintian/overrides/storm-pacemaker", "/usr/share/lintian/overrides/pacemaker",
		"    conflicts: [pacemaker]\n", "",
		"    replaces: [pacemaker]\n", "",
	).Replace(string(text))
	if strings.Contains(s, "name: storm-pacemaker") || strings.Contains(s, "conflicts:") || strings.Contains(s, "doc/storm-pacemaker") {
		t.Fatalf("%s changed: the pre-rename rewrite no longer applies", packaging.ConfigPath)
	}
	if err := os.WriteFile(cfg, []byte(s), 0o644); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	b := packaging.Build{Root: tree, Version: "0.9.0", Arch: "amd64",
		BinDir: filepath.Join(built.dir, oldVersion, "linux_amd64", "bin"),
		GenDir: filepath.Join(dir, "gen"), OutDir: dir, Date: packaging.SourceDate(root)}
	deb, err := b.Package("deb")
	if err != nil {
		t.Fatal(err)
	}
	return deb
}
