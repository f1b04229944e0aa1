package engine

import (
	"errors"
	"fmt"
	"io"
	"os"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// maxReadsPerWake bounds the reads of one connection before the loop turns
// to the others (a peer that sends without pause cannot starve them).
const maxReadsPerWake = 4

// parkAfterMs is how long a blocking loop (WaitBlock) waits without events
// before it waits in a way the runtime knows of; it also bounds how long
// the collector waits for a blocked loop where the runtime sends no
// preemption signal (GODEBUG=asyncpreemptoff=1).
const parkAfterMs = 20

// connEvents are a connection's epoll events: registered once, edge
// triggered, so neither a full socket nor a pause costs an epoll_ctl.
const connEvents = unix.EPOLLIN | unix.EPOLLOUT | unix.EPOLLRDHUP | unix.EPOLLET

// loop is one event loop: an epoll instance, its connections, a read
// buffer, a scratch buffer for answers and a deadline heap. Everything but
// the task queue is touched only by the loop's goroutine.
type loop struct {
	e    *Engine
	id   int
	epfd int
	// epf is epfd registered with Go's netpoller when the loop parks
	// (WaitPark); nil when it blocks.
	epf    *os.File
	epRaw  syscall.RawConn
	armed  int64 // deadline set on epf (engine clock); -1: must be set again
	evfd   int
	events []unix.EpollEvent
	buf    []byte // the read buffer
	// sc holds the answers of this batch, each connection's in one
	// segment; scOwnerConn is the connection whose callback is appending
	// to it, from scStart. Connections with a segment wait in deferred.
	sc          []byte
	scOwnerConn *Conn
	scStart     int
	deferred    []*Conn
	conns       []*Conn // by fd
	n           int     // open connections
	heap        deadlineHeap
	again       []*Conn // to read without waiting for an edge
	nowNs       int64   // engine clock at the last wake-up
	wallNs      int64   // wall clock (unix ns) at the last wake-up
	stop        bool

	listeners []int
	backoff   time.Duration // accept back-off after EMFILE and the like
	retryAt   int64         // when to watch the listeners again; 0: watching

	draining bool
	drainCh  chan struct{}

	keepFree [len(keepClasses)][][]byte

	mu      sync.Mutex
	tasks   []func()
	spare   []func()
	woken   bool // evfd written, tasks not yet run
	stopped bool // no more tasks are run
}

func newLoop(e *Engine, id int) (*loop, error) {
	epfd, err := unix.EpollCreate1(unix.EPOLL_CLOEXEC)
	if err != nil {
		return nil, os.NewSyscallError("epoll_create1", err)
	}
	evfd, err := unix.Eventfd(0, unix.EFD_NONBLOCK|unix.EFD_CLOEXEC)
	if err != nil {
		unix.Close(epfd)
		return nil, os.NewSyscallError("eventfd", err)
	}
	if err := unix.EpollCtl(epfd, unix.EPOLL_CTL_ADD, evfd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(evfd)}); err != nil {
		unix.Close(epfd)
		unix.Close(evfd)
		return nil, os.NewSyscallError("epoll_ctl", err)
	}
	l := &loop{
		e: e, id: id, epfd: epfd, evfd: evfd,
		events: make([]unix.EpollEvent, 512),
		buf:    make([]byte, e.bufSize),
	}
	if e.park {
		if err := unix.SetNonblock(epfd, true); err != nil {
			unix.Close(epfd)
			unix.Close(evfd)
			return nil, os.NewSyscallError("fcntl", err)
		}
		l.epf = os.NewFile(uintptr(epfd), "epoll")
		if l.epRaw, err = l.epf.SyscallConn(); err != nil {
			l.epf.Close()
			unix.Close(evfd)
			return nil, fmt.Errorf("epoll fd in the netpoller: %w", err)
		}
	}
	return l, nil
}

func (l *loop) closeFDs() {
	if l.epf != nil {
		l.epf.Close()
	} else {
		unix.Close(l.epfd)
	}
	unix.Close(l.evfd)
}

// nextDue is the earliest deadline or accept retry (engine clock), 0: none.
func (l *loop) nextDue() int64 {
	next := int64(0)
	if len(l.heap) > 0 {
		next = l.heap[0].dl
	}
	if l.retryAt != 0 && (next == 0 || l.retryAt < next) {
		next = l.retryAt
	}
	return next
}

// post runs fn on the loop; false when the loop has stopped.
func (l *loop) post(fn func()) bool {
	l.mu.Lock()
	if l.stopped {
		l.mu.Unlock()
		return false
	}
	l.tasks = append(l.tasks, fn)
	wake := !l.woken
	l.woken = true
	l.mu.Unlock()
	if wake {
		one := [8]byte{1}
		_, _ = unix.Write(l.evfd, one[:])
	}
	return true
}

// call runs fn on the loop and returns its error.
func (l *loop) call(fn func() error) error {
	ch := make(chan error, 1)
	if !l.post(func() { ch <- fn() }) {
		return ErrClosed
	}
	return <-ch
}

func (l *loop) runTasks() {
	l.mu.Lock()
	tasks := l.tasks
	l.tasks, l.spare = l.spare[:0], nil
	l.woken = false
	l.mu.Unlock()
	for i, fn := range tasks {
		fn()
		tasks[i] = nil
	}
	l.mu.Lock()
	if l.spare == nil {
		l.spare = tasks[:0]
	}
	l.mu.Unlock()
}

// tick reads the clocks once for a wake-up (one time.Now: what every
// callback of the batch may ask of Conn.Now without a clock read of its own).
func (l *loop) tick() {
	t := time.Now()
	l.nowNs = int64(t.Sub(l.e.start))
	l.wallNs = t.UnixNano()
}

func (l *loop) run() {
	defer l.e.wg.Done()
	l.tick()
	if l.e.park {
		l.runParked()
	} else {
		l.runBlocking()
	}
	l.mu.Lock()
	l.stopped = true
	l.mu.Unlock()
	l.runTasks() // posted before stopped: they see l.stop
	l.closeAll(ErrClosed)
	l.checkDrained()
}

// runBlocking blocks the thread in a raw epoll_wait while events keep
// coming. Once none came for parkAfterMs it waits through syscall.Syscall
// instead, which tells the runtime: an idle daemon then holds no P, and the
// runtime's monitor (which signals a P held for over 10 ms) sleeps. The
// epoll fd stays out of the netpoller: nested in the runtime's epoll, each
// batch of events would also wake the thread polling that one.
func (l *loop) runBlocking() {
	for {
		ms := l.waitTimeout()
		idle := ms < 0 || ms >= parkAfterMs
		if idle {
			ms = parkAfterMs
		}
		n, err := rawEpollBlock(l.epfd, l.events, ms)
		if !l.step(n, err) {
			return
		}
		if idle && n == 0 && err == nil {
			n, err = unix.EpollWait(l.epfd, l.events, l.waitTimeout())
			if !l.step(n, err) {
				return
			}
		}
	}
}

// runParked runs the loop inside one RawConn.Read of the epoll fd for as
// long as no deadline passes: the callback polls (never blocking) and
// handles the events; returning false parks the goroutine until the epoll
// fd raises an edge. Within one Read an edge raised while the callback ran
// is remembered, so after a poll that returned every ready event the loop
// parks without polling once more to see nothing.
func (l *loop) runParked() {
	for !l.stop {
		l.arm()
		err := l.epRaw.Read(func(uintptr) bool {
			for {
				n, err := rawEpollWait(l.epfd, l.events)
				if !l.step(n, err) {
					return true
				}
				l.arm()
				if len(l.again) == 0 && n < len(l.events) {
					return false
				}
			}
		})
		switch {
		case err == nil:
		case errors.Is(err, os.ErrDeadlineExceeded):
			// Read fails at once while the deadline stands (the callback
			// does not run): expire here, then arm the next one.
			l.armed = -1
			n, err := rawEpollWait(l.epfd, l.events)
			l.step(n, err)
		default:
			l.step(0, err) // the epoll fd failed: a bug
		}
	}
}

// arm puts the earliest deadline (or accept retry) on the epoll fd, so the
// parked loop wakes for it. A later one waits for the earlier wake-up.
func (l *loop) arm() {
	next := l.nextDue()
	if next == l.armed || (l.armed > 0 && (next == 0 || next > l.armed)) {
		return
	}
	var t time.Time
	if next != 0 {
		t = l.e.start.Add(time.Duration(next))
	}
	_ = l.epf.SetReadDeadline(t)
	l.armed = next
}

// step handles n events and then the queued work; it reports whether the
// loop goes on.
func (l *loop) step(n int, err error) bool {
	l.tick()
	if err != nil && err != unix.EINTR {
		// Only EBADF/EINVAL, i.e. a bug; end every connection rather than
		// spin.
		l.closeAll(os.NewSyscallError("epoll_wait", err))
		l.stop = true
		return false
	}
	for i := range n {
		ev := &l.events[i]
		fd := int(ev.Fd)
		if fd == l.evfd {
			var b [8]byte
			_, _ = unix.Read(l.evfd, b[:])
			continue
		}
		if l.isListener(fd) {
			l.accept(fd)
			continue
		}
		c := l.conn(fd)
		if c == nil {
			continue
		}
		if ev.Events&unix.EPOLLOUT != 0 && c.out != nil {
			l.writeHeld(c)
		}
		if ev.Events&(unix.EPOLLIN|unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0 {
			l.readConn(c, ev.Events&(unix.EPOLLRDHUP|unix.EPOLLHUP|unix.EPOLLERR) != 0)
		}
	}
	l.runTasks()
	l.runAgain()
	l.writeDeferred()
	l.expire()
	l.checkDrained()
	return !l.stop
}

// waitTimeout is epoll_wait's timeout in ms: none while work is queued,
// else until the earliest deadline or accept retry, else forever.
func (l *loop) waitTimeout() int {
	if len(l.again) > 0 {
		return 0
	}
	next := l.nextDue()
	if next == 0 {
		return -1
	}
	d := next - l.e.now()
	if d <= 0 {
		return 0
	}
	return int((d + int64(time.Millisecond) - 1) / int64(time.Millisecond))
}

func (l *loop) conn(fd int) *Conn {
	if fd < len(l.conns) {
		return l.conns[fd]
	}
	return nil
}

func (l *loop) setConn(fd int, c *Conn) {
	if fd >= len(l.conns) {
		n := max(2*len(l.conns), fd+1, 64)
		conns := make([]*Conn, n)
		copy(conns, l.conns)
		l.conns = conns
	}
	l.conns[fd] = c
}

// open registers fd and calls OnOpen; pending bytes are offered first.
func (l *loop) open(fd int, pending []byte, ctx any) error {
	if l.stop {
		unix.Close(fd)
		return ErrClosed
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: connEvents, Fd: int32(fd)}); err != nil {
		unix.Close(fd)
		return os.NewSyscallError("epoll_ctl", err)
	}
	c := &Conn{l: l, fd: fd, ctx: ctx, hidx: -1}
	l.setConn(fd, c)
	if err := l.e.h.OnOpen(c); err != nil {
		c.closed = true
		l.conns[fd] = nil
		l.heapRemove(c)
		_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		unix.Close(fd)
		return err
	}
	l.n++
	l.e.conns.Add(1)
	if len(pending) > 0 {
		c.keep = pending
		c.fresh = true
		l.e.kept.Add(int64(len(pending)))
	}
	if len(pending) > 0 || l.draining {
		l.queueAgain(c)
	}
	return nil
}

func (l *loop) queueAgain(c *Conn) {
	if !c.inAgain && !c.closed {
		c.inAgain = true
		l.again = append(l.again, c)
	}
}

func (l *loop) runAgain() {
	if len(l.again) == 0 {
		return
	}
	again := l.again
	l.again = nil
	for i, c := range again {
		again[i] = nil
		c.inAgain = false
		l.readConn(c, false)
	}
	if l.again == nil {
		l.again = again[:0]
	}
}

// readConn reads c until its socket is empty (a short read), it pauses,
// or it had its share; see the package doc. hup: epoll reported the end of
// the peer's stream or an error, so read on until the read says which.
func (l *loop) readConn(c *Conn, hup bool) {
	for reads := 0; ; reads++ {
		if c.closed {
			return
		}
		if c.paused {
			return
		}
		buf := l.buf
		r := copy(buf, c.keep)
		if c.eof {
			if r > 0 && c.fresh {
				l.deliver(c, buf[:r])
				if c.closed || c.paused {
					return
				}
			}
			l.finish(c, c.eofErr())
			return
		}
		if reads == maxReadsPerWake {
			l.queueAgain(c)
			return
		}
		var n int
		var err error
		if r < len(buf) {
			n, err = rawRead(c.fd, buf[r:])
		}
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			if r > 0 && c.fresh {
				l.deliver(c, buf[:r])
			}
			l.drainCheck(c)
			return
		case err != nil:
			l.close(c, os.NewSyscallError("read", err))
			return
		case n == 0 && r < len(buf):
			c.eof = true
			continue
		}
		l.deliver(c, buf[:r+n])
		if n < len(buf)-r && !hup {
			// A short read: the socket was empty; new bytes raise an edge.
			l.drainCheck(c)
			return
		}
	}
}

// deliver offers data to OnData, writes the answers and keeps the rest.
func (l *loop) deliver(c *Conn, data []byte) {
	c.fresh = false
	consumed, err := l.e.h.OnData(c, data)
	if err != nil {
		l.flushScratch(c)
		l.close(c, err)
		return
	}
	if consumed < 0 || consumed > len(data) {
		consumed = len(data)
		c.fail(errors.New("engine: OnData consumed more than it was given"))
	}
	if l.after(c) {
		return
	}
	rest := data[consumed:]
	if len(rest) == len(l.buf) && !c.paused {
		l.close(c, ErrInputFull)
		return
	}
	l.keepBytes(c, rest)
	if c.paused && len(rest) > 0 {
		c.fresh = true // not looked at for good: offer again on Resume
	}
	if consumed > 0 && len(rest) > 0 && !c.partial && c.fdl != 0 {
		// A frame was completed and the next one started: the frame
		// timeout runs per frame, from the new one's start. (A handler
		// collecting a large frame itself says so with SetPartial, and
		// its frame keeps the deadline of its start.)
		if fto := l.e.frameTO.Load(); fto > 0 {
			c.fdl = l.nowNs + fto
			l.schedule(c)
		}
	}
	l.frameDeadline(c)
}

// after finishes a callback of c: its answers wait for the end of the
// batch (see endSegment), and a close asked for by the callback happens
// after they are written. It reports whether c is closed.
func (l *loop) after(c *Conn) bool {
	if c.closed {
		return true
	}
	if c.closeErr != nil {
		l.flushScratch(c)
		l.close(c, c.closeErr)
		return true
	}
	l.endSegment(c)
	// A full batch buffer writes the batch at once, which may close c
	// (a write error, a drain that is done).
	return c.closed
}

// flushScratch writes c's answers now (it is about to close).
func (l *loop) flushScratch(c *Conn) {
	l.endSegment(c)
	if c.deferred {
		_ = l.writeSegment(c)
	}
}

// deferMax is how much of a batch's answers waits before they are
// written; past it they go out at once.
const deferMax = 256 << 10

// endSegment ends the callback's appending to sc: what c appended waits
// in its segment to be written with the batch's other answers. Writing
// every answer of a batch after all its reads (as redis does) lets the
// peers' next requests arrive together, so the loop handles many per
// wake-up instead of waking once for every few.
func (l *loop) endSegment(c *Conn) {
	if l.scOwnerConn != c {
		return
	}
	l.scOwnerConn = nil
	if len(l.sc) == l.scStart {
		return
	}
	c.segStart, c.segEnd = l.scStart, len(l.sc)
	if !c.deferred {
		c.deferred = true
		l.deferred = append(l.deferred, c)
	}
	if len(l.sc) >= deferMax {
		l.writeDeferred()
	}
}

// writeSegment writes c's waiting answers; the socket's refusal is held.
func (l *loop) writeSegment(c *Conn) error {
	c.deferred = false
	data := l.sc[c.segStart:c.segEnd]
	n, err := rawWrite(c.fd, data)
	for err == unix.EINTR {
		n, err = rawWrite(c.fd, data)
	}
	if err == unix.EAGAIN {
		n, err = 0, nil
	}
	if err != nil {
		err = os.NewSyscallError("write", err)
		c.fail(err)
		return err
	}
	l.hold(c, data[n:])
	return nil
}

// writeDeferred writes the batch's answers and empties sc.
func (l *loop) writeDeferred() {
	if l.scOwnerConn != nil {
		l.endSegment(l.scOwnerConn)
	}
	for i := 0; i < len(l.deferred); i++ { // a close below may not add more
		c := l.deferred[i]
		l.deferred[i] = nil
		if !c.deferred || c.closed {
			c.deferred = false
			continue
		}
		_ = l.writeSegment(c)
		switch {
		case c.closeErr != nil:
			l.close(c, c.closeErr)
		case c.out == nil && c.closeAfter != nil:
			l.close(c, c.closeAfter)
		default:
			l.drainCheck(c)
		}
	}
	l.deferred = l.deferred[:0]
	l.sc = l.sc[:0]
	if cap(l.sc) > 4*deferMax {
		l.sc = nil // a burst of large answers: do not keep its buffer
	}
}

// finish ends c once its pending answers are written (or at once).
func (l *loop) finish(c *Conn, err error) {
	if c.out != nil || c.deferred {
		if c.closeAfter == nil {
			c.closeAfter = err
		}
		return
	}
	l.close(c, err)
}

// writeHeld writes answers a full socket left pending.
func (l *loop) writeHeld(c *Conn) {
	n, err := rawWrite(c.fd, c.out)
	if err == unix.EAGAIN || err == unix.EINTR {
		return
	}
	if err != nil {
		l.close(c, os.NewSyscallError("write", err))
		return
	}
	l.e.pending.Add(-int64(n))
	if n < len(c.out) {
		c.out = c.out[n:]
		if wto := l.e.writeTO.Load(); wto > 0 && n > 0 {
			c.wdl = l.nowNs + wto // progress: the peer reads, if slowly
			l.schedule(c)
		}
		return
	}
	c.out = nil
	c.wdl = 0
	l.schedule(c)
	l.e.h.OnWritten(c)
	if l.after(c) {
		return
	}
	if c.closeAfter != nil && c.out == nil && !c.deferred {
		l.close(c, c.closeAfter)
		return
	}
	l.drainCheck(c)
}

// hold keeps rest, the part of an answer the socket refused, until epoll
// says the socket is writable again.
func (l *loop) hold(c *Conn, rest []byte) {
	if len(rest) == 0 {
		return
	}
	if c.out == nil {
		c.out = make([]byte, 0, max(len(rest), 512))
		if wto := l.e.writeTO.Load(); wto > 0 {
			c.wdl = l.e.now() + wto
			l.schedule(c)
		}
	}
	c.out = append(c.out, rest...)
	l.e.pending.Add(int64(len(rest)))
}

// close ends c: OnClose, then the socket is closed.
func (l *loop) close(c *Conn, err error) {
	if c.closed {
		return
	}
	c.closed = true
	if l.scOwnerConn == c {
		l.scOwnerConn = nil
		l.sc = l.sc[:l.scStart]
	}
	c.deferred = false
	l.e.h.OnClose(c, err)
	_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, c.fd, nil)
	unix.Close(c.fd)
	if l.conn(c.fd) == c {
		l.conns[c.fd] = nil
	}
	l.e.kept.Add(-int64(len(c.keep)))
	l.putKeep(c.keep)
	c.keep = nil
	l.e.pending.Add(-int64(len(c.out)))
	c.out = nil
	l.heapRemove(c)
	l.n--
	l.e.conns.Add(-1)
}

func (l *loop) closeAll(err error) {
	for _, c := range l.conns {
		if c != nil {
			l.close(c, err)
		}
	}
}

// eofErr is the reason for an end of stream: io.EOF between frames,
// io.ErrUnexpectedEOF inside one.
func (c *Conn) eofErr() error {
	if len(c.keep) > 0 || c.partial {
		return io.ErrUnexpectedEOF
	}
	return io.EOF
}

// drainCheck closes c with ErrDrained when the loop drains and c has read
// its socket to the end and written every answer.
func (l *loop) drainCheck(c *Conn) {
	if l.draining && !c.closed && !c.paused && c.out == nil && !c.deferred {
		l.close(c, ErrDrained)
	}
}

func (l *loop) startDrain(done chan struct{}) {
	l.draining = true
	l.drainCh = done
	for _, fd := range l.listeners {
		l.accept(fd) // those already queued are served too
		if l.retryAt == 0 {
			_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
		}
	}
	l.listeners, l.retryAt = nil, 0
	for _, c := range l.conns {
		if c != nil {
			l.queueAgain(c)
		}
	}
}

func (l *loop) checkDrained() {
	if l.drainCh != nil && l.n == 0 {
		close(l.drainCh)
		l.drainCh = nil
	}
}

func (l *loop) isListener(fd int) bool {
	for _, lfd := range l.listeners {
		if lfd == fd {
			return true
		}
	}
	return false
}

func (l *loop) addListener(fd int) error {
	if l.draining || l.stop {
		return ErrClosed
	}
	if err := unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)}); err != nil {
		return os.NewSyscallError("epoll_ctl", err)
	}
	l.listeners = append(l.listeners, fd)
	return nil
}

// accept takes the connections queued on listener lfd (64 per wake-up, all
// when draining) and spreads them over the loops.
func (l *loop) accept(lfd int) {
	for i := 0; l.draining || i < 64; i++ {
		fd, err := rawAccept(lfd)
		switch err {
		case nil:
		case unix.EAGAIN:
			l.backoff = 0
			return
		case unix.EINTR, unix.ECONNABORTED:
			continue
		default:
			// EMFILE, ENFILE, ENOBUFS, ENOMEM: stop watching the listeners
			// for a while instead of spinning on them.
			l.backoff = min(max(2*l.backoff, 5*time.Millisecond), time.Second)
			if l.e.acceptErr != nil {
				l.e.acceptErr(os.NewSyscallError("accept4", err), l.backoff)
			}
			if l.retryAt == 0 {
				for _, fd := range l.listeners {
					_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_DEL, fd, nil)
				}
			}
			l.retryAt = l.e.now() + int64(l.backoff)
			return
		}
		t := l
		if !l.draining {
			t = l.e.pick()
		}
		if t == l {
			_ = l.open(fd, nil, nil)
		} else if !t.post(func() { _ = t.open(fd, nil, nil) }) {
			unix.Close(fd)
		}
	}
}

// expire closes connections whose deadline passed and resumes accepting
// after a back-off.
func (l *loop) expire() {
	now := l.nowNs
	if l.retryAt != 0 && l.retryAt <= now {
		l.retryAt = 0
		for _, fd := range l.listeners {
			_ = unix.EpollCtl(l.epfd, unix.EPOLL_CTL_ADD, fd, &unix.EpollEvent{Events: unix.EPOLLIN, Fd: int32(fd)})
		}
	}
	for len(l.heap) > 0 && l.heap[0].dl <= now {
		c := l.heap[0]
		l.heapRemove(c)
		var err error
		switch {
		case c.rdl != 0 && c.rdl <= now:
			err = ErrReadTimeout
		case c.fdl != 0 && c.fdl <= now:
			err = ErrFrameTimeout
		default:
			err = ErrWriteTimeout
		}
		l.close(c, err)
	}
}

// keepClasses are the sizes of the buffers kept input lives in.
var keepClasses = [...]int{1 << 10, 4 << 10, 16 << 10, 64 << 10}

const keepFreeMax = 64

// keepBytes makes rest c's kept input, in a buffer of a size class (reused
// while it fits); none when rest is empty.
func (l *loop) keepBytes(c *Conn, rest []byte) {
	l.e.kept.Add(int64(len(rest) - len(c.keep)))
	if len(rest) == 0 {
		l.putKeep(c.keep)
		c.keep = nil
		return
	}
	if cap(c.keep) < len(rest) {
		l.putKeep(c.keep)
		c.keep = l.getKeep(len(rest))
	}
	c.keep = append(c.keep[:0], rest...)
}

func (l *loop) getKeep(n int) []byte {
	for i, size := range keepClasses {
		if n <= size {
			if free := l.keepFree[i]; len(free) > 0 {
				b := free[len(free)-1]
				l.keepFree[i] = free[:len(free)-1]
				return b
			}
			return make([]byte, 0, size)
		}
	}
	return make([]byte, 0, n)
}

func (l *loop) putKeep(b []byte) {
	for i, size := range keepClasses {
		if cap(b) == size && len(l.keepFree[i]) < keepFreeMax {
			l.keepFree[i] = append(l.keepFree[i], b[:0])
			return
		}
	}
}
