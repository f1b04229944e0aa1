// Package replay plays traffic recorded between Storm's own Java client and
// server (../shared/testdata/storm-wire) against our daemon and requires
// Storm's server's answers back, byte for byte.
package replay

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"io"
	"net"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

func TestMain(m *testing.M) { os.Exit(daemon.Main(m)) }

// frame is one recorded frame, length prefix included.
type frame struct {
	fromClient bool
	line       int
	raw        []byte
}

func (f frame) body() []byte { return f.raw[4:] }

func (f frame) decode(t *testing.T) *wire.Message {
	t.Helper()
	var m wire.Message
	if err := wire.Decode(f.body(), &m); err != nil {
		t.Fatalf("recording line %d: %v", f.line, err)
	}
	return &m
}

// loadRecording reads one recording, skipping the test when the shared
// team fixtures are not checked out beside the repository.
func loadRecording(t *testing.T, name string) []frame {
	t.Helper()
	dir := filepath.Join(daemon.RepoRoot(t), "..", "shared", "testdata", "storm-wire")
	data, err := os.ReadFile(filepath.Join(dir, name))
	if errors.Is(err, os.ErrNotExist) {
		t.Skipf("SKIPPING replay: %s not found (the shared Storm recordings are not beside the repository)", filepath.Join(dir, name))
	}
	if err != nil {
		t.Fatal(err)
	}
	var frames []frame
	for i, line := range strings.Split(string(data), "\n") {
		dir, hx, ok := strings.Cut(strings.TrimSpace(line), " ")
		if !ok || (dir != "C" && dir != "S") {
			continue
		}
		raw, err := hex.DecodeString(hx)
		if err != nil || len(raw) < 4 {
			t.Fatalf("%s line %d: bad frame: %v", name, i+1, err)
		}
		frames = append(frames, frame{fromClient: dir == "C", line: i + 1, raw: raw})
	}
	if len(frames) == 0 {
		t.Fatalf("%s: no frames", name)
	}
	return frames
}

// session is one client connection to the daemon.
type session struct {
	t    *testing.T
	conn net.Conn
	fr   *wire.FrameReader
}

func dial(t *testing.T, addr string) *session {
	t.Helper()
	conn, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close() })
	return &session{t: t, conn: conn, fr: wire.NewFrameReader(bufio.NewReader(conn), wire.DefaultMaxFrame)}
}

func (s *session) send(raw []byte) {
	s.t.Helper()
	s.conn.SetWriteDeadline(time.Now().Add(5 * time.Second))
	if _, err := s.conn.Write(raw); err != nil {
		s.t.Fatalf("send: %v", err)
	}
}

// receive returns the next whole frame from the daemon, prefix included.
func (s *session) receive(what string) []byte {
	s.t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	body, err := s.fr.Next()
	if err != nil {
		s.t.Fatalf("waiting for %s: %v", what, err)
	}
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(body))), body...)
}

// expectClosed requires the daemon to close the connection without
// sending another frame.
func (s *session) expectClosed(what string) {
	s.t.Helper()
	s.conn.SetReadDeadline(time.Now().Add(5 * time.Second))
	body, err := s.fr.Next()
	switch {
	case err == nil:
		var m wire.Message
		_ = wire.Decode(body, &m)
		s.t.Fatalf("%s: got a frame %v (% x), want the connection closed", what, &m, body)
	case errors.Is(err, os.ErrDeadlineExceeded):
		s.t.Fatalf("%s: connection still open after 5 s, want it closed", what)
	case errors.Is(err, io.EOF), errors.Is(err, io.ErrUnexpectedEOF), isReset(err):
	default:
		s.t.Fatalf("%s: %v", what, err)
	}
}

func isReset(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && strings.Contains(op.Err.Error(), "reset")
}

// checkAnswer compares the daemon's frame with Storm's server's: byte for
// byte, except that a GET_ALL_NODES_FOR_PATH_RESPONSE's list is a set.
func checkAnswer(t *testing.T, want frame, got []byte) {
	t.Helper()
	if bytes.Equal(got, want.raw) {
		return
	}
	wm := want.decode(t)
	var gm wire.Message
	gerr := wire.Decode(got[4:], &gm)
	if gerr == nil && wm.Type == wire.GetAllNodesForPathResponse && wm.Field == wire.FieldNodes &&
		gm.Type == wm.Type && gm.Field == wm.Field && gm.MessageID() == wm.MessageID() && gm.HasID == wm.HasID &&
		sameSet(gm.Nodes, wm.Nodes) {
		return
	}
	t.Errorf("recording line %d: answer differs\n got % x (%v, decode err %v)\nwant % x (%v)", want.line, got, &gm, gerr, want.raw, wm)
}

func sameSet(a, b []string) bool {
	a, b = slices.Clone(a), slices.Clone(b)
	slices.Sort(a)
	slices.Sort(b)
	return slices.Equal(a, b)
}

// replay sends every client frame and checks every server frame in the
// recorded order. rewrite, if not nil, may replace a client frame (for
// fresh SASL responses); check, if not nil, may take over the comparison of
// a server frame (returning false leaves it to checkAnswer).
func replay(t *testing.T, s *session, frames []frame,
	rewrite func(f frame) []byte, check func(f frame, got []byte) bool) int {
	t.Helper()
	answers := 0
	for _, f := range frames {
		if f.fromClient {
			raw := f.raw
			if rewrite != nil {
				raw = rewrite(f)
			}
			s.send(raw)
			continue
		}
		got := s.receive("the answer of recording line " + strconv.Itoa(f.line))
		if check == nil || !check(f, got) {
			checkAnswer(t, f, got)
		}
		answers++
	}
	return answers
}

// TestReplayNoneAllOps: every request type against auth NONE.
func TestReplayNoneAllOps(t *testing.T) {
	frames := loadRecording(t, "none-all-ops.txt")
	p := daemon.Start(t, daemon.Options{})
	n := replay(t, dial(t, p.Addr()), frames, nil, nil)
	t.Logf("%d answers match Storm's server", n)
}

// TestReplayNoneAllOpsTwice replays the conversation twice on two
// connections: the second run must see the first one's deletions.
func TestReplayNoneAllOpsTwice(t *testing.T) {
	frames := loadRecording(t, "none-all-ops.txt")
	p := daemon.Start(t, daemon.Options{})
	for range 2 {
		replay(t, dial(t, p.Addr()), frames, nil, nil)
	}
}

// TestReplayNoneAllOpsPipelined sends every request before reading any
// answer, as Storm's client may with up to 100 in flight. Answers may come
// in any order; each must match Storm's answer with the same message_id.
// (The recording's requests are sequential, so order among them is what a
// single connection's in-order handling gives.)
func TestReplayNoneAllOpsPipelined(t *testing.T) {
	frames := loadRecording(t, "none-all-ops.txt")
	p := daemon.Start(t, daemon.Options{})
	s := dial(t, p.Addr())
	var all []byte
	want := map[int32]frame{}
	for _, f := range frames {
		if f.fromClient {
			all = append(all, f.raw...)
		} else {
			want[f.decode(t).MessageID()] = f
		}
	}
	s.send(all)
	for len(want) > 0 {
		got := s.receive("a pipelined answer")
		var m wire.Message
		if err := wire.Decode(got[4:], &m); err != nil {
			t.Fatalf("answer % x: %v", got, err)
		}
		f, ok := want[m.MessageID()]
		if !ok {
			t.Fatalf("answer %v: unexpected or repeated message_id", &m)
		}
		delete(want, m.MessageID())
		checkAnswer(t, f, got)
	}
}
