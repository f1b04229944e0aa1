package procmem

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"
)

func TestRSSFrom(t *testing.T) {
	tests := []struct {
		name    string
		status  string
		want    int64
		wantErr string
	}{
		{"kB", "Name:\tpacemaker\nVmPeak:\t  20000 kB\nVmRSS:\t    1234 kB\nVmHWM:\t 5000 kB\n", 1234 << 10, ""},
		{"no line", "Name:\tkthreadd\nState:\tS (sleeping)\n", 0, "no VmRSS line"},
		{"garbage", "VmRSS:\tlots kB\n", 0, "VmRSS line"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "status")
			if err := os.WriteFile(path, []byte(tt.status), 0o600); err != nil {
				t.Fatal(err)
			}
			got, err := rssFrom(path)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("rssFrom = %d, %v; want an error with %q", got, err, tt.wantErr)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("rssFrom = %d, %v; want %d", got, err, tt.want)
			}
		})
	}
}

// TestWatchSeesGrowth: the peak covers memory this process touches while
// it is watched (mapped outside Go's heap, so no page freed by an earlier
// test is reused).
func TestWatchSeesGrowth(t *testing.T) {
	const size = 64 << 20
	before := MustRSS(t, os.Getpid())
	w := Watch(t, os.Getpid(), 5*time.Millisecond)
	mem, err := syscall.Mmap(-1, 0, size, syscall.PROT_READ|syscall.PROT_WRITE, syscall.MAP_ANON|syscall.MAP_PRIVATE)
	if err != nil {
		t.Fatal(err)
	}
	defer syscall.Munmap(mem)
	for i := 0; i < size; i += 4096 {
		mem[i] = 1
	}
	time.Sleep(50 * time.Millisecond)
	if peak := w.Finish(); peak < before+size/2 {
		t.Errorf("peak %d B after touching %d MiB; RSS before %d B", peak, size>>20, before)
	}
}

func TestRSSOfMissingProcess(t *testing.T) {
	if _, err := RSS(-1); err == nil {
		t.Fatal("RSS(-1) succeeded")
	}
}
