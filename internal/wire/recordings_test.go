package wire_test

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// stormWireDir holds traffic recorded between Storm's own Java server and
// client (team fixtures beside the repository, never copied into it).
var stormWireDir = filepath.Join("..", "..", "..", "shared", "testdata", "storm-wire")

// recordedFrame is one line of a recording: who sent it and the whole frame.
type recordedFrame struct {
	fromClient bool
	frame      []byte
}

func loadRecordings(t *testing.T) map[string][]recordedFrame {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(stormWireDir, "*.txt"))
	if len(files) == 0 {
		t.Skipf("no Storm recordings at %s (the shared team fixtures are not checked out beside the repo)", stormWireDir)
	}
	out := map[string][]recordedFrame{}
	for _, path := range files {
		data, err := os.ReadFile(path)
		if err != nil {
			t.Fatal(err)
		}
		sc := bufio.NewScanner(bytes.NewReader(data))
		sc.Buffer(nil, 1<<24)
		for sc.Scan() {
			dir, hx, ok := strings.Cut(strings.TrimSpace(sc.Text()), " ")
			if !ok || (dir != "C" && dir != "S") {
				continue
			}
			frame, err := hex.DecodeString(hx)
			if err != nil {
				t.Fatalf("%s: %v", path, err)
			}
			out[filepath.Base(path)] = append(out[filepath.Base(path)], recordedFrame{dir == "C", frame})
		}
	}
	return out
}

// TestStormRecordings decodes every frame Storm's Java peers put on the
// wire, with both our decoders and Thrift's, and requires our encoder to
// give back the very same bytes.
func TestStormRecordings(t *testing.T) {
	frames := 0
	for name, recs := range loadRecordings(t) {
		for i, rec := range recs {
			n := binary.BigEndian.Uint32(rec.frame)
			if int(n) != len(rec.frame)-4 {
				t.Fatalf("%s frame %d: length prefix %d, %d bytes follow", name, i, n, len(rec.frame)-4)
			}
			for _, dec := range decoders {
				var m wire.Message
				if err := dec.fn(rec.frame[4:], &m); err != nil {
					t.Fatalf("%s frame %d: %s: %v", name, i, dec.name, err)
				}
				if again := wire.AppendFrame(nil, &m); !bytes.Equal(again, rec.frame) {
					t.Errorf("%s frame %d (%v): re-encoded\n got % x\nwant % x", name, i, &m, again, rec.frame)
				}
				if err := checkDifferential(&m); err != nil {
					t.Errorf("%s frame %d: %v", name, i, err)
				}
				switch m.Type {
				case wire.ControlMessage:
					if _, err := wire.ParseControl(&m); err != nil {
						t.Errorf("%s frame %d: %v", name, i, err)
					}
				case wire.SaslMessageToken:
					tok, err := wire.ParseSaslToken(&m)
					if err != nil {
						t.Errorf("%s frame %d: %v", name, i, err)
					} else if again := wire.AppendFrame(nil, wire.NewSaslToken(tok)); !bytes.Equal(again, rec.frame) {
						t.Errorf("%s frame %d: NewSaslToken gives % x", name, i, again)
					}
				}
			}
			frames++
		}
	}
	t.Logf("%d recorded frames agree", frames)
}
