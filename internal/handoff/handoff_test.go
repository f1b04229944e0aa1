package handoff

import (
	"errors"
	"io"
	"log/slog"
	"net"
	"os"
	"slices"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/storm-pacemaker/pacemaker/internal/store"
)

// named is f under another name, as activation.Files names what systemd
// passed by $LISTEN_FDNAMES.
func named(t *testing.T, f *os.File, name string) *os.File {
	t.Helper()
	fd, err := unix.Dup(int(f.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	f.Close()
	return os.NewFile(uintptr(fd), name)
}

// connPair returns the server side of a TCP connection as a file, and the
// client side.
func connPair(t *testing.T, ln net.Listener) (*os.File, net.Conn) {
	t.Helper()
	client, err := net.Dial("tcp", ln.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { client.Close() })
	server, err := ln.Accept()
	if err != nil {
		t.Fatal(err)
	}
	defer server.Close()
	f, err := server.(*net.TCPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	return f, client
}

// TestGiveTakeRestore: what Give stores in the fd store, passed to Take
// beside a listening socket as systemd passes it, restores the heartbeats,
// the sections and the very same connections; the listening socket is left
// to the caller, an unknown descriptor is dropped, and everything is
// removed from the store.
func TestGiveTakeRestore(t *testing.T) {
	manager := listen(t)
	log := slog.New(slog.DiscardHandler)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	f1, client1 := connPair(t, ln)
	f2, client2 := connPair(t, ln)
	given := []Conn{
		{File: f1, Peer: "10.0.0.1:1", Authenticated: true, Identity: "nimbus", Method: "DIGEST", Credentials: "fp", Pending: []byte{0, 0}},
		{File: f2, Peer: "10.0.0.2:2"},
	}
	st := store.New(store.Limits{})
	_ = st.Put("/wb/t/a", []byte("one"))

	type result struct {
		handed int
		err    error
	}
	done := make(chan result, 1)
	go func() {
		n, err := Give(log, st, given, Section{Name: "replays", Data: []byte("r")})
		done <- result{n, err}
	}()
	stored := map[string]*os.File{}
	for range 2 {
		msg, files := recv(t, manager)
		if len(files) != 1 {
			t.Fatalf("%q came with %d descriptors", msg, len(files))
		}
		switch msg {
		case "FDSTORE=1\nFDNAME=" + connsName + "\nFDPOLL=0":
			stored[connsName] = named(t, files[0], connsName)
		case "FDSTORE=1\nFDNAME=" + stateName:
			stored[stateName] = named(t, files[0], stateName)
		default:
			t.Fatalf("unexpected message %q", msg)
		}
	}
	msg, files := recv(t, manager)
	if msg != "BARRIER=1" || len(files) != 1 {
		t.Fatalf("got %q with %d descriptors, want the barrier", msg, len(files))
	}
	files[0].Close()
	if r := <-done; r.handed != 2 || r.err != nil {
		t.Fatalf("Give: %d connections handed, err %v", r.handed, r.err)
	}
	if _, err := f1.Write([]byte("x")); !errors.Is(err, os.ErrClosed) {
		t.Fatalf("Give left its copy of a socket open: %v", err)
	}

	lnFile, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	stale, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer w.Close()
	passed := []*os.File{named(t, lnFile, "pacemaker.socket"), stored[stateName], named(t, stale, "left-by-another-version"), stored[connsName]}
	prev, rest := Take(log, passed)
	if prev == nil || len(rest) != 1 || rest[0] != passed[0] {
		t.Fatalf("Take: %v, rest %v; want the hand-over and the listening socket", prev, rest)
	}
	rest[0].Close()
	if _, err := w.Write([]byte("x")); !errors.Is(err, unix.EPIPE) {
		t.Fatalf("the unknown descriptor is still open: %v", err)
	}

	succ := store.New(store.Limits{})
	conns, sections, lost, err := prev.Restore(succ)
	if err != nil || lost != 0 {
		t.Fatalf("Restore: lost %d, err %v", lost, err)
	}
	if v, _ := succ.Get("/wb/t/a"); string(v) != "one" {
		t.Fatalf("heartbeat %q", v)
	}
	if len(sections) != 1 || sections[0].Name != "replays" || string(sections[0].Data) != "r" {
		t.Fatalf("sections %q", sections)
	}
	if len(conns) != 2 {
		t.Fatalf("%d connections taken over, want 2", len(conns))
	}
	for i, client := range []net.Conn{client1, client2} {
		c := conns[i]
		if c.Peer != given[i].Peer || c.Identity != given[i].Identity || c.Method != given[i].Method ||
			c.Credentials != given[i].Credentials || !slices.Equal(c.Pending, given[i].Pending) {
			t.Fatalf("connection %d: %+v, want %+v", i, c, given[i])
		}
		// The same connection: what the successor writes, the client reads.
		if _, err := c.File.Write([]byte{byte('a' + i)}); err != nil {
			t.Fatal(err)
		}
		c.File.Close()
		b := make([]byte, 2)
		if n, _ := io.ReadFull(client, b); n != 1 || b[0] != byte('a'+i) {
			t.Fatalf("client %d read %q", i, b[:n])
		}
	}
	var removed []string
	for range 3 {
		msg, _ := recv(t, manager)
		removed = append(removed, msg)
	}
	want := []string{"FDSTOREREMOVE=1\nFDNAME=left-by-another-version", "FDSTOREREMOVE=1\nFDNAME=" + connsName, "FDSTOREREMOVE=1\nFDNAME=" + stateName}
	slices.Sort(want)
	if !slices.Equal(removed, want) {
		t.Fatalf("removed from the fd store %q, want %q", removed, want)
	}
}

// TestTakeConnectionsWithoutState: a carrier without its snapshot is
// useless (nothing says where the streams stand): closed and removed from
// the store, and nothing is taken over.
func TestTakeConnectionsWithoutState(t *testing.T) {
	manager := listen(t)
	carrier, err := pack(nil)
	if err != nil {
		t.Fatal(err)
	}
	prev, rest := Take(slog.New(slog.DiscardHandler), []*os.File{named(t, carrier, connsName)})
	if prev != nil || len(rest) != 0 {
		t.Fatalf("Take: %v, rest %v; want nothing", prev, rest)
	}
	if msg, _ := recv(t, manager); msg != "FDSTOREREMOVE=1\nFDNAME="+connsName {
		t.Fatalf("got %q, want the carrier removed from the store", msg)
	}
}

// TestGiveWithoutServiceManager: with nowhere to store them, nothing is
// handed over, Give says so, and the sockets are closed all the same.
func TestGiveWithoutServiceManager(t *testing.T) {
	t.Setenv("NOTIFY_SOCKET", "")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	handed, err := Give(slog.New(slog.DiscardHandler), store.New(store.Limits{}), []Conn{{File: w}})
	if handed != 0 || !errors.Is(err, errNoSocket) {
		t.Fatalf("Give: %d handed, err %v; want 0 and %v", handed, err, errNoSocket)
	}
	if n, err := r.Read(make([]byte, 1)); n != 0 || err != io.EOF {
		t.Fatalf("the socket Give was handed is still open: read %d, %v", n, err)
	}
}
