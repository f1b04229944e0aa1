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

// FrameReader reads length-prefixed frames from a stream, zero-copy when a
// frame fits in the bufio.Reader's buffer: the clients' reader (the server
// splits frames out of its engine's buffer with FrameLength).
type FrameReader struct {
	r   *bufio.Reader
	buf []byte
	max int
}

// largeFrameStep is the first allocation for a frame larger than the
// reader's buffer; see LargeFrameCap.
const largeFrameStep = 64 << 10

// NewFrameReader reads frames of at most max bytes from r.
func NewFrameReader(r *bufio.Reader, max int) *FrameReader {
	return &FrameReader{r: r, max: max}
}

// Next returns the next frame's body, valid until the next call. A clean end
// of stream between frames is io.EOF; one inside a frame io.ErrUnexpectedEOF.
func (f *FrameReader) Next() ([]byte, error) {
	// The last large frame's buffer is no longer in use. Keep it only while
	// more input is already waiting (a pipelined burst).
	if f.buf != nil && f.r.Buffered() == 0 {
		f.buf = nil
	}
	if _, err := f.r.Peek(1); err != nil {
		return nil, err
	}
	hdr, err := f.r.Peek(4)
	if err != nil {
		return nil, unexpected(err)
	}
	n, _, err := FrameLength(hdr, f.max)
	if err != nil {
		return nil, err
	}
	if 4+n <= f.r.Size() {
		b, err := f.r.Peek(4 + n)
		if err != nil {
			return nil, unexpected(err)
		}
		_, _ = f.r.Discard(4 + n) // no read: b stays valid
		return b[4:], nil
	}
	_, _ = f.r.Discard(4)
	b := f.buf[:0]
	for len(b) < n {
		if len(b) == cap(b) {
			// Grow only once more bytes are there to fill the room.
			if _, err := f.r.Peek(1); err != nil {
				return nil, unexpected(err)
			}
			nb := make([]byte, len(b), LargeFrameCap(n, cap(b), len(b)+f.r.Buffered()))
			copy(nb, b)
			b, f.buf = nb, nb
		}
		k, err := f.r.Read(b[len(b):min(cap(b), n)])
		b = b[:len(b)+k]
		if err != nil && len(b) < n {
			return nil, unexpected(err)
		}
	}
	return b, nil
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
