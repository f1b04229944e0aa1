package bench

import (
	"time"
)

// Pacing is an open-loop schedule: conns senders, each sending every
// Interval, their phases spread evenly over one interval so the offered load
// is smooth. A send's latency is measured from its scheduled time, not from
// when it actually went out, so a server that stalls is charged for every
// request it delayed (no coordinated omission).
type Pacing struct {
	Conns    int
	Interval time.Duration // per sender; 0 = closed loop (send as soon as answered)
}

// PacingForRate spreads a total offered rate (requests per second) over
// conns senders. rate <= 0 means closed loop.
func PacingForRate(conns int, rate float64) Pacing {
	if rate <= 0 || conns <= 0 {
		return Pacing{Conns: conns}
	}
	return Pacing{Conns: conns, Interval: time.Duration(float64(conns) / rate * float64(time.Second))}
}

// Closed reports whether senders send back to back.
func (p Pacing) Closed() bool { return p.Interval <= 0 }

// Rate is the offered rate in requests per second (0 for closed loop).
func (p Pacing) Rate() float64 {
	if p.Closed() {
		return 0
	}
	return float64(p.Conns) / p.Interval.Seconds()
}

// Phase is sender i's offset of its first send from the start.
func (p Pacing) Phase(i int) time.Duration {
	if p.Closed() || p.Conns == 0 {
		return 0
	}
	return time.Duration(int64(p.Interval) * int64(i) / int64(p.Conns))
}

// Due is when sender i's seq-th send is scheduled, as an offset from the start.
func (p Pacing) Due(i, seq int) time.Duration {
	return p.Phase(i) + time.Duration(seq)*p.Interval
}

// Window is the part of a run whose requests are measured: requests
// scheduled (open loop) or started (closed loop) in [Start, End) count.
type Window struct {
	Start, End time.Duration // offsets from the run's start
}

// Contains reports whether offset t falls in the window.
func (w Window) Contains(t time.Duration) bool { return t >= w.Start && t < w.End }

// Length is the window's duration.
func (w Window) Length() time.Duration { return w.End - w.Start }

// InWindow counts how many of sender i's sends are scheduled inside w: the
// offered load the window should see.
func (p Pacing) InWindow(i int, w Window) int {
	if p.Closed() {
		return 0
	}
	first := p.Phase(i)
	// sends k with first + k*Interval in [w.Start, w.End)
	lo := ceilDiv(w.Start-first, p.Interval)
	hi := ceilDiv(w.End-first, p.Interval)
	lo = max(lo, 0)
	hi = max(hi, 0)
	return int(hi - lo)
}

// ceilDiv is ⌈a/b⌉ for b > 0, correct for negative a.
func ceilDiv(a, b time.Duration) int64 {
	q := int64(a) / int64(b)
	if int64(a)%int64(b) > 0 {
		q++
	}
	return q
}
