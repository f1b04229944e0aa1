package handoff

// systemd's file-descriptor store is where the hand-over waits between the
// two processes. These are the notifications go-systemd's daemon package
// cannot send: messages that carry file descriptors (FDSTORE=1) and
// barriers that wait until systemd has processed every earlier message.
// Plain notifications (READY=1, STATUS=, WATCHDOG=1, ...) go through
// github.com/coreos/go-systemd/v22/daemon.

import (
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// errNoSocket is returned when $NOTIFY_SOCKET is not set: the process does
// not run under a service manager that listens.
var errNoSocket = errors.New("NOTIFY_SOCKET is not set")

// sendTimeout bounds one send, in seconds.
const sendTimeout = 5

// notify sends state with files attached (SCM_RIGHTS) to the service
// manager's notification socket ($NOTIFY_SOCKET; a leading '@' names an
// abstract socket). systemd keeps its own duplicates; the caller still
// owns files and closes them.
func notify(state string, files ...*os.File) error {
	addr := os.Getenv("NOTIFY_SOCKET")
	if addr == "" {
		return errNoSocket
	}
	sock, err := unix.Socket(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("notify socket: %w", err)
	}
	defer unix.Close(sock)
	// A service manager that stopped reading must not hang us for good.
	_ = unix.SetsockoptTimeval(sock, unix.SOL_SOCKET, unix.SO_SNDTIMEO, &unix.Timeval{Sec: sendTimeout})
	fds := make([]int, len(files))
	for i, f := range files {
		fds[i] = int(f.Fd())
	}
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	// SockaddrUnix turns a leading '@' into an abstract address.
	to := &unix.SockaddrUnix{Name: addr}
	// ETOOMANYREFS: too many descriptors in flight for this user at once;
	// systemd drains its socket quickly, so wait a little and retry.
	for attempt := 0; ; attempt++ {
		err = unix.Sendmsg(sock, []byte(state), oob, to, 0)
		if !errors.Is(err, unix.ETOOMANYREFS) || attempt >= 50 {
			break
		}
		time.Sleep(20 * time.Millisecond)
	}
	runtime.KeepAlive(files)
	if err != nil {
		return fmt.Errorf("notify %q with %d descriptors: %w", firstLine(state), len(fds), err)
	}
	return nil
}

// storeFD puts f into the service manager's file-descriptor store under name.
// poll=false (FDPOLL=0) keeps systemd from dropping f when it reports
// POLLHUP, e.g. a socket whose peer is gone but whose queue still matters.
func storeFD(name string, f *os.File, poll bool) error {
	state := "FDSTORE=1\nFDNAME=" + name
	if !poll {
		state += "\nFDPOLL=0"
	}
	return notify(state, f)
}

// removeFD asks the service manager to close every stored descriptor named name.
func removeFD(name string) error {
	return notify("FDSTOREREMOVE=1\nFDNAME=" + name)
}

// barrier returns once the service manager has processed every message sent
// before it (BARRIER=1: it closes the descriptor it receives when it gets
// there), or an error after timeout. A process about to exit uses it so
// that its last messages are not attributed to a process that is gone.
func barrier(timeout time.Duration) error {
	r, w, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("barrier pipe: %w", err)
	}
	defer r.Close()
	err = notify("BARRIER=1", w)
	w.Close()
	if err != nil {
		return err
	}
	// Our copy of w is closed: read returns EOF once systemd closed its copy.
	if err := r.SetReadDeadline(time.Now().Add(timeout)); err != nil {
		return fmt.Errorf("barrier: %w", err)
	}
	var b [1]byte
	n, err := r.Read(b[:])
	switch {
	case errors.Is(err, io.EOF):
		return nil
	case errors.Is(err, os.ErrDeadlineExceeded):
		return fmt.Errorf("barrier: the service manager did not answer within %s", timeout)
	case err != nil:
		return fmt.Errorf("barrier: %w", err)
	}
	return fmt.Errorf("barrier: %d unexpected bytes on the barrier pipe", n)
}

func firstLine(s string) string {
	line, _, _ := strings.Cut(s, "\n")
	return line
}
