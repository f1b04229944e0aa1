// Package replay plays traffic recorded between Storm's own Java client and
// server (internal/testutil/stormwire) against our daemon and requires
// Storm's server's answers back, byte for byte.
package replay

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/stormwire"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

func TestMain(m *testing.M) { os.Exit(daemon.Main(m)) }

// frame is one recorded frame, length prefix included.
type frame = stormwire.Frame

func decode(t *testing.T, f frame) *wire.Message {
	t.Helper()
	var m wire.Message
	if err := wire.Decode(f.Body(), &m); err != nil {
		t.Fatalf("recording line %d: %v", f.Line, err)
	}
	return &m
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
	if bytes.Equal(got, want.Raw) {
		return
	}
	wm := decode(t, want)
	var gm wire.Message
	gerr := wire.Decode(got[4:], &gm)
	if gerr == nil && wm.Type == wire.GetAllNodesForPathResponse && wm.Field == wire.FieldNodes &&
		gm.Type == wm.Type && gm.Field == wm.Field && gm.MessageID() == wm.MessageID() && gm.HasID == wm.HasID &&
		sameSet(gm.Nodes, wm.Nodes) {
		return
	}
	t.Errorf("recording line %d: answer differs\n got % x (%v, decode err %v)\nwant % x (%v)", want.Line, got, &gm, gerr, want.Raw, wm)
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
		if f.FromClient {
			raw := f.Raw
			if rewrite != nil {
				raw = rewrite(f)
			}
			s.send(raw)
			continue
		}
		got := s.receive("the answer of recording line " + strconv.Itoa(f.Line))
		if check == nil || !check(f, got) {
			checkAnswer(t, f, got)
		}
		answers++
	}
	return answers
}

// TestReplayNoneAllOps: every request type against auth NONE.
func TestReplayNoneAllOps(t *testing.T) {
	frames := stormwire.Load(t, "none-all-ops.txt")
	p := daemon.Start(t, daemon.Options{})
	n := replay(t, dial(t, p.Addr()), frames, nil, nil)
	t.Logf("%d answers match Storm's server", n)
}

// TestReplayNoneAllOpsTwice replays the conversation twice on two
// connections: the second run must see the first one's deletions.
func TestReplayNoneAllOpsTwice(t *testing.T) {
	frames := stormwire.Load(t, "none-all-ops.txt")
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
	frames := stormwire.Load(t, "none-all-ops.txt")
	p := daemon.Start(t, daemon.Options{})
	s := dial(t, p.Addr())
	var all []byte
	want := map[int32]frame{}
	for _, f := range frames {
		if f.FromClient {
			all = append(all, f.Raw...)
		} else {
			want[decode(t, f).MessageID()] = f
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
