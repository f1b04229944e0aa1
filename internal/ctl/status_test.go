package ctl

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/server"
	"github.com/storm-pacemaker/pacemaker/internal/status"
	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/stormhb"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// serve runs a real server on loopback for the test's lifetime.
func serve(t *testing.T) string {
	t.Helper()
	srv := server.New(store.New(store.Limits{}), slog.New(slog.DiscardHandler), server.Settings{Method: auth.None,
		MaxFrame: wire.DefaultMaxFrame, FrameTimeout: 30 * time.Second, HandshakeTimeout: 30 * time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return ln.Addr().String()
}

func closedPort(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	return addr
}

func TestStatusCommand(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	statusNow = func() time.Time { return now }
	t.Cleanup(func() { statusNow = time.Now })

	a, b := serve(t), serve(t)
	ctx := context.Background()
	put := func(addr, key string, agoSecs int64) {
		t.Helper()
		c, err := client.Dial(ctx, addr, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		hb := stormhb.Encode(stormhb.Heartbeat{StormID: "t-1-1", TimeSecs: now.Unix() - agoSecs, UptimeSecs: 9}, 3)
		if err := c.SendPulse(ctx, key, hb); err != nil {
			t.Fatal(err)
		}
	}
	put(a, "/workerbeats/t-1-1/sup-a-6700", 5)
	put(b, "/workerbeats/t-1-1/sup-b-6700", 45)

	stormYAML := filepath.Join(t.TempDir(), "storm.yaml")
	if err := os.WriteFile(stormYAML, []byte("pacemaker.servers: [\""+a+"\", \""+b+"\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PACEMAKER_SERVERS", "")
	t.Setenv("NO_COLOR", "")

	tests := []struct {
		name string
		args []string
		code int
		out  []string // substrings of stdout
		err  string   // substring of stderr
	}{
		{"stale worker exits 1", []string{"--servers", a + "," + b, "status"}, ExitFalse,
			[]string{"sup-b-6700  45s", "2 server(s), 0 failed; 1 topologies, 2 workers, 1 stale"}, ""},
		{"threshold above the age exits 0", []string{"--servers", a + "," + b, "status", "--stale", "1m"}, ExitOK,
			[]string{"0 stale"}, ""},
		{"servers from storm.yaml", []string{"--storm-config", stormYAML, "status", "--stale", "1m", "--all"}, ExitOK,
			[]string{"All workers", "sup-a-6700"}, ""},
		{"one server down exits 4", []string{"--servers", a + "," + closedPort(t), "status", "--stale", "1m"}, ExitPartial,
			[]string{"down", "connection refused"}, ""},
		{"json", []string{"--servers", b, "status", "--json"}, ExitFalse, []string{`"stale_workers": 1`}, ""},
		{"stale must be positive", []string{"--servers", a, "status", "--stale", "0s"}, ExitUsage, nil, "usage: pacemakerctl status"},
		{"no arguments", []string{"--servers", a, "status", "extra"}, ExitUsage, nil, "usage"},
		{"bad colour", []string{"--servers", a, "status", "--color", "sometimes"}, ExitUsage, nil, "--color"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var stdout, stderr bytes.Buffer
			code := Main(tc.args, strings.NewReader(""), &stdout, &stderr)
			if code != tc.code {
				t.Fatalf("exit %d, want %d\nstdout:\n%s\nstderr:\n%s", code, tc.code, stdout.String(), stderr.String())
			}
			for _, s := range tc.out {
				if !strings.Contains(stdout.String(), s) {
					t.Errorf("stdout lacks %q:\n%s", s, stdout.String())
				}
			}
			if !strings.Contains(stderr.String(), tc.err) {
				t.Errorf("stderr lacks %q:\n%s", tc.err, stderr.String())
			}
			if strings.Contains(stdout.String(), "\x1b[") {
				t.Errorf("colour on a non-terminal:\n%q", stdout.String())
			}
		})
	}

	var stdout bytes.Buffer
	Main([]string{"--servers", a, "status", "--json"}, strings.NewReader(""), &stdout, &bytes.Buffer{})
	var r status.Report
	if err := json.Unmarshal(stdout.Bytes(), &r); err != nil {
		t.Fatalf("--json: %v\n%s", err, stdout.String())
	}
	if !r.Now.Equal(now) || r.StaleSecs != 30 || len(r.Servers) != 1 || r.Servers[0].Keys != 1 {
		t.Errorf("report = %+v", r)
	}
}

func TestNewerHeartbeatIsStorms(t *testing.T) {
	older := stormhb.Encode(stormhb.Heartbeat{StormID: "t", TimeSecs: 10}, 1)
	newer := stormhb.Encode(stormhb.Heartbeat{StormID: "t", TimeSecs: 11}, 1, stormhb.WithCompression(stormhb.Zstd))
	if !NewerHeartbeat(newer, older) || NewerHeartbeat(older, newer) || NewerHeartbeat([]byte("junk"), older) {
		t.Fatal("NewerHeartbeat does not order by time_secs")
	}
}
