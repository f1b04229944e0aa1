package server

import (
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// ReadLoop is how a connection waits for its next request
// (pacemaker.io.read.loop). A reload applies it to new connections only.
type ReadLoop string

const (
	// ReadLoopNetpoll reads with net.Conn.Read. Go's Read always tries
	// read() first, so after each answered burst the goroutine makes a
	// read() that finds nothing (EAGAIN) and only then parks in the
	// netpoller: two reads per request in request/response traffic.
	ReadLoopNetpoll ReadLoop = "netpoll"
	// ReadLoopCallback serves the connection from inside one
	// syscall.RawConn.Read callback: raw reads (recvmsg with TCP_INQ) until
	// the kernel says nothing is left, then answer and wait for readability
	// without another read. One read per request in the steady state.
	// TCP connections only (Linux 4.18+); others use ReadLoopNetpoll.
	ReadLoopCallback ReadLoop = "callback"
)

// errWouldBlock is fdReader's answer inside the callback when the socket
// has nothing more to read: the callback must return false and wait.
// bufio.Reader keeps its buffered bytes across it, and FrameReader.Next
// passes it on without consuming a partial frame (as long as the frame fits
// the buffer: see serveCallback).
var errWouldBlock = errors.New("socket would block")

// fdReader is the io.Reader under a callback-loop connection's bufio.Reader.
// Inside the RawRead callback (fd >= 0) it reads the socket directly;
// outside it reads through net.Conn like the netpoll loop.
type fdReader struct {
	c       *conn
	pending []byte // bytes handed over by the previous process, read first
	fd      int    // the socket, inside the callback; -1 outside
	// empty: the last raw read left nothing to read — no data and no end of
	// stream (TCP_INQ said 0). Anything arriving since makes the netpoller
	// mark the descriptor readable, and inside one RawRead call nothing
	// resets that mark (only RawRead's entry does), so the loop can wait
	// without a read that would find nothing. A short read alone would not
	// do: a FIN (or RST) that came with the last bytes raises no new event.
	empty bool

	// recvmsg's arguments, kept here so a read allocates nothing.
	iov  unix.Iovec
	msg  unix.Msghdr
	cmsg [8]uint64 // room for one TCP_CM_INQ message, 8-byte aligned
}

// enableInq asks the kernel to report, with each recvmsg, how many bytes
// are left to read (1 once a FIN arrived). Linux 4.18 and later.
func enableInq(rc syscall.RawConn) error {
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_TCP, unix.TCP_INQ, 1)
	}); err != nil {
		return err
	}
	return serr
}

func (r *fdReader) Read(p []byte) (int, error) {
	if len(r.pending) > 0 {
		n := copy(p, r.pending)
		r.pending = r.pending[n:]
		return n, nil
	}
	if r.fd < 0 {
		return r.c.nc.Read(p)
	}
	if r.empty {
		return 0, errWouldBlock
	}
	if len(p) == 0 {
		return 0, nil
	}
	// Raw reads skip the poller's deadline check, so a peer that never lets
	// the socket run dry would outlive a handshake or stall deadline.
	if d := r.c.readDeadline; !d.IsZero() && !time.Now().Before(d) {
		return 0, r.opError(os.ErrDeadlineExceeded)
	}
	for {
		n, inq, err := r.recv(p)
		switch {
		case err == unix.EINTR:
			continue
		case err == unix.EAGAIN:
			r.empty = true
			return 0, errWouldBlock
		case err != nil:
			return 0, r.opError(os.NewSyscallError("recvmsg", err))
		case n == 0:
			return 0, io.EOF
		}
		r.empty = inq == 0
		return n, nil
	}
}

// recv is recvmsg into p; inq is the kernel's count of bytes left (TCP_INQ),
// or -1 when it sent none.
func (r *fdReader) recv(p []byte) (n, inq int, err error) {
	r.iov.Base = &p[0]
	r.iov.SetLen(len(p))
	r.msg.Iov = &r.iov
	r.msg.SetIovlen(1)
	r.msg.Control = (*byte)(unsafe.Pointer(&r.cmsg[0]))
	r.msg.SetControllen(len(r.cmsg) * 8)
	r.msg.Flags = 0
	got, _, errno := unix.Syscall(unix.SYS_RECVMSG, uintptr(r.fd), uintptr(unsafe.Pointer(&r.msg)), 0)
	if errno != 0 {
		return 0, -1, errno
	}
	inq = -1
	if r.msg.Controllen >= uint64(unix.CmsgLen(4)) && r.msg.Flags&unix.MSG_CTRUNC == 0 {
		h := (*unix.Cmsghdr)(unsafe.Pointer(&r.cmsg[0]))
		if h.Level == unix.SOL_TCP && h.Type == unix.TCP_CM_INQ {
			inq = int(*(*int32)(unsafe.Add(unsafe.Pointer(&r.cmsg[0]), unix.CmsgLen(0))))
		}
	}
	return int(got), inq, nil
}

// opError wraps err as net.Conn.Read would, for the same log lines.
func (r *fdReader) opError(err error) error {
	nc := r.c.nc
	return &net.OpError{Op: "read", Net: nc.LocalAddr().Network(), Source: nc.LocalAddr(), Addr: nc.RemoteAddr(), Err: err}
}

// serveCallback serves the connection from inside one RawConn.Read callback
// for as long as it can. Each entry into the callback starts with a read
// (RawRead's entry resets the descriptor's readiness, so waiting first could
// miss a request). It returns nil when the next frame must be read on the
// blocking path (a frame larger than the buffer, or Shutdown began),
// errEnded, or a read error — deadlines included — for serve to judge as
// the netpoll loop's.
func (c *conn) serveCallback() error {
	var result error
	c.fr.Stall = nil // the loop puts on and lifts the frame timeout itself
	err := c.raw.Read(func(fd uintptr) bool {
		c.fdr.fd, c.fdr.empty = int(fd), false
		for {
			if c.s.closing.Load() {
				return true // answer what is buffered and hand over as the netpoll loop does
			}
			c.s.waitWedge()
			st := c.s.settings.Load()
			c.fr.SetMax(st.MaxFrame)
			if c.br.Buffered() < 4 {
				// FrameReader must see the whole length prefix before it
				// starts a frame: see bigFrameNext.
				if _, err := c.br.Peek(4); err != nil {
					if err == errWouldBlock {
						return c.callbackWait(st, &result)
					}
					if c.br.Buffered() > 0 && err == io.EOF {
						err = io.ErrUnexpectedEOF // as FrameReader.Next says it
					}
					result = err
					return true
				}
			}
			if c.bigFrameNext(st) {
				return true
			}
			body, err := c.fr.Next()
			if err == errWouldBlock {
				return c.callbackWait(st, &result)
			}
			if err != nil {
				result = err
				return true
			}
			c.frames++
			if err := c.handleFrame(st, body); err != nil {
				result = err
				return true
			}
		}
	})
	c.fdr.fd = -1
	c.fr.Stall = c.stall
	c.rawStalled = false // the blocking path puts on and lifts its own
	if result != nil {
		return result
	}
	return err
}

// callbackWait ends a pass of the callback: it flushes the answers, puts the
// frame timeout on a frame that has started arriving (or lifts it between
// frames), and returns false so RawRead waits for readability.
func (c *conn) callbackWait(st *Settings, result *error) bool {
	if err := c.flush(st); err != nil {
		c.s.log.Info("write failed; closing connection", "peer", c.peer, "err", err)
		*result = errEnded
		return true
	}
	partial := c.br.Buffered() > 0
	if c.bigFrameBuf && !partial {
		// FrameReader keeps a large frame's buffer until its next Next
		// finds nothing buffered, which this loop does not call while
		// idle: an idle connection must not pin that memory.
		c.fr = wire.NewFrameReader(c.br, st.MaxFrame)
		c.bigFrameBuf = false
	}
	switch {
	case partial && (!c.rawStalled || c.rawStallFrame != c.frames):
		// A frame that started since the deadline was put on gets its own.
		c.stall(true)
		c.rawStalled, c.rawStallFrame = true, c.frames
	case !partial && c.rawStalled:
		c.stall(false)
		c.rawStalled = false
	}
	c.fdr.fd = -1
	return false
}

// bigFrameNext reports whether the buffered length prefix announces a frame
// larger than the read buffer. FrameReader reads those with io.ReadFull,
// which cannot resume after errWouldBlock, so they are read on the blocking
// path. A prefix out of range is left to FrameReader to refuse.
func (c *conn) bigFrameNext(st *Settings) bool {
	hdr, err := c.br.Peek(4)
	if err != nil {
		return false
	}
	n := int32(binary.BigEndian.Uint32(hdr))
	return n >= 0 && int(n) <= st.MaxFrame && 4+int(n) > c.br.Size()
}
