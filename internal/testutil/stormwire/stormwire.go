// Package stormwire gives tests the traffic recorded between Apache Storm's
// own Java Pacemaker server and client (testdata/README.md says how it was
// made). The recordings are compiled into the test binary, so a missing
// fixture fails the build instead of skipping a test.
package stormwire

import (
	"bufio"
	"bytes"
	"embed"
	"encoding/binary"
	"encoding/hex"
	"io/fs"
	"strings"
	"testing"
)

//go:embed testdata/*.txt
var recordings embed.FS

// Frame is one recorded frame as it crossed the wire.
type Frame struct {
	FromClient bool   // C lines; S lines are the server's
	Line       int    // line in the recording, for messages
	Raw        []byte // the whole frame, 4-byte length prefix included
}

// Body is the frame without its length prefix: one Thrift HBMessage.
func (f Frame) Body() []byte { return f.Raw[4:] }

// Names lists every recording, sorted.
func Names() []string {
	names, err := fs.Glob(recordings, "testdata/*.txt")
	if err != nil {
		panic(err) // the pattern is a constant
	}
	for i, n := range names {
		names[i] = strings.TrimPrefix(n, "testdata/")
	}
	return names
}

// Load returns the frames of one recording, failing t when it is absent or
// a line is not a whole frame.
func Load(t testing.TB, name string) []Frame {
	t.Helper()
	data, err := recordings.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatalf("Storm recording %s: %v", name, err)
	}
	var frames []Frame
	sc := bufio.NewScanner(bytes.NewReader(data))
	sc.Buffer(nil, 1<<24)
	for line := 1; sc.Scan(); line++ {
		dir, hx, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
		if !ok || (dir != "C" && dir != "S") {
			continue
		}
		raw, err := hex.DecodeString(strings.TrimSpace(hx))
		if err != nil {
			t.Fatalf("%s line %d: %v", name, line, err)
		}
		if len(raw) < 4 || int(binary.BigEndian.Uint32(raw)) != len(raw)-4 {
			t.Fatalf("%s line %d: not one whole length-prefixed frame (%d bytes)", name, line, len(raw))
		}
		frames = append(frames, Frame{FromClient: dir == "C", Line: line, Raw: raw})
	}
	if err := sc.Err(); err != nil {
		t.Fatalf("%s: %v", name, err)
	}
	if len(frames) == 0 {
		t.Fatalf("%s: no frames", name)
	}
	return frames
}
