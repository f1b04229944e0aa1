package logging

import (
	"cmp"
	"context"
	"hash/maphash"
	"log/slog"
	"slices"
	"strings"
	"sync"
	"time"
)

// Limiter rate-limits warnings that a client can trigger at will (a
// malformed frame, a refused write, a timeout): each (peer, kind) may log
// PerKey lines per Window, and all peers together Total lines; the lines
// held back are counted, and once per Window at most ReportMax lines say
// "suppressed similar warnings" with the counts (one per peer and kind,
// the largest first, and one for the rest).
//
// The attacker decides how many peers and kinds there are, so the table
// has a fixed number of slots: a (peer, kind) whose slot another one takes
// over hands its count to the rest line. Memory stays Slots entries
// whatever happens, and the log at most Total + ReportMax + 1 lines per
// Window.
type Limiter struct {
	log *slog.Logger
	cfg LimitConfig
	now func() time.Time // replaceable in tests

	mu          sync.Mutex
	seed        maphash.Seed
	slots       []limitSlot
	windowStart time.Time // of the Total budget
	passed      int       // lines passed in this window, all peers
	orphaned    int       // suppressed lines whose slot was taken over
	orphans     int       // pairs they came from
	reportDue   bool      // a report is scheduled
}

// LimitConfig sizes a Limiter; zero fields take the defaults.
type LimitConfig struct {
	Window    time.Duration // default 10 s
	PerKey    int           // lines per (peer, kind) per window; default 5
	Total     int           // lines per window over all peers; default 100
	Slots     int           // (peer, kind) pairs tracked; default 1024
	ReportMax int           // per-pair report lines per window; default 10
}

type limitSlot struct {
	peer, kind string
	start      time.Time // of this pair's window
	passed     int
	suppressed int // since the last report
}

// NewLimiter returns a Limiter that logs to log.
func NewLimiter(log *slog.Logger, cfg LimitConfig) *Limiter {
	if cfg.Window <= 0 {
		cfg.Window = 10 * time.Second
	}
	if cfg.PerKey <= 0 {
		cfg.PerKey = 5
	}
	if cfg.Total <= 0 {
		cfg.Total = 100
	}
	if cfg.Slots <= 0 {
		cfg.Slots = 1024
	}
	if cfg.ReportMax <= 0 {
		cfg.ReportMax = 10
	}
	return &Limiter{log: log, cfg: cfg, now: time.Now, seed: maphash.MakeSeed(), slots: make([]limitSlot, cfg.Slots)}
}

// Warn logs msg with args at WARN unless peer has logged too many lines of
// this kind (a short, fixed string) lately; then it only counts it.
func (l *Limiter) Warn(peer, kind, msg string, args ...any) {
	l.Log(slog.LevelWarn, peer, kind, msg, args...)
}

// Log is Warn at another level. Lines below the logger's level are neither
// logged nor counted.
func (l *Limiter) Log(level slog.Level, peer, kind, msg string, args ...any) {
	if l.log.Enabled(context.Background(), level) && l.Allow(peer, kind) {
		l.log.Log(context.Background(), level, msg, args...)
	}
}

// Allow reports whether a line of kind about peer may be logged now, and
// counts it as suppressed when not.
func (l *Limiter) Allow(peer, kind string) bool {
	now := l.now()
	l.mu.Lock()
	defer l.mu.Unlock()
	if now.Sub(l.windowStart) >= l.cfg.Window {
		l.windowStart, l.passed = now, 0
	}
	var h maphash.Hash
	h.SetSeed(l.seed)
	h.WriteString(peer)
	h.WriteByte(0)
	h.WriteString(kind)
	s := &l.slots[h.Sum64()%uint64(len(l.slots))]
	switch {
	case s.peer != peer || s.kind != kind:
		if s.suppressed > 0 {
			l.orphaned += s.suppressed
			l.orphans++
		}
		// Cloned: peer may alias a buffer its caller reuses.
		*s = limitSlot{peer: strings.Clone(peer), kind: kind, start: now}
	case now.Sub(s.start) >= l.cfg.Window:
		s.start, s.passed = now, 0
	}
	if s.passed < l.cfg.PerKey && l.passed < l.cfg.Total {
		s.passed++
		l.passed++
		return true
	}
	s.suppressed++
	if !l.reportDue {
		l.reportDue = true
		time.AfterFunc(l.cfg.Window, l.report)
	}
	return false
}

// report logs what was suppressed since the last report.
func (l *Limiter) report() {
	type count struct {
		peer, kind string
		n          int
	}
	l.mu.Lock()
	var counts []count
	for i := range l.slots {
		if s := &l.slots[i]; s.suppressed > 0 {
			counts = append(counts, count{s.peer, s.kind, s.suppressed})
			s.suppressed = 0
		}
	}
	rest, restPairs := l.orphaned, l.orphans
	l.orphaned, l.orphans = 0, 0
	l.reportDue = false
	l.mu.Unlock()

	slices.SortFunc(counts, func(a, b count) int {
		return cmp.Or(b.n-a.n, strings.Compare(a.peer, b.peer), strings.Compare(a.kind, b.kind))
	})
	if len(counts) > l.cfg.ReportMax {
		for _, c := range counts[l.cfg.ReportMax:] {
			rest += c.n
			restPairs++
		}
		counts = counts[:l.cfg.ReportMax]
	}
	window := l.cfg.Window.String()
	for _, c := range counts {
		l.log.Warn("suppressed similar warnings", "peer", c.peer, "kind", c.kind, "suppressed", c.n, "window", window)
	}
	if rest > 0 {
		l.log.Warn("suppressed similar warnings from other peers", "suppressed", rest, "pairs", restPairs, "window", window)
	}
}

// Flush logs the pending report now (at shutdown, and for tests).
func (l *Limiter) Flush() { l.report() }
