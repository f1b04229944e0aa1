package server

import (
	"errors"
	"io"
	"net"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// arrivedReader is the io.Reader under a connection's bufio.Reader. It
// reads the socket like net.Conn.Read until Shutdown wakes the connection
// (a read deadline in the past, which makes net.Conn.Read fail without
// reading); from then on it reads, with non-blocking reads of the socket,
// the bytes that had arrived by then (the receive queue's length at that
// moment: a client that keeps sending cannot hold the stop), and then
// reports the deadline. So every request that fully arrived before the stop
// is answered instead of the close resetting a client whose requests were
// still queued in the kernel; at a hand-over, the rest stays in the socket
// for the successor.
type arrivedReader struct {
	c        *conn
	src      io.Reader // bytes handed over by a predecessor, read first; nil once read
	draining bool      // Shutdown began: read only what had arrived
	arrived  int       // bytes left of those
}

func (r *arrivedReader) Read(p []byte) (int, error) {
	if r.src != nil {
		n, err := r.src.Read(p)
		if err == io.EOF {
			r.src, err = nil, nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
	if !r.draining {
		n, err := r.c.nc.Read(p)
		if n > 0 || !r.c.s.closing.Load() || !errors.Is(err, os.ErrDeadlineExceeded) {
			return n, err
		}
		r.draining = true
		r.arrived = r.queued()
	}
	return r.readArrived(p)
}

// rawConn is the connection's socket, or nil for a connection that has
// none (tests' pipes).
func (r *arrivedReader) rawConn() syscall.RawConn {
	sc, ok := r.c.nc.(syscall.Conn)
	if !ok {
		return nil
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return nil
	}
	return rc
}

// queued is the length of the socket's receive queue.
func (r *arrivedReader) queued() int {
	if rc := r.rawConn(); rc != nil {
		return queued(rc)
	}
	return 0
}

// readArrived reads what is left of the bytes that had arrived, without
// waiting: os.ErrDeadlineExceeded once they are read.
func (r *arrivedReader) readArrived(p []byte) (int, error) {
	rc := r.rawConn()
	if rc == nil || r.arrived <= 0 || len(p) == 0 {
		return 0, os.ErrDeadlineExceeded
	}
	p = p[:min(len(p), r.arrived)]
	var n int
	var rerr error
	// Control, not Read: RawConn.Read refuses to run once the deadline
	// has passed. The socket is non-blocking (Go's netpoller sets it so).
	if err := rc.Control(func(fd uintptr) {
		for {
			n, rerr = unix.Read(int(fd), p)
			if rerr != unix.EINTR {
				return
			}
		}
	}); err != nil {
		return 0, err
	}
	r.arrived -= max(n, 0)
	switch {
	case rerr == unix.EAGAIN:
		return 0, os.ErrDeadlineExceeded
	case rerr != nil:
		return 0, os.NewSyscallError("read", rerr)
	case n == 0:
		return 0, io.EOF
	}
	return n, nil
}

// acceptQueued serves, as Shutdown began, the connections waiting in ln's
// accept queue: their clients connected, and may have sent requests, before
// the stop, and closing the listener would reset them. A hand-over leaves
// them queued instead: the listening socket passes to the successor.
// Accept itself refuses to run once the deadline that woke the loop has
// passed, so the queue is taken with non-blocking accept4 calls.
func (s *Server) acceptQueued(ln net.Listener) {
	if s.handoff.Load() {
		return
	}
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return
	}
	rc, err := sc.SyscallConn()
	if err != nil {
		return
	}
	for {
		nfd := -1
		var aerr error
		if err := rc.Control(func(fd uintptr) {
			for {
				nfd, _, aerr = unix.Accept4(int(fd), unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC)
				if aerr != unix.EINTR && aerr != unix.ECONNABORTED {
					return
				}
			}
		}); err != nil || aerr != nil {
			return // EAGAIN: the queue is empty
		}
		f := os.NewFile(uintptr(nfd), "queued connection")
		nc, err := net.FileConn(f)
		f.Close()
		if err != nil {
			continue
		}
		s.accept(nc) // served as accepted during Shutdown
	}
}
