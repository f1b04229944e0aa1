package benchcmd_test

import (
	"bytes"
	"encoding/json"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/bench"
	"github.com/storm-pacemaker/pacemaker/internal/benchcmd"
	"github.com/storm-pacemaker/pacemaker/internal/ctl"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
)

// pacemaker-bench end to end: flags, DIGEST for the Nimbus reader from
// the JAAS file, JSON on stdout and in --out.
func TestBenchCommand(t *testing.T) {
	jaas := "PacemakerDigest {\n   username=\"bench\"\n   password=\"bench-secret\";\n};\n"
	p := daemon.Start(t, daemon.Options{
		Config:   "pacemaker.auth.method: DIGEST\njava.security.auth.login.config: {{dir}}/jaas.conf\n",
		Files:    map[string]string{"jaas.conf": jaas},
		LogLevel: "warn",
	})
	dir := t.TempDir()
	jaasPath := filepath.Join(dir, "jaas.conf")
	if err := os.WriteFile(jaasPath, []byte(jaas), 0o600); err != nil {
		t.Fatal(err)
	}
	out := filepath.Join(dir, "result.json")
	var stdout, stderr bytes.Buffer
	code := benchcmd.Main([]string{"--servers", p.Addr(), "--auth", "DIGEST", "--jaas", jaasPath,
		"--mode", "storm", "--supervisors", "3", "--workers", "2", "--topology-workers", "3", "--executors", "2",
		"--period", "200ms", "--nimbus-period", "300ms", "--warmup", "300ms", "--duration", "700ms",
		"--pid", strconv.Itoa(p.PID()), "--json", "--out", out, "--label", "cli"}, &stdout, &stderr)
	if code != ctl.ExitOK {
		t.Fatalf("exit %d\n%s", code, stderr.String())
	}
	var r bench.Result
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("stdout is not a JSON result: %v\n%s", err, stdout.String())
	}
	if r.Label != "cli" || r.Mode != "storm" || r.Target != "pacemaker" || r.Writes.Completed == 0 || r.Server == nil {
		t.Fatalf("result: %+v", r)
	}
	if r.Nimbus == nil || r.Nimbus.WorkersFound != 6 {
		t.Fatalf("nimbus did not read the heartbeats with DIGEST: %+v", r.Nimbus)
	}
	saved, err := os.ReadFile(out)
	if err != nil || !bytes.Equal(saved, stdout.Bytes()) {
		t.Fatalf("--out file differs from stdout (%v)", err)
	}

	// The text summary.
	stdout.Reset()
	code = benchcmd.Main([]string{"--servers", p.Addr(), "--mode", "load", "--conns", "2", "--keys", "10",
		"--value-size", "0", "--executors", "2", "--warmup", "100ms", "--duration", "300ms"}, &stdout, &stderr)
	if code != ctl.ExitOK || !strings.Contains(stdout.String(), "pacemaker load: 2 connections, 10 keys") {
		t.Fatalf("exit %d, summary:\n%s\n%s", code, stdout.String(), stderr.String())
	}
}

func TestBenchCommandUsage(t *testing.T) {
	tests := []struct {
		name string
		args []string
		want string
	}{
		{"unknown mode", []string{"--mode", "fast"}, "unknown --mode"},
		{"unknown target", []string{"--target", "etcd"}, "unknown target"},
		{"pid with two servers", []string{"--servers", "127.0.0.1:1,127.0.0.1:2", "--pid", "1"}, "one server"},
		{"bad compression", []string{"--compression", "lz4"}, "--compression"},
		{"stray argument", []string{"extra"}, "unexpected argument"},
		{"unknown flag", []string{"--fast"}, "--fast"},
		{"missing JAAS file", []string{"--auth", "DIGEST", "--jaas", "/nonexistent/jaas.conf"}, "/nonexistent/jaas.conf"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			if code := benchcmd.Main(tt.args, &stdout, &stderr); code != ctl.ExitUsage {
				t.Fatalf("exit %d, want %d\n%s", code, ctl.ExitUsage, stderr.String())
			}
			if !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("stderr %q lacks %q", stderr.String(), tt.want)
			}
		})
	}
}

// pacemakerctl no longer carries the load generator.
func TestPacemakerctlHasNoBench(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := ctl.Main([]string{"bench"}, nil, &stdout, &stderr); code != ctl.ExitUsage || !strings.Contains(stderr.String(), "unknown command") {
		t.Fatalf("pacemakerctl bench: exit %d, %s", code, stderr.String())
	}
}

func TestHelpOnStdout(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := benchcmd.Main([]string{"--help"}, &stdout, &stderr); code != ctl.ExitOK || stderr.Len() > 0 ||
		!strings.Contains(stdout.String(), "  --mode VALUE") || !strings.Contains(stdout.String(), "  --servers HOST:PORT") {
		t.Fatalf("--help: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
}
