package engine

import (
	"context"
	"errors"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// Handler is the protocol side of a connection. Every method runs on the
// connection's loop; none may block.
type Handler interface {
	// OnOpen is called once for an accepted or adopted connection before
	// any data. c.Context() is what Adopt was given (nil when accepted).
	// An error closes the socket at once, without OnClose.
	OnOpen(c *Conn) error
	// OnData gets the kept bytes followed by the new ones and returns how
	// many it consumed; see the package doc. An error closes the
	// connection after its pending answers had one chance to be written.
	OnData(c *Conn, in []byte) (consumed int, err error)
	// OnWritten is called when answers left pending by a full socket have
	// all been written.
	OnWritten(c *Conn)
	// OnClose is called once when the connection ends, before its socket
	// is closed.
	OnClose(c *Conn, err error)
}

// Config configures an Engine.
type Config struct {
	Handler Handler
	// Loops is the number of event loops; 0 means one per two Ps
	// (GOMAXPROCS/2, at least 1). On 2 cores one loop answered 15–25 %
	// more requests per CPU-second than two (fewer wake-ups, each with
	// more events; the runtime keeps a P for the netpoller and the GC) and
	// carries well over 100,000 requests a second.
	Loops int
	// ReadBufferSize is each loop's read buffer, and so the most one read
	// takes from a socket; 0 means 64 KiB.
	ReadBufferSize int
	// FrameTimeout bounds an incomplete frame; 0: none. See SetFrameTimeout.
	FrameTimeout time.Duration
	// WriteTimeout bounds a pending write; 0: none. See SetWriteTimeout.
	WriteTimeout time.Duration
	// Wait is how an idle loop waits for events; see WaitMode.
	Wait WaitMode
	// AcceptError, when set, hears of a failed accept (EMFILE and the
	// like) and how long the listeners are left alone.
	AcceptError func(err error, backoff time.Duration)
}

// Errors a connection ends with (see OnClose).
var (
	ErrFrameTimeout = errors.New("frame incomplete past the frame timeout")
	ErrReadTimeout  = errors.New("read deadline passed")
	ErrWriteTimeout = errors.New("peer did not take pending answers within the write timeout")
	ErrDrained      = errors.New("drained: every request received was answered")
	ErrClosed       = errors.New("engine closed")
	ErrInputFull    = errors.New("handler consumed nothing of a full read buffer")
)

// WaitMode is how an idle loop waits for its epoll instance.
type WaitMode int

func (m WaitMode) String() string {
	switch m {
	case WaitBlock:
		return "block"
	case WaitPark:
		return "park"
	}
	return "auto"
}

const (
	// WaitAuto blocks when GOMAXPROCS leaves at least one P beside the
	// loops (for the rest of the process), and parks otherwise.
	WaitAuto WaitMode = iota
	// WaitBlock blocks the loop's thread in epoll_wait without telling the
	// runtime, as a C event loop does: the loop keeps its P, a wake-up is
	// one context switch, and the runtime's preemption signal (for the
	// collector, or a P held over 10 ms) interrupts the wait. After 20 ms
	// without events the loop waits through syscall.Syscall, so that an
	// idle loop holds no P.
	WaitBlock
	// WaitPark parks the loop's goroutine in Go's netpoller, where the
	// epoll fd is registered: the P is free while the loop is idle, but a
	// wake-up goes through the runtime's own epoll_wait and scheduler.
	WaitPark
)

// Engine runs the loops.
type Engine struct {
	h         Handler
	acceptErr func(error, time.Duration)
	park      bool // loops wait with WaitPark
	loops     []*loop
	next      atomic.Uint32
	bufSize   int
	start     time.Time
	frameTO   atomic.Int64
	writeTO   atomic.Int64
	pending   atomic.Int64 // bytes of answers held by connections, not yet written
	kept      atomic.Int64 // bytes of input kept unconsumed
	conns     atomic.Int64
	closed    atomic.Bool
	wg        sync.WaitGroup
	closeMu   sync.Mutex
}

// New starts the loops.
func New(cfg Config) (*Engine, error) {
	if cfg.Handler == nil {
		return nil, errors.New("engine: no handler")
	}
	n := cfg.Loops
	if n <= 0 {
		n = max(1, runtime.GOMAXPROCS(0)/2)
	}
	size := cfg.ReadBufferSize
	if size <= 0 {
		size = 64 << 10
	}
	park := cfg.Wait == WaitPark || cfg.Wait == WaitAuto && runtime.GOMAXPROCS(0) <= n
	e := &Engine{h: cfg.Handler, acceptErr: cfg.AcceptError, park: park, bufSize: size, start: time.Now()}
	e.frameTO.Store(int64(cfg.FrameTimeout))
	e.writeTO.Store(int64(cfg.WriteTimeout))
	for i := range n {
		l, err := newLoop(e, i)
		if err != nil {
			for _, l := range e.loops {
				l.closeFDs()
			}
			return nil, err
		}
		e.loops = append(e.loops, l)
	}
	for _, l := range e.loops {
		e.wg.Add(1)
		go l.run()
	}
	return e, nil
}

// SetFrameTimeout changes the frame timeout for frames that start from now
// on (a reload); 0 disables it. Safe from any goroutine.
func (e *Engine) SetFrameTimeout(d time.Duration) { e.frameTO.Store(int64(d)) }

// SetWriteTimeout changes the write timeout for writes that block from now
// on; 0 disables it. Safe from any goroutine.
func (e *Engine) SetWriteTimeout(d time.Duration) { e.writeTO.Store(int64(d)) }

// PendingBytes returns the bytes of answers held by connections because
// their sockets did not take them yet.
func (e *Engine) PendingBytes() int64 { return e.pending.Load() }

// KeptBytes returns the bytes of input kept unconsumed (incomplete frames,
// and what paused connections left): at most ReadBufferSize a connection,
// but a budget against slow senders must count them.
func (e *Engine) KeptBytes() int64 { return e.kept.Load() }

// Conns returns the number of open connections.
func (e *Engine) Conns() int { return int(e.conns.Load()) }

// now is the engine's monotonic clock in nanoseconds.
func (e *Engine) now() int64 { return int64(time.Since(e.start)) }

// Listen accepts connections on fd, an open listening socket (made
// non-blocking here). The engine never closes it: Drain and Close only
// stop watching it.
func (e *Engine) Listen(fd int) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		return fmt.Errorf("listener fd %d: %w", fd, err)
	}
	l := e.loops[0]
	return l.call(func() error { return l.addListener(fd) })
}

// Adopt serves fd, a connected socket, as if accepted; pending are bytes a
// previous owner read from it and did not handle, offered to OnData first.
// ctx is the connection's Context during OnOpen. The engine owns fd from
// now on, also when Adopt fails.
func (e *Engine) Adopt(fd int, pending []byte, ctx any) error {
	if err := unix.SetNonblock(fd, true); err != nil {
		unix.Close(fd)
		return fmt.Errorf("adopt fd %d: %w", fd, err)
	}
	p := append([]byte(nil), pending...)
	l := e.pick()
	ran := false
	err := l.call(func() error { ran = true; return l.open(fd, p, ctx) })
	if !ran {
		unix.Close(fd) // the loop had stopped
	}
	return err
}

func (e *Engine) pick() *loop {
	return e.loops[int(e.next.Add(1))%len(e.loops)]
}

// StopAccepting stops watching the listeners without taking the
// connections queued on them: a restart hand-over leaves those to the
// successor, which gets the listening socket. Drain after it accepts
// nothing more.
func (e *Engine) StopAccepting() {
	l := e.loops[0]
	_ = l.call(func() error {
		if l.retryAt == 0 {
			for _, fd := range l.listeners {
				_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
			}
		}
		l.listeners, l.retryAt = nil, 0
		return nil
	})
}

// Drain stops accepting and closes every connection once it has answered
// everything it had received; see the package doc. It returns ctx.Err() if
// ctx ended first (the rest are then closed with ErrClosed). The loops keep
// running: Adopt still works, Close stops them.
func (e *Engine) Drain(ctx context.Context) error {
	done := make([]chan struct{}, len(e.loops))
	for i, l := range e.loops {
		ch := make(chan struct{})
		done[i] = ch
		start := func() error { l.startDrain(ch); return nil }
		if i == 0 {
			// The listeners' loop first: the connections it takes from
			// the backlog are posted to the other loops before their
			// drain starts.
			if err := l.call(start); err != nil {
				close(ch)
			}
			continue
		}
		if !l.post(func() { _ = start() }) {
			close(ch)
		}
	}
	for i, ch := range done {
		select {
		case <-ch:
		case <-ctx.Done():
			for _, l := range e.loops[i:] {
				l.post(func() { l.closeAll(ErrClosed) })
			}
			for _, ch := range done[i:] {
				<-ch
			}
			return ctx.Err()
		}
	}
	return nil
}

// Close closes every connection (ErrClosed) and stops the loops. It does
// not close listening sockets.
func (e *Engine) Close() error {
	e.closeMu.Lock()
	defer e.closeMu.Unlock()
	if e.closed.Swap(true) {
		return nil
	}
	for _, l := range e.loops {
		l.post(func() { l.closeAll(ErrClosed); l.stop = true })
	}
	e.wg.Wait()
	for _, l := range e.loops {
		l.closeFDs()
	}
	return nil
}
