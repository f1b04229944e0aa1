package store

import (
	"bytes"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"
	"unsafe"
)

func TestStormSemantics(t *testing.T) {
	type op struct {
		do   string // put, del, delpath
		key  string
		want []string // for ls: children; for get: value; for exists: "true"/"false"
	}
	tests := []struct {
		name string
		ops  []op
	}{
		{"put and get", []op{
			{do: "put", key: "/wb/t1/n1-6700", want: []string{"a"}},
			{do: "get", key: "/wb/t1/n1-6700", want: []string{"a"}},
			{do: "get", key: "/wb/t1/missing", want: nil},
			{do: "exists", key: "/wb/t1/n1-6700", want: []string{"true"}},
			{do: "exists", key: "/wb/t1", want: []string{"false"}},
		}},
		{"overwrite keeps one key", []op{
			{do: "put", key: "/wb/t1/n1-6700", want: []string{"a"}},
			{do: "put", key: "/wb/t1/n1-6700", want: []string{"bb"}},
			{do: "get", key: "/wb/t1/n1-6700", want: []string{"bb"}},
			{do: "ls", key: "/wb/t1", want: []string{"n1-6700"}},
			{do: "count", want: []string{"1"}},
		}},
		{"children at two depths", []op{
			{do: "put", key: "/wb/t1/n1-6700", want: []string{"a"}},
			{do: "put", key: "/wb/t1/n2-6701", want: []string{"a"}},
			{do: "put", key: "/wb/t2/n3-6702", want: []string{"a"}},
			{do: "ls", key: "/wb", want: []string{"t1", "t2"}},
			{do: "ls", key: "/wb/", want: []string{"t1", "t2"}},
			{do: "ls", key: "/wb/t1", want: []string{"n1-6700", "n2-6701"}},
			{do: "ls", key: "/", want: []string{"wb"}},
			{do: "ls", key: "/nothing", want: []string{}},
			{do: "ls", key: "/wb/t1/n1-6700", want: []string{}},
		}},
		{"delete pulse id removes exactly one key", []op{
			{do: "put", key: "/wb/t1/n1", want: []string{"a"}},
			{do: "put", key: "/wb/t1/n1/sub", want: []string{"a"}},
			{do: "del", key: "/wb/t1/n1"},
			{do: "exists", key: "/wb/t1/n1", want: []string{"false"}},
			{do: "exists", key: "/wb/t1/n1/sub", want: []string{"true"}},
			{do: "ls", key: "/wb/t1", want: []string{"n1"}},
		}},
		{"delete path removes the key and everything below", []op{
			{do: "put", key: "/wb/t1", want: []string{"a"}},
			{do: "put", key: "/wb/t1/n1", want: []string{"a"}},
			{do: "put", key: "/wb/t1/n2/x", want: []string{"a"}},
			{do: "put", key: "/wb/t10/n1", want: []string{"a"}},
			{do: "delpath", key: "/wb/t1"},
			{do: "exists", key: "/wb/t1", want: []string{"false"}},
			{do: "exists", key: "/wb/t1/n1", want: []string{"false"}},
			{do: "exists", key: "/wb/t10/n1", want: []string{"true"}},
			{do: "ls", key: "/wb", want: []string{"t10"}},
			{do: "count", want: []string{"1"}},
		}},
		{"delete path of the root empties the store", []op{
			{do: "put", key: "/a/b", want: []string{"a"}},
			{do: "put", key: "/c", want: []string{"a"}},
			{do: "delpath", key: "/"},
			{do: "count", want: []string{"0"}},
			{do: "ls", key: "/", want: []string{}},
		}},
		{"redundant slashes list like Storm", []op{
			{do: "put", key: "/wb//t1/n1", want: []string{"a"}},
			{do: "put", key: "/wb/t1/n2", want: []string{"a"}},
			{do: "ls", key: "/wb", want: []string{"t1"}},
			{do: "del", key: "/wb//t1/n1"},
			{do: "ls", key: "/wb/t1", want: []string{"n2"}},
		}},
		// Storm cuts names at the raw string prefix and reads the path as a
		// regular expression: it answers ["-1", "-12"] for /workerbeats/topo
		// and ["n1-6700", "2"] for /workerbeats/topo-1. We list by path
		// segments (docs/compatibility.md).
		{"a path that ends inside a name lists by segments", []op{
			{do: "put", key: "/workerbeats/topo-1/n1-6700", want: []string{"a"}},
			{do: "put", key: "/workerbeats/topo-12/n2-6701", want: []string{"a"}},
			{do: "ls", key: "/workerbeats/topo", want: []string{}},
			{do: "ls", key: "/workerbeats/topo-1", want: []string{"n1-6700"}},
			{do: "ls", key: "/workerbeats", want: []string{"topo-1", "topo-12"}},
		}},
		{"a path is literal, not a regular expression", []op{
			{do: "put", key: "/wb/t.1/n1", want: []string{"a"}},
			{do: "put", key: "/wb/tx1/n2", want: []string{"a"}},
			{do: "ls", key: "/wb/t.1", want: []string{"n1"}},
			{do: "ls", key: "/wb/t[", want: []string{}},
		}},
		{"empty value is stored", []op{
			{do: "put", key: "/e", want: []string{""}},
			{do: "get", key: "/e", want: []string{""}},
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(Limits{})
			for i, o := range tt.ops {
				switch o.do {
				case "put":
					if err := s.Put(o.key, []byte(o.want[0])); err != nil {
						t.Fatalf("op %d put: %v", i, err)
					}
				case "get":
					v, ok := s.Get(o.key)
					if o.want == nil {
						if ok {
							t.Fatalf("op %d get %s: found %q, want missing", i, o.key, v)
						}
					} else if !ok || string(v) != o.want[0] {
						t.Fatalf("op %d get %s = %q,%v want %q", i, o.key, v, ok, o.want[0])
					}
				case "exists":
					if got := fmt.Sprint(s.Exists(o.key)); got != o.want[0] {
						t.Fatalf("op %d exists %s = %s", i, o.key, got)
					}
				case "ls":
					// Sorted already; a shared slice must not be sorted in place.
					got := s.Children(o.key)
					if !slices.Equal(got, o.want) {
						t.Fatalf("op %d ls %s = %q want %q", i, o.key, got, o.want)
					}
				case "del":
					s.Delete(o.key)
				case "delpath":
					s.DeletePath(o.key)
				case "count":
					if got := fmt.Sprint(s.Keys()); got != o.want[0] {
						t.Fatalf("op %d keys = %s want %s", i, got, o.want[0])
					}
				}
			}
		})
	}
}

func TestPutCopiesKeyAndValue(t *testing.T) {
	s := New(Limits{})
	key := []byte("/wb/t/n")
	val := []byte("hello")
	if err := s.Put(string(key), val); err != nil {
		t.Fatal(err)
	}
	copy(key, "/xx/x/x")
	copy(val, "XXXXX")
	if v, ok := s.Get("/wb/t/n"); !ok || string(v) != "hello" {
		t.Fatalf("got %q %v", v, ok)
	}
}

func TestLimits(t *testing.T) {
	// Keys are "/k/N": 4 bytes, so a put of n value bytes costs n+4+EntryOverhead.
	const per = 4 + EntryOverhead
	tests := []struct {
		name   string
		limits Limits
		puts   []int // value sizes, each to a new key
		want   error // of the last put
	}{
		{"keys", Limits{MaxKeys: 2}, []int{1, 1, 1}, ErrTooManyKeys},
		{"bytes", Limits{MaxBytes: 2*per + 10}, []int{5, 5, 1}, ErrStoreFull},
		{"key bytes count", Limits{MaxBytes: per}, []int{0, 0}, ErrStoreFull},
		{"value", Limits{MaxValueBytes: 4}, []int{5}, ErrValueTooLarge},
		{"key", Limits{MaxKeyBytes: 3}, []int{1}, ErrKeyTooLong},
		{"within", Limits{MaxKeys: 3, MaxBytes: 3 * (per + 1), MaxValueBytes: 1, MaxKeyBytes: 4}, []int{1, 1, 1}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := New(tt.limits)
			var err error
			for i, n := range tt.puts {
				err = s.Put(fmt.Sprintf("/k/%d", i), make([]byte, n))
			}
			if err != tt.want {
				t.Fatalf("last put: %v, want %v", err, tt.want)
			}
		})
	}
	// Rewriting an existing key at the byte cap with a same-size value succeeds.
	s := New(Limits{MaxBytes: Cost("/a", make([]byte, 4))})
	if err := s.Put("/a", make([]byte, 4)); err != nil {
		t.Fatal(err)
	}
	if err := s.Put("/a", make([]byte, 4)); err != nil {
		t.Fatalf("same-size rewrite at cap: %v", err)
	}
	if s.Bytes() != Cost("/a", make([]byte, 4)) {
		t.Fatalf("bytes = %d", s.Bytes())
	}
	// A 1 MiB key with a 1-byte value costs its key: keys cannot hide
	// memory from the byte cap.
	s = New(Limits{MaxBytes: 64 << 20})
	big := strings.Repeat("k", 1<<20)
	n := 0
	for ; n < 100; n++ {
		if err := s.Put(fmt.Sprintf("/%d/%s", n, big), []byte{1}); err != nil {
			break
		}
	}
	if n != 63 {
		t.Fatalf("%d puts of 1 MiB keys fit under 64 MiB, want 63", n)
	}
}

func TestSharedValuesAreNotRewrittenInPlace(t *testing.T) {
	s := New(Limits{})
	for _, size := range []int{SharedValueMin, SharedValueMin + 100} {
		_ = s.Put("/a", bytes.Repeat([]byte{1}, size))
		var held []byte
		s.View("/a", func(v []byte) { held = v })
		_ = s.Put("/a", bytes.Repeat([]byte{2}, size))
		if held[0] != 1 || held[size-1] != 1 {
			t.Fatalf("a %d-byte value a reader held was rewritten in place", size)
		}
	}
}

func TestTTLSweep(t *testing.T) {
	s := New(Limits{})
	now := int64(1_000_000_000_000)
	s.now = func() int64 { return now }
	s.SetTTL(30 * time.Second)
	_ = s.Put("/wb/t/old", []byte("x"))
	now += int64(20 * time.Second)
	_ = s.Put("/wb/t/new", []byte("y"))
	now += int64(15 * time.Second)
	if n := s.Sweep(); n != 1 {
		t.Fatalf("swept %d, want 1", n)
	}
	if s.Exists("/wb/t/old") || !s.Exists("/wb/t/new") {
		t.Fatal("wrong key expired")
	}
	if got := s.Children("/wb/t"); !slices.Equal(got, []string{"new"}) {
		t.Fatalf("children after sweep: %q", got)
	}
	s.SetTTL(0)
	now += int64(time.Hour)
	if n := s.Sweep(); n != 0 {
		t.Fatalf("sweep without TTL dropped %d", n)
	}
}

// TestConcurrentIndexConsistency races creations and deletions of the same
// keys and checks the index agrees with the map afterwards.
func TestConcurrentIndexConsistency(t *testing.T) {
	s := New(Limits{})
	var wg sync.WaitGroup
	for w := range 4 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := range 2000 {
				key := fmt.Sprintf("/wb/t%d/n%d", i%3, i%17)
				switch (i + w) % 4 {
				case 0, 1:
					_ = s.Put(key, []byte("v"))
				case 2:
					s.Delete(key)
				case 3:
					s.DeletePath(fmt.Sprintf("/wb/t%d", i%3))
				}
			}
		}()
	}
	wg.Wait()
	var inMap []string
	_ = s.Snapshot(func(k string, _ []byte, _ time.Time) error { inMap = append(inMap, k); return nil })
	inIndex := s.idx.keys()
	slices.Sort(inMap)
	slices.Sort(inIndex)
	if !slices.Equal(inMap, inIndex) {
		t.Fatalf("map %q\nindex %q", inMap, inIndex)
	}
	if int(s.Keys()) != len(inMap) {
		t.Fatalf("key count %d, map has %d", s.Keys(), len(inMap))
	}
}

// TestRewriteKeepsStoredKey: the server passes keys that alias its read
// buffer; rewriting an existing key must not make the map adopt that alias.
func TestRewriteKeepsStoredKey(t *testing.T) {
	s := New(Limits{})
	buf := []byte("/wb/t/n1")
	if err := s.Put(string(buf), []byte("a")); err != nil {
		t.Fatal(err)
	}
	alias := unsafe.String(&buf[0], len(buf))
	if err := s.Put(alias, []byte("b")); err != nil {
		t.Fatal(err)
	}
	copy(buf, "/zz/z/z9")
	if v, ok := s.Get("/wb/t/n1"); !ok || string(v) != "b" {
		t.Fatalf("after the caller reused its buffer: %q %v", v, ok)
	}
	var keys []string
	_ = s.Snapshot(func(k string, _ []byte, _ time.Time) error { keys = append(keys, k); return nil })
	if !slices.Equal(keys, []string{"/wb/t/n1"}) {
		t.Fatalf("stored keys %q", keys)
	}
}
