package server

import (
	"bytes"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// waitBuffered waits until nothing is held of the buffered budget.
func waitBuffered(t *testing.T, ts *testServer) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		used, _ := ts.srv.Buffered()
		if used == 0 {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%d bytes of the buffered budget still held", used)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestSlowReaderGetsEveryAnswer: a peer that pipelines more reads than its
// socket can hold answers for, and reads them only later, is paused (not
// read on) meanwhile and then gets every answer, in order; the budget is
// whole again afterwards.
func TestSlowReaderGetsEveryAnswer(t *testing.T) {
	ts := startServer(t, defaultSettings(), store.Limits{})
	value := bytes.Repeat([]byte("v"), 64<<10)
	w := ts.dial(t)
	w.send(&wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: "/big", Details: value}, ID: 1, HasID: true})
	w.recv()

	const reads = 300 // 19 MiB of answers: far more than the socket buffers
	r := ts.dial(t)
	var burst []byte
	for i := range reads {
		burst = wire.AppendFrame(burst, path(wire.GetPulse, "/big", int32(i)))
	}
	r.sendRaw(burst)
	time.Sleep(300 * time.Millisecond)
	held := ts.srv.eng.PendingBytes() // answers the full socket refused
	t.Logf("held while the socket was full: %d bytes", held)
	for i := range reads {
		m := r.recv()
		if m.ID != int32(i) || !bytes.Equal(m.Pulse.Details, value) {
			t.Fatalf("answer %d: id %d, %d bytes", i, m.ID, len(m.Pulse.Details))
		}
	}
	if held == 0 || held > 2*64<<10+writeCredit {
		// Answers past the credit are not taken on while the socket is
		// full: what is held is the rest of the last answers written
		// (reserved from the budget), not 19 MiB.
		t.Errorf("%d bytes of answers held while the socket was full", held)
	}
	waitBuffered(t, ts)
}

// TestBudgetWaiterGoesOnWhenMemoryComesBack: with the buffered budget
// held by one large frame still arriving, a second large frame waits
// (paused) instead of failing, and is served once the first is done.
func TestBudgetWaiterGoesOnWhenMemoryComesBack(t *testing.T) {
	s := defaultSettings()
	s.MaxBuffered = 300 << 10
	s.FrameTimeout = 5 * time.Second
	ts := startServer(t, s, store.Limits{})
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("server log:\n%s", ts.log.String())
		}
	})
	frameOf := func(key string, id int32) []byte {
		return wire.AppendFrame(nil, &wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse,
			Pulse: wire.Pulse{ID: key, Details: bytes.Repeat([]byte("x"), 200<<10)}, ID: id, HasID: true})
	}
	first, second := frameOf("/first", 1), frameOf("/second", 2)
	a, b := ts.dial(t), ts.dial(t)
	// All of the first frame but its last byte: the connection reserves
	// the whole frame (200 KiB of the 300) and cannot need more, so the
	// two cannot each hold part and wait for the other (that deadlock is
	// what evicting the largest holder after a frame timeout is for).
	a.sendRaw(first[:len(first)-1])
	time.Sleep(100 * time.Millisecond)
	b.sendRaw(second) // wants 200 KiB: must wait
	time.Sleep(200 * time.Millisecond)
	if _, ok := ts.srv.Store().Get("/second"); ok {
		t.Fatal("the second frame was served past the budget")
	}
	a.sendRaw(first[len(first)-1:])
	if m := a.recv(); m.Type != wire.SendPulseResponse || m.ID != 1 {
		t.Fatalf("first: %s", m)
	}
	if m := b.recv(); m.Type != wire.SendPulseResponse || m.ID != 2 {
		t.Fatalf("second: %s", m)
	}
	if strings.Contains(ts.log.String(), "budget spent") {
		t.Fatalf("a waiter was given up on:\n%s", ts.log.String())
	}
	waitBuffered(t, ts)
}
