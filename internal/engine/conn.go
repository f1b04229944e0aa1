package engine

import (
	"net/netip"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// Conn is one connection of an engine. Its methods may be called only from
// its own callbacks, except Resume, CloseAsync and Post.
type Conn struct {
	l   *loop
	fd  int
	ctx any

	keep []byte // input not consumed yet (see OnData)
	out  []byte // answers a full socket did not take; nil when none

	// Deadlines in the engine's clock (ns); 0 when unset. dl is the
	// earliest, the connection's key in its loop's heap at hidx.
	fdl, rdl, wdl, dl int64
	hidx              int

	closeErr   error // close after the running callback
	closeAfter error // close once out is written

	// deferred: its answers are sc[segStart:segEnd], written when the
	// loop has handled every ready connection (see loop.writeDeferred).
	segStart, segEnd int
	deferred         bool

	closed  bool
	paused  bool
	partial bool // the handler holds part of a frame (SetPartial)
	fresh   bool // keep has bytes OnData has not been offered for good
	eof     bool
	inAgain bool
}

// Now returns the wall clock (Unix nanoseconds) read when the loop last
// woke: behind the true time by at most the batch's processing so far, and
// free, for a caller that would otherwise read the clock per request.
func (c *Conn) Now() int64 { return c.l.wallNs }

// Fd returns the socket. Valid until OnClose returns; the engine closes it.
func (c *Conn) Fd() int { return c.fd }

// Context returns what SetContext stored (or what Adopt was given).
func (c *Conn) Context() any { return c.ctx }

// SetContext stores the protocol side's state of the connection.
func (c *Conn) SetContext(v any) { c.ctx = v }

// Unread returns the input kept unconsumed: in OnClose after ErrDrained,
// the start of a frame that a successor must be given with the socket.
func (c *Conn) Unread() []byte { return c.keep }

// Pause stops reading c until Resume; input left unconsumed is kept and
// offered again then. The frame deadline does not run while paused.
func (c *Conn) Pause() {
	c.paused = true
	if c.fdl != 0 {
		c.fdl = 0
		c.l.schedule(c)
	}
}

// Paused reports whether c is paused.
func (c *Conn) Paused() bool { return c.paused }

// Resume reads c again. Safe from any goroutine.
func (c *Conn) Resume() {
	l := c.l
	l.post(func() {
		if c.closed || !c.paused {
			return
		}
		c.paused = false
		l.queueAgain(c)
	})
}

// Post runs fn(c) on c's loop unless c has closed by then, then writes the
// answers fn appended. Safe from any goroutine.
func (c *Conn) Post(fn func(c *Conn)) {
	l := c.l
	l.post(func() {
		if c.closed {
			return
		}
		fn(c)
		l.after(c)
	})
}

// Close closes c once the running callback returns, after its answers had
// one chance to be written; OnClose gets err.
func (c *Conn) Close(err error) { c.fail(err) }

// CloseAsync closes c at once with err. Safe from any goroutine.
func (c *Conn) CloseAsync(err error) {
	l := c.l
	l.post(func() { l.close(c, err) })
}

func (c *Conn) fail(err error) {
	if c.closeErr == nil {
		c.closeErr = err
	}
}

// SetPartial tells the engine that the handler holds the start of a frame
// itself (true) or no longer (false), so the frame deadline runs as if the
// engine kept those bytes.
func (c *Conn) SetPartial(v bool) {
	c.partial = v
	c.l.frameDeadline(c)
}

// SetReadDeadline closes c with ErrReadTimeout at t unless changed; the
// zero time clears it.
func (c *Conn) SetReadDeadline(t time.Time) {
	c.rdl = 0
	if !t.IsZero() {
		c.rdl = max(int64(t.Sub(c.l.e.start)), 1)
	}
	c.l.schedule(c)
}

// frameDeadline starts the frame deadline when c holds part of a frame and
// it is not running, and lifts it when c holds none.
func (l *loop) frameDeadline(c *Conn) {
	want := (len(c.keep) > 0 || c.partial) && !c.paused
	switch {
	case want && c.fdl == 0:
		if fto := l.e.frameTO.Load(); fto > 0 {
			c.fdl = l.nowNs + fto
			l.schedule(c)
		}
	case !want && c.fdl != 0:
		c.fdl = 0
		l.schedule(c)
	}
}

// Out returns the answers appended so far and not yet written, to append
// to; give the result to SetOut. Valid until Flush, Writev or the end of
// the callback. Its bytes before the connection's own are other
// connections' answers: append only.
func (c *Conn) Out() []byte {
	if c.out != nil {
		return c.out
	}
	l := c.l
	if l.scOwnerConn != c {
		if l.scOwnerConn != nil {
			l.endSegment(l.scOwnerConn) // a callback of another conn posted here: keep them apart
		}
		switch {
		case c.deferred && c.segEnd == len(l.sc):
			l.scStart = c.segStart // its answers of this batch are the last ones: go on after them
		case c.deferred:
			_ = l.writeSegment(c) // older ones, with others' after them: out first
			l.scStart = len(l.sc)
		default:
			l.scStart = len(l.sc)
		}
		l.scOwnerConn = c
	}
	return l.sc
}

// SetOut stores b, the result of appending to Out().
func (c *Conn) SetOut(b []byte) {
	if c.out != nil {
		c.l.e.pending.Add(int64(len(b) - len(c.out)))
		c.out = b
		return
	}
	c.l.sc = b
	c.l.scOwnerConn = c
}

// Pending returns the bytes of answers not yet written.
func (c *Conn) Pending() int {
	l := c.l
	switch {
	case l.scOwnerConn == c:
		return len(l.sc) - l.scStart
	case c.deferred:
		return c.segEnd - c.segStart
	}
	return len(c.out)
}

// Flush writes the answers appended so far, if the socket takes them; what
// it does not take is kept and written when it is writable (then
// OnWritten). It returns the bytes still pending. A write error closes c
// after the callback and is returned.
func (c *Conn) Flush() (pending int, err error) {
	l := c.l
	if c.out != nil || c.closed {
		return len(c.out), nil
	}
	l.endSegment(c)
	if !c.deferred {
		return 0, nil
	}
	if err := l.writeSegment(c); err != nil {
		return 0, err
	}
	return len(c.out), nil
}

// Writev writes the answers appended so far followed by bufs in one system
// call, without copying bufs unless the socket does not take them all: the
// rest is kept like Flush's. bufs must not change during the call.
func (c *Conn) Writev(bufs ...[]byte) (pending int, err error) {
	l := c.l
	if c.closed {
		return 0, nil
	}
	if c.out != nil {
		for _, b := range bufs {
			l.hold(c, b)
		}
		return len(c.out), nil
	}
	l.endSegment(c)
	iov := make([][]byte, 0, len(bufs)+1)
	if c.deferred {
		c.deferred = false
		iov = append(iov, l.sc[c.segStart:c.segEnd])
	}
	for _, b := range bufs {
		if len(b) > 0 {
			iov = append(iov, b)
		}
	}
	n, err := rawWritev(c.fd, iov)
	for err == unix.EINTR {
		n, err = rawWritev(c.fd, iov)
	}
	if err == unix.EAGAIN {
		n, err = 0, nil
	}
	if err != nil {
		err = os.NewSyscallError("writev", err)
		c.fail(err)
		return 0, err
	}
	for _, b := range iov {
		if n >= len(b) {
			n -= len(b)
			continue
		}
		l.hold(c, b[n:])
		n = 0
	}
	return len(c.out), nil
}

// PeerAddr returns the remote address of c's socket (a system call: ask
// once, at OnOpen).
func (c *Conn) PeerAddr() (netip.AddrPort, error) {
	sa, err := unix.Getpeername(c.fd)
	if err != nil {
		return netip.AddrPort{}, os.NewSyscallError("getpeername", err)
	}
	switch sa := sa.(type) {
	case *unix.SockaddrInet4:
		return netip.AddrPortFrom(netip.AddrFrom4(sa.Addr), uint16(sa.Port)), nil
	case *unix.SockaddrInet6:
		return netip.AddrPortFrom(netip.AddrFrom16(sa.Addr), uint16(sa.Port)), nil
	}
	return netip.AddrPort{}, nil
}
