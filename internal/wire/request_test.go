package wire

import (
	"bytes"
	"strings"
	"testing"
)

// answerShapes are messages of every data member, answers included.
var answerShapes = []*Message{
	{Type: CreatePath},
	{Type: CreatePath, HasID: true, ID: 7},
	{Type: Exists, Field: FieldPath, Path: "/workerbeats/t/n-1", HasID: true, ID: 1},
	{Type: ExistsResponse, Field: FieldBool, Bool: true, HasID: true, ID: 1},
	{Type: SendPulse, Field: FieldPulse, Pulse: Pulse{ID: "/a/b", Details: []byte("hello")}, HasID: true, ID: -1},
	{Type: GetPulseResponse, Field: FieldPulse, Pulse: Pulse{ID: "/a/b"}, HasID: true, ID: 3},
	{Type: GetPulseResponse, Field: FieldPulse, Pulse: Pulse{ID: "", Details: []byte{}}},
	{Type: GetAllPulseForPathResponse, Field: FieldRecord, Records: []Pulse{{ID: "x", Details: []byte("1")}, {ID: "y"}}},
	{Type: GetAllPulseForPathResponse, Field: FieldRecord, Records: []Pulse{}},
	{Type: GetAllNodesForPathResponse, Field: FieldNodes, Nodes: []string{"a", "bb", strings.Repeat("c", 300)}, HasID: true, ID: 9},
	{Type: GetAllNodesForPathResponse, Field: FieldNodes, Nodes: []string{}},
	{Type: SaslMessageToken, Field: FieldBlob, Blob: []byte{0, 0, 0, 0, 0, 0}},
}

func TestFrameSizeIsTheEncodedLength(t *testing.T) {
	for _, m := range answerShapes {
		if got, want := FrameSize(m), len(AppendFrame(nil, m)); got != want {
			t.Errorf("FrameSize(%s) = %d, encoded %d", m, got, want)
		}
	}
}

func TestAppendFrameSplit(t *testing.T) {
	for _, details := range [][]byte{{}, []byte("x"), bytes.Repeat([]byte{7}, 70000)} {
		m := &Message{Type: GetPulseResponse, Field: FieldPulse, Pulse: Pulse{ID: "/workerbeats/t/n-6700", Details: details}, HasID: true, ID: 42}
		prefix := []byte("earlier answers")
		out, at := AppendFrameSplit(append([]byte(nil), prefix...), m)
		joined := append(append(append([]byte(nil), out[:at]...), details...), out[at:]...)
		if want := AppendFrame(append([]byte(nil), prefix...), m); !bytes.Equal(joined, want) {
			t.Fatalf("%d details bytes: split frame reassembles to\n%x\nwant\n%x", len(details), joined, want)
		}
	}
}

// TestDecodeRequestRefusesAnswerLists: lists are answer-only; a request
// carrying one is malformed before its elements are decoded, and what a
// request may carry decodes as DecodeView decodes it.
func TestDecodeRequestRefusesAnswerLists(t *testing.T) {
	for _, m := range answerShapes {
		b := AppendMessage(nil, m)
		var got, view Message
		err := DecodeRequest(b, &got)
		list := m.Field == FieldRecord || m.Field == FieldNodes
		if list != (err != nil) {
			t.Errorf("DecodeRequest(%s): err %v", m, err)
			continue
		}
		if list {
			continue
		}
		if err := DecodeView(b, &view); err != nil || got.String() != view.String() {
			t.Errorf("DecodeRequest(%s) = %s, DecodeView %s (%v)", m, &got, &view, err)
		}
	}
	// ~1.3 M minimal pulses in 10 MiB: refused without a single element built.
	big := &Message{Type: CreatePath, Field: FieldRecord, Records: make([]Pulse, 1<<20)}
	b := AppendMessage(nil, big)
	var m Message
	allocs := testing.AllocsPerRun(3, func() { _ = DecodeRequest(b, &m) })
	if err := DecodeRequest(b, &m); err == nil || allocs > 8 { // the error's own, not one per element
		t.Fatalf("a request with a 1 M-pulse list: err %v, %v allocations", err, allocs)
	}
}
