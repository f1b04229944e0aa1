package store

import (
	"fmt"
	"slices"
	"testing"
	"unsafe"
)

// TestSlabChurn rewrites values with changing sizes and deletes keys, then
// checks every value and the slab's accounting; compaction must have kept
// dead space under an eighth of the chunks.
func TestSlabChurn(t *testing.T) {
	s := New(Limits{})
	const keys = 3000
	value := func(k, round int) []byte {
		n := (k*31 + round*97) % 3000 // 0..2999 bytes, sizes change every round
		if k%100 == 0 {
			n = slabMaxValue + 1 + round // own allocation
		}
		v := make([]byte, n)
		for i := range v {
			v[i] = byte(k + round + i)
		}
		return v
	}
	for round := range 6 {
		for k := range keys {
			if err := s.Put(fmt.Sprintf("/wb/t%d/w%d", k%7, k), value(k, round)); err != nil {
				t.Fatal(err)
			}
		}
		if round == 4 {
			for k := 0; k < keys; k += 2 {
				s.Delete(fmt.Sprintf("/wb/t%d/w%d", k%7, k))
			}
		}
	}
	var total int64
	for k := range keys {
		v, ok := s.Get(fmt.Sprintf("/wb/t%d/w%d", k%7, k))
		if !ok || !slices.Equal(v, value(k, 5)) {
			t.Fatalf("key %d: got %d bytes, ok %v", k, len(v), ok)
		}
		total += Cost(fmt.Sprintf("/wb/t%d/w%d", k%7, k), v)
	}
	if s.Bytes() != total || s.Keys() != keys {
		t.Fatalf("accounting: %d bytes %d keys, want %d, %d", s.Bytes(), s.Keys(), total, keys)
	}
	compactions := 0
	for i := range s.shards {
		sh := &s.shards[i]
		compactions += sh.compactions
		var live int64
		for _, e := range sh.m {
			if inSlab(e.value) {
				live += int64(cap(e.value))
			}
		}
		if live != sh.live {
			t.Fatalf("shard %d: live %d, values hold %d", i, sh.live, live)
		}
		if sh.wasteful() {
			t.Fatalf("shard %d: waste %d of %d not compacted", i, sh.waste(), sh.total)
		}
	}
	if compactions == 0 {
		t.Fatal("churn never compacted a shard")
	}
	t.Logf("%d compactions", compactions)
	for k := range keys {
		s.Delete(fmt.Sprintf("/wb/t%d/w%d", k%7, k))
	}
	if s.Keys() != 0 || s.Bytes() != 0 {
		t.Fatalf("after deleting everything: %d keys %d bytes", s.Keys(), s.Bytes())
	}
}

func TestShardSize(t *testing.T) {
	if n := unsafe.Sizeof(shard{}); n%64 != 0 {
		t.Fatalf("shard is %d bytes, want a multiple of the 64-byte cache line", n)
	}
}
