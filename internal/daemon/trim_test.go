package daemon

import "testing"

func TestTrimmerObserve(t *testing.T) {
	const mib = 1 << 20
	tests := []struct {
		name   string
		stored []int64 // successive observations
		want   []bool
		peaks  []int64 // the store's high-water mark in each window; nil: stored
	}{
		{"growing never trims", []int64{0, 100 * mib, 1000 * mib}, []bool{false, false, false}, nil},
		{"small drop is left to the runtime", []int64{100 * mib, 50 * mib}, []bool{false, false}, nil},
		{"a quarter of a big peak, once the fall stops", []int64{1000 * mib, 760 * mib, 750 * mib, 748 * mib}, []bool{false, false, false, true}, nil},
		{"a drop still under way waits", []int64{1000 * mib, 700 * mib, 400 * mib, 100 * mib, 0, 0}, []bool{false, false, false, false, false, true}, nil},
		{"under a quarter", []int64{1000 * mib, 800 * mib}, []bool{false, false}, nil},
		{"one trim per drop", []int64{1000 * mib, 100 * mib, 100 * mib, 100 * mib, 95 * mib}, []bool{false, false, true, false, false}, nil},
		{"a new peak after a trim", []int64{1000 * mib, 100 * mib, 100 * mib, 900 * mib, 200 * mib, 200 * mib}, []bool{false, false, true, false, false, true}, nil},
		{"everything deleted", []int64{256 * mib, 0, 0}, []bool{false, false, true}, nil},
		{"a fill and a delete between two samples", []int64{0, 0, 0}, []bool{false, false, true}, []int64{0, 500 * mib, 0}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var tr trimmer
			for i, s := range tt.stored {
				peak := s
				if tt.peaks != nil {
					peak = tt.peaks[i]
				}
				if got := tr.observe(s, peak); got != tt.want[i] {
					t.Errorf("observation %d (%d MiB): trim = %v, want %v", i, s/mib, got, tt.want[i])
				}
			}
		})
	}
}
