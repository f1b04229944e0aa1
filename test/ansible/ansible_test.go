// Package ansible tests the Ansible roles and playbooks in ansible/ and the
// Vagrant test bed in vagrant/: the linters with the strictest profile, the
// storm.yaml module on real files, and site.yml run twice against booted
// systemd hosts (systemd-nspawn), then verify.yml.
package ansible

import (
	"bytes"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// repoRoot is the directory holding go.mod.
func repoRoot(t testing.TB) string {
	t.Helper()
	dir, err := os.Getwd()
	if err != nil {
		t.Fatalf("getwd: %v", err)
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			t.Fatal("no go.mod above the test directory")
		}
		dir = parent
	}
}

func ansibleDir(t testing.TB) string { return filepath.Join(repoRoot(t), "ansible") }

// needTool skips the test when a program is missing, naming the Debian
// package that provides it (scripts/install-deps.sh installs them all).
func needTool(t testing.TB, name, debianPackage string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("SKIP: %s is not installed (apt-get install %s): %v", name, debianPackage, err)
	}
	return path
}

// result is one finished command.
type result struct {
	stdout, stderr string
	err            error
}

func (r result) String() string {
	return "stdout:\n" + r.stdout + "\nstderr:\n" + r.stderr
}

// run runs a command in dir with extra environment and a deadline.
func run(t testing.TB, timeout time.Duration, dir string, env []string, name string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, name, args...)
	cmd.Dir = dir
	cmd.Env = append(os.Environ(), env...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	err := cmd.Run()
	if ctx.Err() != nil {
		err = ctx.Err()
	}
	return result{stdout: stdout.String(), stderr: stderr.String(), err: err}
}

// ansibleEnv keeps Ansible's output plain and its config the repository's.
func ansibleEnv(t testing.TB) []string {
	return []string{
		"ANSIBLE_CONFIG=" + filepath.Join(ansibleDir(t), "ansible.cfg"),
		"ANSIBLE_NOCOLOR=1",
		"ANSIBLE_FORCE_COLOR=0",
		"ANSIBLE_LOCAL_TEMP=" + t.TempDir(),
		"ANSIBLE_HOME=" + t.TempDir(),
		"NO_COLOR=1",
	}
}

func lines(s string) []string {
	return strings.Split(strings.TrimRight(s, "\n"), "\n")
}
