package bench

import (
	"testing"
	"time"
)

func TestPacingForRate(t *testing.T) {
	tests := []struct {
		name     string
		conns    int
		rate     float64
		interval time.Duration
		closed   bool
	}{
		{"closed loop", 64, 0, 0, true},
		{"negative rate is closed", 8, -1, 0, true},
		{"storm 2.x cluster", 1080, 360, 3 * time.Second, false},
		{"one conn 1000/s", 1, 1000, time.Millisecond, false},
		{"64 conns 32000/s", 64, 32000, 2 * time.Millisecond, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := PacingForRate(tt.conns, tt.rate)
			if p.Closed() != tt.closed || p.Interval != tt.interval {
				t.Fatalf("PacingForRate(%d, %v) = %+v, want interval %v closed %v", tt.conns, tt.rate, p, tt.interval, tt.closed)
			}
			if !tt.closed {
				if r := p.Rate(); r < tt.rate*0.999 || r > tt.rate*1.001 {
					t.Fatalf("Rate() = %v, want %v", r, tt.rate)
				}
			}
		})
	}
}

func TestPhasesSpreadOverOneInterval(t *testing.T) {
	p := Pacing{Conns: 4, Interval: 3 * time.Second}
	want := []time.Duration{0, 750 * time.Millisecond, 1500 * time.Millisecond, 2250 * time.Millisecond}
	for i, w := range want {
		if got := p.Phase(i); got != w {
			t.Errorf("Phase(%d) = %v, want %v", i, got, w)
		}
	}
	if got := p.Due(1, 2); got != 750*time.Millisecond+6*time.Second {
		t.Errorf("Due(1, 2) = %v", got)
	}
	if got := (Pacing{Conns: 4}).Due(3, 10); got != 0 {
		t.Errorf("closed-loop Due = %v, want 0", got)
	}
}

func TestInWindowMatchesOfferedLoad(t *testing.T) {
	tests := []struct {
		name string
		p    Pacing
		w    Window
		want int
	}{
		{"270 supervisors, 30 s", Pacing{Conns: 1080, Interval: 3 * time.Second}, Window{Start: 5 * time.Second, End: 35 * time.Second}, 1080 * 10},
		{"window shorter than interval", Pacing{Conns: 10, Interval: 10 * time.Second}, Window{Start: 0, End: 5 * time.Second}, 5},
		{"odd rate", PacingForRate(7, 333), Window{Start: time.Second, End: 4 * time.Second}, 999},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			total := 0
			for i := range tt.p.Conns {
				n := tt.p.InWindow(i, tt.w)
				// Cross-check against walking the schedule.
				walk := 0
				for seq := 0; tt.p.Due(i, seq) < tt.w.End; seq++ {
					if tt.w.Contains(tt.p.Due(i, seq)) {
						walk++
					}
				}
				if n != walk {
					t.Fatalf("InWindow(%d) = %d, walking the schedule gives %d", i, n, walk)
				}
				total += n
			}
			if d := total - tt.want; d < -tt.p.Conns || d > tt.p.Conns {
				t.Fatalf("scheduled %d sends in the window, want about %d", total, tt.want)
			}
		})
	}
}

func TestCeilDiv(t *testing.T) {
	tests := []struct{ a, b, want int64 }{{0, 3, 0}, {1, 3, 1}, {3, 3, 1}, {4, 3, 2}, {-1, 3, 0}, {-3, 3, -1}, {-4, 3, -1}}
	for _, tt := range tests {
		if got := ceilDiv(time.Duration(tt.a), time.Duration(tt.b)); got != tt.want {
			t.Errorf("ceilDiv(%d, %d) = %d, want %d", tt.a, tt.b, got, tt.want)
		}
	}
}
