package booted

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/nspawn"
)

// TestRPMIntoRoot installs, upgrades and erases the signed rpms of the
// repository `make repo` publishes with this machine's rpm into a root
// (rpm --root), its scriptlets running chrooted there with the root's
// shell, systemd-sysusers and systemctl (no RPM-family root can be had
// here, so the Debian one stands in; no systemd runs in it, as in an image
// build). rpm checks each package's signature against the keys imported
// into the root, as an EL host's dnf does with gpgcheck=1.
func TestRPMIntoRoot(t *testing.T) {
	if _, err := exec.LookPath("rpm"); err != nil {
		t.Skip("SKIP: rpm not installed (Debian package rpm)")
	}
	p := packages(t)
	key, _ := signingKeys(t)
	repoDir := filepath.Join(t.TempDir(), "repo")
	publish(t, repoDir, key, []string{p.oldRPM})
	oldRPM := filepath.Join(repoDir, "rpm", filepath.Base(p.oldRPM))
	root := nspawn.NewRoot(t, rootOptions)
	rpmCmd := func(args ...string) (string, string, error) {
		// Dependencies are the target distribution's business: the root's
		// rpm database knows none of its Debian packages. Signatures are
		// required, not only checked when present.
		// (rpm takes --nodeps only when installing, erasing or verifying.)
		flags := []string{"--root", root, "--define", "_pkgverify_level signature"}
		if len(args) > 0 && slices.Contains([]string{"-i", "-U", "-e", "-V"}, args[0]) {
			flags = append(flags, "--nodeps")
		}
		cmd := exec.Command("rpm", append(flags, args...)...)
		var stdout, stderr bytes.Buffer
		cmd.Stdout, cmd.Stderr = &stdout, &stderr
		err := cmd.Run()
		return stdout.String(), stderr.String(), err
	}
	rpm := func(args ...string) (string, string) {
		t.Helper()
		stdout, stderr, err := rpmCmd(args...)
		if err != nil {
			t.Fatalf("rpm %s: %v\n%s%s", strings.Join(args, " "), err, stdout, stderr)
		}
		if strings.Contains(stderr, "scriptlet") {
			t.Errorf("rpm %s: a scriptlet failed:\n%s", strings.Join(args, " "), stderr)
		}
		return stdout, stderr
	}
	if out, err := exec.Command("rpm", "--root", root, "--initdb").CombinedOutput(); err != nil {
		t.Fatalf("rpm --initdb: %v\n%s", err, out)
	}
	if stdout, stderr, err := rpmCmd("-i", oldRPM); err == nil || !strings.Contains(stderr, "NOKEY") {
		t.Fatalf("rpm -i before the key was imported: %v, want a NOKEY refusal\n%s%s", err, stdout, stderr)
	}
	rpm("--import", filepath.Join(repoDir, "storm-pacemaker.asc"))
	in := func(p string) string { return filepath.Join(root, p) }

	start := time.Now()
	rpm("-i", oldRPM)
	t.Logf("rpm -i took %v", time.Since(start).Round(time.Millisecond))
	if q, _ := rpm("-q", "storm-pacemaker"); strings.TrimSpace(q) != "storm-pacemaker-1.0.0-1.x86_64" {
		t.Errorf("rpm -q storm-pacemaker = %q", q)
	}
	// %pre made the user and group before unpacking, so the keytab
	// directory got its group.
	gid := lookupGroup(t, in("etc/group"), "pacemaker")
	if !fileHasLine(t, in("etc/passwd"), "pacemaker:") || gid < 0 {
		t.Fatal("the preinstall scriptlet did not create the pacemaker user and group")
	}
	st, err := os.Stat(in("etc/pacemaker/keytabs"))
	if err != nil {
		t.Fatal(err)
	}
	if sys := st.Sys().(*syscall.Stat_t); sys.Uid != 0 || int(sys.Gid) != gid || st.Mode().Perm() != 0o750 {
		t.Errorf("keytabs: uid %d gid %d mode %v, want root, pacemaker (%d), 0750", sys.Uid, sys.Gid, st.Mode().Perm(), gid)
	}
	for _, f := range []string{"usr/lib/systemd/system/pacemaker.socket", "usr/lib/systemd/system/pacemaker.service",
		"usr/lib/sysusers.d/pacemaker.conf", "usr/share/licenses/storm-pacemaker/LICENSE", "usr/bin/pacemakerctl"} {
		if _, err := os.Stat(in(f)); err != nil {
			t.Errorf("installed: %v", err)
		}
	}
	if out, _ := rpm("-V", "storm-pacemaker"); out != "" {
		t.Errorf("rpm -V after install:\n%s", out)
	}

	// An edited %config(noreplace) survives the upgrade untouched.
	conf := in("etc/pacemaker/pacemaker.yaml")
	b, err := os.ReadFile(conf)
	if err != nil {
		t.Fatal(err)
	}
	edited := append(b, "pacemaker.max.keys: 500000\n"...)
	if err := os.WriteFile(conf, edited, 0o644); err != nil {
		t.Fatal(err)
	}
	publish(t, repoDir, key, []string{p.newRPM})
	rpm("-U", filepath.Join(repoDir, "rpm", filepath.Base(p.newRPM)))
	if q, _ := rpm("-q", "storm-pacemaker"); strings.TrimSpace(q) != "storm-pacemaker-1.0.1-1.x86_64" {
		t.Errorf("after upgrade rpm -q storm-pacemaker = %q", q)
	}
	if got, _ := os.ReadFile(conf); !bytes.Equal(got, edited) {
		t.Errorf("the upgrade changed the edited config")
	}
	if out, err := exec.Command(in("usr/bin/pacemaker"), "--version").CombinedOutput(); err != nil || !strings.Contains(string(out), newVersion) {
		t.Errorf("pacemaker --version after upgrade: %q, %v", out, err)
	}

	// Erase: the package's files go, the edited config is saved, the
	// admin's keytab and the user stay.
	if err := os.WriteFile(in("etc/pacemaker/keytabs/pacemaker.keytab"), []byte("x"), 0o640); err != nil {
		t.Fatal(err)
	}
	rpm("-e", "storm-pacemaker")
	for _, f := range []string{"usr/bin/pacemaker", "usr/lib/systemd/system/pacemaker.socket", "etc/pacemaker/pacemaker.yaml",
		"usr/share/doc/storm-pacemaker", "usr/share/licenses/storm-pacemaker"} {
		if _, err := os.Lstat(in(f)); err == nil {
			t.Errorf("%s is still there after rpm -e", f)
		}
	}
	if got, err := os.ReadFile(conf + ".rpmsave"); err != nil || !bytes.Equal(got, edited) {
		t.Errorf("rpm -e did not keep the edited config as .rpmsave: %v", err)
	}
	if _, err := os.Stat(in("etc/pacemaker/keytabs/pacemaker.keytab")); err != nil {
		t.Errorf("rpm -e deleted the admin's keytab: %v", err)
	}
	if !fileHasLine(t, in("etc/passwd"), "pacemaker:") {
		t.Error("rpm -e deleted the pacemaker user")
	}
}

// lookupGroup returns a group's id from an /etc/group, or -1.
func lookupGroup(t *testing.T, path, name string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range strings.Split(string(b), "\n") {
		if f := strings.Split(l, ":"); len(f) >= 3 && f[0] == name {
			if id, err := strconv.Atoi(f[2]); err == nil {
				return id
			}
		}
	}
	return -1
}
