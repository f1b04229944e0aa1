package wire_test

import (
	"errors"
	"math/rand/v2"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// TestDifferentialRandom: seeded random messages of every shape, encoded by
// each codec and decoded by the other, must agree field for field and
// (ours vs Thrift's encoder) byte for byte.
func TestDifferentialRandom(t *testing.T) {
	n := 5000
	if testing.Short() {
		n = 500
	}
	src := randSource{rand.New(rand.NewPCG(20240611, 6699))}
	for i := range n {
		m := genMessage(src)
		if err := checkDifferential(m); err != nil {
			t.Fatalf("message %d: %v", i, err)
		}
	}
}

// FuzzDifferential builds a message from the fuzz input and checks both
// codecs agree on it, in both directions.
func FuzzDifferential(f *testing.F) {
	f.Add([]byte{})
	f.Add([]byte{4, 2, 5, 'x', 2, 3, 'a', 'b', 'c', 1, 0, 0, 0, 7})
	f.Add([]byte{9, 4, 3, 4, 2, 'a', 'b', 2, 3, 'x', 'y', 'z', 0, 1, 'q'})
	f.Add([]byte{0, 0xff, 0xff, 0xff, 0xff, 5, 2, 1, 'n', 1, 1, 'm', 1, 0xff, 0xff, 0xff, 0xff})
	r := rand.New(rand.NewPCG(1, 2))
	for range 16 {
		b := make([]byte, 64)
		for i := range b {
			b[i] = byte(r.Uint32())
		}
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		m := genMessage(&fuzzSource{b: data})
		if err := checkDifferential(m); err != nil {
			t.Fatal(err)
		}
	})
}

// FuzzDecode feeds arbitrary bodies to our decoders. They must never panic,
// must agree with each other, and whatever they accept Thrift's own library
// must accept with the same meaning. Ours may reject more (see strictCases
// in codec_test.go): a union with two members or one member twice, trailing
// bytes, Thrift 0.17's UUID type; and may reject lists whose declared
// element type is not the schema's.
func FuzzDecode(f *testing.F) {
	for _, tc := range shapes {
		if enc := wire.AppendMessage(nil, &tc.m); len(enc) < 4096 {
			f.Add(enc)
		}
	}
	for _, tc := range decodeCases {
		if len(tc.body) < 4096 {
			f.Add([]byte(tc.body))
		}
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		var copied, viewed wire.Message
		errC := wire.Decode(data, &copied)
		errV := wire.DecodeView(data, &viewed)
		if (errC == nil) != (errV == nil) {
			t.Fatalf("Decode: %v, DecodeView: %v", errC, errV)
		}
		if errC != nil {
			if !errors.Is(errC, wire.ErrMalformed) || !errors.Is(errV, wire.ErrMalformed) {
				t.Fatalf("errors not ErrMalformed: %v / %v", errC, errV)
			}
			return
		}
		want := canonOf(&copied)
		if got := canonOf(&viewed); !canonEqual(got, want) {
			t.Fatalf("Decode and DecodeView differ:\n%v\n%v", want, got)
		}

		r, used, err := refDecode(data)
		if err != nil {
			t.Fatalf("we accept % x as %v; Thrift rejects it: %v", data, want, err)
		}
		if used != len(data) {
			t.Fatalf("we accept % x; Thrift stops after %d of %d bytes", data, used, len(data))
		}
		ref, single := canonOfRef(r)
		if !single {
			t.Fatalf("we accept % x; Thrift reads a union with several members: %v", data, r)
		}
		if !canonEqual(ref, want) {
			t.Fatalf("we read % x as\n%v\nThrift reads\n%v", data, want, ref)
		}

		// What we accept, we re-encode to something both read the same way.
		if err := checkDifferential(&copied); err != nil {
			t.Fatal(err)
		}
	})
}
