package daemon

import (
	"bytes"
	"log/slog"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/storm-pacemaker/pacemaker/internal/config"
)

// TestWarnFileLimit lowers this process's own RLIMIT_NOFILE to 256 for the
// test: the warning comes when the budget (connections, the loopback
// reserve, the metrics port's cap, a margin) does not fit.
func TestWarnFileLimit(t *testing.T) {
	var saved unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &saved); err != nil {
		t.Fatal(err)
	}
	if saved.Max < 256 {
		t.Skipf("SKIPPED: hard RLIMIT_NOFILE %d is below the 256 this test sets", saved.Max)
	}
	if err := unix.Setrlimit(unix.RLIMIT_NOFILE, &unix.Rlimit{Cur: 256, Max: saved.Max}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Setrlimit(unix.RLIMIT_NOFILE, &saved) })
	tests := []struct {
		name          string
		maxConns      int
		metricsListen string
		warn          bool
	}{
		{"fits", 100, "", false},                             // 100+16+64 = 180
		{"metrics cap tips it", 150, "127.0.0.1:9100", true}, // 150+16+64+64 = 294
		{"too many connections", 25000, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			warnFileLimit(&config.Config{Settings: config.Settings{MaxConns: tt.maxConns, MetricsListen: tt.metricsListen}}, slog.New(slog.NewTextHandler(&out, nil)))
			if got := strings.Contains(out.String(), "RLIMIT_NOFILE"); got != tt.warn {
				t.Errorf("warned %v, want %v: %s", got, tt.warn, out.String())
			}
			if tt.warn && !strings.Contains(out.String(), "limit=256") {
				t.Errorf("the warning does not state the limit: %s", out.String())
			}
		})
	}
}
