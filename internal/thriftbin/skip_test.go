package thriftbin

import (
	"bytes"
	"strings"
	"testing"
)

func be32(n int32) []byte { return []byte{byte(n >> 24), byte(n >> 16), byte(n >> 8), byte(n)} }

func cat(parts ...[]byte) []byte { return bytes.Join(parts, nil) }

// structs returns levels structs nested by field 1, holding an i32.
func structs(levels int) []byte {
	var b []byte
	for range levels {
		b = append(b, Struct, 0, 1)
	}
	b = append(b, I32, 0, 1, 0, 0, 0, 7)
	for range levels {
		b = append(b, Stop)
	}
	return append(b, Stop)
}

func TestSkip(t *testing.T) {
	tests := []struct {
		name string
		t    byte
		b    []byte // the value; a trailing 0xee must be left unread
		err  string // "" when the value is skipped whole
	}{
		{"bool", Bool, []byte{1}, ""},
		{"byte", Byte, []byte{9}, ""},
		{"i16", I16, []byte{0, 1}, ""},
		{"i32", I32, be32(5), ""},
		{"i64", I64, make([]byte, 8), ""},
		{"double", Double, make([]byte, 8), ""},
		{"string", String, cat(be32(3), []byte("abc")), ""},
		{"empty string", String, be32(0), ""},
		{"struct", Struct, cat([]byte{String, 0, 1}, be32(1), []byte("x"), []byte{I32, 0, 2}, be32(1), []byte{Stop}), ""},
		{"list of strings", List, cat([]byte{String}, be32(2), be32(1), []byte("a"), be32(0)), ""},
		{"set of i16", Set, cat([]byte{I16}, be32(2), []byte{0, 1, 0, 2}), ""},
		{"map string to list", Map, cat([]byte{String, List}, be32(1), be32(1), []byte("k"), []byte{Byte}, be32(1), []byte{3}), ""},
		{"empty list of an unknown type, as Thrift", List, cat([]byte{99}, be32(0)), ""},
		{"structs 63 deep", Struct, structs(62), ""},

		{"structs 64 deep", Struct, structs(63), "nested deeper than 64"},
		{"truncated i64", I64, make([]byte, 7), "need 8 bytes"},
		{"string longer than what is left", String, cat(be32(10), []byte("abc")), "need 10 bytes"},
		{"negative string length", String, be32(-1), "need -1 bytes"},
		{"struct without stop", Struct, []byte{I32, 0, 1, 0, 0, 0, 1}, "need 1 bytes"},
		{"field id cut", Struct, []byte{I32, 0}, "need 2 bytes"},
		{"list claiming 2^31-1 elements", List, cat([]byte{Byte}, be32(1<<31-1)), "container of 2147483647 elements"},
		{"negative list size", List, cat([]byte{Byte}, be32(-1)), "container of -1 elements"},
		{"map whose entries cannot fit", Map, cat([]byte{I64, I64}, be32(2), make([]byte, 16)), "container of 2 elements"},
		{"unknown type", 99, nil, "unknown Thrift type 99"},
		{"UUID (Thrift 0.17+), unknown to Storm's libthrift", 16, make([]byte, 16), "unknown Thrift type 16"},
		{"list of UUIDs", List, cat([]byte{16}, be32(1), make([]byte, 16)), "unknown Thrift type 16"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			in := cat([]byte{0xaa}, tt.b)
			if tt.err == "" {
				in = append(in, 0xee)
			}
			end, err := Skip(in, 1, tt.t)
			switch {
			case tt.err == "" && err != nil:
				t.Fatalf("Skip: %v", err)
			case tt.err == "" && end != len(in)-1:
				t.Fatalf("Skip ended at %d, want %d", end, len(in)-1)
			case tt.err != "" && (err == nil || !strings.Contains(err.Error(), tt.err)):
				t.Fatalf("Skip = %d, %v; want an error containing %q", end, err, tt.err)
			}
		})
	}
}
