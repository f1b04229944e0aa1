package ctl

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/fakeserver"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

func TestMain(m *testing.M) { os.Exit(daemon.Main(m)) }

// hostileRSSBound is what `pacemakerctl status` may reach against a hostile
// server with the default walk limits ("a few hundred MB"). Measured peaks
// are in the test log.
const hostileRSSBound = 512 << 20

// `pacemakerctl status` (the real binary, default limits) against servers
// that would drive an unbounded walk out of memory: it stops with the
// limit named, exit 3, and its peak RSS stays bounded.
func TestStatusAgainstHostileServers(t *testing.T) {
	ctl := filepath.Join(daemon.Build(t), "pacemakerctl")
	// The most names one frame can carry: 2 M one-byte names fill Storm's
	// 10 MiB frame maximum.
	twoMillion := make([]string, 2_000_000)
	for i := range twoMillion {
		twoMillion[i] = string(rune('a' + i%26))
	}
	tests := []struct {
		name  string
		names func(path string) []string
		want  string
	}{
		{"[a, b] at every level", func(string) []string { return []string{"a", "b"} }, "more than 12 levels of depth (--max-depth raises the limit)"},
		{"2 M names in every directory", func(string) []string { return twoMillion }, "more than 2000000 names (--max-names raises the limit)"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			addr := fakeserver.Start(t, func(req *wire.Message) *wire.Message {
				switch req.Type {
				case wire.GetAllNodesForPath:
					return fakeserver.Nodes(tt.names(req.Path)...)
				case wire.GetPulse:
					return fakeserver.NoPulse(req.Path)
				}
				return nil
			})
			cmd := exec.Command(ctl, "--servers", addr, "status")
			var stderr strings.Builder
			cmd.Stderr = &stderr
			err := cmd.Run()
			code := cmd.ProcessState.ExitCode()
			rss := cmd.ProcessState.SysUsage().(*syscall.Rusage).Maxrss << 10 // KiB
			t.Logf("exit %d, peak RSS %d MiB, stderr: %s", code, rss>>20, strings.TrimSpace(stderr.String()))
			if code != ExitFailure || !strings.Contains(stderr.String(), tt.want) {
				t.Fatalf("exit %d (%v), want %d and %q on stderr", code, err, ExitFailure, tt.want)
			}
			if rss > hostileRSSBound {
				t.Errorf("peak RSS %d MiB, over %d MiB", rss>>20, hostileRSSBound>>20)
			}
		})
	}
}
