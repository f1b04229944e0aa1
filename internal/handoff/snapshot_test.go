package handoff

import (
	"encoding/hex"
	"io"
	"os"
	"slices"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/golden"
)

func TestSnapshotRoundTrip(t *testing.T) {
	st := store.New(store.Limits{})
	_ = st.Put("/wb/t1/a", []byte("one"))
	_ = st.Put("/wb/t1/b", []byte{})
	_ = st.Put("/wb/t2/c", make([]byte, 100000))
	conns := []Conn{
		{Peer: "10.0.0.1:5000", Authenticated: true, Identity: "nimbus@EXAMPLE.COM", Pending: []byte{0, 0}},
		{Peer: "10.0.0.2:5001"},
	}
	replays := Section{Name: "kerberos-replay-cache", Data: []byte("PMRC1...")}
	f, err := writeSnapshot(st, conns, []Section{replays, {Name: "empty"}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := f.Write([]byte("x")); err == nil {
		t.Fatal("sealed memfd accepted a write")
	}
	succ := store.New(store.Limits{})
	got, sections, err := readSnapshot(f, succ)
	if err != nil {
		t.Fatal(err)
	}
	if len(sections) != 2 || sections[0].Name != replays.Name || string(sections[0].Data) != "PMRC1..." || sections[1].Name != "empty" || len(sections[1].Data) != 0 {
		t.Fatalf("sections %q", sections)
	}
	if succ.Keys() != 3 || succ.Bytes() != st.Bytes() {
		t.Fatalf("restored %d keys %d bytes", succ.Keys(), succ.Bytes())
	}
	if v, _ := succ.Get("/wb/t1/a"); string(v) != "one" {
		t.Fatalf("value %q", v)
	}
	if n := succ.Children("/wb"); len(n) != 2 {
		t.Fatalf("index not rebuilt: %q", n)
	}
	if len(got) != 2 || got[0].Identity != "nimbus@EXAMPLE.COM" || !got[0].Authenticated || got[1].Authenticated ||
		!slices.Equal(got[0].Pending, []byte{0, 0}) || got[1].index != 1 || got[1].Peer != "10.0.0.2:5001" {
		t.Fatalf("conns %+v", got)
	}
}

func TestDamagedSnapshotRestoresNothing(t *testing.T) {
	st := store.New(store.Limits{})
	_ = st.Put("/a", []byte("x"))
	f, err := writeSnapshot(st, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	b := make([]byte, 64)
	n, _ := f.ReadAt(b, 0)
	f.Close()
	b[n-6] ^= 0xff
	fd, _ := unix.MemfdCreate("t", 0)
	g := os.NewFile(uintptr(fd), "t")
	defer g.Close()
	g.Write(b[:n])
	succ := store.New(store.Limits{})
	if _, _, err := readSnapshot(g, succ); err == nil || succ.Keys() != 0 {
		t.Fatalf("damaged snapshot: err %v, %d keys", err, succ.Keys())
	}

}

// TestSectionsFollowTheEnd: sections only append to what a snapshot
// without them holds, after the end record, where readers from before
// sections existed stop: a downgrade across a restart keeps the heartbeats.
func TestSectionsFollowTheEnd(t *testing.T) {
	st := store.New(store.Limits{})
	_ = st.Put("/a", []byte("x"))
	conns := []Conn{{Peer: "10.0.0.1:1"}}
	read := func(f *os.File) []byte {
		t.Helper()
		defer f.Close()
		b := make([]byte, 4096)
		n, _ := f.ReadAt(b, 0)
		return b[:n-4] // without the checksum
	}
	plain, err := writeSnapshot(st, conns, nil)
	if err != nil {
		t.Fatal(err)
	}
	withSec, err := writeSnapshot(st, conns, []Section{{Name: "n", Data: []byte("data")}})
	if err != nil {
		t.Fatal(err)
	}
	a, b := read(plain), read(withSec)
	if len(b) <= len(a) || string(b[:len(a)]) != string(a) || a[len(a)-1] != tagEnd {
		t.Fatalf("a snapshot with a section does not extend the one without after the end record:\n%x\n%x", a, b)
	}
}

// TestSnapshotFormat pins the snapshot's bytes (testdata/snapshot.golden,
// written by the release that introduced sections): a restart from the
// previous release to this one, and back, must keep the heartbeats, so the
// format may only grow where old readers stop (after the end record).
func TestSnapshotFormat(t *testing.T) {
	st := store.New(store.Limits{})
	st.Restore("/workerbeats/topo-1/sup-6700", []byte("beat"), time.Unix(1700000000, 123456789))
	conns := []Conn{
		{Peer: "10.0.0.1:5000", Authenticated: true, Identity: "nimbus", Method: "DIGEST", Credentials: "fp", Pending: []byte{0, 0, 0, 9}},
		{Peer: "[::1]:5001"},
	}
	f, err := writeSnapshot(st, conns, []Section{{Name: "kerberos-replay-cache", Data: []byte("PMRC1")}})
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<20))
	if err != nil {
		t.Fatal(err)
	}
	golden.Check(t, "testdata/snapshot.golden", []byte(hex.Dump(b)))
}
