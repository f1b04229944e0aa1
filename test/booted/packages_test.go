// Package booted installs the real packages where they run: the .deb in a
// Debian 12 container with systemd booted as PID 1 (systemd-nspawn, see
// internal/testutil/nspawn) and in one where systemd is not running, the
// .rpm into a root with rpm --root. The Debian root is made with
// debootstrap once and cached (test/booted/.cache); later runs take about a
// minute, mostly building the two package versions.
package booted

import (
	"context"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/packaging"
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
			dir := filepath.Join(built.dir, v)
			b := packaging.Build{Root: root, Version: v, Arch: "amd64", BinDir: filepath.Join(dir, "bin"),
				GenDir: filepath.Join(dir, "gen"), OutDir: filepath.Join(built.dir, "out"), Date: packaging.SourceDate(root)}
			if built.err = packaging.GoBuild(ctx, root, b.BinDir, b.Arch, v, ""); built.err != nil {
				return
			}
			deb, err := b.Package("deb")
			if err != nil {
				built.err = err
				return
			}
			rpm, err := b.Package("rpm")
			if err != nil {
				built.err = err
				return
			}
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

func TestMain(m *testing.M) {
	code := m.Run()
	if built.dir != "" {
		os.RemoveAll(built.dir)
	}
	os.Exit(code)
}
