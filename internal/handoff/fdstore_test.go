package handoff

import (
	"errors"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// listen makes a notification socket like systemd's and points
// $NOTIFY_SOCKET at it.
func listen(t *testing.T) *net.UnixConn {
	t.Helper()
	path := filepath.Join(t.TempDir(), "notify")
	c, err := net.ListenUnixgram("unixgram", &net.UnixAddr{Name: path, Net: "unixgram"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	t.Setenv("NOTIFY_SOCKET", path)
	return c
}

// recv reads one message and the descriptors that came with it.
func recv(t *testing.T, c *net.UnixConn) (string, []*os.File) {
	t.Helper()
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(16*4))
	_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		t.Fatal(err)
	}
	var files []*os.File
	msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
	for _, m := range msgs {
		fds, _ := unix.ParseUnixRights(&m)
		for _, fd := range fds {
			files = append(files, os.NewFile(uintptr(fd), "received"))
		}
	}
	return string(buf[:n]), files
}

func TestFDStoreMessages(t *testing.T) {
	c := listen(t)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	tests := []struct {
		name  string
		send  func() error
		want  string
		files int
	}{
		{"store", func() error { return storeFD("pacemaker-state", w, true) }, "FDSTORE=1\nFDNAME=pacemaker-state", 1},
		{"store without poll", func() error { return storeFD("pmconns", w, false) }, "FDSTORE=1\nFDNAME=pmconns\nFDPOLL=0", 1},
		{"remove", func() error { return removeFD("pmconns") }, "FDSTOREREMOVE=1\nFDNAME=pmconns", 0},
		{"plain", func() error { return notify("STATUS=hi") }, "STATUS=hi", 0},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if err := tc.send(); err != nil {
				t.Fatal(err)
			}
			got, files := recv(t, c)
			if got != tc.want || len(files) != tc.files {
				t.Fatalf("got %q with %d descriptors; want %q with %d", got, len(files), tc.want, tc.files)
			}
			for _, f := range files {
				f.Close()
			}
		})
	}
	// The caller keeps its own descriptor.
	if _, err := w.Write([]byte("x")); err != nil {
		t.Fatalf("sender's copy: %v", err)
	}
	w.Close()
}

func TestBarrier(t *testing.T) {
	c := listen(t)
	done := make(chan error, 1)
	go func() { done <- barrier(5 * time.Second) }()
	msg, files := recv(t, c)
	if msg != "BARRIER=1" || len(files) != 1 {
		t.Fatalf("got %q with %d descriptors", msg, len(files))
	}
	select {
	case err := <-done:
		t.Fatalf("barrier returned before the manager closed its descriptor: %v", err)
	case <-time.After(100 * time.Millisecond):
	}
	files[0].Close()
	if err := <-done; err != nil {
		t.Fatal(err)
	}

	// A manager that never gets there: the barrier times out.
	go func() { done <- barrier(200 * time.Millisecond) }()
	_, files = recv(t, c)
	defer files[0].Close()
	if err := <-done; err == nil || !strings.Contains(err.Error(), "did not answer") {
		t.Fatalf("barrier without an answer: %v", err)
	}
}

func TestNoSocket(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	if err := notify("READY=1"); !errors.Is(err, errNoSocket) {
		t.Fatalf("got %v, want errNoSocket", err)
	}
}
