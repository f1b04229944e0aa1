package logging

import (
	"bytes"
	"fmt"
	"log/slog"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/syncbuf"
)

type limitEvent struct {
	at   time.Duration // since the start
	peer string
	kind string
}

func TestLimiter(t *testing.T) {
	// Slots: many, so that a hash collision (the seed is random) is
	// unlikely but for the case about it.
	cfg := LimitConfig{Window: 10 * time.Second, PerKey: 2, Total: 5, Slots: 1 << 16, ReportMax: 2}
	repeat := func(n int, at time.Duration, peer, kind string) []limitEvent {
		var ev []limitEvent
		for range n {
			ev = append(ev, limitEvent{at, peer, kind})
		}
		return ev
	}
	tests := []struct {
		name       string
		events     []limitEvent
		wantPassed int
		// wantReport are substrings of the report's lines, in order.
		wantReport []string
	}{
		{"a few lines pass", repeat(2, 0, "10.0.0.1", "malformed frame"), 2, nil},
		{"per peer and kind", repeat(7, 0, "10.0.0.1", "malformed frame"), 2,
			[]string{`peer=10.0.0.1 kind="malformed frame" suppressed=5`}},
		{"kinds are apart", append(repeat(3, 0, "10.0.0.1", "a"), repeat(3, 0, "10.0.0.1", "b")...), 4,
			[]string{"kind=a suppressed=1", "kind=b suppressed=1"}},
		{"a new window", append(repeat(3, 0, "p", "k"), repeat(3, 11*time.Second, "p", "k")...), 4,
			[]string{"suppressed=2"}},
		{"total over all peers", func() []limitEvent {
			var ev []limitEvent
			for i := range 8 {
				ev = append(ev, limitEvent{0, fmt.Sprint("peer-", i), "k"})
			}
			return ev
		}(), 5, []string{"suppressed=1", "suppressed=1", "from other peers\" suppressed=1 pairs=1"}},
		{"more pairs than slots (8)", func() []limitEvent {
			var ev []limitEvent
			for i := range 1000 {
				ev = append(ev, repeat(3, time.Duration(i)*time.Millisecond, fmt.Sprint("peer-", i), "k")...)
			}
			return ev
		}(), 5, []string{"suppressed=", "suppressed=", "from other peers"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var out bytes.Buffer
			cfg := cfg
			if strings.Contains(tt.name, "slots") {
				cfg.Slots = 8
			}
			l := NewLimiter(slog.New(slog.NewTextHandler(&out, nil)), cfg)
			start := time.Now()
			var now time.Time
			l.now = func() time.Time { return now }
			passed := 0
			for _, e := range tt.events {
				now = start.Add(e.at)
				if l.Allow(e.peer, e.kind) {
					passed++
				}
			}
			if passed != tt.wantPassed {
				t.Errorf("%d lines passed, want %d", passed, tt.wantPassed)
			}
			l.Flush()
			lines := strings.Split(strings.TrimSpace(out.String()), "\n")
			if out.Len() == 0 {
				lines = nil
			}
			if len(lines) != len(tt.wantReport) {
				t.Fatalf("report has %d lines, want %d:\n%s", len(lines), len(tt.wantReport), out.String())
			}
			for i, w := range tt.wantReport {
				if !strings.Contains(lines[i], w) {
					t.Errorf("report line %d = %s; want it to contain %s", i, lines[i], w)
				}
			}
			if len(l.slots) != cfg.Slots {
				t.Errorf("the table grew to %d slots", len(l.slots))
			}
		})
	}
}

// TestLimiterConcurrent is for the race detector; the scheduled report
// runs while lines are still counted.
func TestLimiterConcurrent(t *testing.T) {
	var out syncbuf.Buffer
	l := NewLimiter(slog.New(slog.NewTextHandler(&out, nil)), LimitConfig{Window: 5 * time.Millisecond, Slots: 16})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Go(func() {
			for i := range 5000 {
				l.Warn(fmt.Sprint("peer-", (i+w)%40), "k", "warning", "i", i)
			}
		})
	}
	wg.Wait()
	time.Sleep(20 * time.Millisecond)
	l.Flush()
	if n := strings.Count(out.String(), "\n"); n >= 20000 {
		t.Errorf("%d lines for 20000 warnings", n)
	}
}
