package main

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// syscallGroups sum perf's per-call tracepoints into the table's columns;
// "other" is the total (raw_syscalls:sys_enter) less all of them.
var syscallGroups = []struct {
	name  string
	calls []string
}{
	{"read", []string{"read", "readv", "recvfrom", "recvmsg"}},
	{"write", []string{"write", "writev", "sendto", "sendmsg"}},
	{"epoll", []string{"epoll_wait", "epoll_pwait", "epoll_pwait2", "epoll_ctl"}},
	{"futex", []string{"futex"}},
	{"sleep", []string{"nanosleep", "clock_nanosleep"}},
	{"io_uring", []string{"io_uring_enter"}},
}

// syscallCount is one server's count: calls by group per answer.
type syscallCount struct {
	target  string
	answers float64
	total   float64            // all system calls
	groups  map[string]float64 // by syscallGroups name
}

func (c syscallCount) perAnswer(v float64) float64 { return v / max(c.answers, 1) }

// parsePerf reads `perf stat -x,` output (count,unit,event,…) and the
// generator's "pacemaker-bench: answered N" lines bench/run.sh appends
// (printed as counting began and ended): counts per event, and the
// answers given between the first and the last line.
func parsePerf(text string) (events map[string]float64, answers float64) {
	events = map[string]float64{}
	var seen []float64
	for _, line := range strings.Split(text, "\n") {
		if rest, ok := strings.CutPrefix(line, "pacemaker-bench: answered "); ok {
			if v, err := strconv.ParseFloat(strings.TrimSpace(rest), 64); err == nil {
				seen = append(seen, v)
			}
			continue
		}
		f := strings.Split(strings.TrimSpace(line), ",")
		if len(f) < 3 || !strings.Contains(f[2], ":") {
			continue
		}
		v, err := strconv.ParseFloat(f[0], 64)
		if err != nil {
			continue // "<not counted>"
		}
		events[strings.TrimPrefix(strings.TrimPrefix(f[2], "syscalls:sys_enter_"), "raw_syscalls:")] += v
	}
	if len(seen) >= 2 {
		answers = seen[len(seen)-1] - seen[0]
	}
	return events, answers
}

// syscallCounts are the counts of the syscalls phase, one per server.
func syscallCounts(in string) []syscallCount {
	var out []syscallCount
	for _, t := range targets {
		b, err := os.ReadFile(filepath.Join(in, "syscalls-"+t+".perf"))
		if err != nil {
			continue
		}
		ev, answers := parsePerf(string(b))
		if answers <= 0 || ev["sys_enter"] == 0 {
			continue
		}
		c := syscallCount{target: t, answers: answers, total: ev["sys_enter"], groups: map[string]float64{}}
		for _, g := range syscallGroups {
			for _, call := range g.calls {
				c.groups[g.name] += ev[call]
			}
		}
		out = append(out, c)
	}
	return out
}

func writeSyscalls(w func(string, ...any), in string) {
	counts := syscallCounts(in)
	if len(counts) == 0 {
		return
	}
	w("## System calls per answer\n\n")
	w("Counted by the kernel: perf's syscall tracepoints on the server's threads (`perf stat -e raw_syscalls:sys_enter,syscalls:sys_enter_… -p PID`)\n")
	w("for 4 s in the middle of a 64-connection, 4 KiB closed-loop run of each server (one request in flight per\n")
	w("connection). perf's workload signals the generator as counting begins and ends, and the generator prints its\n")
	w("answers so far each time: *answers* are those of exactly the counted interval. Tracepoints slow a server, so\n")
	w("the rates of this run are not shown. *read* is read, readv, recvfrom and recvmsg; *write*\n")
	w("write, writev, sendto and sendmsg; *epoll* epoll_wait, epoll_pwait(2) and epoll_ctl; *sleep* nanosleep and\n")
	w("clock_nanosleep; *other* every other system call (all of them are in *total*).\n\n")
	w("| server | answers counted | read | write | epoll | futex | sleep | io_uring | other | **total** |\n|---|---|---|---|---|---|---|---|---|---|\n")
	for _, c := range counts {
		w("| %s | %s |", targetTitle[c.target], thousands(c.answers))
		rest := c.total
		for _, g := range syscallGroups {
			w(" %.2f |", c.perAnswer(c.groups[g.name]))
			rest -= c.groups[g.name]
		}
		w(" %.2f | **%.2f** |\n", c.perAnswer(rest), c.perAnswer(c.total))
	}
	w("\n")
}

// syscallSummary is "pacemaker 2.07, redis 2.03" for the targets table.
func syscallSummary(in string) string {
	var parts []string
	for _, c := range syscallCounts(in) {
		parts = append(parts, fmt.Sprintf("%s **%.2f**", c.target, c.perAnswer(c.total)))
	}
	return strings.Join(parts, ", ")
}
