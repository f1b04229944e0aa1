// Package e2e drives the built pacemaker binary through the Go client: every
// request type, the command line, config errors, reload and stop.
package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

func TestMain(m *testing.M) { os.Exit(daemon.Main(m)) }

func dial(t *testing.T, p *daemon.Proc) *client.Conn {
	t.Helper()
	c, err := client.Dial(context.Background(), p.Addr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func TestEveryRequestTypeThroughTheClient(t *testing.T) {
	p := daemon.Start(t, daemon.Options{})
	c := dial(t, p)
	ctx := context.Background()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(c.CreatePath(ctx, "/workerbeats/topo-1"))
	must(c.SendPulse(ctx, "/workerbeats/topo-1/sup-a-6700", []byte("a")))
	must(c.SendPulse(ctx, "/workerbeats/topo-1/sup-b-6701", []byte{0, 1, 2, 0xff}))
	must(c.SendPulse(ctx, "/workerbeats/topo-2/sup-c-6702", []byte("c")))
	if b, ok, err := c.GetPulse(ctx, "/workerbeats/topo-1/sup-b-6701"); err != nil || !ok || string(b) != "\x00\x01\x02\xff" {
		t.Fatalf("get: %q %v %v", b, ok, err)
	}
	if _, ok, err := c.GetPulse(ctx, "/workerbeats/topo-1/missing"); err != nil || ok {
		t.Fatalf("get missing: %v %v", ok, err)
	}
	if ok, err := c.Exists(ctx, "/workerbeats/topo-2/sup-c-6702"); err != nil || !ok {
		t.Fatalf("exists: %v %v", ok, err)
	}
	if n, err := c.Children(ctx, "/workerbeats"); err != nil || !slices.Equal(sorted(n), []string{"topo-1", "topo-2"}) {
		t.Fatalf("children: %q %v", n, err)
	}
	if n, err := c.Children(ctx, "/workerbeats/topo-1"); err != nil || !slices.Equal(sorted(n), []string{"sup-a-6700", "sup-b-6701"}) {
		t.Fatalf("children: %q %v", n, err)
	}
	resp, err := c.Do(ctx, pathReq(6, "/workerbeats")) // GET_ALL_PULSE_FOR_PATH
	if err != nil || resp.Type.String() != "GET_ALL_PULSE_FOR_PATH_RESPONSE" {
		t.Fatalf("get all pulse: %v %v", resp, err)
	}
	must(c.DeletePulseID(ctx, "/workerbeats/topo-1/sup-a-6700"))
	if ok, _ := c.Exists(ctx, "/workerbeats/topo-1/sup-a-6700"); ok {
		t.Fatal("exists after DELETE_PULSE_ID")
	}
	must(c.DeletePath(ctx, "/workerbeats/topo-1"))
	if n, _ := c.Children(ctx, "/workerbeats"); !slices.Equal(n, []string{"topo-2"}) {
		t.Fatalf("after DELETE_PATH: %q", n)
	}
}

func sorted(s []string) []string { s = slices.Clone(s); slices.Sort(s); return s }

func TestCommandLine(t *testing.T) {
	bin := filepath.Join(daemon.Build(t), "pacemaker")
	run := func(args ...string) (string, int) {
		cmd := exec.Command(bin, args...)
		cmd.Env = []string{"PATH=/usr/bin:/bin"}
		out, err := cmd.CombinedOutput()
		code := 0
		if ee, ok := err.(*exec.ExitError); ok {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		return string(out), code
	}
	dir := t.TempDir()
	bad := filepath.Join(dir, "bad.yaml")
	os.WriteFile(bad, []byte("pacemaker.port: 70000\n"), 0o600)
	badAuth := filepath.Join(dir, "auth.yaml")
	os.WriteFile(badAuth, []byte("pacemaker.auth.method: PLAIN\n"), 0o600)
	digestNoJAAS := filepath.Join(dir, "digest.yaml")
	os.WriteFile(digestNoJAAS, []byte("pacemaker.auth.method: DIGEST\njava.security.auth.login.config: "+filepath.Join(dir, "none.conf")+"\n"), 0o600)
	badMetrics := filepath.Join(dir, "metrics.yaml")
	os.WriteFile(badMetrics, []byte("pacemaker.metrics.listen: \"127.0.0.1:notaport\"\n"), 0o600)
	tests := []struct {
		args []string
		code int
		want []string
	}{
		{[]string{"--version"}, 0, []string{"pacemaker "}},
		{[]string{"--config", bad, "--print-config"}, 2, []string{"pacemaker.port", "70000", bad}},
		{[]string{"--config", badAuth}, 2, []string{"pacemaker.auth.method", "PLAIN", badAuth}},
		{[]string{"--config", filepath.Join(dir, "missing.yaml")}, 2, []string{"missing.yaml"}},
		{[]string{"--config", digestNoJAAS}, 2, []string{"none.conf"}},
		{[]string{"--port", "0x10"}, 2, []string{"pacemaker.port", "0x10", "flag"}},
		{[]string{"--no-such-flag"}, 2, []string{"no-such-flag"}},
		{[]string{"--listen", "no-such-host.invalid"}, 2, []string{"pacemaker.listen", "no-such-host.invalid"}},
		{[]string{"--config", badMetrics}, 2, []string{"pacemaker.metrics.listen", "notaport"}},
		{[]string{"--print-config", "--port", "7000"}, 0, []string{"pacemaker.port: 7000", "pacemaker.auth.method: NONE"}},
	}
	for _, tt := range tests {
		t.Run(strings.Join(tt.args, " "), func(t *testing.T) {
			out, code := run(tt.args...)
			if code != tt.code {
				t.Fatalf("exit %d, want %d\n%s", code, tt.code, out)
			}
			for _, w := range tt.want {
				if !strings.Contains(out, w) {
					t.Errorf("output lacks %q:\n%s", w, out)
				}
			}
		})
	}
}

// TestReloadKeepsServingAndState: SIGHUP with an invalid config is rejected
// and the old config keeps serving; a valid one applies; stored heartbeats
// and open connections survive both.
func TestReloadKeepsServingAndState(t *testing.T) {
	p := daemon.Start(t, daemon.Options{Config: "pacemaker.log.level: info\n"})
	c := dial(t, p)
	ctx := context.Background()
	if err := c.SendPulse(ctx, "/wb/t/w", []byte("x")); err != nil {
		t.Fatal(err)
	}
	os.WriteFile(p.ConfigPath(), []byte("pacemaker.max.keys: -1\n"), 0o600)
	p.Signal(syscall.SIGHUP)
	if !p.WaitLog("reload rejected", 30*time.Second) {
		t.Fatalf("no rejection logged:\n%s", p.Log())
	}
	if !strings.Contains(p.Log(), "pacemaker.max.keys") {
		t.Fatalf("rejection does not name the key:\n%s", p.Log())
	}
	os.WriteFile(p.ConfigPath(), []byte("pacemaker.max.keys: 1\n"), 0o600)
	p.Signal(syscall.SIGHUP)
	if !p.WaitLog("config reloaded", 30*time.Second) {
		t.Fatalf("no reload logged:\n%s", p.Log())
	}
	if b, ok, err := c.GetPulse(ctx, "/wb/t/w"); err != nil || !ok || string(b) != "x" {
		t.Fatalf("state after reload: %q %v %v", b, ok, err)
	}
	// The new limit applies: a second key is refused.
	if err := c.SendPulse(ctx, "/wb/t/w2", []byte("y")); err == nil {
		t.Fatal("max.keys 1 did not apply after reload")
	}
}

func TestSigtermStopsCleanly(t *testing.T) {
	p := daemon.Start(t, daemon.Options{})
	c := dial(t, p)
	if err := c.SendPulse(context.Background(), "/a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	p.Signal(syscall.SIGTERM)
	if code := p.Wait(15 * time.Second); code != 0 {
		t.Fatalf("exit code %d after SIGTERM\n%s", code, p.Log())
	}
	if !strings.Contains(p.Log(), "msg=stopped") {
		t.Fatalf("no stop logged:\n%s", p.Log())
	}
}

// TestPoolSurvivesKill9: two servers behind the pool, the write server
// killed with SIGKILL mid-run: no heartbeat write fails and reads merge.
func TestPoolSurvivesKill9(t *testing.T) {
	p1 := daemon.Start(t, daemon.Options{})
	p2 := daemon.Start(t, daemon.Options{})
	byAddr := map[string]*daemon.Proc{p1.Addr(): p1, p2.Addr(): p2}
	pool := client.NewPool([]string{p1.Addr(), p2.Addr()}, client.Options{DialTimeout: 2 * time.Second})
	defer pool.Close()
	ctx := context.Background()
	var failed atomic.Int64
	var wg sync.WaitGroup
	const workers, beats = 8, 60
	killed := make(chan struct{})
	for w := range workers {
		wg.Go(func() {
			for i := range beats {
				if w == 0 && i == beats/3 {
					byAddr[pool.Addrs()[0]].Signal(syscall.SIGKILL)
					close(killed)
				}
				if err := pool.SendPulse(ctx, fmt.Sprintf("/workerbeats/t/w%d", w), []byte(fmt.Sprint(i))); err != nil {
					failed.Add(1)
					t.Logf("worker %d beat %d: %v", w, i, err)
				}
				time.Sleep(2 * time.Millisecond)
			}
		})
	}
	wg.Wait()
	<-killed
	if n := failed.Load(); n != 0 {
		t.Fatalf("%d heartbeat writes failed", n)
	}
	names, err := pool.Children(ctx, "/workerbeats/t")
	if err != nil || len(names) != workers {
		t.Fatalf("merged listing %q, %v", names, err)
	}
}

func pathReq(t int32, path string) *wire.Message {
	return &wire.Message{Type: wire.MessageType(t), Field: wire.FieldPath, Path: path}
}
