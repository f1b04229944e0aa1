package wire_test

import (
	"bytes"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// Thrift binary type codes, for hand-built bodies.
const (
	tStop   = 0
	tBool   = 2
	tByte   = 3
	tDouble = 4
	tI16    = 6
	tI32    = 8
	tI64    = 10
	tString = 11
	tStruct = 12
	tMap    = 13
	tSet    = 14
	tList   = 15
	tUUID   = 16
)

// body builds a Thrift binary body by hand, so malformed shapes can be
// written down exactly.
type body []byte

func (b body) field(typ byte, id int16) body {
	return append(b, typ, byte(uint16(id)>>8), byte(id))
}
func (b body) i32(v int32) body  { return binary.BigEndian.AppendUint32(b, uint32(v)) }
func (b body) byte1(v byte) body { return append(b, v) }
func (b body) str(s string) body { return append(b.i32(int32(len(s))), s...) }
func (b body) stop() body        { return append(b, tStop) }
func (b body) raw(p ...byte) body {
	return append(b, p...)
}
func (b body) list(elem byte, n int32) body { return append(b, elem).i32(n) }

// msg starts a body with field 1 (type).
func msg(t wire.MessageType) body { return body(nil).field(tI32, 1).i32(int32(t)) }

// withID ends a message: field 3 message_id, stop.
func (b body) withID(id int32) body { return b.field(tI32, 3).i32(id).stop() }

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// shapes is one message of every request and answer shape Pacemaker uses.
// golden, when set, is the body as Storm's Java peers put it on the wire
// (docs/protocol.md and the recordings in internal/testutil/stormwire).
var shapes = []struct {
	name   string
	m      wire.Message
	golden string
}{
	{"CREATE_PATH", wire.Message{Type: wire.CreatePath, Field: wire.FieldPath, Path: "/wb/topo-9", ID: 8, HasID: true},
		"08 0001 00000000 0c 0002 0b 0001 0000000a 2f77622f746f706f2d39 00 08 0003 00000008 00"},
	{"CREATE_PATH_RESPONSE", wire.Message{Type: wire.CreatePathResponse, ID: 8, HasID: true},
		"08 0001 00000001 08 0003 00000008 00"},
	{"EXISTS", wire.Message{Type: wire.Exists, Field: wire.FieldPath, Path: "/wb/a", ID: 7, HasID: true}, ""},
	{"EXISTS_RESPONSE true", wire.Message{Type: wire.ExistsResponse, Field: wire.FieldBool, Bool: true, ID: 7, HasID: true},
		"08 0001 00000003 0c 0002 02 0003 01 00 08 0003 00000007 00"},
	{"EXISTS_RESPONSE false", wire.Message{Type: wire.ExistsResponse, Field: wire.FieldBool, ID: 11, HasID: true},
		"08 0001 00000003 0c 0002 02 0003 00 00 08 0003 0000000b 00"},
	{"SEND_PULSE", wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse,
		Pulse: wire.Pulse{ID: "/wb/t/n:1", Details: []byte{0, 1, 2, 0xff}}, ID: 1, HasID: true},
		"08 0001 00000004 0c 0002 0c 0002 0b 0001 00000009 2f77622f742f6e3a31 0b 0002 00000004 000102ff 00 00 08 0003 00000001 00"},
	{"SEND_PULSE empty details", wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse,
		Pulse: wire.Pulse{ID: "/wb/t/n:1", Details: []byte{}}, ID: 2, HasID: true}, ""},
	{"SEND_PULSE absent details", wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse,
		Pulse: wire.Pulse{ID: "/wb/t/n:1"}, ID: 3, HasID: true}, ""},
	{"SEND_PULSE 64 KiB", wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse,
		Pulse: wire.Pulse{ID: "/wb/t/n:1", Details: bytes.Repeat([]byte{0xab}, 64<<10)}, ID: 99, HasID: true}, ""},
	{"SEND_PULSE_RESPONSE", wire.Message{Type: wire.SendPulseResponse, ID: 0, HasID: true},
		"080001000000050800030000000000"},
	{"GET_ALL_PULSE_FOR_PATH", wire.Message{Type: wire.GetAllPulseForPath, Field: wire.FieldPath, Path: "/wb/topo-1", ID: 9, HasID: true}, ""},
	{"GET_ALL_PULSE_FOR_PATH_RESPONSE no data", wire.Message{Type: wire.GetAllPulseForPathResponse, ID: 9, HasID: true}, ""},
	{"GET_ALL_PULSE_FOR_PATH_RESPONSE empty records", wire.Message{Type: wire.GetAllPulseForPathResponse,
		Field: wire.FieldRecord, Records: []wire.Pulse{}, ID: 9, HasID: true},
		"08 0001 00000007 0c 0002 0c 0004 0f 0001 0c 00000000 00 00 08 0003 00000009 00"},
	{"GET_ALL_PULSE_FOR_PATH_RESPONSE records", wire.Message{Type: wire.GetAllPulseForPathResponse, Field: wire.FieldRecord,
		Records: []wire.Pulse{{ID: "a", Details: []byte("x")}, {ID: "b"}, {ID: "", Details: []byte{}}}, ID: 9, HasID: true}, ""},
	{"GET_ALL_NODES_FOR_PATH", wire.Message{Type: wire.GetAllNodesForPath, Field: wire.FieldPath, Path: "/wb", ID: 6, HasID: true},
		"08 0001 00000008 0c 0002 0b 0001 00000003 2f7762 00 08 0003 00000006 00"},
	{"GET_ALL_NODES_FOR_PATH_RESPONSE", wire.Message{Type: wire.GetAllNodesForPathResponse, Field: wire.FieldNodes,
		Nodes: []string{"topo-1", "topo-2"}, ID: 6, HasID: true},
		"08 0001 00000009 0c 0002 0c 0005 0f 0001 0b 00000002 00000006 746f706f2d31 00000006 746f706f2d32 00 00 08 0003 00000006 00"},
	{"GET_ALL_NODES_FOR_PATH_RESPONSE empty", wire.Message{Type: wire.GetAllNodesForPathResponse, Field: wire.FieldNodes,
		Nodes: []string{}, ID: 13, HasID: true},
		"08 0001 00000009 0c 0002 0c 0005 0f 0001 0b 00000000 00 00 08 0003 0000000d 00"},
	{"GET_PULSE", wire.Message{Type: wire.GetPulse, Field: wire.FieldPath, Path: "/wb/missing", ID: 4, HasID: true}, ""},
	{"GET_PULSE_RESPONSE hit", wire.Message{Type: wire.GetPulseResponse, Field: wire.FieldPulse,
		Pulse: wire.Pulse{ID: "/wb/a", Details: []byte("hello")}, ID: 3, HasID: true}, ""},
	{"GET_PULSE_RESPONSE miss (details absent)", wire.Message{Type: wire.GetPulseResponse, Field: wire.FieldPulse,
		Pulse: wire.Pulse{ID: "/wb/missing"}, ID: 4, HasID: true},
		"08 0001 0000000b 0c 0002 0c 0002 0b 0001 0000000b 2f77622f6d697373696e67 00 00 08 0003 00000004 00"},
	{"GET_PULSE_RESPONSE empty details", wire.Message{Type: wire.GetPulseResponse, Field: wire.FieldPulse,
		Pulse: wire.Pulse{ID: "/wb/a", Details: []byte{}}, ID: 3, HasID: true},
		"08 0001 0000000b 0c 0002 0c 0002 0b 0001 00000005 2f77622f61 0b 0002 00000000 00 00 08 0003 00000003 00"},
	{"DELETE_PATH", wire.Message{Type: wire.DeletePath, Field: wire.FieldPath, Path: "/wb", ID: 15, HasID: true}, ""},
	{"DELETE_PATH_RESPONSE", wire.Message{Type: wire.DeletePathResponse, ID: 15, HasID: true}, ""},
	{"DELETE_PULSE_ID", wire.Message{Type: wire.DeletePulseID, Field: wire.FieldPath, Path: "/wb/a", ID: 10, HasID: true}, ""},
	{"DELETE_PULSE_ID_RESPONSE", wire.Message{Type: wire.DeletePulseIDResponse, ID: 10, HasID: true}, ""},
	{"CONTROL_MESSAGE sasl request", wire.Message{Type: wire.ControlMessage, Field: wire.FieldBlob, Blob: []byte{0xff, 0x36}},
		"080001000000100c00020b000700000002ff360000"},
	{"SASL_MESSAGE_TOKEN", wire.Message{Type: wire.SaslMessageToken, Field: wire.FieldBlob, Blob: []byte{0xfe, 0x0c, 0, 0, 0, 1, 'x'}}, ""},
	{"SASL_MESSAGE_TOKEN empty blob", wire.Message{Type: wire.SaslMessageToken, Field: wire.FieldBlob, Blob: []byte{}}, ""},
	{"NOT_AUTHORIZED", wire.Message{Type: wire.NotAuthorized, ID: 5, HasID: true}, ""},
	{"message_id absent, no data", wire.Message{Type: wire.NotAuthorized}, "08 0001 00000012 00"},
	{"message_id -1 explicit", wire.Message{Type: wire.CreatePathResponse, ID: -1, HasID: true}, ""},
	{"message_id max", wire.Message{Type: wire.CreatePathResponse, ID: 1<<31 - 1, HasID: true}, ""},
	{"unknown enum value", wire.Message{Type: 77, Field: wire.FieldPath, Path: "p", ID: 1, HasID: true}, ""},
	{"path with non-UTF-8 bytes", wire.Message{Type: wire.Exists, Field: wire.FieldPath, Path: "\xff\x00/é", ID: 1, HasID: true}, ""},
}

func TestShapesRoundTrip(t *testing.T) {
	for _, tc := range shapes {
		t.Run(tc.name, func(t *testing.T) {
			enc := wire.AppendMessage(nil, &tc.m)
			if tc.golden != "" {
				if want := unhex(t, tc.golden); !bytes.Equal(enc, want) {
					t.Fatalf("encoding\n got % x\nwant % x", enc, want)
				}
			}
			for _, dec := range decoders {
				var got wire.Message
				if err := dec.fn(enc, &got); err != nil {
					t.Fatalf("%s: %v", dec.name, err)
				}
				if !reflect.DeepEqual(got, tc.m) {
					t.Errorf("%s:\n got %#v\nwant %#v", dec.name, got, tc.m)
				}
			}
			if err := checkDifferential(&tc.m); err != nil {
				t.Error(err)
			}
		})
	}
}

func TestAppendFrame(t *testing.T) {
	for _, tc := range shapes {
		prefix := []byte("keep")
		frame := wire.AppendFrame(append([]byte{}, prefix...), &tc.m)
		if !bytes.HasPrefix(frame, prefix) {
			t.Fatalf("%s: AppendFrame overwrote dst", tc.name)
		}
		frame = frame[len(prefix):]
		bodyBytes := wire.AppendMessage(nil, &tc.m)
		if n := binary.BigEndian.Uint32(frame); int(n) != len(bodyBytes) || !bytes.Equal(frame[4:], bodyBytes) {
			t.Errorf("%s: frame % x, want length %d then % x", tc.name, frame, len(bodyBytes), bodyBytes)
		}
	}
}

// TestShapesTruncated cuts every valid body at every byte: each prefix must
// be an error (no body is a prefix of another), never a panic.
func TestShapesTruncated(t *testing.T) {
	for _, tc := range shapes {
		enc := wire.AppendMessage(nil, &tc.m)
		if len(enc) > 4096 {
			enc = wire.AppendMessage(nil, &wire.Message{Type: tc.m.Type, Field: tc.m.Field, Pulse: wire.Pulse{ID: "x", Details: []byte("y")}})
		}
		for i := range len(enc) {
			for _, dec := range decoders {
				var m wire.Message
				err := dec.fn(enc[:i:i], &m)
				if !errors.Is(err, wire.ErrMalformed) {
					t.Fatalf("%s: %s of the first %d of %d bytes: err = %v, want ErrMalformed", tc.name, dec.name, i, len(enc), err)
				}
			}
		}
	}
}

func TestDecodeCopiesAndViewAliases(t *testing.T) {
	m := wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: "/wb/a", Details: []byte("hello")}, ID: 1, HasID: true}
	enc := wire.AppendMessage(nil, &m)

	var copied, viewed wire.Message
	if err := wire.Decode(enc, &copied); err != nil {
		t.Fatal(err)
	}
	if err := wire.DecodeView(enc, &viewed); err != nil {
		t.Fatal(err)
	}
	for i := range enc {
		enc[i] = 'Z'
	}
	if copied.Pulse.ID != "/wb/a" || string(copied.Pulse.Details) != "hello" {
		t.Errorf("Decode kept references into the buffer: %q %q", copied.Pulse.ID, copied.Pulse.Details)
	}
	if viewed.Pulse.ID != "ZZZZZ" || string(viewed.Pulse.Details) != "ZZZZZ" {
		t.Errorf("DecodeView copied: %q %q", viewed.Pulse.ID, viewed.Pulse.Details)
	}
	// A view's slices are capped: appending to one must not write into the
	// rest of the frame.
	enc = wire.AppendMessage(nil, &m)
	if err := wire.DecodeView(enc, &viewed); err != nil {
		t.Fatal(err)
	}
	before := append([]byte{}, enc...)
	_ = append(viewed.Pulse.Details, "overflow"...)
	if !bytes.Equal(enc, before) {
		t.Error("appending to DecodeView's details overwrote the frame")
	}
}

// TestDecodeReuse decodes different shapes into one Message: nothing of an
// earlier message may leak into a later one.
func TestDecodeReuse(t *testing.T) {
	for _, dec := range decoders {
		var m wire.Message
		for i := range 3 {
			for _, tc := range shapes {
				enc := wire.AppendMessage(nil, &tc.m)
				if err := dec.fn(enc, &m); err != nil {
					t.Fatalf("%s %s: %v", dec.name, tc.name, err)
				}
				if got, want := canonOf(&m), canonOf(&tc.m); !canonEqual(got, want) {
					t.Fatalf("%s pass %d %s:\n got %v\nwant %v", dec.name, i, tc.name, got, want)
				}
			}
		}
	}
}

// decodeCase is a hand-built body and what decoding it must give: want
// (compared through canon) or an ErrMalformed.
type decodeCase struct {
	name string
	body body
	// want nil: must be rejected; likeThriftOrReject: garbage on which we
	// may reject or must read what Thrift's Go library reads.
	want *wire.Message
}

var likeThriftOrReject = &wire.Message{}

func pathData(p string) body { return body(nil).field(tString, 1).str(p) }

func nested(levels int) body {
	var b body
	for range levels {
		b = b.field(tStruct, 1)
	}
	b = b.field(tI32, 1).i32(7)
	for range levels + 1 {
		b = b.stop()
	}
	return b
}

func nestedLists(levels int) body {
	// list<list<...<i32>>>: each level one element.
	var b body
	for range levels - 1 {
		b = b.list(tList, 1)
	}
	return b.list(tI32, 1).i32(5)
}

var decodeCases = []decodeCase{
	{"empty body", body{}, nil},
	{"only stop", body{}.stop(), nil},
	{"no type field", body(nil).field(tStruct, 2).raw(pathData("/x")...).stop().withID(1), nil},
	{"absent message_id reads as -1", msg(wire.CreatePathResponse).stop(), &wire.Message{Type: wire.CreatePathResponse}},
	{"fields out of order", body(nil).field(tI32, 3).i32(4).field(tStruct, 2).raw(pathData("/x")...).stop().field(tI32, 1).i32(int32(wire.Exists)).stop(),
		&wire.Message{Type: wire.Exists, Field: wire.FieldPath, Path: "/x", ID: 4, HasID: true}},
	{"field repeated: last wins", msg(wire.Exists).field(tI32, 1).i32(int32(wire.GetPulse)).field(tStruct, 2).raw(pathData("/x")...).stop().withID(1),
		&wire.Message{Type: wire.GetPulse, Field: wire.FieldPath, Path: "/x", ID: 1, HasID: true}},
	{"data repeated: last wins", msg(wire.Exists).field(tStruct, 2).raw(pathData("/x")...).stop().
		field(tStruct, 2).field(tBool, 3).byte1(1).stop().withID(1),
		&wire.Message{Type: wire.Exists, Field: wire.FieldBool, Bool: true, ID: 1, HasID: true}},
	{"empty union reads as no data", msg(wire.CreatePathResponse).field(tStruct, 2).stop().withID(2),
		&wire.Message{Type: wire.CreatePathResponse, ID: 2, HasID: true}},

	// Unknown fields are skipped, at every level.
	{"unknown message fields", msg(wire.Exists).field(tI64, 9).raw(1, 2, 3, 4, 5, 6, 7, 8).field(tString, 4).str("x").
		field(tMap, -1).raw(tString, tI32).i32(1).str("k").i32(1).
		field(tSet, 100).list(tDouble, 1).raw(0, 0, 0, 0, 0, 0, 0, 0).
		field(tByte, 5).byte1(9).field(tI16, 6).raw(0, 1).
		field(tStruct, 2).raw(pathData("/x")...).stop().withID(1),
		&wire.Message{Type: wire.Exists, Field: wire.FieldPath, Path: "/x", ID: 1, HasID: true}},
	{"unknown union member 6", msg(wire.Exists).field(tStruct, 2).field(tString, 6).str("skip").raw(pathData("/x")...).stop().withID(1),
		&wire.Message{Type: wire.Exists, Field: wire.FieldPath, Path: "/x", ID: 1, HasID: true}},
	{"unknown pulse field", msg(wire.SendPulse).field(tStruct, 2).field(tStruct, 2).
		field(tList, 3).list(tI32, 2).i32(1).i32(2).field(tString, 1).str("id").stop().stop().withID(1),
		&wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: "id"}, ID: 1, HasID: true}},
	{"unknown records field", msg(wire.GetAllPulseForPathResponse).field(tStruct, 2).field(tStruct, 4).
		field(tBool, 2).byte1(1).field(tList, 1).list(tStruct, 1).field(tString, 1).str("a").stop().stop().stop().withID(1),
		&wire.Message{Type: wire.GetAllPulseForPathResponse, Field: wire.FieldRecord, Records: []wire.Pulse{{ID: "a"}}, ID: 1, HasID: true}},
	{"unknown nodes field", msg(wire.GetAllNodesForPathResponse).field(tStruct, 2).field(tStruct, 5).
		field(tI32, 9).i32(0).field(tList, 1).list(tString, 1).str("n").stop().stop().withID(1),
		&wire.Message{Type: wire.GetAllNodesForPathResponse, Field: wire.FieldNodes, Nodes: []string{"n"}, ID: 1, HasID: true}},
	{"records struct without its list", msg(wire.GetAllPulseForPathResponse).field(tStruct, 2).field(tStruct, 4).stop().stop().withID(1),
		&wire.Message{Type: wire.GetAllPulseForPathResponse, Field: wire.FieldRecord, ID: 1, HasID: true}},

	// Known ids with the wrong type are skipped, as Thrift's generated code does.
	// ... except the type: skipped, the message has none, and is refused.
	{"type as string", body(nil).field(tString, 1).str("EXISTS").withID(1), nil},
	{"message_id as i64", msg(wire.Exists).field(tI64, 3).raw(0, 0, 0, 0, 0, 0, 0, 1).stop(), &wire.Message{Type: wire.Exists}},
	{"data as i32", msg(wire.Exists).field(tI32, 2).i32(5).withID(1), &wire.Message{Type: wire.Exists, ID: 1, HasID: true}},
	{"path as i32", msg(wire.Exists).field(tStruct, 2).field(tI32, 1).i32(3).stop().withID(1), &wire.Message{Type: wire.Exists, ID: 1, HasID: true}},
	{"pulse as string", msg(wire.SendPulse).field(tStruct, 2).field(tString, 2).str("p").stop().withID(1), &wire.Message{Type: wire.SendPulse, ID: 1, HasID: true}},
	{"boolval as i32", msg(wire.ExistsResponse).field(tStruct, 2).field(tI32, 3).i32(1).stop().withID(1), &wire.Message{Type: wire.ExistsResponse, ID: 1, HasID: true}},
	{"blob as struct", msg(wire.ControlMessage).field(tStruct, 2).field(tStruct, 7).stop().stop().stop(), &wire.Message{Type: wire.ControlMessage}},
	{"details as i32", msg(wire.SendPulse).field(tStruct, 2).field(tStruct, 2).field(tString, 1).str("id").field(tI32, 2).i32(1).stop().stop().withID(1),
		&wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: "id"}, ID: 1, HasID: true}},
	{"pulses as string", msg(wire.GetAllPulseForPathResponse).field(tStruct, 2).field(tStruct, 4).field(tString, 1).str("x").stop().stop().withID(1),
		&wire.Message{Type: wire.GetAllPulseForPathResponse, Field: wire.FieldRecord, ID: 1, HasID: true}},
	{"empty list of the wrong element type", msg(wire.GetAllNodesForPathResponse).field(tStruct, 2).field(tStruct, 5).
		field(tList, 1).list(tI32, 0).stop().stop().withID(1),
		&wire.Message{Type: wire.GetAllNodesForPathResponse, Field: wire.FieldNodes, ID: 1, HasID: true}},

	// Thrift reads a bool as byte == 1 (Java's and Go's TBinaryProtocol).
	{"bool byte 1", msg(wire.ExistsResponse).field(tStruct, 2).field(tBool, 3).byte1(1).stop().withID(1),
		&wire.Message{Type: wire.ExistsResponse, Field: wire.FieldBool, Bool: true, ID: 1, HasID: true}},
	{"bool byte 2 reads false like Thrift", msg(wire.ExistsResponse).field(tStruct, 2).field(tBool, 3).byte1(2).stop().withID(1),
		&wire.Message{Type: wire.ExistsResponse, Field: wire.FieldBool, Bool: false, ID: 1, HasID: true}},

	// Lists whose declared element type is not the schema's: Thrift's
	// generated code ignores the declared type and reads the elements as the
	// schema says, but its size check uses the declared type's minimum size
	// (Go: UUID 16, unknown codes 1; Java 0.16 throws on unknown codes). We
	// may reject any such non-empty list; what we accept must read as
	// Thrift reads it.
	{"list of the wrong element type", msg(wire.GetAllNodesForPathResponse).field(tStruct, 2).field(tStruct, 5).
		field(tList, 1).list(tI32, 2).i32(1).i32(2).stop().stop().withID(1), nil},
	{"list<i32> whose bytes parse as strings", msg(wire.GetAllNodesForPathResponse).field(tStruct, 2).field(tStruct, 5).
		field(tList, 1).list(tI32, 1).str("a").stop().stop().withID(1), likeThriftOrReject},
	{"records of the wrong element type", msg(wire.GetAllPulseForPathResponse).field(tStruct, 2).field(tStruct, 4).
		field(tList, 1).list(tString, 1).str("abc").stop().stop().withID(1), nil},
	{"list<i64> holding two strings in 13 bytes", msg(wire.GetAllNodesForPathResponse).field(tStruct, 2).field(tStruct, 5).
		field(tList, 1).list(tI64, 2).str("a").str("b").stop().stop().stop(), nil},
	{"list<uuid> holding a string (fuzz)", body(nil).field(tStruct, 2).field(tStruct, 5).
		field(tList, 1).list(tUUID, 1).str("0").stop().stop().stop(), nil},
	{"list of unknown type code 200", msg(wire.GetAllNodesForPathResponse).field(tStruct, 2).field(tStruct, 5).
		field(tList, 1).list(200, 1).str("a").stop().stop().withID(1), likeThriftOrReject},

	// Rejected: stricter than Thrift where Thrift would accept nonsense.
	{"union with two members", msg(wire.Exists).field(tStruct, 2).raw(pathData("/x")...).field(tBool, 3).byte1(1).stop().withID(1), nil},
	{"union member repeated", msg(wire.Exists).field(tStruct, 2).raw(pathData("/x")...).raw(pathData("/y")...).stop().withID(1), nil},
	{"trailing bytes", msg(wire.CreatePathResponse).withID(1).raw(0), nil},
	{"two messages back to back", msg(wire.CreatePathResponse).withID(1).raw(msg(wire.CreatePathResponse).withID(2)...), nil},
	// Rejected: broken per Thrift too.
	{"pulse without id", msg(wire.SendPulse).field(tStruct, 2).field(tStruct, 2).field(tString, 2).str("d").stop().stop().withID(1), nil},
	{"record without id", msg(wire.GetAllPulseForPathResponse).field(tStruct, 2).field(tStruct, 4).
		field(tList, 1).list(tStruct, 1).stop().stop().stop().withID(1), nil},
	{"negative string length", msg(wire.Exists).field(tStruct, 2).field(tString, 1).i32(-1).stop().withID(1), nil},
	{"negative details length", msg(wire.SendPulse).field(tStruct, 2).field(tStruct, 2).field(tString, 1).str("a").field(tString, 2).i32(-5).stop().stop().withID(1), nil},
	{"negative blob length", msg(wire.ControlMessage).field(tStruct, 2).field(tString, 7).i32(-2).stop().stop(), nil},
	{"negative nodes size", msg(wire.GetAllNodesForPathResponse).field(tStruct, 2).field(tStruct, 5).field(tList, 1).list(tString, -1).stop().stop().withID(1), nil},
	{"negative records size", msg(wire.GetAllPulseForPathResponse).field(tStruct, 2).field(tStruct, 4).field(tList, 1).list(tStruct, -1).stop().stop().withID(1), nil},
	{"negative size of skipped list", msg(wire.Exists).field(tList, 9).list(tI32, -1).stop(), nil},
	{"negative size of skipped map", msg(wire.Exists).field(tMap, 9).raw(tI32, tI32).i32(-1).stop(), nil},
	{"string longer than the frame", msg(wire.Exists).field(tStruct, 2).field(tString, 1).i32(1 << 30).stop().withID(1), nil},
	{"string length max int32", msg(wire.Exists).field(tStruct, 2).field(tString, 1).i32(1<<31 - 1).stop().withID(1), nil},
	{"nodes size larger than the frame", msg(wire.GetAllNodesForPathResponse).field(tStruct, 2).field(tStruct, 5).field(tList, 1).list(tString, 1<<31-1).stop().stop().withID(1), nil},
	{"nodes size just too large", msg(wire.GetAllNodesForPathResponse).field(tStruct, 2).field(tStruct, 5).field(tList, 1).list(tString, 2).str("a").stop().stop().withID(1), nil},
	{"records size larger than the frame", msg(wire.GetAllPulseForPathResponse).field(tStruct, 2).field(tStruct, 4).field(tList, 1).list(tStruct, 1<<30).stop().stop().withID(1), nil},
	{"skipped list larger than the frame", msg(wire.Exists).field(tList, 9).list(tByte, 1<<31-1).stop(), nil},
	{"skipped map larger than the frame", msg(wire.Exists).field(tMap, 9).raw(tByte, tByte).i32(1 << 30).stop(), nil},
	{"unknown type code 1", msg(wire.Exists).field(1, 9).stop(), nil},
	{"unknown type code 5", msg(wire.Exists).field(5, 9).raw(0, 0, 0, 0).stop(), nil},
	{"UUID type (Thrift 0.17+, unknown to Storm's 0.16)", msg(wire.Exists).field(tUUID, 9).raw(make([]byte, 16)...).stop(), nil},
	{"unknown type code 255", msg(wire.Exists).field(255, 9).stop(), nil},
	{"missing final stop", msg(wire.CreatePathResponse).field(tI32, 3).i32(1), nil},
	{"missing union stop", msg(wire.Exists).field(tStruct, 2).raw(pathData("/x")...), nil},
	{"field header cut after type", msg(wire.Exists).raw(tI32), nil},
	{"field header cut after one id byte", msg(wire.Exists).raw(tI32, 0), nil},

	// Depth: Thrift's skip gives up below 64 levels; so does ours.
	// Depth 0 is the skipped field's own value.
	{"skipped structs, innermost value at depth 63", msg(wire.Exists).field(tStruct, 9).raw(nested(62)...).withID(1),
		&wire.Message{Type: wire.Exists, ID: 1, HasID: true}},
	{"skipped structs, innermost value at depth 64", msg(wire.Exists).field(tStruct, 9).raw(nested(63)...).withID(1), nil},
	{"skipped structs 10000 deep", msg(wire.Exists).field(tStruct, 9).raw(nested(9999)...).withID(1), nil},
	{"skipped lists, innermost value at depth 63", msg(wire.Exists).field(tList, 9).raw(nestedLists(63)...).withID(1),
		&wire.Message{Type: wire.Exists, ID: 1, HasID: true}},
	{"skipped lists, innermost value at depth 64", msg(wire.Exists).field(tList, 9).raw(nestedLists(64)...).withID(1), nil},
}

func TestDecodeCases(t *testing.T) {
	for _, tc := range decodeCases {
		t.Run(tc.name, func(t *testing.T) {
			for _, dec := range decoders {
				var m wire.Message
				err := dec.fn(tc.body, &m)
				if tc.want == likeThriftOrReject {
					if err == nil {
						checkReadsLikeThrift(t, tc.body, &m)
					}
					continue
				}
				if tc.want == nil {
					if !errors.Is(err, wire.ErrMalformed) {
						t.Errorf("%s: err = %v, want ErrMalformed (decoded %v)", dec.name, err, &m)
					}
					continue
				}
				if err != nil {
					t.Errorf("%s: %v", dec.name, err)
					continue
				}
				if got, want := canonOf(&m), canonOf(tc.want); !canonEqual(got, want) {
					t.Errorf("%s:\n got %v\nwant %v", dec.name, got, want)
				}
			}
		})
	}
}

// TestDecodeCasesAgainstThrift records, for every hand-built case, how
// Thrift's own library reads it: everything we accept, Thrift accepts with
// the same meaning; where we reject what Thrift accepts, the case is in
// strictCases with the reason.
func TestDecodeCasesAgainstThrift(t *testing.T) {
	exercised := map[string]bool{}
	defer func() {
		for name := range strictCases {
			if !exercised[name] {
				t.Errorf("strictCases[%q]: no such case where we reject and Thrift accepts", name)
			}
		}
	}()
	for _, tc := range decodeCases {
		if tc.want == likeThriftOrReject {
			continue // TestDecodeCases compares with Thrift
		}
		t.Run(tc.name, func(t *testing.T) {
			r, used, err := refDecode(tc.body)
			if err != nil { // Thrift rejects: we must too
				if tc.want != nil {
					t.Errorf("we accept, Thrift does not: %v", err)
				}
				return
			}
			refCanon, single := canonOfRef(r)
			switch {
			case tc.want == nil:
				exercised[tc.name] = true
				if _, ok := strictCases[tc.name]; !ok {
					t.Errorf("we reject, Thrift accepts (%v, %d of %d bytes): add to strictCases with a reason", r, used, len(tc.body))
				}
			case !single:
				t.Errorf("we accept, Thrift reads a union with several members: %v", r)
			case used != len(tc.body):
				t.Errorf("we accept, Thrift stops after %d of %d bytes", used, len(tc.body))
			case !canonEqual(refCanon, canonOf(tc.want)):
				t.Errorf("Thrift reads\n%v\nwe read\n%v", refCanon, canonOf(tc.want))
			}
		})
	}
}

// checkReadsLikeThrift requires Thrift's Go library to read body as m.
func checkReadsLikeThrift(t *testing.T, body []byte, m *wire.Message) {
	t.Helper()
	r, used, err := refDecode(body)
	if err != nil {
		t.Errorf("we accept as %v; Thrift rejects: %v", m, err)
		return
	}
	ref, single := canonOfRef(r)
	if !single || used != len(body) || !canonEqual(ref, canonOf(m)) {
		t.Errorf("we read\n%v\nThrift reads (%d of %d bytes, one member %v)\n%v", canonOf(m), used, len(body), single, ref)
	}
}

// strictCases are bodies Thrift's Go library accepts that our decoder
// rejects on purpose.
var strictCases = map[string]string{
	"union with two members":                            "a union holds one member: Thrift's Go library keeps both, Java's reads the first and misparses the rest",
	"trailing bytes":                                    "Thrift stops at the stop byte; a frame holds exactly one message",
	"two messages back to back":                         "same: one frame, one message",
	"union member repeated":                             "a union holds one member; Thrift keeps the last",
	"UUID type (Thrift 0.17+, unknown to Storm's 0.16)": "Storm's libthrift 0.16 cannot skip it either",
	"only stop":                                         "a message without its type would read as type 0, CREATE_PATH",
	"no type field":                                     "same",
	"type as string":                                    "same",
}
