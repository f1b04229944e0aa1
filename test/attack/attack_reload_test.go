package attack

// A reload is atomic per request (issue 14, item 4): the settings that
// judge a request are the ones in force when its frame is complete, so a
// connection opened — and idle — under looser rules gets no request through
// under the tighter ones (was: its next request was judged by the old
// settings: it read a heartbeat and ran DELETE_PATH / after a reload to
// DIGEST). NONE→KERBEROS is in test/kerberos (it needs the KDC fixture).

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth/digest"
	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

const (
	reloadJAAS   = "PacemakerDigest { username=\"pmuser\" password=\"pmsecret\"; };\n"
	digestConfig = "pacemaker.auth.method: DIGEST\njava.security.auth.login.config: " + daemon.DirPlaceholder + "/jaas.conf\n"
)

// reload rewrites the daemon's config and sends SIGHUP, waiting for the
// daemon to say it took it (the n-th time).
func reload(t *testing.T, p *target, config string, n int) {
	t.Helper()
	config = strings.ReplaceAll(config, daemon.DirPlaceholder, p.Dir())
	if err := os.WriteFile(p.ConfigPath(), []byte(config), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(hangBound)
	for strings.Count(p.Log(), "config reloaded") < n {
		if time.Now().After(deadline) {
			t.Fatalf("no reload %d in the log:\n%s", n, p.Log())
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// digestClient authenticates with reloadJAAS's credentials, as Storm's
// client does.
func digestClient() *digest.ClientMechanism {
	return digest.NewClientMechanism(digest.SecretFromCredentials("pmuser", "pmsecret"), "attack-test")
}

// expect sends m on r and checks the answer's type.
func expect(t *testing.T, r *rawConn, m *wire.Message, want wire.MessageType) {
	t.Helper()
	if err := r.send(m); err != nil {
		t.Fatalf("%s: %v", m.Type, err)
	}
	got, err := r.recv()
	if err != nil {
		t.Fatalf("%s: %v", m.Type, err)
	}
	if got.Type != want {
		t.Fatalf("%s answered %s, want %s", m.Type, got.Type, want)
	}
}

// startReloadable starts a daemon with config and a JAAS file for DIGEST
// beside it.
func startReloadable(t *testing.T, config string) *target {
	t.Helper()
	return &target{Proc: daemon.Start(t, daemon.Options{Config: config, LogLevel: "info", Files: map[string]string{"jaas.conf": reloadJAAS}})}
}

// TestReloadNoneToDigest: a connection opened under NONE and idle across a
// reload to DIGEST with pacemaker.auth.writes gets NOT_AUTHORIZED for its
// read and for DELETE_PATH /, and the heartbeat is still there.
func TestReloadNoneToDigest(t *testing.T) {
	p := startReloadable(t, "")
	r := dialRaw(t, p.Addr())
	expect(t, r, pulseMsg("/workerbeats/t/w-1", []byte("beat"), 1), wire.SendPulseResponse)
	expect(t, r, pathMsg(wire.GetPulse, "/workerbeats/t/w-1", 2), wire.GetPulseResponse)

	reload(t, p, digestConfig+"pacemaker.auth.writes: true\n", 1)
	expect(t, r, pathMsg(wire.GetPulse, "/workerbeats/t/w-1", 3), wire.NotAuthorized)
	expect(t, r, pathMsg(wire.DeletePath, "/", 4), wire.NotAuthorized)
	expect(t, r, pulseMsg("/workerbeats/t/w-2", []byte("beat"), 5), wire.NotAuthorized)

	c, err := client.Dial(context.Background(), p.Addr(), client.Options{Auth: digestClient()})
	if err != nil {
		t.Fatalf("DIGEST client after the reload: %v", err)
	}
	defer c.Close()
	if v, ok, err := c.GetPulse(context.Background(), "/workerbeats/t/w-1"); err != nil || !ok || string(v) != "beat" {
		t.Fatalf("the heartbeat after the refused DELETE_PATH /: %q %v %v", v, ok, err)
	}
	p.alive(t)
}

// TestReloadAuthWrites: under DIGEST, an unauthenticated connection that
// wrote before a reload to pacemaker.auth.writes: true may not write after
// it; an authenticated one still may.
func TestReloadAuthWrites(t *testing.T) {
	p := startReloadable(t, digestConfig)
	r := dialRaw(t, p.Addr())
	expect(t, r, pulseMsg("/workerbeats/t/w-1", []byte("beat"), 1), wire.SendPulseResponse)
	c, err := client.Dial(context.Background(), p.Addr(), client.Options{Auth: digestClient()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()

	reload(t, p, digestConfig+"pacemaker.auth.writes: true\n", 1)
	expect(t, r, pulseMsg("/workerbeats/t/w-1", []byte("again"), 2), wire.NotAuthorized)
	if err := c.SendPulse(context.Background(), "/workerbeats/t/w-1", []byte("authenticated")); err != nil {
		t.Fatalf("an authenticated write after the reload: %v", err)
	}
	p.alive(t)
}

// TestReloadNewCredentialsDemote: a connection authenticated under DIGEST
// keeps reading across a reload that changes something else, and counts as
// unauthenticated once the password it proved is no longer the one in the
// JAAS file (a leaked password rotated by reload locks its holder out).
func TestReloadNewCredentialsDemote(t *testing.T) {
	p := startReloadable(t, digestConfig)
	c, err := client.Dial(context.Background(), p.Addr(), client.Options{Auth: digestClient()})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	if err := c.SendPulse(ctx, "/workerbeats/t/w-1", []byte("beat")); err != nil {
		t.Fatal(err)
	}
	reload(t, p, digestConfig+"pacemaker.frame.timeout.secs: 20\n", 1)
	if _, ok, err := c.GetPulse(ctx, "/workerbeats/t/w-1"); err != nil || !ok {
		t.Fatalf("read after an unrelated reload: %v %v", ok, err)
	}
	rotated := strings.Replace(reloadJAAS, "pmsecret", "rotated", 1)
	if err := os.WriteFile(filepath.Join(p.Dir(), "jaas.conf"), []byte(rotated), 0o600); err != nil {
		t.Fatal(err)
	}
	reload(t, p, digestConfig, 2)
	if _, _, err := c.GetPulse(ctx, "/workerbeats/t/w-1"); !errors.Is(err, client.ErrNotAuthorized) {
		t.Fatalf("a connection authenticated with the old password read after the rotation: %v", err)
	}
	if !p.WaitLog("counts as unauthenticated", hangBound) {
		t.Error("no log line says the connection was demoted")
	}
	fresh, err := client.Dial(ctx, p.Addr(), client.Options{Auth: digest.NewClientMechanism(digest.SecretFromCredentials("pmuser", "rotated"), "attack-test")})
	if err != nil {
		t.Fatalf("the new password after the rotation: %v", err)
	}
	defer fresh.Close()
	if _, ok, err := fresh.GetPulse(ctx, "/workerbeats/t/w-1"); err != nil || !ok {
		t.Fatalf("read with the new password: %v %v", ok, err)
	}
}

// TestReloadSmallerFrameMax: the first frame after a reload that lowers
// pacemaker.thrift.message.size.max is held to the new maximum (was: one
// frame late).
func TestReloadSmallerFrameMax(t *testing.T) {
	p := startReloadable(t, "")
	r := dialRaw(t, p.Addr())
	beat := make([]byte, 100<<10)
	expect(t, r, pulseMsg("/workerbeats/t/w-1", beat, 1), wire.SendPulseResponse)
	reload(t, p, "pacemaker.thrift.message.size.max: 65536\n", 1)
	if err := r.send(pulseMsg("/workerbeats/t/w-1", beat, 2)); err != nil {
		t.Fatal(err)
	}
	if !r.closed() {
		t.Fatal("a 100 KiB frame after the maximum was lowered to 64 KiB was not refused")
	}
	if !p.WaitLog("frame length out of range", hangBound) {
		t.Error("no log line for the refused frame")
	}
	p.alive(t)
}
