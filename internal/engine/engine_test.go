package engine

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// echoHandler answers every length-prefixed frame with the same frame; its
// hooks let a test pause, fail or watch.
type echoHandler struct {
	t      *testing.T
	closed chan closeEvent

	mu     sync.Mutex
	opened []*Conn

	// onFrame, when set, runs for each whole frame; it says whether to
	// consume it (else it stays unconsumed and OnData returns) and whether
	// to echo it.
	onFrame func(c *Conn, body []byte) (consume, echo bool)
	// onOpen, when set, runs at OnOpen.
	onOpen    func(c *Conn) error
	onWritten func(c *Conn)
}

type closeEvent struct {
	ctx    any
	err    error
	unread []byte
}

func newEcho(t *testing.T) *echoHandler {
	return &echoHandler{t: t, closed: make(chan closeEvent, 1024)}
}

func (h *echoHandler) OnOpen(c *Conn) error {
	h.mu.Lock()
	h.opened = append(h.opened, c)
	h.mu.Unlock()
	if h.onOpen != nil {
		return h.onOpen(c)
	}
	return nil
}

func (h *echoHandler) OnData(c *Conn, in []byte) (int, error) {
	used := 0
	for len(in)-used >= 4 {
		n := int(binary.BigEndian.Uint32(in[used:]))
		if n > 1<<20 {
			return used, fmt.Errorf("frame of %d bytes", n)
		}
		if len(in)-used-4 < n {
			break
		}
		frame := in[used : used+4+n]
		consume, echo := true, true
		if h.onFrame != nil {
			consume, echo = h.onFrame(c, frame[4:])
		}
		if !consume {
			break
		}
		if echo {
			c.SetOut(append(c.Out(), frame...))
		}
		used += 4 + n
	}
	return used, nil
}

func (h *echoHandler) OnWritten(c *Conn) {
	if h.onWritten != nil {
		h.onWritten(c)
	}
}

func (h *echoHandler) OnClose(c *Conn, err error) {
	h.closed <- closeEvent{ctx: c.Context(), err: err, unread: append([]byte(nil), c.Unread()...)}
}

func (h *echoHandler) waitClose(t *testing.T) closeEvent {
	t.Helper()
	select {
	case ev := <-h.closed:
		return ev
	case <-time.After(10 * time.Second):
		t.Fatal("no OnClose within 10s")
	}
	return closeEvent{}
}

// start runs an engine with h on a fresh loopback listener; two loops
// unless cfg says otherwise (-1: the default).
func start(t testing.TB, h Handler, cfg Config) (*Engine, string) {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	cfg.Handler = h
	switch cfg.Loops {
	case 0:
		cfg.Loops = 2
	case -1:
		cfg.Loops = 0
	}
	e, err := New(cfg)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Listen(int(f.Fd())); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = e.Close()
		f.Close()
		ln.Close()
	})
	return e, ln.Addr().String()
}

func frame(body string) []byte {
	b := binary.BigEndian.AppendUint32(nil, uint32(len(body)))
	return append(b, body...)
}

func readFrame(t *testing.T, r io.Reader) string {
	t.Helper()
	var hdr [4]byte
	if _, err := io.ReadFull(r, hdr[:]); err != nil {
		t.Fatalf("read frame: %v", err)
	}
	body := make([]byte, binary.BigEndian.Uint32(hdr[:]))
	if _, err := io.ReadFull(r, body); err != nil {
		t.Fatalf("read frame body: %v", err)
	}
	return string(body)
}

func dial(t *testing.T, addr string) net.Conn {
	t.Helper()
	nc, err := net.Dial("tcp", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { nc.Close() })
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	return nc
}

func TestEchoManyConnsPipelined(t *testing.T) {
	h := newEcho(t)
	_, addr := start(t, h, Config{ReadBufferSize: 4096})
	var wg sync.WaitGroup
	errs := make(chan error, 16)
	for i := range 16 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			nc, err := net.Dial("tcp", addr)
			if err != nil {
				errs <- err
				return
			}
			defer nc.Close()
			_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
			// A burst larger than the read buffer, frames split across reads.
			var burst []byte
			for j := range 200 {
				burst = append(burst, frame(fmt.Sprintf("conn %d frame %d %s", i, j, bytes.Repeat([]byte("x"), j%50)))...)
			}
			go func() { _, _ = nc.Write(burst) }()
			got := make([]byte, len(burst))
			if _, err := io.ReadFull(nc, got); err != nil {
				errs <- err
				return
			}
			if !bytes.Equal(got, burst) {
				errs <- fmt.Errorf("conn %d: answers differ from the requests", i)
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	for range 16 {
		if ev := h.waitClose(t); ev.err != io.EOF {
			t.Errorf("close reason %v, want io.EOF", ev.err)
		}
	}
}

func TestIdleConnHoldsNoBuffers(t *testing.T) {
	h := newEcho(t)
	e, addr := start(t, h, Config{})
	nc := dial(t, addr)
	req := frame("hello")
	_, _ = nc.Write(req[:5])
	deadline := time.Now().Add(10 * time.Second)
	for e.KeptBytes() != 5 && time.Now().Before(deadline) {
		time.Sleep(time.Millisecond)
	}
	if k := e.KeptBytes(); k != 5 {
		t.Errorf("kept %d bytes of a started frame, want 5", k)
	}
	_, _ = nc.Write(req[5:])
	if got := readFrame(t, nc); got != "hello" {
		t.Fatalf("got %q", got)
	}
	h.mu.Lock()
	c := h.opened[0]
	h.mu.Unlock()
	var keep, out int
	if err := c.l.call(func() error { keep, out = cap(c.keep), cap(c.out); return nil }); err != nil {
		t.Fatal(err)
	}
	if keep != 0 || out != 0 || e.PendingBytes() != 0 || e.KeptBytes() != 0 {
		t.Errorf("idle conn holds keep %d, out %d bytes, engine pending %d, kept %d; want none", keep, out, e.PendingBytes(), e.KeptBytes())
	}
}

func TestEOFInsideFrame(t *testing.T) {
	h := newEcho(t)
	_, addr := start(t, h, Config{})
	nc := dial(t, addr)
	_, _ = nc.Write(append(frame("whole"), frame("half")[:5]...))
	if got := readFrame(t, nc); got != "whole" {
		t.Fatalf("got %q", got)
	}
	nc.(*net.TCPConn).CloseWrite()
	if ev := h.waitClose(t); ev.err != io.ErrUnexpectedEOF {
		t.Errorf("close reason %v, want io.ErrUnexpectedEOF", ev.err)
	}
}

// A client that sends its request and shuts its side still gets the answer.
func TestAnswerAfterPeerShutdown(t *testing.T) {
	h := newEcho(t)
	_, addr := start(t, h, Config{})
	nc := dial(t, addr)
	_, _ = nc.Write(frame("last words"))
	nc.(*net.TCPConn).CloseWrite()
	if got := readFrame(t, nc); got != "last words" {
		t.Fatalf("got %q", got)
	}
	if ev := h.waitClose(t); ev.err != io.EOF {
		t.Errorf("close reason %v, want io.EOF", ev.err)
	}
}

func TestAdoptWithPendingBytes(t *testing.T) {
	h := newEcho(t)
	e, _ := start(t, h, Config{})
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	peer := os.NewFile(uintptr(fds[1]), "peer")
	defer peer.Close()
	req := append(frame("first"), frame("second")...)
	// The predecessor read the first frame and half the second.
	cut := len(frame("first")) + 6
	if _, err := peer.Write(req[cut:]); err != nil {
		t.Fatal(err)
	}
	if err := e.Adopt(fds[0], req[:cut], "adopted"); err != nil {
		t.Fatal(err)
	}
	_ = peer.SetDeadline(time.Now().Add(10 * time.Second))
	for _, want := range []string{"first", "second"} {
		if got := readFrame(t, peer); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	peer.Close()
	ev := h.waitClose(t)
	if ev.ctx != "adopted" || ev.err != io.EOF {
		t.Errorf("close event %+v, want context \"adopted\" and io.EOF", ev)
	}
}

func TestPauseResume(t *testing.T) {
	h := newEcho(t)
	var mu sync.Mutex
	blocked := true
	paused := make(chan *Conn, 1)
	h.onFrame = func(c *Conn, body []byte) (bool, bool) {
		mu.Lock()
		defer mu.Unlock()
		if string(body) == "wait" && blocked {
			c.Pause()
			paused <- c
			return false, false
		}
		return true, true
	}
	_, addr := start(t, h, Config{FrameTimeout: 100 * time.Millisecond})
	nc := dial(t, addr)
	_, _ = nc.Write(append(append(frame("a"), frame("wait")...), frame("b")...))
	if got := readFrame(t, nc); got != "a" {
		t.Fatalf("got %q", got)
	}
	c := <-paused
	// Paused past the frame timeout: kept whole frames are no stalled frame.
	_ = nc.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := nc.Read(make([]byte, 1)); !errors.Is(err, os.ErrDeadlineExceeded) {
		t.Fatalf("a paused connection answered: %v", err)
	}
	mu.Lock()
	blocked = false
	mu.Unlock()
	c.Resume() // from another goroutine
	_ = nc.SetReadDeadline(time.Now().Add(10 * time.Second))
	for _, want := range []string{"wait", "b"} {
		if got := readFrame(t, nc); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
}

func TestPendingWriteCountedAndWritten(t *testing.T) {
	h := newEcho(t)
	written := make(chan struct{}, 16)
	h.onWritten = func(*Conn) { written <- struct{}{} }
	e, addr := start(t, h, Config{})
	nc := dial(t, addr)
	big := string(bytes.Repeat([]byte("y"), 48<<10))
	go func() {
		for range 256 {
			_, _ = nc.Write(frame(big))
		}
	}()
	deadline := time.Now().Add(10 * time.Second)
	for e.PendingBytes() == 0 && time.Now().Before(deadline) {
		time.Sleep(5 * time.Millisecond)
	}
	if e.PendingBytes() == 0 {
		t.Fatal("a peer that does not read left nothing pending")
	}
	for range 256 {
		if got := readFrame(t, nc); got != big {
			t.Fatal("answer differs")
		}
	}
	select {
	case <-written:
	case <-time.After(10 * time.Second):
		t.Fatal("no OnWritten")
	}
	if p := e.PendingBytes(); p != 0 {
		t.Errorf("pending %d after everything was read", p)
	}
}

func TestDeadlines(t *testing.T) {
	for _, tc := range []struct {
		name string
		cfg  Config
		open func(c *Conn) error
		send []byte
		read bool // the client reads the answers
		want error
	}{
		{name: "stalled frame", cfg: Config{FrameTimeout: 50 * time.Millisecond}, send: frame("stalled")[:6], read: true, want: ErrFrameTimeout},
		{name: "handler deadline", open: func(c *Conn) error { c.SetReadDeadline(time.Now().Add(50 * time.Millisecond)); return nil }, read: true, want: ErrReadTimeout},
		{name: "write deadline", cfg: Config{WriteTimeout: 100 * time.Millisecond}, send: bytes.Repeat(frame(string(bytes.Repeat([]byte("z"), 48<<10))), 128), want: ErrWriteTimeout},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newEcho(t)
			h.onOpen = tc.open
			_, addr := start(t, h, tc.cfg)
			nc := dial(t, addr)
			_ = nc.(*net.TCPConn).SetReadBuffer(4096)
			go func() { _, _ = nc.Write(tc.send) }()
			if ev := h.waitClose(t); ev.err != tc.want {
				t.Errorf("close reason %v, want %v", ev.err, tc.want)
			}
		})
	}
	// No deadline between frames: an idle connection stays.
	h := newEcho(t)
	_, addr := start(t, h, Config{FrameTimeout: 30 * time.Millisecond})
	nc := dial(t, addr)
	_, _ = nc.Write(frame("one"))
	readFrame(t, nc)
	time.Sleep(150 * time.Millisecond)
	_, _ = nc.Write(frame("two"))
	if got := readFrame(t, nc); got != "two" {
		t.Fatalf("got %q", got)
	}
}

func TestHandlerErrorAnswersFirst(t *testing.T) {
	h := newEcho(t)
	_, addr := start(t, h, Config{})
	nc := dial(t, addr)
	// The second length is out of range: the first is still answered.
	_, _ = nc.Write(append(frame("ok"), 0x7f, 0, 0, 0))
	if got := readFrame(t, nc); got != "ok" {
		t.Fatalf("got %q", got)
	}
	if ev := h.waitClose(t); ev.err == nil || ev.err == io.EOF {
		t.Errorf("close reason %v, want the handler's error", ev.err)
	}
}

func TestDrainAnswersEverythingReceived(t *testing.T) {
	h := newEcho(t)
	e, addr := start(t, h, Config{})
	const conns, frames = 8, 50
	ncs := make([]net.Conn, conns)
	for i := range ncs {
		ncs[i] = dial(t, addr)
		if i == 0 {
			// One answered request first, so the connection is open.
			_, _ = ncs[i].Write(frame("hi"))
			readFrame(t, ncs[i])
		}
	}
	var want []byte
	for j := range frames {
		want = append(want, frame(fmt.Sprintf("request %d", j))...)
	}
	for _, nc := range ncs {
		if _, err := nc.Write(want); err != nil {
			t.Fatal(err)
		}
	}
	// The last one sends half a frame more: handed over, not answered.
	half := frame("half of it")[:7]
	_, _ = ncs[conns-1].Write(half)
	time.Sleep(50 * time.Millisecond) // let the bytes reach the sockets, not the engine
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if err := e.Drain(ctx); err != nil {
		t.Fatal(err)
	}
	for i, nc := range ncs {
		got, err := io.ReadAll(nc)
		if err != nil {
			t.Fatalf("conn %d: %v", i, err)
		}
		if !bytes.Equal(got, want) {
			t.Errorf("conn %d: %d bytes of answers, want %d", i, len(got), len(want))
		}
	}
	var unread int
	for range conns {
		ev := h.waitClose(t)
		if ev.err != ErrDrained {
			t.Errorf("close reason %v, want ErrDrained", ev.err)
		}
		if len(ev.unread) > 0 {
			unread++
			if !bytes.Equal(ev.unread, half) {
				t.Errorf("unread %q, want %q", ev.unread, half)
			}
		}
	}
	if unread != 1 {
		t.Errorf("%d connections had unread bytes, want 1", unread)
	}
	if e.Conns() != 0 {
		t.Errorf("%d connections open after Drain", e.Conns())
	}
}

func TestDrainTimeoutAndClose(t *testing.T) {
	h := newEcho(t)
	h.onFrame = func(c *Conn, _ []byte) (bool, bool) { c.Pause(); return false, false }
	e, addr := start(t, h, Config{})
	nc := dial(t, addr)
	_, _ = nc.Write(frame("never answered"))
	for e.Conns() == 0 {
		time.Sleep(time.Millisecond)
	}
	time.Sleep(20 * time.Millisecond)
	ctx, cancel := context.WithTimeout(context.Background(), 100*time.Millisecond)
	defer cancel()
	if err := e.Drain(ctx); err != context.DeadlineExceeded {
		t.Fatalf("Drain of a paused connection: %v, want DeadlineExceeded", err)
	}
	if ev := h.waitClose(t); ev.err != ErrClosed {
		t.Errorf("close reason %v, want ErrClosed", ev.err)
	}
	if err := e.Close(); err != nil {
		t.Fatal(err)
	}
	if err := e.Adopt(-1, nil, nil); err == nil {
		t.Error("Adopt after Close succeeded")
	}
}

func TestWritevCopiesOnlyTheRest(t *testing.T) {
	h := newEcho(t)
	value := bytes.Repeat([]byte("v"), 1<<20)
	h.onFrame = func(c *Conn, body []byte) (bool, bool) {
		if string(body) == "get" {
			c.SetOut(binary.BigEndian.AppendUint32(c.Out(), uint32(len(value))))
			if _, err := c.Writev(value); err != nil {
				t.Error(err)
			}
			c.SetOut(append(c.Out(), frame("after")...))
			return true, false
		}
		return true, true
	}
	_, addr := start(t, h, Config{})
	nc := dial(t, addr)
	_, _ = nc.Write(frame("get"))
	if got := readFrame(t, nc); got != string(value) {
		t.Fatalf("value of %d bytes differs", len(got))
	}
	if got := readFrame(t, nc); got != "after" {
		t.Fatalf("got %q", got)
	}
}

func TestWaitModes(t *testing.T) {
	for _, mode := range []WaitMode{WaitBlock, WaitPark} {
		t.Run(fmt.Sprint(mode), func(t *testing.T) { testWaitMode(t, mode) })
	}
}

func testWaitMode(t *testing.T, mode WaitMode) {
	h := newEcho(t)
	_, addr := start(t, h, Config{Wait: mode, FrameTimeout: 50 * time.Millisecond})
	nc := dial(t, addr)
	_, _ = nc.Write(append(frame("one"), frame("two")...))
	for _, want := range []string{"one", "two"} {
		if got := readFrame(t, nc); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	// A blocked loop holds its P: the collector must still stop it, and
	// timers and other goroutines must still run.
	done := make(chan struct{})
	go func() {
		runtime.GC()
		<-time.After(10 * time.Millisecond)
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("a collection and a timer did not finish beside an idle loop")
	}
	// Idle past parkAfterMs, a blocking loop waits the other way: it must
	// still wake for the next request.
	time.Sleep(3 * parkAfterMs * time.Millisecond)
	_, _ = nc.Write(frame("again"))
	if got := readFrame(t, nc); got != "again" {
		t.Fatalf("got %q after an idle spell", got)
	}
	_, _ = nc.Write(frame("three")[:3])
	if ev := h.waitClose(t); ev.err != ErrFrameTimeout {
		t.Errorf("close reason %v, want ErrFrameTimeout", ev.err)
	}
}

func TestPostAndCloseAsync(t *testing.T) {
	h := newEcho(t)
	opened := make(chan *Conn, 1)
	h.onOpen = func(c *Conn) error { opened <- c; return nil }
	_, addr := start(t, h, Config{})
	nc := dial(t, addr)
	c := <-opened
	// From another goroutine: an answer appended on the loop is written.
	c.Post(func(c *Conn) { c.SetOut(append(c.Out(), frame("pushed")...)) })
	if got := readFrame(t, nc); got != "pushed" {
		t.Fatalf("got %q", got)
	}
	evicted := errors.New("evicted")
	c.CloseAsync(evicted)
	if ev := h.waitClose(t); ev.err != evicted {
		t.Errorf("close reason %v, want %v", ev.err, evicted)
	}
	if _, err := nc.Read(make([]byte, 1)); err != io.EOF {
		t.Errorf("client read after CloseAsync: %v, want EOF", err)
	}
}

// A paused connection whose peer finished sending still answers what it
// kept once resumed, then ends with io.EOF.
func TestPausedThenPeerShutdown(t *testing.T) {
	h := newEcho(t)
	var mu sync.Mutex
	hold := true
	paused := make(chan *Conn, 1)
	h.onFrame = func(c *Conn, body []byte) (bool, bool) {
		mu.Lock()
		defer mu.Unlock()
		if hold {
			c.Pause()
			paused <- c
			return false, false
		}
		return true, true
	}
	_, addr := start(t, h, Config{})
	nc := dial(t, addr)
	_, _ = nc.Write(append(frame("kept 1"), frame("kept 2")...))
	c := <-paused
	nc.(*net.TCPConn).CloseWrite()
	time.Sleep(20 * time.Millisecond)
	mu.Lock()
	hold = false
	mu.Unlock()
	c.Resume()
	for _, want := range []string{"kept 1", "kept 2"} {
		if got := readFrame(t, nc); got != want {
			t.Fatalf("got %q, want %q", got, want)
		}
	}
	if ev := h.waitClose(t); ev.err != io.EOF {
		t.Errorf("close reason %v, want io.EOF", ev.err)
	}
}

// largeFrames is the handler side of frames larger than the read buffer:
// it copies their bytes into a buffer of its own as they arrive, reports
// them consumed, and tells the engine a frame is under way (SetPartial), as
// the server does for frames beyond its read buffer.
type largeFrames struct {
	*echoHandler
	buf  []byte // the frame being collected, header included
	want int
}

func (h *largeFrames) OnData(c *Conn, in []byte) (int, error) {
	used := 0
	for used < len(in) {
		if h.want == 0 {
			if len(in)-used < 4 {
				break
			}
			h.want = 4 + int(binary.BigEndian.Uint32(in[used:]))
		}
		take := min(h.want-len(h.buf), len(in)-used)
		h.buf = append(h.buf, in[used:used+take]...)
		used += take
		if len(h.buf) < h.want {
			c.SetPartial(true)
			break
		}
		c.SetOut(append(c.Out(), h.buf...))
		h.buf, h.want = nil, 0
		c.SetPartial(false)
	}
	return used, nil
}

func TestLargeFramesHeldByHandler(t *testing.T) {
	h := &largeFrames{echoHandler: newEcho(t)}
	_, addr := start(t, h, Config{Loops: 1, ReadBufferSize: 1024, FrameTimeout: 100 * time.Millisecond})
	nc := dial(t, addr)
	big := string(bytes.Repeat([]byte("L"), 20<<10))
	go func() { _, _ = nc.Write(frame(big)) }()
	if got := readFrame(t, nc); got != big {
		t.Fatalf("a %d-byte frame came back as %d bytes", len(big), len(got))
	}
	// A large frame that stalls is a stalled frame, though the engine
	// keeps none of its bytes.
	_, _ = nc.Write(frame(big)[:5000])
	if ev := h.waitClose(t); ev.err != ErrFrameTimeout {
		t.Errorf("close reason %v, want ErrFrameTimeout", ev.err)
	}
}
