package fault

import (
	"context"
	"errors"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
)

// TestAuthWrites: with pacemaker.auth.writes true, every write from a
// connection that did not authenticate is refused with NOT_AUTHORIZED and
// counted, and nothing is stored; an authenticated connection writes and
// reads; with the default (false) an unauthenticated worker writes, as in
// Storm.
func TestAuthWrites(t *testing.T) {
	ctx := context.Background()
	const key = "/workerbeats/t/sup-1-6700"
	writes := []struct {
		name string
		do   func(c *client.Conn) error
	}{
		{"SEND_PULSE", func(c *client.Conn) error { return c.SendPulse(ctx, key, []byte("hb")) }},
		{"CREATE_PATH", func(c *client.Conn) error { return c.CreatePath(ctx, "/workerbeats/t") }},
		{"DELETE_PULSE_ID", func(c *client.Conn) error { return c.DeletePulseID(ctx, key) }},
		{"DELETE_PATH", func(c *client.Conn) error { return c.DeletePath(ctx, "/workerbeats") }},
	}
	dial := func(t *testing.T, p *proc, password string) *client.Conn {
		t.Helper()
		var opts client.Options
		if password != "" {
			opts.Auth = digestClient(password)
		}
		c, err := client.Dial(ctx, p.Addr(), opts)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}

	t.Run("on", func(t *testing.T) {
		p := digestDaemon(t, "pacemaker.auth.writes: true\n")
		authed := dial(t, p, digestPassword)
		if err := authed.SendPulse(ctx, key, []byte("from nimbus")); err != nil {
			t.Fatalf("authenticated write: %v", err)
		}
		anon := dial(t, p, "")
		before := p.scrape(t)
		for _, w := range writes {
			if err := w.do(anon); !errors.Is(err, client.ErrNotAuthorized) {
				t.Errorf("unauthenticated %s: %v, want NOT_AUTHORIZED", w.name, err)
			}
		}
		if got := p.scrape(t).rejected("unauthenticated write") - before.rejected("unauthenticated write"); got != float64(len(writes)) {
			t.Errorf("rejected_total{reason=\"unauthenticated write\"} grew by %v, want %d", got, len(writes))
		}
		// Nothing the refused writes asked for happened.
		if b, ok, err := authed.GetPulse(ctx, key); err != nil || !ok || string(b) != "from nimbus" {
			t.Errorf("after refused writes: %q %v %v", b, ok, err)
		}
		// The refusals did not cost the connection: it still may not read,
		// but it is answered.
		if _, _, err := anon.GetPulse(ctx, key); !errors.Is(err, client.ErrNotAuthorized) {
			t.Errorf("unauthenticated read: %v, want NOT_AUTHORIZED", err)
		}
		for _, w := range writes {
			if err := w.do(authed); err != nil {
				t.Errorf("authenticated %s: %v", w.name, err)
			}
		}
		if !strings.Contains(p.Log(), "write refused: pacemaker.auth.writes needs an authenticated connection") {
			t.Error("refused write not logged")
		}
	})

	t.Run("off", func(t *testing.T) {
		p := digestDaemon(t, "")
		anon := dial(t, p, "")
		for _, w := range writes {
			if err := w.do(anon); err != nil {
				t.Errorf("unauthenticated %s with pacemaker.auth.writes false: %v", w.name, err)
			}
		}
	})

	// auth.writes cannot mean anything without an auth method: the daemon
	// refuses to start rather than silently accept every write.
	t.Run("with NONE", func(t *testing.T) {
		cmd := exec.Command(filepath.Join(daemon.Build(t), "pacemaker"), "--port", "1", "--config", "/dev/null")
		cmd.Env = []string{"PACEMAKER_AUTH_WRITES=true", "PATH=/usr/bin:/bin"}
		out, _ := cmd.CombinedOutput()
		if code := cmd.ProcessState.ExitCode(); code != 2 || !strings.Contains(string(out), "pacemaker.auth.writes") {
			t.Errorf("exit %d, want 2 naming pacemaker.auth.writes:\n%s", code, out)
		}
	})
}
