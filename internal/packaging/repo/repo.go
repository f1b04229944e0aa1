// Package repo publishes built packages as the signed repositories hosts
// install from (`make repo`): an apt repository made by reprepro and a dnf
// repository made by createrepo_c, signed with one OpenPGP key through gpg
// and rpmsign. The layout, under one directory that any web server (or a
// file: URL) can serve:
//
//	apt/dists/stable/{InRelease,Release,Release.gpg,main/binary-{amd64,arm64}/...}
//	apt/pool/main/s/storm-pacemaker/*.deb
//	rpm/*.rpm (signed), rpm/repodata/{repomd.xml,repomd.xml.asc,...}
//	storm-pacemaker.asc  the public key, armoured (dnf gpgkey=, rpm --import)
//	storm-pacemaker.gpg  the same key, binary (apt signed-by=)
package repo

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
)

// The apt suite and component, the same for every host: the packages are
// static binaries that do not depend on the Debian release.
const (
	Suite     = "stable"
	Component = "main"
)

// KeyName names the public key files at the repository's top.
const KeyName = "storm-pacemaker"

// Tools are the programs Publish runs, with the Debian packages that ship
// them (scripts/install-deps.sh installs them).
var Tools = []struct{ Name, Package string }{
	{"gpg", "gnupg"}, {"reprepro", "reprepro"}, {"rpmsign", "rpm"}, {"createrepo_c", "createrepo-c"},
}

// Arches are the Debian architectures the apt repository lists.
var Arches = []string{"amd64", "arm64"}

// Publish writes the repositories of the packages (.deb and .rpm files)
// into dir, replacing what was there; the rpms are copied and signed there,
// the debs go in as they are (apt checks them by the signed indexes). It
// builds beside dir and renames, so a web server serving dir never sees
// half a repository.
func Publish(ctx context.Context, dir string, packages []string, key *Key) error {
	dir = abs(dir)
	var debs, rpms []string
	for _, p := range packages {
		switch filepath.Ext(p) {
		case ".deb":
			debs = append(debs, abs(p))
		case ".rpm":
			rpms = append(rpms, abs(p))
		default:
			return fmt.Errorf("publish %s: not a .deb or .rpm", p)
		}
	}
	parent := filepath.Dir(dir)
	if err := os.MkdirAll(parent, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", parent, err)
	}
	tmp, err := os.MkdirTemp(parent, "."+filepath.Base(dir)+".new-")
	if err != nil {
		return fmt.Errorf("publish %s: %w", dir, err)
	}
	defer os.RemoveAll(tmp)
	if err := os.Chmod(tmp, 0o755); err != nil {
		return err
	}
	if err := publishApt(ctx, filepath.Join(tmp, "apt"), debs, key); err != nil {
		return err
	}
	if err := publishRPM(ctx, filepath.Join(tmp, "rpm"), rpms, key); err != nil {
		return err
	}
	for _, f := range []struct {
		name  string
		armor bool
	}{{KeyName + ".asc", true}, {KeyName + ".gpg", false}} {
		pub, err := key.Public(ctx, f.armor)
		if err != nil {
			return err
		}
		if err := os.WriteFile(filepath.Join(tmp, f.name), pub, 0o644); err != nil {
			return err
		}
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("replace %s: %w", dir, err)
	}
	if err := os.Rename(tmp, dir); err != nil {
		return fmt.Errorf("publish %s: %w", dir, err)
	}
	return nil
}

// publishApt runs reprepro with its configuration and database outside the
// published tree: only dists/ and pool/ are served.
func publishApt(ctx context.Context, out string, debs []string, key *Key) error {
	state, err := os.MkdirTemp("", "pacemaker-reprepro-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(state)
	conf := filepath.Join(state, "conf")
	if err := os.Mkdir(conf, 0o755); err != nil {
		return err
	}
	distributions := fmt.Sprintf(`Origin: storm-pacemaker
Label: storm-pacemaker
Suite: %[1]s
Codename: %[1]s
Architectures: %[2]s
Components: %[3]s
Description: storm-pacemaker, the heartbeat server for Apache Storm
SignWith: %[4]s
`, Suite, strings.Join(Arches, " "), Component, key.Fingerprint)
	if err := os.WriteFile(filepath.Join(conf, "distributions"), []byte(distributions), 0o644); err != nil {
		return err
	}
	base := []string{"--silent", "--basedir", state, "--outdir", out}
	args := append(append(base, "includedeb", Suite), debs...)
	if len(debs) == 0 {
		// No package yet: still an empty, signed repository.
		args = append(base, "export", Suite)
	}
	if err := key.run(ctx, "reprepro", args...); err != nil {
		return fmt.Errorf("apt repository: %w", err)
	}
	return nil
}

// publishRPM copies and signs the rpms, indexes them with createrepo_c and
// signs the index (what dnf's repo_gpgcheck verifies).
func publishRPM(ctx context.Context, out string, rpms []string, key *Key) error {
	if err := os.MkdirAll(out, 0o755); err != nil {
		return err
	}
	var signed []string
	for _, src := range rpms {
		dst := filepath.Join(out, filepath.Base(src))
		if err := copyFile(src, dst); err != nil {
			return err
		}
		signed = append(signed, dst)
	}
	if len(signed) > 0 {
		gpg, err := exec.LookPath("gpg")
		if err != nil {
			return fmt.Errorf("sign rpms: %w", err)
		}
		// rpm's %__gpg is gpg2, a name Debian's gnupg no longer installs.
		args := []string{"--define", "__gpg " + gpg, "--define", "_gpg_name " + key.Fingerprint}
		if key.Home != "" {
			args = append(args, "--define", "_gpg_path "+key.Home)
		}
		args = append(append(args, "--addsign"), signed...)
		if err := key.run(ctx, "rpmsign", args...); err != nil {
			return fmt.Errorf("sign rpms: %w", err)
		}
	}
	if err := key.run(ctx, "createrepo_c", "--quiet", out); err != nil {
		return fmt.Errorf("rpm repository: %w", err)
	}
	repomd := filepath.Join(out, "repodata", "repomd.xml")
	if err := key.Sign(ctx, repomd); err != nil {
		return fmt.Errorf("sign %s: %w", repomd, err)
	}
	return nil
}

func copyFile(src, dst string) error {
	in, err := os.Open(src)
	if err != nil {
		return err
	}
	defer in.Close()
	out, err := os.OpenFile(dst, os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o644)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, in); err != nil {
		out.Close()
		return fmt.Errorf("copy %s: %w", src, err)
	}
	return out.Close()
}

// run runs a tool with the key's GNUPGHOME and no terminal, returning its
// output in the error when it fails.
func (k *Key) run(ctx context.Context, name string, args ...string) error {
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Env = k.env()
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %w\n%s", name, strings.Join(args, " "), err, out.String())
	}
	return nil
}
