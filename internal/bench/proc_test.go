package bench

import (
	"os"
	"strings"
	"testing"
	"time"
)

func TestReadProcFixture(t *testing.T) {
	u, err := readProcAt("testdata/proc", 4242)
	if err != nil {
		t.Fatal(err)
	}
	// utime 1234 + stime 567 ticks of 1/100 s; the command name holds
	// spaces and parentheses.
	if u.CPU != 18010*time.Millisecond {
		t.Errorf("CPU = %v, want 18.01s", u.CPU)
	}
	if u.RSS != 1200000<<10 || u.RSSAnon != 1100000<<10 || u.PeakRSS != 1300000<<10 || u.Threads != 41 {
		t.Errorf("RSS %d anon %d peak %d threads %d", u.RSS, u.RSSAnon, u.PeakRSS, u.Threads)
	}
	if _, err := readProcAt("testdata/proc", 1); err == nil {
		t.Error("missing pid: no error")
	}
}

func TestFileLimit(t *testing.T) {
	if err := checkFileLimit(10); err != nil {
		t.Fatalf("10 connections: %v", err)
	}
	if err := checkFileLimit(1 << 40); err == nil || !strings.Contains(err.Error(), "ulimit") {
		t.Fatalf("2^40 connections: %v", err)
	}
}

func TestReadProcSelf(t *testing.T) {
	u, err := ReadProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if u.RSS <= 0 || u.Threads < 1 {
		t.Fatalf("own process: %+v", u)
	}
	w, err := WatchProc(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	s, err := w.Finish(10)
	if err != nil || s == nil || s.PID != os.Getpid() || s.RSSBytes <= 0 {
		t.Fatalf("Finish: %+v, %v", s, err)
	}
	if none, _ := WatchProc(0); none == nil {
		t.Fatal("WatchProc(0) = nil")
	} else if s, err := none.Finish(1); s != nil || err != nil {
		t.Fatalf("unwatched Finish = %+v, %v", s, err)
	}
}

func TestSockstatTCPMem(t *testing.T) {
	page := int64(os.Getpagesize())
	for _, tc := range []struct {
		in   string
		want int64
	}{
		{"sockets: used 10\nTCP: inuse 1 orphan 0 tw 0 alloc 1 mem 231\nUDP: inuse 0 mem 7\n", 231 * page},
		{"sockets: used 10\nUDP: inuse 0 mem 7\n", -1},
		{"TCP: inuse 1 mem x\n", -1},
	} {
		if got := parseSockstatTCPMem(tc.in); got != tc.want {
			t.Errorf("parseSockstatTCPMem(%q) = %d, want %d", tc.in, got, tc.want)
		}
	}
	if KernelTCPMem() < 0 {
		t.Error("this machine's /proc/net/sockstat: no TCP mem")
	}
}
