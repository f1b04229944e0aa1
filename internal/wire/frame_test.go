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
	"time"

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

func TestFrameReaderSetMax(t *testing.T) {
	stream := frameOf(make([]byte, 50))
	fr := wire.NewFrameReader(bufio.NewReader(bytes.NewReader(append(stream, stream...))), 50)
	if _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	fr.SetMax(49)
	var tooLarge *wire.FrameTooLargeError
	if _, err := fr.Next(); !errors.As(err, &tooLarge) {
		t.Fatalf("after SetMax(49): err = %v, want *FrameTooLargeError", err)
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

// TestFrameReaderStall: Stall brackets a frame that is not yet whole, and is
// never called while the connection sits idle between frames.
func TestFrameReaderStall(t *testing.T) {
	pr, pw := io.Pipe()
	defer pr.Close()
	fr := wire.NewFrameReader(bufio.NewReader(pr), 1<<20)
	calls := make(chan bool, 10)
	fr.Stall = func(stalled bool) { calls <- stalled }
	frames := make(chan []byte)
	go func() {
		defer close(frames)
		for {
			b, err := fr.Next()
			if err != nil {
				return
			}
			frames <- slices.Clone(b)
		}
	}()
	noCall := func(when string) {
		t.Helper()
		select {
		case c := <-calls:
			t.Fatalf("%s: Stall(%v) called", when, c)
		case <-time.After(50 * time.Millisecond):
		}
	}

	noCall("idle")
	if _, err := pw.Write(frameOf([]byte("whole"))); err != nil { // one write: one read
		t.Fatal(err)
	}
	if b := <-frames; string(b) != "whole" {
		t.Fatalf("frame %q", b)
	}
	noCall("whole frame")

	split := frameOf([]byte("split"))
	if _, err := pw.Write(split[:6]); err != nil {
		t.Fatal(err)
	}
	if c := <-calls; !c {
		t.Fatal("first call Stall(false), want Stall(true)")
	}
	if _, err := pw.Write(split[6:]); err != nil {
		t.Fatal(err)
	}
	if b := <-frames; string(b) != "split" {
		t.Fatalf("frame %q", b)
	}
	if c := <-calls; c {
		t.Fatal("second call Stall(true), want Stall(false)")
	}
	noCall("idle again")
	pw.Close()
	if _, ok := <-frames; ok {
		t.Fatal("frame after close")
	}
}

func TestFrameReaderReady(t *testing.T) {
	stream := append(frameOf([]byte("one")), frameOf([]byte("two"))...)
	stream = append(stream, header(5)...) // a third frame, begun but not whole
	fr := wire.NewFrameReader(bufio.NewReader(bytes.NewReader(stream)), 100)
	if fr.Ready() {
		t.Error("Ready before anything was read")
	}
	if _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	if !fr.Ready() {
		t.Error("second frame buffered, Ready false")
	}
	if _, err := fr.Next(); err != nil {
		t.Fatal(err)
	}
	if fr.Ready() {
		t.Error("only a header buffered, Ready true")
	}
	if _, err := fr.Next(); err != io.ErrUnexpectedEOF {
		t.Errorf("err = %v, want io.ErrUnexpectedEOF", err)
	}
}

// TestFrameReaderPending: after a read error in the middle of a frame, the
// bytes of that frame read so far are still there to hand over, header
// included — unless the frame was too large for the buffer.
func TestFrameReaderPending(t *testing.T) {
	stall := errors.New("deadline")
	first := frameOf([]byte("complete"))
	small := frameOf(bytes.Repeat([]byte{'s'}, 40))
	large := frameOf(bytes.Repeat([]byte{'L'}, 200))
	for _, tc := range []struct {
		name    string
		arrived []byte // what the peer sent before the stall
		frames  int    // complete frames before it
		want    []byte
		ok      bool
	}{
		{"nothing pending", first, 1, []byte{}, true},
		{"half a header", append(slices.Clone(first), small[:2]...), 1, small[:2], true},
		{"header and part of the body", append(slices.Clone(first), small[:20]...), 1, small[:20], true},
		{"all but the last byte", small[:len(small)-1], 0, small[:len(small)-1], true},
		{"part of a frame larger than the buffer", large[:100], 0, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := io.MultiReader(bytes.NewReader(tc.arrived), iotest.ErrReader(stall))
			fr := wire.NewFrameReader(bufio.NewReaderSize(r, 64), 1<<20)
			got, err := readAll(fr)
			if !errors.Is(err, stall) || len(got) != tc.frames {
				t.Fatalf("read %d frames, then %v; want %d, then the stall", len(got), err, tc.frames)
			}
			pending, ok := fr.Pending()
			if ok != tc.ok || (ok && !bytes.Equal(pending, tc.want)) {
				t.Fatalf("Pending = % x, %v; want % x, %v", pending, ok, tc.want, tc.ok)
			}
			if ok && len(pending) > 0 {
				pending[0] ^= 0xff // a copy: changing it changes nothing in the reader
				if again, _ := fr.Pending(); !bytes.Equal(again, tc.want) {
					t.Error("Pending returned the reader's buffer, not a copy")
				}
			}
		})
	}
}
