package wire_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"slices"
	"testing"
	"testing/iotest"

	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

func frameOf(bodyBytes []byte) []byte {
	return append(binary.BigEndian.AppendUint32(nil, uint32(len(bodyBytes))), bodyBytes...)
}

func header(n uint32) []byte { return binary.BigEndian.AppendUint32(nil, n) }

// readAll returns copies of every frame and the error that ended the stream.
func readAll(fr *wire.FrameReader) ([][]byte, error) {
	var out [][]byte
	for {
		b, err := fr.Next()
		if err != nil {
			return out, err
		}
		out = append(out, slices.Clone(b))
	}
}

// splitReader returns the stream in two reads: the first k bytes, then the rest.
func splitReader(stream []byte, k int) io.Reader {
	return io.MultiReader(bytes.NewReader(stream[:k]), bytes.NewReader(stream[k:]))
}

// testBodies: small, empty, exactly the smallest bufio size, just above it,
// and far above it.
var testBodies = [][]byte{
	wire.AppendMessage(nil, &wire.Message{Type: wire.SendPulseResponse, ID: 1, HasID: true}),
	{},
	bytes.Repeat([]byte{'a'}, 16),
	bytes.Repeat([]byte{'b'}, 17),
	bytes.Repeat([]byte{'c'}, 1000),
	wire.AppendMessage(nil, &wire.Message{Type: wire.GetPulse, Field: wire.FieldPath, Path: "/wb/x", ID: 2, HasID: true}),
}

func TestFrameReaderSplitAtEveryOffset(t *testing.T) {
	var stream []byte
	for _, b := range testBodies {
		stream = append(stream, frameOf(b)...)
	}
	for _, bufSize := range []int{16, 64, 4096} {
		for k := 0; k <= len(stream); k++ {
			fr := wire.NewFrameReader(bufio.NewReaderSize(splitReader(stream, k), bufSize), 1<<20)
			got, err := readAll(fr)
			if err != io.EOF {
				t.Fatalf("buf %d split %d: stream ended with %v, want io.EOF", bufSize, k, err)
			}
			if !slices.EqualFunc(got, testBodies, bytes.Equal) {
				t.Fatalf("buf %d split %d: frames differ", bufSize, k)
			}
		}
		fr := wire.NewFrameReader(bufio.NewReaderSize(iotest.OneByteReader(bytes.NewReader(stream)), bufSize), 1<<20)
		if got, err := readAll(fr); err != io.EOF || !slices.EqualFunc(got, testBodies, bytes.Equal) {
			t.Fatalf("buf %d one byte at a time: %d frames, %v", bufSize, len(got), err)
		}
		fr = wire.NewFrameReader(bufio.NewReaderSize(iotest.DataErrReader(bytes.NewReader(stream)), bufSize), 1<<20)
		if got, err := readAll(fr); err != io.EOF || !slices.EqualFunc(got, testBodies, bytes.Equal) {
			t.Fatalf("buf %d data with EOF: %d frames, %v", bufSize, len(got), err)
		}
	}
}

func TestFrameReaderLengthLimits(t *testing.T) {
	const max = 100
	for _, tc := range []struct {
		name   string
		length uint32
		ok     bool
	}{
		{"zero", 0, true},
		{"max", max, true},
		{"max+1", max + 1, false},
		{"-1", 0xffffffff, false},
		{"min int32", 0x80000000, false},
		{"max int32", 0x7fffffff, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			stream := append(header(tc.length), make([]byte, min(tc.length, max))...)
			fr := wire.NewFrameReader(bufio.NewReaderSize(bytes.NewReader(stream), 16), max)
			b, err := fr.Next()
			if tc.ok {
				if err != nil || len(b) != int(tc.length) {
					t.Fatalf("Next = %d bytes, %v", len(b), err)
				}
				return
			}
			var tooLarge *wire.FrameTooLargeError
			if !errors.As(err, &tooLarge) {
				t.Fatalf("err = %v, want *FrameTooLargeError", err)
			}
			if tooLarge.Length != int32(tc.length) || tooLarge.Max != max {
				t.Errorf("error = %+v, want Length %d Max %d", tooLarge, int32(tc.length), max)
			}
			if tooLarge.Error() == "" {
				t.Error("empty message")
			}
		})
	}
}

func TestFrameReaderEOF(t *testing.T) {
	whole := frameOf(bytes.Repeat([]byte{'x'}, 40))
	for _, bufSize := range []int{16, 4096} { // 40 > 16: the copy path; 40 < 4096: the peek path
		for cut := 0; cut <= len(whole); cut++ {
			fr := wire.NewFrameReader(bufio.NewReaderSize(bytes.NewReader(whole[:cut]), bufSize), 1<<20)
			_, err := fr.Next()
			switch {
			case cut == 0 && err != io.EOF:
				t.Errorf("buf %d: empty stream: err = %v, want io.EOF", bufSize, err)
			case cut > 0 && cut < len(whole) && err != io.ErrUnexpectedEOF:
				t.Errorf("buf %d: cut after %d of %d bytes: err = %v, want io.ErrUnexpectedEOF", bufSize, cut, len(whole), err)
			case cut == len(whole):
				if err != nil {
					t.Fatalf("buf %d: whole frame: %v", bufSize, err)
				}
				if _, err := fr.Next(); err != io.EOF {
					t.Errorf("buf %d: after the last frame: err = %v, want io.EOF", bufSize, err)
				}
			}
		}
	}
}

func TestFrameReaderPassesReadErrors(t *testing.T) {
	boom := errors.New("boom")
	for _, tc := range []struct {
		name   string
		before []byte
	}{
		{"between frames", nil},
		{"in the header", []byte{0, 0}},
		{"in a small body", append(header(10), 1, 2, 3)},
		{"in a large body", append(header(1000), make([]byte, 100)...)},
	} {
		r := io.MultiReader(bytes.NewReader(tc.before), iotest.ErrReader(boom))
		fr := wire.NewFrameReader(bufio.NewReaderSize(r, 16), 1<<20)
		if _, err := fr.Next(); !errors.Is(err, boom) {
			t.Errorf("%s: err = %v, want the reader's error", tc.name, err)
		}
	}
}

// TestFrameReaderLargeFrameStaysValid reads a frame larger than the bufio
// buffer and then a small one; the large one must be intact when returned.
func TestFrameReaderLargeFrameStaysValid(t *testing.T) {
	big := bytes.Repeat([]byte("0123456789"), 300_000) // 3 MB: above the 1 MiB the reader keeps
	stream := append(frameOf(big), frameOf([]byte("small"))...)
	stream = append(stream, frameOf(big)...)
	fr := wire.NewFrameReader(bufio.NewReader(bytes.NewReader(stream)), wire.DefaultMaxFrame)
	got, err := readAll(fr)
	if err != io.EOF || len(got) != 3 || !bytes.Equal(got[0], big) || string(got[1]) != "small" || !bytes.Equal(got[2], big) {
		t.Fatalf("got %d frames, %v", len(got), err)
	}
}

func TestFrameLength(t *testing.T) {
	for _, tc := range []struct {
		name    string
		in      []byte
		n       int
		ok      bool
		tooLong bool
	}{
		{"nothing yet", nil, 0, false, false},
		{"three bytes of the prefix", []byte{0, 0, 0}, 0, false, false},
		{"empty frame", header(0), 0, true, false},
		{"prefix with body bytes", append(header(5), 1, 2), 5, true, false},
		{"at the maximum", header(100), 100, true, false},
		{"past the maximum", header(101), 0, false, true},
		{"negative", header(0x80000000), 0, false, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n, ok, err := wire.FrameLength(tc.in, 100)
			var tooLarge *wire.FrameTooLargeError
			if n != tc.n || ok != tc.ok || errors.As(err, &tooLarge) != tc.tooLong {
				t.Fatalf("FrameLength = %d, %v, %v; want %d, %v, too long %v", n, ok, err, tc.n, tc.ok, tc.tooLong)
			}
		})
	}
}

func TestLargeFrameCap(t *testing.T) {
	for _, tc := range []struct{ n, capNow, arrived, want int }{
		{1 << 20, 0, 10, 64 << 10},                // a prefix and a few bytes: the first step
		{1 << 20, 64 << 10, 70 << 10, 128 << 10},  // at least doubling
		{1 << 20, 64 << 10, 900 << 10, 900 << 10}, // what has arrived, at once
		{100 << 10, 64 << 10, 1 << 20, 100 << 10}, // never past the frame
	} {
		if got := wire.LargeFrameCap(tc.n, tc.capNow, tc.arrived); got != tc.want {
			t.Errorf("LargeFrameCap(%d, %d, %d) = %d, want %d", tc.n, tc.capNow, tc.arrived, got, tc.want)
		}
	}
}
