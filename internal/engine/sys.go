package engine

import (
	"unsafe"

	"golang.org/x/sys/unix"
)

// The socket calls of the hot path are raw: the sockets are non-blocking,
// so the runtime need not hand the thread's P to another thread around
// them (what syscall.Syscall prepares for).

// They are recvfrom and sendto rather than read and write: the same socket
// calls without the file layer's checks around them, and a send to a peer
// that has gone raises no SIGPIPE (MSG_NOSIGNAL).

func rawRead(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall6(unix.SYS_RECVFROM, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

func rawWrite(fd int, p []byte) (int, error) {
	if len(p) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall6(unix.SYS_SENDTO, uintptr(fd), uintptr(unsafe.Pointer(&p[0])), uintptr(len(p)), unix.MSG_NOSIGNAL, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawWritev writes at most 1024 (IOV_MAX) buffers.
func rawWritev(fd int, bufs [][]byte) (int, error) {
	if len(bufs) == 1 {
		return rawWrite(fd, bufs[0])
	}
	var iovs [8]unix.Iovec
	iov := iovs[:0]
	for _, b := range bufs[:min(len(bufs), 1024)] {
		v := unix.Iovec{Base: &b[0]}
		v.SetLen(len(b))
		iov = append(iov, v)
	}
	if len(iov) == 0 {
		return 0, nil
	}
	n, _, e := unix.RawSyscall(unix.SYS_WRITEV, uintptr(fd), uintptr(unsafe.Pointer(&iov[0])), uintptr(len(iov)))
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawAccept accepts a connection, non-blocking and close-on-exec, without
// asking for its address (the handler asks when it needs it).
func rawAccept(lfd int) (int, error) {
	fd, _, e := unix.RawSyscall6(unix.SYS_ACCEPT4, uintptr(lfd), 0, 0, unix.SOCK_NONBLOCK|unix.SOCK_CLOEXEC, 0, 0)
	if e != 0 {
		return -1, e
	}
	return int(fd), nil
}

// rawEpollWait polls without blocking.
func rawEpollWait(epfd int, events []unix.EpollEvent) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), 0, 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}

// rawEpollBlock waits up to ms milliseconds (-1: until an event) without
// telling the runtime: the loop's goroutine keeps its P and its thread, as
// a C event loop does. The runtime's preemption signal interrupts the
// wait (EINTR) so that the collector and the scheduler still get the P.
func rawEpollBlock(epfd int, events []unix.EpollEvent, ms int) (int, error) {
	n, _, e := unix.RawSyscall6(unix.SYS_EPOLL_PWAIT, uintptr(epfd), uintptr(unsafe.Pointer(&events[0])), uintptr(len(events)), uintptr(ms), 0, 0)
	if e != 0 {
		return 0, e
	}
	return int(n), nil
}
