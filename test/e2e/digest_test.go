package e2e

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
)

// runCtl runs the built pacemakerctl with stdin and returns stdout, stderr
// and the exit code.
func runCtl(t *testing.T, stdin string, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(daemon.Build(t), "pacemakerctl"), args...)
	cmd.Stdin = strings.NewReader(stdin)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	var ee *exec.ExitError
	if err != nil && !errors.As(err, &ee) {
		t.Fatalf("run pacemakerctl: %v", err)
	}
	return out.String(), errOut.String(), cmd.ProcessState.ExitCode()
}

// TestPacemakerctlDigest: against a DIGEST daemon, an unauthenticated
// pacemakerctl may write but not read; with --auth DIGEST and the JAAS file
// it reads; with a wrong password the handshake is refused.
func TestPacemakerctlDigest(t *testing.T) {
	p := daemon.Start(t, daemon.Options{
		Config: "pacemaker.auth.method: DIGEST\njava.security.auth.login.config: " + daemon.DirPlaceholder + "/jaas.conf\n",
		Files: map[string]string{
			"jaas.conf":  "PacemakerDigest { username=\"pmuser\" password=\"pmsecret\"; };\n",
			"wrong.conf": "PacemakerDigest { username=\"pmuser\" password=\"guess\"; };\n",
			"other.conf": "StormClient { a=b; };\n",
		},
	})
	dir := filepath.Dir(p.ConfigPath())
	srv := "--servers=" + p.Addr()
	key := "/workerbeats/topo-1/sup-1-6700"

	if _, stderr, code := runCtl(t, "beat", srv, "send", key, "-"); code != 0 {
		t.Fatalf("unauthenticated send: exit %d: %s", code, stderr)
	}
	_, stderr, code := runCtl(t, "", srv, "get", key)
	if code != 3 || !strings.Contains(stderr, "--auth DIGEST") {
		t.Errorf("unauthenticated get: exit %d, stderr %q; want 3 (not authorized) and a hint to authenticate", code, stderr)
	}
	out, stderr, code := runCtl(t, "", srv, "--auth", "DIGEST", "--jaas", filepath.Join(dir, "jaas.conf"), "get", key)
	if code != 0 || out != "beat" {
		t.Errorf("authenticated get: exit %d, out %q, stderr %q", code, out, stderr)
	}
	_, stderr, code = runCtl(t, "", srv, "--auth", "DIGEST", "--jaas", filepath.Join(dir, "wrong.conf"), "get", key)
	if code == 0 || !strings.Contains(stderr, "wrong credentials") {
		t.Errorf("wrong password: exit %d, stderr %q", code, stderr)
	}
	_, stderr, code = runCtl(t, "", srv, "--auth", "DIGEST", "--jaas", filepath.Join(dir, "other.conf"), "get", key)
	if code == 0 || !strings.Contains(stderr, "no PacemakerDigest section") {
		t.Errorf("JAAS without PacemakerDigest: exit %d, stderr %q", code, stderr)
	}
	if !strings.Contains(p.Log(), "client authenticated") || !strings.Contains(p.Log(), "authentication failed") {
		t.Errorf("daemon log lacks the handshakes:\n%s", p.Log())
	}
}

// TestDigestStartupErrors: a DIGEST daemon exits 2 naming what to add.
func TestDigestStartupErrors(t *testing.T) {
	dir := t.TempDir()
	for _, tt := range []struct {
		name, jaas, want string
	}{
		{"no section", "StormServer { a=b; };\n", "no PacemakerDigest section; add:"},
		{"empty password", "PacemakerDigest { username=\"u\" password=\"\"; };\n", "empty or missing password"},
		{"syntax error", "PacemakerDigest { username=\"u\" password=\"p\" };\n", "jaas.conf:1:"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			jaas := filepath.Join(dir, "jaas.conf")
			os.WriteFile(jaas, []byte(tt.jaas), 0o600)
			cmd := exec.Command(filepath.Join(daemon.Build(t), "pacemaker"), "--port", "1")
			cmd.Env = append(os.Environ(), "PACEMAKER_AUTH_METHOD=DIGEST", "PACEMAKER_JAVA_SECURITY_AUTH_LOGIN_CONFIG="+jaas)
			out, _ := cmd.CombinedOutput()
			if cmd.ProcessState.ExitCode() != 2 || !strings.Contains(string(out), tt.want) {
				t.Errorf("exit %d, want 2 and %q in:\n%s", cmd.ProcessState.ExitCode(), tt.want, out)
			}
		})
	}
}
