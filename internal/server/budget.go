package server

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// buffers accounts for the memory held for I/O beyond each connection's
// fixed share (pacemaker.max.buffered.bytes): frames too large for the
// engine's read buffer while they arrive, answers beyond a connection's
// write credit until they are written, and the input the engine keeps for
// connections (incomplete frames, what paused connections left).
// Connections reserve before they allocate. One that cannot pauses (it is
// not read: the back-pressure) and waits to be resumed when memory comes
// back; when it has waited a frame timeout the connection holding the most
// is closed so the rest keep being served, and after evictGrace more the
// waiter itself gives up.
type buffers struct {
	used atomic.Int64
	max  atomic.Int64
	kept func() int64 // the engine's kept input

	nwait atomic.Int32 // len(waiters), read without the lock
	mu    sync.Mutex
	// waiters are the connections paused for memory, with when they
	// began to wait (kept across resumes until a reservation succeeds).
	waiters map[*conn]struct{}
	timer   *time.Timer // runs expire at the earliest waiter's deadline
	timerAt time.Time
}

// Errors that end a connection on behalf of the budget.
var (
	errBudgetSpent = errors.New("buffered memory budget spent (pacemaker.max.buffered.bytes)")
	errEvicted     = errors.New("closed for holding the most of the buffered memory budget")
)

// errWait is the word, from deep in a request, that the connection paused
// to wait for memory: the frame is handled again when it is resumed. Only
// requests without side effects (reads) and frames still arriving wait.
var errWait = errors.New("waiting for buffered memory")

// writeCredit is what a connection's pending answers may hold without a
// reservation: answers to a burst of small requests never touch the shared
// account. It is part of each connection's fixed cost.
const writeCredit = 4 << 10

// smallAnswer bounds every answer but a read's and a SASL token: a
// connection starts a request only with this much of its credit left.
const smallAnswer = 256

// evictGrace is how long a waiter waits on after it had the connection
// holding the most closed.
const evictGrace = time.Second

func (b *buffers) take(n int64) bool {
	if b.used.Add(n)+b.kept() <= b.max.Load() {
		return true
	}
	b.used.Add(-n)
	return false
}

// Buffered returns the bytes reserved now (with the engine's kept input),
// and the budget.
func (s *Server) Buffered() (used, max int64) {
	return s.buf.used.Load() + s.buf.kept(), s.buf.max.Load()
}

// reserve takes n bytes of the buffered budget for c. When they cannot be
// had it pauses c, lists it among the waiters and returns errWait; n larger
// than the whole budget is errBudgetSpent.
func (c *conn) reserve(n int64) error {
	if n <= 0 {
		return nil
	}
	b := &c.s.buf
	if b.take(n) {
		c.held.Add(n)
		if !c.waitingSince.IsZero() {
			// Not among the waiters (wake took it off), so no lock.
			c.waitingSince, c.evictedFor = time.Time{}, false
		}
		return nil
	}
	if n > b.max.Load() {
		return errBudgetSpent
	}
	c.ec.Pause()
	b.mu.Lock()
	if c.waitingSince.IsZero() {
		c.waitingSince = time.Now()
	}
	b.waiters[c] = struct{}{}
	b.nwait.Store(int32(len(b.waiters)))
	b.schedule(c.waitingSince.Add(c.s.settings.Load().FrameTimeout))
	b.mu.Unlock()
	if b.used.Load()+b.kept()+n <= b.max.Load() {
		b.wake() // memory came back before c was listed
	}
	return errWait
}

// force counts n bytes for c whether or not the budget has them: an answer
// that cannot wait (a SASL token, bounded by the mechanisms).
func (c *conn) force(n int64) {
	if n > 0 {
		c.s.buf.used.Add(n)
		c.held.Add(n)
	}
}

// release gives back n bytes c reserved.
func (c *conn) release(n int64) {
	if n <= 0 {
		return
	}
	c.held.Add(-n)
	c.s.buf.used.Add(-n)
	c.s.buf.wake()
}

// releaseAll gives back whatever c still holds (it is closing) and takes
// it off the waiters.
func (c *conn) releaseAll() {
	b := &c.s.buf
	if b.nwait.Load() > 0 {
		b.mu.Lock()
		delete(b.waiters, c)
		b.nwait.Store(int32(len(b.waiters)))
		b.mu.Unlock()
	}
	if n := c.held.Swap(0); n > 0 {
		b.used.Add(-n)
		b.wake()
	}
}

// wake resumes every waiter: memory came back (or the budget grew), and
// each tries its reservation again.
func (b *buffers) wake() {
	if b.nwait.Load() == 0 {
		return
	}
	b.mu.Lock()
	ws := b.waiters
	b.waiters = make(map[*conn]struct{}, len(ws))
	b.nwait.Store(0)
	b.mu.Unlock()
	for c := range ws {
		c.ec.Resume()
	}
}

// schedule has expire run at t unless it runs earlier. b.mu is held.
func (b *buffers) schedule(t time.Time) {
	if b.timer != nil && !b.timerAt.After(t) {
		return
	}
	if b.timer != nil {
		b.timer.Stop()
	}
	b.timerAt = t
	b.timer = time.AfterFunc(time.Until(t), b.expire)
}

// expire deals with waiters that waited too long: past a frame timeout it
// has the connection holding the most closed (once per waiter), and past
// evictGrace more the waiter is closed.
func (b *buffers) expire() {
	now := time.Now()
	b.mu.Lock()
	b.timer = nil
	var evictFor, giveUp []*conn
	next := time.Time{}
	for c := range b.waiters {
		due := c.waitingSince.Add(c.s.settings.Load().FrameTimeout)
		if c.evictedFor {
			due = due.Add(evictGrace)
		}
		if due.After(now) {
			if next.IsZero() || due.Before(next) {
				next = due
			}
			continue
		}
		if !c.evictedFor {
			c.evictedFor = true
			evictFor = append(evictFor, c)
			if d := now.Add(evictGrace); next.IsZero() || d.Before(next) {
				next = d
			}
			continue
		}
		giveUp = append(giveUp, c)
		delete(b.waiters, c)
	}
	b.nwait.Store(int32(len(b.waiters)))
	if !next.IsZero() {
		b.schedule(next)
	}
	b.mu.Unlock()
	for _, c := range evictFor {
		c.s.evictLargest(c)
	}
	for _, c := range giveUp {
		c.ec.CloseAsync(errBudgetSpent)
	}
}

// evictLargest closes the connection holding the most of the budget, when
// that is not the waiter itself; its memory comes back when it closes.
func (s *Server) evictLargest(waiter *conn) {
	s.mu.Lock()
	var worst *conn
	for c := range s.conns {
		if c != waiter && !c.evicted.Load() && c.held.Load() > 0 && (worst == nil || c.held.Load() > worst.held.Load()) {
			worst = c
		}
	}
	s.mu.Unlock()
	if worst == nil {
		return
	}
	worst.evicted.Store(true)
	s.stats.reject("buffer budget")
	s.warns.Warn(worst.host, "buffer budget", "buffered memory budget spent; closing the connection holding the most",
		"peer", worst.peer, "held_bytes", worst.held.Load(), "waiting_peer", waiter.peer)
	worst.ec.CloseAsync(errEvicted)
}
