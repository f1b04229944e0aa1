package handoff

// The carrier packs any number of file descriptors (the handed connections'
// sockets) into one: they are sent, in order, into a datagram socket pair
// and travel as in-flight SCM_RIGHTS messages queued on the receiving end,
// which is what goes into systemd's file-descriptor store. The successor
// takes them out again with unpack.
//
// Why not store each descriptor on its own: systemd compares every stored
// descriptor with every other one (kcmp per pair), so storing one per
// client connection costs the service manager O(n²) system calls — minutes
// of PID 1's time for tens of thousands of connections. A carrier is one
// stored descriptor whatever n is.

import (
	"encoding/binary"
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// carrierBatch is how many descriptors go in one message: the kernel's SCM_MAX_FD.
const carrierBatch = 253

// pack returns the receiving end of a socket pair that holds files, in
// order. The caller still owns files. Descriptors in flight count against
// the sending user's RLIMIT_NOFILE until they are unpacked.
func pack(files []*os.File) (*os.File, error) {
	// SOCK_DGRAM: unlike a stream or seqpacket pair, the receiving end
	// does not report POLLHUP once the sending end is closed, so a store
	// that drops hung-up descriptors keeps it.
	pair, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("fd carrier: socketpair: %w", err)
	}
	send := pair[0]
	defer unix.Close(send)
	recv := os.NewFile(uintptr(pair[1]), "fd-carrier")
	// Datagrams of a few bytes each: raise the queue so that thousands of
	// descriptors never block the sender (the kernel caps it at rmem_max).
	_ = unix.SetsockoptInt(pair[1], unix.SOL_SOCKET, unix.SO_RCVBUF, 4<<20)
	_ = unix.SetsockoptInt(send, unix.SOL_SOCKET, unix.SO_SNDBUF, 4<<20)

	var hdr [8]byte
	for start := 0; start < len(files); start += carrierBatch {
		chunk := files[start:min(start+carrierBatch, len(files))]
		fds := make([]int, len(chunk))
		for i, f := range chunk {
			fds[i] = int(f.Fd())
		}
		// The header lets unpack check that nothing was lost or reordered.
		binary.BigEndian.PutUint32(hdr[:4], uint32(start))
		binary.BigEndian.PutUint32(hdr[4:], uint32(len(chunk)))
		// MSG_DONTWAIT: nobody reads yet, so a full queue would block forever.
		if err := unix.Sendmsg(send, hdr[:], unix.UnixRights(fds...), nil, unix.MSG_DONTWAIT); err != nil {
			recv.Close()
			return nil, fmt.Errorf("fd carrier: send descriptors %d..%d of %d: %w", start, start+len(chunk)-1, len(files), err)
		}
	}
	return recv, nil
}

// unpack takes every descriptor out of a carrier made by pack, in the order
// they were packed, and closes the carrier. On an error it returns what it
// could take out so far, so the caller can close them.
func unpack(carrier *os.File) ([]*os.File, error) {
	defer carrier.Close()
	raw, err := carrier.SyscallConn()
	if err != nil {
		return nil, fmt.Errorf("fd carrier: %w", err)
	}
	var out []*os.File
	var recvErr error
	ctlErr := raw.Control(func(fd uintptr) {
		buf := make([]byte, 8)
		oob := make([]byte, unix.CmsgSpace(carrierBatch*4))
		for {
			n, oobn, flags, _, err := unix.Recvmsg(int(fd), buf, oob, unix.MSG_DONTWAIT|unix.MSG_CMSG_CLOEXEC)
			if errors.Is(err, unix.EAGAIN) {
				return
			}
			if err != nil {
				recvErr = fmt.Errorf("fd carrier: receive: %w", err)
				return
			}
			got, err := parseRights(oob[:oobn])
			for _, nfd := range got {
				out = append(out, os.NewFile(uintptr(nfd), "fd-carrier-item"))
			}
			switch {
			case err != nil:
				recvErr = fmt.Errorf("fd carrier: %w", err)
				return
			case flags&unix.MSG_CTRUNC != 0:
				// The receiver's RLIMIT_NOFILE ran out: the rest are lost.
				recvErr = errors.New("fd carrier: descriptors truncated (open file limit reached?)")
				return
			case n != 8:
				recvErr = fmt.Errorf("fd carrier: message of %d bytes", n)
				return
			}
			start := int(binary.BigEndian.Uint32(buf[:4]))
			count := int(binary.BigEndian.Uint32(buf[4:]))
			if start != len(out)-len(got) || count != len(got) {
				recvErr = fmt.Errorf("fd carrier: batch at %d with %d descriptors, want %d at %d", start, len(got), count, len(out)-len(got))
				return
			}
		}
	})
	if ctlErr != nil {
		return out, fmt.Errorf("fd carrier: %w", ctlErr)
	}
	return out, recvErr
}

func parseRights(oob []byte) ([]int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return nil, fmt.Errorf("control message: %w", err)
	}
	var fds []int
	for _, m := range msgs {
		got, err := unix.ParseUnixRights(&m)
		if err != nil {
			continue
		}
		fds = append(fds, got...)
	}
	return fds, nil
}
