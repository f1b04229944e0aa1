// Package booted installs the real packages where they run, the way hosts
// install them: from the signed apt repository `make repo` publishes
// (internal/packaging/repo) into a Debian 12 container with systemd booted
// as PID 1 (systemd-nspawn, see internal/testutil/nspawn), the .deb file
// into one where systemd is not running, and the signed .rpm into a root
// with rpm --root. The Debian root is made with debootstrap once and cached
// (test/booted/.cache); later runs take about two minutes, mostly building
// the two package versions.
package booted

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/packaging"
	"github.com/storm-pacemaker/pacemaker/internal/packaging/repo"
)

// The two versions built: an install of the first, an upgrade to the second.
const (
	oldVersion = "1.0.0"
	newVersion = "1.0.1"
)

type pkgs struct {
	oldDeb, newDeb, oldRPM, newRPM string
}

var built struct {
	once sync.Once
	dir  string
	pkgs pkgs
	err  error
}

// packages builds amd64 binaries and both package formats of both versions,
// once per test process, the way `make deb rpm` does.
func packages(t *testing.T) pkgs {
	t.Helper()
	built.once.Do(func() {
		start := time.Now()
		root, err := filepath.Abs("../..")
		if err != nil {
			built.err = err
			return
		}
		if built.dir, built.err = os.MkdirTemp("", "pacemaker-booted-"); built.err != nil {
			return
		}
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Minute)
		defer cancel()
		for _, v := range []string{oldVersion, newVersion} {
			var paths []string
			paths, built.err = packaging.BuildAll(ctx, root, v, "", []string{"amd64"}, packaging.Formats,
				filepath.Join(built.dir, "out"), filepath.Join(built.dir, v))
			if built.err != nil {
				return
			}
			deb, rpm := paths[0], paths[1]
			if v == oldVersion {
				built.pkgs.oldDeb, built.pkgs.oldRPM = deb, rpm
			} else {
				built.pkgs.newDeb, built.pkgs.newRPM = deb, rpm
			}
		}
		t.Logf("built %s and %s debs and rpms in %v", oldVersion, newVersion, time.Since(start).Round(100*time.Millisecond))
	})
	if built.err != nil {
		t.Fatal(built.err)
	}
	return built.pkgs
}

var keys struct {
	once         sync.Once
	dir          string
	signing, bad *repo.Key
	err          error
}

// signingKeys are two throwaway keys, made once per test process: the
// repository's, and another one that hosts must not trust.
func signingKeys(t *testing.T) (signing, bad *repo.Key) {
	t.Helper()
	for _, tool := range repo.Tools {
		if _, err := exec.LookPath(tool.Name); err != nil {
			t.Skipf("SKIP: %s not installed (Debian package %s; scripts/install-deps.sh installs it)", tool.Name, tool.Package)
		}
	}
	keys.once.Do(func() {
		if keys.dir, keys.err = os.MkdirTemp("", "pacemaker-booted-keys-"); keys.err != nil {
			return
		}
		ctx := context.Background()
		if keys.signing, keys.err = repo.ThrowawayKey(ctx, filepath.Join(keys.dir, "signing")); keys.err != nil {
			return
		}
		keys.bad, keys.err = repo.ThrowawayKey(ctx, filepath.Join(keys.dir, "bad"))
	})
	if keys.err != nil {
		t.Fatal(keys.err)
	}
	return keys.signing, keys.bad
}

// publish writes the signed repositories of the given packages to dir, as
// `make repo` does.
func publish(t *testing.T, dir string, key *repo.Key, packages []string) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	start := time.Now()
	if err := repo.Publish(ctx, dir, packages, key); err != nil {
		t.Fatal(err)
	}
	t.Logf("published %d packages in %v", len(packages), time.Since(start).Round(10*time.Millisecond))
}

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	for _, k := range []*repo.Key{keys.signing, keys.bad} {
		if k != nil {
			k.Close()
		}
	}
	if keys.dir != "" {
		os.RemoveAll(keys.dir)
	}
	os.Exit(code)
}
