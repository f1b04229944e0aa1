package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/bench"
)

func TestParsePerf(t *testing.T) {
	text := `pacemaker-bench: answered 1000
# started on …
812345,,raw_syscalls:sys_enter,4001234567,100.00,,
200000,,syscalls:sys_enter_read,4001234567,100.00,,
<not counted>,,syscalls:sys_enter_readv,0,100.00,,
200100,,syscalls:sys_enter_write,4001234567,100.00,,
pacemaker-bench: answered 201000
`
	ev, answers := parsePerf(text)
	if answers != 200000 || ev["sys_enter"] != 812345 || ev["read"] != 200000 || ev["write"] != 200100 {
		t.Fatalf("events %v, answers %v", ev, answers)
	}
	if _, ok := ev["readv"]; ok {
		t.Fatal("a counter perf did not count was read as a number")
	}
	if _, answers := parsePerf("5,,raw_syscalls:sys_enter\npacemaker-bench: answered 7\n"); answers != 0 {
		t.Fatalf("one answered line: %v answers", answers)
	}
}

func TestSyscallTable(t *testing.T) {
	dir := t.TempDir()
	perf := "400,,raw_syscalls:sys_enter\n100,,syscalls:sys_enter_recvmsg\n100,,syscalls:sys_enter_write\n10,,syscalls:sys_enter_epoll_pwait\n" +
		"pacemaker-bench: answered 50\npacemaker-bench: answered 150\n"
	if err := os.WriteFile(filepath.Join(dir, "syscalls-pacemaker.perf"), []byte(perf), 0o644); err != nil {
		t.Fatal(err)
	}
	var b strings.Builder
	writeSyscalls(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }, dir)
	// 100 answers: 1 read, 1 write, 0.1 epoll, 1.9 other, 4 in all.
	if !strings.Contains(b.String(), "| pacemaker (this project) | 100 | 1.00 | 1.00 | 0.10 | 0.00 | 0.00 | 0.00 | 1.90 | **4.00** |") {
		t.Fatalf("table:\n%s", b.String())
	}
	if got := syscallSummary(dir); got != "pacemaker **4.00**" {
		t.Fatalf("summary %q", got)
	}
}

func TestUpdateReadme(t *testing.T) {
	path := filepath.Join(t.TempDir(), "README.md")
	text := "# x\n\nbefore\n\n" + readmeBegin + "\nold figures\n" + readmeEnd + "\n\nafter\n"
	if err := os.WriteFile(path, []byte(text), 0o644); err != nil {
		t.Fatal(err)
	}
	rs := results{"storm270-pacemaker": {Server: &bench.ServerUsage{CPUPercent: 2.5, MaxRSSBytes: 30 << 20}}}
	if err := updateReadme(path, rs, t.TempDir(), map[string]string{"date": "2026-12-06 10:30 UTC", "cpus": "2"}); err != nil {
		t.Fatal(err)
	}
	got, _ := os.ReadFile(path)
	want := "# x\n\nbefore\n\n" + readmeBegin + "\nMeasured by `make bench` on 2026-12-06 10:30 UTC, on 2 cores shared with the load generator\n" +
		"([docs/BENCHMARKS.md](docs/BENCHMARKS.md)):\n\n" +
		"- a 270-supervisor Storm cluster in 2.5 % of one core and 30 MiB (Storm's Java daemon: 70 %, ~1 GiB).\n\n" +
		readmeEnd + "\n\nafter\n"
	if string(got) != want {
		t.Fatalf("README:\n%s\nwant:\n%s", got, want)
	}
	if err := os.WriteFile(path, []byte("no markers\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := updateReadme(path, rs, t.TempDir(), nil); err == nil {
		t.Fatal("README without markers: no error")
	}
}

func TestLatencyTarget(t *testing.T) {
	run := func(p99, achieved float64) *bench.Result {
		return &bench.Result{Writes: &bench.OpStats{Offered: latencyRate, Achieved: achieved, Latency: bench.Latency{P50: 0.5, P99: p99}}}
	}
	for _, tc := range []struct {
		name string
		rs   results
		want string
	}{
		{"none", results{}, "not measured"},
		{"met over two rounds", results{
			"sweep-pacemaker-40000": run(3, 40000), "sweep-redis-40000": run(2, 40000),
			"latency-2-pacemaker": run(1, 40000), "latency-2-redis": run(4, 40000),
		}, "round 2: pacemaker p99 **1.00 ms** (p50 0.50 ms, 40,000/s achieved) vs redis p99 **4.00 ms** (p50 0.50 ms, 40,000/s achieved); mean 2.00 ms vs 3.00 ms | met |"},
		{"slower", results{"sweep-pacemaker-40000": run(4, 40000), "sweep-redis-40000": run(2, 40000)}, "| **missed** by 50 % |"},
		{"not carried", results{"sweep-pacemaker-40000": run(1, 30000), "sweep-redis-40000": run(2, 40000)}, "| **missed** |"},
	} {
		var b strings.Builder
		writeLatencyTarget(func(f string, a ...any) { fmt.Fprintf(&b, f, a...) }, tc.rs)
		if !strings.Contains(b.String(), tc.want) {
			t.Errorf("%s: %s\nwant %q", tc.name, b.String(), tc.want)
		}
	}
}
