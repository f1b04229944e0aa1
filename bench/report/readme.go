package main

import (
	"bytes"
	"fmt"
	"os"
	"strings"
)

// The README's performance lines sit between these markers; make bench
// rewrites them from the same run as docs/BENCHMARKS.md, so the two never
// disagree.
const (
	readmeBegin = "<!-- bench:begin: written by make bench (bench/report/readme.go) from the run in docs/BENCHMARKS.md -->"
	readmeEnd   = "<!-- bench:end -->"
)

// updateReadme replaces the lines between the markers in path.
func updateReadme(path string, rs results, in string, machine map[string]string) error {
	old, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	i, j := bytes.Index(old, []byte(readmeBegin)), bytes.Index(old, []byte(readmeEnd))
	if i < 0 || j < i {
		return fmt.Errorf("%s: no %q … %q block to rewrite", path, readmeBegin, readmeEnd)
	}
	var b bytes.Buffer
	b.Write(old[:i+len(readmeBegin)])
	b.WriteString("\n")
	b.WriteString(readmeLines(rs, in, machine))
	b.Write(old[j:])
	return os.WriteFile(path, b.Bytes(), 0o644)
}

// readmeLines are the run's headline figures, one bullet each.
func readmeLines(rs results, in string, machine map[string]string) string {
	var lines []string
	add := func(format string, args ...any) { lines = append(lines, "- "+fmt.Sprintf(format, args...)) }

	if rounds := closedRounds(rs); len(rounds) > 0 {
		var pm []float64
		for _, m := range rounds {
			if m["pacemaker"] != nil {
				pm = append(pm, m["pacemaker"].Server.OpsPerCPUSecond)
			}
		}
		if len(pm) > 0 {
			s := fmt.Sprintf("**%s writes per server CPU-second** (4 KiB values, 64 connections, one request in flight each)", thousands(mean(pm)))
			rd, inTurn := roundRatios(rounds, "redis")
			// The paired rounds, when run, are the steadier reading: both
			// servers under the same moment's load.
			if r, each := roundRatios(pairedRounds(rs), "redis"); len(each) > 0 {
				s += fmt.Sprintf(": **%.2f × redis-server** measured at the same moment", r)
				if len(inTurn) > 0 {
					s += fmt.Sprintf(" (%.2f × in rounds taken in turn)", rd)
				}
			} else if len(inTurn) > 0 {
				s += fmt.Sprintf(": **%.2f × redis-server**", rd)
			}
			if zk, each := roundRatios(rounds, "zookeeper"); len(each) > 0 {
				s += fmt.Sprintf(", %.1f × ZooKeeper", zk)
			}
			add("%s;", s)
		}
	}
	if rounds := latencyRounds(rs); len(rounds) > 0 {
		var pm, rd []string
		for _, r := range rounds {
			pm, rd = append(pm, ms(r.pm.Latency.P99)), append(rd, ms(r.rd.Latency.P99))
		}
		add("p99 latency at %s writes/s offered: %s (redis-server: %s);", thousands(latencyRate), strings.Join(pm, ", "), strings.Join(rd, ", "))
	}
	if s := idle(rs, "pacemaker"); s != nil {
		line := fmt.Sprintf("**%s bytes of RSS per idle connection** that has served a request (%s connections", thousands(s.PerConnBytes), thousands(float64(s.Conns)))
		if r := idle(rs, "redis"); r != nil {
			line += fmt.Sprintf("; redis-server: %s", thousands(r.PerConnBytes))
		}
		add("%s);", line)
	}
	if counts := syscallCounts(in); len(counts) > 0 {
		var parts []string
		for _, c := range counts {
			parts = append(parts, fmt.Sprintf("%s %.2f", c.target, c.perAnswer(c.total)))
		}
		add("system calls per answer: %s;", strings.Join(parts, ", "))
	}
	if r := rs["storm270-pacemaker"]; r != nil && r.Server != nil {
		add("a 270-supervisor Storm cluster in %.1f %% of one core and %s (Storm's Java daemon: 70 %%, ~1 GiB);", r.Server.CPUPercent, mib(r.Server.MaxRSSBytes))
	}
	if r := rs["max-pacemaker"]; r != nil && r.Max != nil {
		if last := largestPassing(r.Max); last != nil {
			if r.Max.Extrapolated > 0 && fdLimited(r.Max) {
				add("one core carries ≈ %s supervisors × 4 workers, one connection each (extrapolated from %s measured, the most this machine's open-file limit allows);",
					thousands(float64(r.Max.Extrapolated)), thousands(float64(last.Supervisors)))
			} else {
				add("one core carries %s supervisors × %d workers (measured);", thousands(float64(r.Max.MaxSupervisors)), r.Params.WorkersPerSupervisor)
			}
		}
	}
	if f := fill(rs); f != nil && f.RSSBytes > 0 {
		add("%s heartbeats (%s of values) in %s of RSS; listing a %s-worker topology among them: p99 %s;", thousands(float64(f.Keys)), mib(f.PayloadBytes), mib(max(f.RSSBytes, f.RSSIdleBytes)), thousands(float64(f.ListNodes)), ms(f.List.P99))
	}
	if len(lines) == 0 {
		return ""
	}
	// The last bullet ends the sentence.
	last := &lines[len(lines)-1]
	*last = strings.TrimSuffix(*last, ";")
	if !strings.HasSuffix(*last, ".") {
		*last += "."
	}
	return fmt.Sprintf("Measured by `make bench` on %s, on %s cores shared with the load generator\n([docs/BENCHMARKS.md](docs/BENCHMARKS.md)):\n\n%s\n\n",
		orDash(machine["date"]), orDash(machine["cpus"]), strings.Join(lines, "\n"))
}

func mean(v []float64) float64 {
	var s float64
	for _, x := range v {
		s += x
	}
	return s / float64(max(len(v), 1))
}
