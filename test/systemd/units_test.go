package systemd

import (
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
)

// maxExposure is the highest `systemd-analyze security` exposure (0-10,
// lower is safer) pacemaker.service may have.
const maxExposure = 2.0

// TestUnitFilesVerify: `systemd-analyze verify` finds nothing to say about
// the shipped units. It checks that ExecStart= exists, so it runs in a
// scratch root holding the units, the built daemon as /usr/bin/pacemaker,
// /bin/kill and the host's own system units.
func TestUnitFilesVerify(t *testing.T) {
	t.Parallel()
	need(t, "systemd-analyze")
	repo := daemon.RepoRoot(t)
	root := t.TempDir()
	copyTree(t, "/lib/systemd/system", filepath.Join(root, "lib/systemd/system"))
	for _, unit := range []string{"pacemaker.socket", "pacemaker.service"} {
		copyFile(t, filepath.Join(repo, "systemd", unit), filepath.Join(root, "etc/systemd/system", unit), 0o644)
	}
	copyFile(t, filepath.Join(daemon.Build(t), "pacemaker"), filepath.Join(root, "usr/bin/pacemaker"), 0o755)
	kill, err := exec.LookPath("kill")
	if err != nil {
		t.Skip("SKIPPED: kill not found (Debian package procps)")
	}
	copyFile(t, kill, filepath.Join(root, "bin/kill"), 0o755)

	// --man=no: the man page is installed by the package, not on this host.
	out, err := exec.Command("systemd-analyze", "verify", "--man=no", "--root="+root, "pacemaker.socket", "pacemaker.service").CombinedOutput()
	if err != nil || len(strings.TrimSpace(string(out))) > 0 {
		t.Fatalf("systemd-analyze verify: %v\n%s", err, out)
	}
}

// TestUnitSecurity: the exposure `systemd-analyze security` gives
// pacemaker.service is at most maxExposure.
func TestUnitSecurity(t *testing.T) {
	t.Parallel()
	need(t, "systemd-analyze")
	unit := filepath.Join(daemon.RepoRoot(t), "systemd", "pacemaker.service")
	// --offline=yes reads the unit file instead of asking a running
	// systemd (systemd 250 and later; Debian 12 has 252).
	out, err := exec.Command("systemd-analyze", "security", "--offline=yes", "--no-pager", unit).CombinedOutput()
	if err != nil {
		t.Fatalf("systemd-analyze security: %v\n%s", err, out)
	}
	match := regexp.MustCompile(`Overall exposure level for pacemaker\.service: ([0-9.]+)`).FindSubmatch(out)
	if match == nil {
		t.Fatalf("no overall exposure level in:\n%s", out)
	}
	score, _ := strconv.ParseFloat(string(match[1]), 64)
	t.Logf("systemd-analyze security: exposure %.1f (limit %.1f)", score, maxExposure)
	if score > maxExposure {
		t.Errorf("pacemaker.service exposure %.1f > %.1f:\n%s", score, maxExposure, out)
	}
}

func copyTree(t *testing.T, from, to string) {
	t.Helper()
	err := filepath.Walk(from, func(path string, info os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(from, path)
		dst := filepath.Join(to, rel)
		switch {
		case info.Mode()&os.ModeSymlink != 0:
			target, err := os.Readlink(path)
			if err != nil {
				return err
			}
			return os.Symlink(target, dst)
		case info.IsDir():
			return os.MkdirAll(dst, 0o755)
		default:
			copyFile(t, path, dst, 0o644)
			return nil
		}
	})
	if err != nil {
		t.Fatalf("copy %s: %v", from, err)
	}
}

func copyFile(t *testing.T, from, to string, mode os.FileMode) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(to), 0o755); err != nil {
		t.Fatal(err)
	}
	in, err := os.Open(from)
	if err != nil {
		t.Fatal(err)
	}
	defer in.Close()
	out, err := os.OpenFile(to, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, mode)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := io.Copy(out, in); err != nil {
		t.Fatal(err)
	}
	if err := out.Close(); err != nil {
		t.Fatal(err)
	}
}
