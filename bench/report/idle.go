package main

import (
	"fmt"

	"github.com/storm-pacemaker/pacemaker/internal/bench"
)

// idleTarget is the bound on a served, idle connection's RSS.
const idleTarget = 4096

func idle(rs results, t string) *bench.IdleStats {
	if r := rs["idle-"+t]; r != nil {
		return r.Idle
	}
	return nil
}

func writeIdle(w func(string, ...any), rs results) {
	pm := idle(rs, "pacemaker")
	if pm == nil {
		return
	}
	w("## Memory per idle connection\n\n")
	w("A fresh server answers one 4 KiB write; %.0f s later its `VmRSS` and `RssAnon` (anonymous memory: heap and\n", pm.BaselineSeconds)
	w("stacks, no file pages) are read from /proc. Then %s connections, from %d loopback source addresses (127.1.x.y,\n", thousands(float64(pm.Conns)), pm.Sources)
	w("100 each), each send one 4 KiB SEND_PULSE (redis: SET) to that same key, so the store does not grow, read the\n")
	w("answer and stay open, idle; %.0f s after the last answer the memory is read again. Per connection = (after −\n", pm.SettleSeconds)
	w("before) / connections.")
	if pm.SettleSeconds > 120 {
		w(" The wait is longer than the two minutes after which Go's runtime forces a garbage\n")
		w("collection, so what opening the connections left behind has been collected at least once.")
	}
	w("\nRSS holds the process's own memory only: the kernel's socket structures and buffers are outside it\n")
	w("(the kernel's TCP buffer memory, machine-wide, both ends: %s before, %s after).", mibOrDash(pm.KernelTCPBeforeBytes), mibOrDash(pm.KernelTCPAfterBytes))
	if files := machineFileLimit(); files > 0 && files <= 20000+500 {
		w(" %s connections, not 20,000: this\ncontainer caps every process at %s open files (a limit root cannot raise here), and the server and the\ngenerator need a few for themselves.", thousands(float64(pm.Conns)), thousands(float64(files)))
	}
	w("\n\n| server | connections (failed) | VmRSS before → after | **VmRSS per connection** | RssAnon per connection | measured after |\n|---|---|---|---|---|---|\n")
	for _, t := range targets {
		s := idle(rs, t)
		if s == nil {
			continue
		}
		w("| %s | %s (%d) | %s → %s | **%s B** | %s B | %.0f s |\n", targetTitle[t], thousands(float64(s.Conns)), s.Failed,
			mib(s.RSSBeforeBytes), mib(s.RSSAfterBytes), thousands(s.PerConnBytes), thousands(s.PerConnAnonBytes), s.SettleSeconds)
	}
	w("\n")
}

func mibOrDash(b int64) string {
	if b < 0 {
		return "–"
	}
	return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20))
}
