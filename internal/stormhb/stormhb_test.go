package stormhb

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"testing"
)

func TestEncodeDecodeRoundTrip(t *testing.T) {
	hb := Heartbeat{StormID: "wordcount-1-1700000000", TimeSecs: 1_700_000_123, UptimeSecs: 4711}
	for _, c := range []Compression{Raw, Gzip, Zstd} {
		for _, wide := range []bool{false, true} {
			for _, executors := range []int{0, 1, 7, 40} {
				name := fmt.Sprintf("%s/wide=%v/executors=%d", c, wide, executors)
				t.Run(name, func(t *testing.T) {
					opts := []Option{WithCompression(c)}
					if wide {
						opts = append(opts, WithWideTime())
					}
					b := Encode(hb, executors, opts...)
					if got := Sniff(b); got != c {
						t.Fatalf("Sniff = %s, want %s", got, c)
					}
					got, err := Decode(b)
					if err != nil {
						t.Fatal(err)
					}
					want := hb
					want.Executors = executors
					if got != want {
						t.Fatalf("Decode = %+v, want %+v", got, want)
					}
				})
			}
		}
	}
}

func TestWideTimeBeyond2038(t *testing.T) {
	hb := Heartbeat{StormID: "t-1-1", TimeSecs: 1 << 33, UptimeSecs: 1}
	got, err := Decode(Encode(hb, 2, WithWideTime(), WithCompression(Zstd)))
	if err != nil {
		t.Fatal(err)
	}
	if got.TimeSecs != 1<<33 {
		t.Fatalf("TimeSecs = %d, want %d", got.TimeSecs, int64(1)<<33)
	}
}

func TestEncodeIsDeterministicAndGrows(t *testing.T) {
	hb := Heartbeat{StormID: "t-1-1", TimeSecs: 100, UptimeSecs: 5}
	if !bytes.Equal(Encode(hb, 10), Encode(hb, 10)) {
		t.Fatal("Encode is not deterministic")
	}
	var prev int
	for _, n := range []int{1, 10, 100, 500} {
		raw := len(Encode(hb, n, WithCompression(Raw)))
		t.Logf("%4d executors: raw %7d B, gzip %6d B, zstd %6d B", n, raw,
			len(Encode(hb, n, WithCompression(Gzip))), len(Encode(hb, n, WithCompression(Zstd))))
		if raw <= prev {
			t.Fatalf("%d executors: %d bytes, not more than the previous %d", n, raw, prev)
		}
		prev = raw
	}
	if one, many := len(Encode(hb, 1, WithCompression(Raw))), len(Encode(hb, 1, WithCompression(Raw), WithStreams(5))); many <= one {
		t.Fatalf("5 streams (%d B) not larger than 1 (%d B)", many, one)
	}
}

// field appends a Thrift field header.
func field(b []byte, typ byte, id int16) []byte { return append(b, typ, byte(id>>8), byte(id)) }

func i32b(v int32) []byte { return []byte{byte(v >> 24), byte(v >> 16), byte(v >> 8), byte(v)} }

func TestDecodeThriftMalformed(t *testing.T) {
	good := Encode(Heartbeat{StormID: "t-1-1", TimeSecs: 9, UptimeSecs: 3}, 3, WithCompression(Raw))
	// The header fields before executor_stats: storm_id, then the map.
	idHeader := field(nil, tString, 1)
	idHeader = append(append(idHeader, i32b(5)...), "t-1-1"...)
	tail := func(parts ...[]byte) []byte { return bytes.Join(parts, nil) }
	emptyMap := tail(field(nil, tMap, 2), []byte{tStruct, tStruct}, i32b(0))
	times := tail(field(nil, tI32, 3), i32b(9), field(nil, tI32, 4), i32b(3))

	tests := []struct {
		name string
		in   []byte
		want string // substring of the error; "" = must decode
	}{
		{"minimal", tail(idHeader, emptyMap, times, []byte{0}), ""},
		{"empty", nil, "need 1 bytes"},
		{"only stop", []byte{0}, "required field storm_id"},
		{"missing time", tail(idHeader, emptyMap, field(nil, tI32, 4), i32b(3), []byte{0}), "time_secs"},
		{"time as string is skipped then missing", tail(idHeader, emptyMap, field(nil, tString, 3), i32b(1), []byte("x"),
			field(nil, tI32, 4), i32b(3), []byte{0}), "time_secs"},
		{"unknown field skipped", tail(field(nil, tList, 99), []byte{tString}, i32b(2), i32b(1), []byte("a"), i32b(0),
			idHeader, emptyMap, times, []byte{0}), ""},
		{"negative map size", tail(idHeader, field(nil, tMap, 2), []byte{tStruct, tStruct}, i32b(-1)), "container of -1"},
		{"huge map size", tail(idHeader, field(nil, tMap, 2), []byte{tStruct, tStruct}, i32b(1<<30)), "container of"},
		{"huge string", tail(field(nil, tString, 1), i32b(1<<30)), "need 1073741824 bytes"},
		{"unknown type", tail(field(nil, 99, 7)), "unknown Thrift type 99"},
		{"no stop", tail(idHeader, emptyMap, times), "need 1 bytes"},
	}
	deep := []byte{}
	for range 100 {
		deep = field(deep, tStruct, 1)
	}
	tests = append(tests, struct {
		name string
		in   []byte
		want string
	}{"nested too deep", tail(field(nil, tStruct, 50), deep), "nested deeper"})

	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := DecodeThrift(tc.in)
			if tc.want == "" {
				if err != nil {
					t.Fatalf("DecodeThrift: %v", err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrMalformed) || !bytes.Contains([]byte(err.Error()), []byte(tc.want)) {
				t.Fatalf("DecodeThrift error = %v, want ErrMalformed containing %q", err, tc.want)
			}
		})
	}

	// Every truncation of a good heartbeat fails cleanly.
	for n := range len(good) {
		if _, err := DecodeThrift(good[:n]); err == nil {
			t.Fatalf("truncated to %d of %d bytes: decoded without error", n, len(good))
		}
	}
}

func TestDecodeCorruptCompression(t *testing.T) {
	hb := Heartbeat{StormID: "t-1-1", TimeSecs: 9, UptimeSecs: 3}
	for _, c := range []Compression{Gzip, Zstd} {
		b := Encode(hb, 4, WithCompression(c))
		if _, err := Decode(b[:len(b)/2]); err == nil {
			t.Errorf("%s: half a payload decoded", c)
		}
	}
}

func TestDecompressionLimit(t *testing.T) {
	if testing.Short() {
		t.Skip("compresses 100 MiB")
	}
	zeros := make([]byte, MaxDecompressed+1)
	var gz bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&gz, gzip.BestSpeed)
	zw.Write(zeros)
	zw.Close()
	zs, err := compress(zeros, Zstd)
	if err != nil {
		t.Fatal(err)
	}
	for name, b := range map[string][]byte{"gzip": gz.Bytes(), "zstd": zs} {
		if _, err := Unwrap(b); !errors.Is(err, ErrTooLarge) {
			t.Errorf("%s bomb of %d bytes: err = %v, want ErrTooLarge", name, len(b), err)
		}
	}
}

func TestNewer(t *testing.T) {
	at := func(secs int64) []byte {
		return Encode(Heartbeat{StormID: "t-1-1", TimeSecs: secs, UptimeSecs: 1}, 1)
	}
	junk := []byte("not a heartbeat")
	tests := []struct {
		name string
		a, b []byte
		want bool
	}{
		{"later wins", at(20), at(10), true},
		{"earlier loses", at(10), at(20), false},
		{"tie keeps the first", at(10), at(10), false},
		{"decodable beats junk", at(1), junk, true},
		{"junk never wins", junk, at(1), false},
		{"both junk keeps the first", junk, []byte("x"), false},
		{"narrow vs wide compare by value", Encode(Heartbeat{StormID: "t", TimeSecs: 30}, 0, WithWideTime(), WithCompression(Zstd)), at(20), true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if got := Newer(tc.a, tc.b); got != tc.want {
				t.Fatalf("Newer = %v, want %v", got, tc.want)
			}
		})
	}
}

func BenchmarkDecode(b *testing.B) {
	for _, c := range []Compression{Raw, Gzip, Zstd} {
		p := Encode(Heartbeat{StormID: "t-1-1", TimeSecs: 9, UptimeSecs: 3}, 50, WithCompression(c))
		b.Run(c.String(), func(b *testing.B) {
			b.ReportAllocs()
			b.SetBytes(int64(len(p)))
			for b.Loop() {
				if _, err := Decode(p); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
