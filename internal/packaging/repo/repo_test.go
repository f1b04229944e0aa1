package repo

import (
	"bytes"
	"context"
	"debug/elf"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/packaging"
)

// testVersion is what the published packages are built as.
const testVersion = "1.2.3"

var published struct {
	once      sync.Once
	dir       string // the repository
	key, evil *Key   // the signing key and another one
	err       error
}

// publish builds the packages for both architectures and publishes them
// once per test process, as `make repo` does; it also makes a second key,
// which the repository must not trust.
func publish(t *testing.T) (dir string, key, evil *Key) {
	t.Helper()
	for _, tool := range Tools {
		needTool(t, tool.Name, tool.Package)
	}
	needTool(t, "gpgv", "gpgv")
	published.once.Do(func() {
		work, err := os.MkdirTemp("", "pacemaker-repo-test-")
		if err != nil {
			published.err = err
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		start := time.Now()
		root, _ := filepath.Abs("../../..")
		paths, err := packaging.BuildAll(ctx, root, testVersion, "", Arches, packaging.Formats,
			filepath.Join(work, "packages"), filepath.Join(work, "build"))
		if err != nil {
			published.err = err
			return
		}
		if published.key, published.err = ThrowawayKey(ctx, filepath.Join(work, "key")); published.err != nil {
			return
		}
		if published.evil, published.err = ThrowawayKey(ctx, filepath.Join(work, "evil")); published.err != nil {
			return
		}
		published.dir = filepath.Join(work, "repo")
		published.err = Publish(ctx, published.dir, paths, published.key)
		t.Logf("built and published %d packages in %v", len(paths), time.Since(start).Round(100*time.Millisecond))
	})
	if published.err != nil {
		t.Fatal(published.err)
	}
	return published.dir, published.key, published.evil
}

func TestMain(m *testing.M) {
	code := m.Run()
	for _, k := range []*Key{published.key, published.evil} {
		if k != nil {
			k.Close()
		}
	}
	if published.dir != "" {
		os.RemoveAll(filepath.Dir(published.dir))
	}
	os.Exit(code)
}

func needTool(t *testing.T, name, pkg string) {
	t.Helper()
	if _, err := exec.LookPath(name); err != nil {
		t.Skipf("SKIP: %s not installed (Debian package %s; scripts/install-deps.sh installs it)", name, pkg)
	}
}

func run(t *testing.T, name string, args ...string) (string, error) {
	t.Helper()
	var out bytes.Buffer
	cmd := exec.Command(name, args...)
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	return out.String(), err
}

func mustRun(t *testing.T, name string, args ...string) string {
	t.Helper()
	out, err := run(t, name, args...)
	if err != nil {
		t.Fatalf("%s %s: %v\n%s", name, strings.Join(args, " "), err, out)
	}
	return out
}

// TestAptRepository checks the apt side as apt does: the signatures of
// InRelease and Release.gpg with gpgv against the published keyring, and
// both architectures' indexes naming the package.
func TestAptRepository(t *testing.T) {
	dir, _, evil := publish(t)
	keyring := filepath.Join(dir, KeyName+".gpg")
	dists := filepath.Join(dir, "apt", "dists", Suite)
	mustRun(t, "gpgv", "--keyring", keyring, filepath.Join(dists, "InRelease"))
	mustRun(t, "gpgv", "--keyring", keyring, filepath.Join(dists, "Release.gpg"), filepath.Join(dists, "Release"))

	// Another key's keyring must not verify it.
	other := filepath.Join(t.TempDir(), "other.gpg")
	pub, err := evil.Public(context.Background(), false)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(other, pub, 0o644)
	if out, err := run(t, "gpgv", "--keyring", other, filepath.Join(dists, "InRelease")); err == nil {
		t.Errorf("InRelease verifies with another key's keyring:\n%s", out)
	}

	release, err := os.ReadFile(filepath.Join(dists, "Release"))
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{"Suite: stable", "Codename: stable", "Components: main", "Architectures: amd64 arm64", "SHA256:"} {
		if !strings.Contains(string(release), want+"\n") && !strings.Contains(string(release), want+" ") {
			t.Errorf("Release lacks %q:\n%s", want, release)
		}
	}
	for _, arch := range Arches {
		packages, err := os.ReadFile(filepath.Join(dists, Component, "binary-"+arch, "Packages"))
		if err != nil {
			t.Fatal(err)
		}
		for _, want := range []string{"Package: storm-pacemaker", "Version: " + testVersion + "-1", "Architecture: " + arch,
			"Conflicts: pacemaker", "Replaces: pacemaker", "Filename: pool/main/s/storm-pacemaker/storm-pacemaker_" + testVersion + "-1_" + arch + ".deb"} {
			if !strings.Contains(string(packages), want+"\n") {
				t.Errorf("binary-%s/Packages lacks %q:\n%s", arch, want, packages)
			}
		}
	}
}

// TestBinariesArePIE unpacks each architecture's deb from the repository
// and reads its binaries' ELF headers: position-independent executables
// (type DYN with the PIE flag, an interpreter) that need no shared library.
func TestBinariesArePIE(t *testing.T) {
	needTool(t, "dpkg-deb", "dpkg")
	dir, _, _ := publish(t)
	wantMachine := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64}
	for _, arch := range Arches {
		data := t.TempDir()
		deb := filepath.Join(dir, "apt/pool/main/s/storm-pacemaker/storm-pacemaker_"+testVersion+"-1_"+arch+".deb")
		mustRun(t, "dpkg-deb", "-x", deb, data)
		for _, bin := range packaging.Binaries {
			t.Run(arch+"/"+bin, func(t *testing.T) {
				f, err := elf.Open(filepath.Join(data, "usr/bin", bin))
				if err != nil {
					t.Fatal(err)
				}
				defer f.Close()
				if f.Type != elf.ET_DYN || f.Machine != wantMachine[arch] {
					t.Errorf("type %v machine %v, want ET_DYN %v", f.Type, f.Machine, wantMachine[arch])
				}
				flags, err := f.DynValue(elf.DT_FLAGS_1)
				if err != nil || len(flags) != 1 || flags[0]&uint64(elf.DF_1_PIE) == 0 {
					t.Errorf("DT_FLAGS_1 = %v, %v; want DF_1_PIE", flags, err)
				}
				if libs, err := f.ImportedLibraries(); err != nil || len(libs) != 0 {
					t.Errorf("needs shared libraries %v (%v); want none", libs, err)
				}
				hasInterp := false
				for _, p := range f.Progs {
					hasInterp = hasInterp || p.Type == elf.PT_INTERP
				}
				if !hasInterp {
					t.Error("no PT_INTERP: nothing would relocate the PIE")
				}
			})
		}
	}
}

// TestRPMSignatures: rpm -K refuses the published rpms until the
// repository's key is imported, then verifies digests and signatures; the
// index signature verifies with the armoured key.
func TestRPMSignatures(t *testing.T) {
	needTool(t, "rpm", "rpm")
	dir, _, _ := publish(t)
	rpms, _ := filepath.Glob(filepath.Join(dir, "rpm", "*.rpm"))
	if len(rpms) != len(Arches) {
		t.Fatalf("rpm/ holds %v, want one rpm per architecture", rpms)
	}
	db := t.TempDir()
	for _, r := range rpms {
		if out, err := run(t, "rpm", "--dbpath", db, "-K", r); err == nil {
			t.Errorf("rpm -K without the key accepted %s:\n%s", filepath.Base(r), out)
		}
	}
	mustRun(t, "rpm", "--dbpath", db, "--import", filepath.Join(dir, KeyName+".asc"))
	for _, r := range rpms {
		out := mustRun(t, "rpm", "--dbpath", db, "-K", r)
		if !strings.HasSuffix(strings.TrimSpace(out), ": digests signatures OK") {
			t.Errorf("rpm -K %s: %q, want digests signatures OK", filepath.Base(r), out)
		}
	}
	// gpgv takes binary keyrings only.
	repomd := filepath.Join(dir, "rpm", "repodata", "repomd.xml")
	mustRun(t, "gpgv", "--keyring", filepath.Join(dir, KeyName+".gpg"), repomd+".asc", repomd)
}

// TestDnfResolvesFromRepository points Debian's dnf at rpm/ in an empty
// install root with gpgcheck and repo_gpgcheck on: it must verify the
// signed index with the published key and find the package, and refuse the
// index when the repository names another key. Installing needs an EL
// root: the package requires /usr/bin/kill and /bin/sh, which only EL's
// own packages provide (test/booted installs the rpm with rpm --root).
func TestDnfResolvesFromRepository(t *testing.T) {
	needTool(t, "dnf", "dnf")
	dir, _, evil := publish(t)
	otherKey := filepath.Join(t.TempDir(), "other.asc")
	pub, err := evil.Public(context.Background(), true)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(otherKey, pub, 0o644)

	dnf := func(t *testing.T, gpgkey string, args ...string) (string, error) {
		t.Helper()
		work := t.TempDir()
		repos := filepath.Join(work, "repos.d")
		os.Mkdir(repos, 0o755)
		conf := "[storm-pacemaker]\nname=storm-pacemaker\nbaseurl=file://" + filepath.Join(dir, "rpm") +
			"\nenabled=1\ngpgcheck=1\nrepo_gpgcheck=1\ngpgkey=file://" + gpgkey + "\n"
		os.WriteFile(filepath.Join(repos, "storm-pacemaker.repo"), []byte(conf), 0o644)
		base := []string{"-y", "--installroot", filepath.Join(work, "root"), "--releasever", "9",
			"--setopt=reposdir=" + repos, "--setopt=cachedir=" + filepath.Join(work, "cache"),
			"--setopt=logdir=" + work, "--forcearch", "x86_64",
			// EL's default; Debian's dnf would skip a repository it cannot verify.
			"--setopt=skip_if_unavailable=False"}
		return run(t, "dnf", append(base, args...)...)
	}
	t.Run("published key", func(t *testing.T) {
		out, err := dnf(t, filepath.Join(dir, KeyName+".asc"), "repoquery", "--qf", "%{name} %{version}-%{release} %{arch}", "storm-pacemaker")
		if err != nil || !strings.Contains(out, "storm-pacemaker "+testVersion+"-1 x86_64") {
			t.Fatalf("dnf repoquery: %v\n%s", err, out)
		}
		// How far an install goes without an EL root: to the dependencies.
		out, err = dnf(t, filepath.Join(dir, KeyName+".asc"), "install", "--downloadonly", "storm-pacemaker")
		if err == nil || !regexp.MustCompile(`nothing provides (/usr/bin/kill|/bin/sh)`).MatchString(out) {
			t.Errorf("dnf install into an empty root: %v, want it to stop at EL's /usr/bin/kill or /bin/sh:\n%s", err, out)
		}
	})
	t.Run("another key", func(t *testing.T) {
		out, err := dnf(t, otherKey, "repoquery", "storm-pacemaker")
		if err == nil || !strings.Contains(out, "GPG signature verification error") {
			t.Fatalf("dnf accepted an index signed by a key it was not given: %v\n%s", err, out)
		}
	})
}

// TestPublicKeyOnly: the repository carries the public key, armoured and
// binary, and nothing secret.
func TestPublicKeyOnly(t *testing.T) {
	dir, key, _ := publish(t)
	for _, name := range []string{KeyName + ".asc", KeyName + ".gpg"} {
		out := mustRun(t, "gpg", "--batch", "--with-colons", "--show-keys", filepath.Join(dir, name))
		if !strings.Contains(out, "fpr:::::::::"+key.Fingerprint+":") || strings.Contains(out, "\nsec:") {
			t.Errorf("%s: want the public key %s only:\n%s", name, key.Fingerprint, out)
		}
	}
	filepath.WalkDir(dir, func(path string, d os.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, _ := os.ReadFile(path)
		if bytes.Contains(b, []byte("PRIVATE KEY")) {
			t.Errorf("%s holds a private key", path)
		}
		return nil
	})
}

// TestOpenKey: each form of $PACEMAKER_SIGNING_KEY finds the same key.
func TestOpenKey(t *testing.T) {
	needTool(t, "gpg", "gnupg")
	ctx := context.Background()
	home := filepath.Join(t.TempDir(), "throwaway")
	k, note, err := OpenKey(ctx, "", home)
	if err != nil {
		t.Fatal(err)
	}
	defer k.Close()
	if !strings.Contains(note, "throwaway") || !strings.Contains(note, KeyEnv) {
		t.Errorf("no word of the throwaway key: %q", note)
	}
	again, _, err := OpenKey(ctx, "", home)
	if err != nil || again.Fingerprint != k.Fingerprint {
		t.Errorf("second run: key %v, %v; want the same throwaway key %s", again, err, k.Fingerprint)
	}

	secret := filepath.Join(t.TempDir(), "secret.asc")
	b, err := k.gpg(ctx, "--armor", "--export-secret-keys", k.Fingerprint)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(secret, b, 0o600)
	fromFile, _, err := OpenKey(ctx, secret, "")
	if err != nil || fromFile.Fingerprint != k.Fingerprint {
		t.Fatalf("from a key file: %v, %v", fromFile, err)
	}
	fromFile.Close()
	if _, err := os.Stat(fromFile.Home); !os.IsNotExist(err) {
		t.Errorf("the imported key's home %s is left behind: %v", fromFile.Home, err)
	}

	t.Setenv("GNUPGHOME", home)
	byID, _, err := OpenKey(ctx, k.Fingerprint[len(k.Fingerprint)-16:], "")
	if err != nil || byID.Fingerprint != k.Fingerprint {
		t.Errorf("by key id: %v, %v", byID, err)
	}
	if _, _, err := OpenKey(ctx, "0123456789ABCDEF", ""); err == nil {
		t.Error("an unknown key id was accepted")
	}
}
