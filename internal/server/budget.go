package server

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"
)

// buffers accounts for the memory held for I/O beyond each connection's
// fixed buffers (pacemaker.max.buffered.bytes): frames too large for a
// connection's read buffer while they arrive, and answers beyond a
// connection's write credit until they are written. Connections reserve
// before they allocate; one that cannot waits, which stops it reading (the
// back-pressure), and when a waiter has waited a frame timeout the
// connection holding the most is closed so the rest keep being served.
type buffers struct {
	used atomic.Int64
	max  atomic.Int64

	mu      sync.Mutex
	waiters int
	freed   chan struct{} // closed, then replaced, when memory comes back while someone waits
}

// Errors of reserve; both end the connection that asked.
var (
	errBudgetSpent = errors.New("buffered memory budget spent (pacemaker.max.buffered.bytes)")
	errEvicted     = errors.New("closed for holding the most of the buffered memory budget")
)

// writeCredit is what a connection's pending answers may hold without a
// reservation: answers to a burst of small requests never touch the shared
// account. It is part of each connection's fixed cost.
const writeCredit = 16 << 10

// evictGrace is how long a waiter waits on after it had the connection
// holding the most closed.
const evictGrace = time.Second

func (b *buffers) take(n int64) bool {
	if b.used.Add(n) <= b.max.Load() {
		return true
	}
	b.used.Add(-n)
	return false
}

// wake tells waiters that memory came back.
func (b *buffers) wake() {
	b.mu.Lock()
	if b.waiters > 0 {
		close(b.freed)
		b.freed = make(chan struct{})
	}
	b.mu.Unlock()
}

// Buffered returns the bytes reserved now, and the budget.
func (s *Server) Buffered() (used, max int64) { return s.buf.used.Load(), s.buf.max.Load() }

// reserve takes n bytes of the buffered budget for c, waiting while it is
// spent. At deadline it has the connection holding the most (if not c)
// closed, and waits evictGrace more before it gives up.
func (s *Server) reserve(c *conn, n int64, deadline time.Time) error {
	if n <= 0 {
		return nil
	}
	b := &s.buf
	if b.take(n) {
		c.held.Add(n)
		return nil
	}
	if n > b.max.Load() {
		return errBudgetSpent
	}
	evicted := false
	timer := time.NewTimer(time.Until(deadline))
	defer timer.Stop()
	for {
		b.mu.Lock()
		b.waiters++
		ch := b.freed
		b.mu.Unlock()
		ok := b.take(n) // again, now that a release cannot be missed
		if !ok && !c.evicted.Load() {
			select {
			case <-ch:
			case <-timer.C:
				if !evicted {
					evicted = true
					s.evictLargest(c)
					timer.Reset(evictGrace)
				} else {
					deadline = time.Time{}
				}
			}
		}
		b.mu.Lock()
		b.waiters--
		b.mu.Unlock()
		switch {
		case ok || b.take(n):
			c.held.Add(n)
			return nil
		case c.evicted.Load():
			return errEvicted
		case deadline.IsZero():
			return errBudgetSpent
		}
	}
}

// release gives back n bytes c reserved.
func (s *Server) release(c *conn, n int64) {
	if n <= 0 {
		return
	}
	c.held.Add(-n)
	s.buf.used.Add(-n)
	s.buf.wake()
}

// releaseAll gives back whatever c still holds (it is closing).
func (s *Server) releaseAll(c *conn) {
	if n := c.held.Swap(0); n > 0 {
		s.buf.used.Add(-n)
		s.buf.wake()
	}
}

// evictLargest closes the connection holding the most of the budget, when
// that is not the waiter itself: its blocked read or write fails and its
// memory comes back.
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
	_ = worst.nc.Close()
	s.buf.wake() // in case it waits for memory itself
}

// frameBudget is a connection's wire.Budget: large frames reserve from the
// server's account, waiting at most a frame timeout.
type frameBudget struct{ c *conn }

func (f frameBudget) Reserve(n int) error {
	c := f.c
	return c.s.reserve(c, int64(n), time.Now().Add(c.s.settings.Load().FrameTimeout))
}

func (f frameBudget) Release(n int) { f.c.s.release(f.c, int64(n)) }
