package wire

import (
	"bufio"
	"encoding/binary"
	"fmt"
	"io"
)

// DefaultMaxFrame is Storm's pacemaker.thrift.message.size.max.
const DefaultMaxFrame = 10485760

// FrameTooLargeError reports a length prefix outside 0..max. Storm's decoder
// drops the connection on it; so do we.
type FrameTooLargeError struct {
	Length int32
	Max    int
}

func (e *FrameTooLargeError) Error() string {
	return fmt.Sprintf("frame length %d outside 0..%d", e.Length, e.Max)
}

// FrameReader reads length-prefixed frames, zero-copy when a frame fits in
// the bufio.Reader's buffer.
type FrameReader struct {
	r       *bufio.Reader
	buf     []byte
	held    int // bytes of buf reserved from Budget
	max     int
	partial bool // inside a frame too large for the buffer
	// Stall, when set, is called with true before the reader blocks in the
	// middle of a frame and with false once that frame is complete, so the
	// caller can put a deadline on a stalled frame — and never on the idle
	// wait between frames, which Storm's clients rely on.
	Stall func(stalled bool)
	// Max, when set, gives the largest accepted frame at the moment a
	// length prefix is read, so a reload applies to the very next frame.
	Max func() int
	// Budget, when set, is asked for the memory of a frame too large for
	// the bufio.Reader's buffer as that memory is allocated.
	Budget Budget
	// Queued, when set, tells how many bytes wait in the socket beyond the
	// bufio.Reader's buffer (FIONREAD), so a large frame whose bytes are
	// already there gets one buffer of its size instead of a series.
	Queued func() int
}

// Budget accounts for memory a FrameReader holds beyond its bufio buffer.
// Reserve may block until the memory is available (the reader stops
// reading meanwhile: back-pressure) and fails when it cannot be had.
type Budget interface {
	Reserve(n int) error
	Release(n int)
}

// largeFrameStep is the first allocation for a frame larger than the
// bufio buffer. The buffer grows only as bytes arrive, to what has arrived
// (Queued) or at least twice its size: a length prefix alone allocates
// nothing, a peer must send half of what it makes us hold, and a frame
// whose bytes are all there costs one allocation of its size.
const largeFrameStep = 64 << 10

// NewFrameReader reads frames of at most max bytes from r.
func NewFrameReader(r *bufio.Reader, max int) *FrameReader {
	return &FrameReader{r: r, max: max}
}

// SetMax changes the largest accepted frame (config reload).
func (f *FrameReader) SetMax(max int) { f.max = max }

// Next returns the next frame's body, valid until the next call. A clean end
// of stream between frames is io.EOF; one inside a frame io.ErrUnexpectedEOF.
func (f *FrameReader) Next() ([]byte, error) {
	// The last large frame's buffer is no longer in use. Keep it only while
	// more input is already waiting (a pipelined burst): an idle connection
	// must not pin up to pacemaker.thrift.message.size.max of memory.
	if f.buf != nil && f.r.Buffered() == 0 {
		f.Drop()
	}
	if _, err := f.r.Peek(1); err != nil {
		return nil, err // idle wait: no deadline
	}
	stalled := false
	if f.Stall != nil && !f.whole() {
		stalled = true
		f.Stall(true)
	}
	b, err := f.next()
	if stalled {
		f.Stall(false)
	}
	return b, err
}

// Drop lets go of the buffer of the last large frame (the frame returned
// last must no longer be in use) and gives its memory back to the budget.
func (f *FrameReader) Drop() {
	f.buf = nil
	if f.held > 0 && f.Budget != nil {
		f.Budget.Release(f.held)
	}
	f.held = 0
}

// Pending returns a copy of the bytes read from the connection but not yet
// returned as frames: the start of a frame that was interrupted. ok is false
// when a frame larger than the buffer was interrupted, whose start is gone.
// Used to hand a connection to another process without losing a byte.
func (f *FrameReader) Pending() (b []byte, ok bool) {
	if f.partial {
		return nil, false
	}
	p, _ := f.r.Peek(f.r.Buffered())
	return append([]byte(nil), p...), true
}

// Ready reports whether a complete frame is already buffered, so the next
// Next will not block. The server flushes its answers when it is not.
func (f *FrameReader) Ready() bool { return f.whole() }

// whole reports whether a complete frame is already buffered.
func (f *FrameReader) whole() bool {
	if f.r.Buffered() < 4 {
		return false
	}
	hdr, _ := f.r.Peek(4)
	n := int(binary.BigEndian.Uint32(hdr))
	return n >= 0 && f.r.Buffered()-4 >= n
}

func (f *FrameReader) next() ([]byte, error) {
	hdr, err := f.r.Peek(4)
	if err != nil {
		return nil, unexpected(err)
	}
	n := int32(binary.BigEndian.Uint32(hdr))
	limit := f.max
	if f.Max != nil {
		limit = f.Max()
	}
	if n < 0 || int(n) > limit {
		return nil, &FrameTooLargeError{Length: n, Max: limit}
	}
	if 4+int(n) <= f.r.Size() {
		// Peek header and body together, so a frame interrupted half-way
		// stays whole in the buffer (see Pending).
		b, err := f.r.Peek(4 + int(n))
		if err != nil {
			return nil, unexpected(err)
		}
		_, _ = f.r.Discard(4 + int(n)) // no read: b stays valid
		return b[4:], nil
	}
	_, _ = f.r.Discard(4)
	f.partial = true // until the whole body is read; a failed read leaves it set
	b := f.buf[:0]
	for len(b) < int(n) {
		if len(b) == cap(b) {
			// Grow only once more bytes are there to fill the room.
			if _, err := f.r.Peek(1); err != nil {
				return nil, unexpected(err)
			}
			arrived := len(b) + f.r.Buffered()
			if f.Queued != nil {
				arrived += f.Queued()
			}
			var err error
			if b, err = f.grow(b, LargeFrameCap(int(n), cap(b), arrived)); err != nil {
				return nil, err
			}
		}
		k, err := f.r.Read(b[len(b):min(cap(b), int(n))])
		b = b[:len(b)+k]
		if err != nil && len(b) < int(n) {
			return nil, unexpected(err)
		}
	}
	f.partial = false
	return b, nil
}

// grow moves b into a buffer of capacity c, reserved from the budget.
func (f *FrameReader) grow(b []byte, c int) ([]byte, error) {
	if extra := c - f.held; extra > 0 && f.Budget != nil {
		if err := f.Budget.Reserve(extra); err != nil {
			return nil, err
		}
		f.held = c
	}
	nb := make([]byte, len(b), c)
	copy(nb, b)
	f.buf = nb
	return nb, nil
}

func unexpected(err error) error {
	if err == io.EOF {
		return io.ErrUnexpectedEOF
	}
	return err
}

// FrameLength reads the length prefix at the start of b, for a reader that
// splits frames out of bytes it already holds (the server's event loop):
// ok is false while fewer than 4 bytes are there; a length outside 0..max
// is a *FrameTooLargeError.
func FrameLength(b []byte, max int) (n int, ok bool, err error) {
	if len(b) < 4 {
		return 0, false, nil
	}
	l := int32(binary.BigEndian.Uint32(b))
	if l < 0 || int(l) > max {
		return 0, false, &FrameTooLargeError{Length: l, Max: max}
	}
	return int(l), true, nil
}

// LargeFrameCap is how far a buffer collecting a frame of n bytes grows
// when it is full, given that arrived bytes of the frame are there: to what
// has arrived, but at least twice its size (from largeFrameStep), and never past the frame. A length prefix alone
// allocates nothing, and a peer must send half of what it makes us hold.
func LargeFrameCap(n, capNow, arrived int) int {
	return min(n, max(largeFrameStep, 2*capNow, arrived))
}
