package packaging

import (
	"bytes"
	"compress/gzip"
	"context"
	"flag"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"sync"
	"testing"
	"time"
)

var update = flag.Bool("update", false, "rewrite testdata/*.contents from the packages built")

// testVersion is what the test packages are built as.
const testVersion = "1.2.3"

var built struct {
	once     sync.Once
	deb, rpm string
	bin      string
	err      error
}

// buildPackages builds the amd64 binaries and both packages once per test
// process.
func buildPackages(t *testing.T) (deb, rpm string) {
	t.Helper()
	root := repoRoot(t)
	built.once.Do(func() {
		dir, err := os.MkdirTemp("", "pacemaker-packaging-test-")
		if err != nil {
			built.err = err
			return
		}
		built.bin = filepath.Join(dir, "bin")
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
		defer cancel()
		if built.err = GoBuild(ctx, root, built.bin, "amd64", testVersion, ""); built.err != nil {
			return
		}
		b := Build{Root: root, Version: testVersion, Arch: "amd64", BinDir: built.bin,
			GenDir: filepath.Join(dir, "gen"), OutDir: filepath.Join(dir, "out"),
			Date: time.Date(2026, 1, 2, 3, 4, 5, 0, time.UTC)}
		if built.deb, built.err = b.Package("deb"); built.err != nil {
			return
		}
		built.rpm, built.err = b.Package("rpm")
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.deb, built.rpm
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.bin != "" {
		os.RemoveAll(filepath.Dir(built.bin))
	}
	os.Exit(code)
}

func repoRoot(t *testing.T) string {
	t.Helper()
	root, err := filepath.Abs("../..")
	if err != nil {
		t.Fatal(err)
	}
	return root
}

func needTool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("SKIP: %s not installed (Debian package %s)", name, pkg)
	}
}

func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	var stderr bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, stderr.String())
	}
	return string(out)
}

// TestPackageNames checks the conventional file names, with the version
// mapped and the release appended.
func TestPackageNames(t *testing.T) {
	deb, rpm := buildPackages(t)
	if got, want := filepath.Base(deb), "storm-pacemaker_1.2.3-1_amd64.deb"; got != want {
		t.Errorf("deb name %s, want %s", got, want)
	}
	if got, want := filepath.Base(rpm), "storm-pacemaker-1.2.3-1.x86_64.rpm"; got != want {
		t.Errorf("rpm name %s, want %s", got, want)
	}
}

// TestDebContents compares `dpkg-deb -c` (mode, owner, path) with
// testdata/deb.contents and checks the control data.
func TestDebContents(t *testing.T) {
	needTool(t, "dpkg-deb", "dpkg")
	deb, _ := buildPackages(t)
	var got []string
	for _, l := range lines(run(t, "dpkg-deb", "-c", deb)) {
		f := strings.Fields(l)
		got = append(got, f[0]+" "+f[1]+" "+strings.TrimPrefix(f[len(f)-1], "."))
	}
	compareGolden(t, "testdata/deb.contents", got)

	fields := map[string]string{
		"Package":      "storm-pacemaker",
		"Version":      "1.2.3-1",
		"Architecture": "amd64",
		"Section":      "net",
		"Depends":      "procps", // for the unit's /bin/kill; the binaries need no library
		// ClusterLabs' pacemaker owns pacemaker.service and /etc/pacemaker too.
		"Conflicts": "pacemaker",
		"Replaces":  "pacemaker",
	}
	for field, want := range fields {
		if got := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, field)); got != want {
			t.Errorf("control field %s = %q, want %q", field, got, want)
		}
	}
	ctl := t.TempDir()
	run(t, "dpkg-deb", "-e", deb, ctl)
	if b, _ := os.ReadFile(filepath.Join(ctl, "conffiles")); string(b) != "/etc/pacemaker/pacemaker.yaml\n" {
		t.Errorf("conffiles = %q, want only /etc/pacemaker/pacemaker.yaml", b)
	}
	for _, script := range []string{"postinst", "prerm", "postrm"} {
		want, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging", "scripts", "deb", script))
		if err != nil {
			t.Fatal(err)
		}
		if got, _ := os.ReadFile(filepath.Join(ctl, script)); !bytes.Equal(got, want) {
			t.Errorf("%s in the deb differs from packaging/scripts/deb/%s", script, script)
		}
	}

	data := t.TempDir()
	run(t, "dpkg-deb", "-x", deb, data)
	checkUnpacked(t, data)
	changelog := gunzip(t, filepath.Join(data, "usr/share/doc/storm-pacemaker/changelog.Debian.gz"))
	if want := "storm-pacemaker (1.2.3-1) unstable; urgency=medium"; !strings.HasPrefix(changelog, want) {
		t.Errorf("changelog.Debian starts %q, want %q", firstLine(changelog), want)
	}
}

// TestRPMContents compares `rpm -qp` (mode, owner, flags, path) with
// testdata/rpm.contents and checks the header and scriptlets.
func TestRPMContents(t *testing.T) {
	needTool(t, "rpm", "rpm")
	needTool(t, "rpm2cpio", "rpm2cpio")
	needTool(t, "cpio", "cpio")
	_, rpm := buildPackages(t)
	got := lines(run(t, "rpm", "-qp", "--qf",
		`[%{FILEMODES:perms} %{FILEUSERNAME}:%{FILEGROUPNAME} %{FILEFLAGS:fflags} %{FILENAMES}\n]`, rpm))
	for i, l := range got {
		// An empty flag list would leave two spaces; keep columns fixed.
		got[i] = strings.Replace(l, "  ", " - ", 1)
	}
	compareGolden(t, "testdata/rpm.contents", got)

	header := run(t, "rpm", "-qp", "--qf", `%{NAME} %{VERSION} %{RELEASE} %{ARCH} %{LICENSE}\n`, rpm)
	if want := "storm-pacemaker 1.2.3 1 x86_64 Apache-2.0\n"; header != want {
		t.Errorf("rpm header %q, want %q", header, want)
	}
	if got := strings.TrimSpace(run(t, "rpm", "-qp", "--conflicts", rpm)); got != "pacemaker" {
		t.Errorf("rpm conflicts %q, want pacemaker (ClusterLabs' owns the same unit and /etc/pacemaker)", got)
	}
	scripts := run(t, "rpm", "-qp", "--scripts", rpm)
	for _, s := range []struct{ section, file string }{
		{"preinstall", "pre.sh"}, {"postinstall", "post.sh"},
		{"preuninstall", "preun.sh"}, {"postuninstall", "postun.sh"},
	} {
		body, err := os.ReadFile(filepath.Join(repoRoot(t), "packaging", "scripts", "rpm", s.file))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(scripts, s.section+" scriptlet (using /bin/sh):\n"+string(body)) {
			t.Errorf("rpm %s scriptlet is not packaging/scripts/rpm/%s:\n%s", s.section, s.file, scripts)
		}
	}
	if cl := run(t, "rpm", "-qp", "--changelog", rpm); !strings.Contains(cl, "1.2.3-1") {
		t.Errorf("rpm changelog does not name 1.2.3-1:\n%s", cl)
	}

	// The payload's member names are relative (./usr/bin/...), as
	// rpmbuild writes them, so the usual inspection idiom unpacks into the
	// current directory, never into this machine's /.
	names := lines(run(t, "sh", "-c", `rpm2cpio "$0" | cpio -t --quiet`, rpm))
	if len(names) < 10 {
		t.Fatalf("payload lists only %q", names)
	}
	for _, n := range names {
		if !strings.HasPrefix(n, "./") {
			t.Errorf("payload member %q is not relative (./...)", n)
		}
	}
	data := t.TempDir()
	cmd := exec.Command("sh", "-c", `rpm2cpio "$0" | cpio -idm --quiet`, rpm)
	cmd.Dir = data
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("unpack rpm: %v\n%s", err, out)
	}
	checkUnpacked(t, data)
}

// checkUnpacked checks files of an unpacked package against their sources.
func checkUnpacked(t *testing.T, data string) {
	t.Helper()
	root := repoRoot(t)
	for _, bin := range Binaries {
		out, err := exec.Command(filepath.Join(data, "usr/bin", bin), "--version").CombinedOutput()
		if err != nil || !strings.Contains(string(out), testVersion) {
			t.Errorf("%s --version: %q, %v; want %s", bin, out, err, testVersion)
		}
	}
	for _, page := range ManPages {
		section := page[len(page)-1:]
		got := gunzip(t, filepath.Join(data, "usr/share/man/man"+section, filepath.Base(page)+".gz"))
		if want, _ := os.ReadFile(filepath.Join(root, page)); got != string(want) {
			t.Errorf("packaged %s differs from %s", filepath.Base(page), page)
		}
	}
	same := map[string]string{
		"etc/pacemaker/pacemaker.yaml":                       "etc/pacemaker.yaml",
		"usr/lib/sysusers.d/pacemaker.conf":                  "packaging/sysusers.d/pacemaker.conf",
		"usr/share/bash-completion/completions/pacemakerctl": "packaging/completion/pacemakerctl.bash",
	}
	for _, unit := range []string{"pacemaker.service", "pacemaker.socket"} {
		dst := "lib/systemd/system/" + unit
		if _, err := os.Stat(filepath.Join(data, dst)); err != nil {
			dst = "usr/" + dst
		}
		same[dst] = "systemd/" + unit
	}
	for dst, src := range same {
		got, err := os.ReadFile(filepath.Join(data, dst))
		if err != nil {
			t.Errorf("packaged %s: %v", dst, err)
			continue
		}
		if want, _ := os.ReadFile(filepath.Join(root, src)); !bytes.Equal(got, want) {
			t.Errorf("packaged %s differs from %s", dst, src)
		}
	}
}

// TestGeneratedChangelog checks that a build of a released version uses its
// entry and that a development build gets one of its own on top.
func TestGeneratedChangelog(t *testing.T) {
	root := t.TempDir()
	for _, page := range ManPages {
		os.MkdirAll(filepath.Join(root, filepath.Dir(page)), 0o755)
		os.WriteFile(filepath.Join(root, page), []byte(".TH X 1\n"), 0o644)
	}
	os.MkdirAll(filepath.Join(root, "packaging"), 0o755)
	release := "- semver: 1.0.0-1\n  date: 2026-01-02T00:00:00Z\n  packager: A <a@example.org>\n  changes:\n    - note: First release.\n"
	os.WriteFile(filepath.Join(root, ChangelogPath), []byte(release), 0o644)
	date := time.Date(2026, 2, 3, 4, 5, 6, 0, time.UTC)

	tests := []struct {
		name, version string
		want          []string // semver of each entry, newest first
	}{
		{"released version", "1.0.0-1", []string{"1.0.0-1"}},
		{"development build", "1.0.0+git3.gabcdef0-1", []string{"1.0.0+git3.gabcdef0-1", "1.0.0-1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			gen := t.TempDir()
			if err := Generate(root, gen, tt.version, "B <b@example.org>", date); err != nil {
				t.Fatal(err)
			}
			b, err := os.ReadFile(filepath.Join(gen, "changelog.yml"))
			if err != nil {
				t.Fatal(err)
			}
			got := regexp.MustCompile(`(?m)^\s*semver: (\S+)`).FindAllStringSubmatch(string(b), -1)
			var semvers []string
			for _, m := range got {
				semvers = append(semvers, m[1])
			}
			if strings.Join(semvers, " ") != strings.Join(tt.want, " ") {
				t.Errorf("entries %v, want %v\n%s", semvers, tt.want, b)
			}
			if !strings.Contains(string(b), "urgency: medium") || !strings.Contains(string(b), "- unstable") {
				t.Errorf("entries lack a Debian distribution and urgency:\n%s", b)
			}
		})
	}
	t.Run("entry for the version not first", func(t *testing.T) {
		older := release + "- semver: 0.9.0-1\n  date: 2025-01-02T00:00:00Z\n  packager: A <a@example.org>\n"
		os.WriteFile(filepath.Join(root, ChangelogPath), []byte(older), 0o644)
		if err := Generate(root, t.TempDir(), "0.9.0-1", "B", date); err == nil {
			t.Error("Generate accepted a build of 0.9.0-1 whose entry is not the newest")
		}
	})
}

func compareGolden(t *testing.T, path string, got []string) {
	t.Helper()
	sort.Strings(got)
	text := strings.Join(got, "\n") + "\n"
	if *update {
		if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
		return
	}
	want, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("%v (go test -run %s -update writes it)", err, t.Name())
	}
	if string(want) != text {
		t.Errorf("package contents differ from %s (go test -update rewrites it after a deliberate change):\n%s",
			path, diffLines(string(want), text))
	}
}

// diffLines lists lines only in want (-) and only in got (+).
func diffLines(want, got string) string {
	w, g := map[string]bool{}, map[string]bool{}
	for _, l := range lines(want) {
		w[l] = true
	}
	for _, l := range lines(got) {
		g[l] = true
	}
	var out []string
	for _, l := range lines(want) {
		if !g[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range lines(got) {
		if !w[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

func gunzip(t *testing.T, path string) string {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if zr.Name != "" || !zr.ModTime.IsZero() {
		t.Errorf("%s carries a name or time (not gzip -n)", path)
	}
	b, err := io.ReadAll(zr)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

func lines(s string) []string {
	s = strings.TrimRight(s, "\n")
	if s == "" {
		return nil
	}
	return strings.Split(s, "\n")
}

func firstLine(s string) string {
	l, _, _ := strings.Cut(s, "\n")
	return l
}
