package store

import "math/bits"

// Values up to slabMaxValue bytes are carved out of large per-shard chunks
// instead of being allocated one by one. Go rounds every small allocation
// up to a size class and leaves the tail of each span unused: a 1,382-byte
// heartbeat took 1,408 bytes plus 81 bytes of its span's tail, over a
// hundred megabytes per million keys. A chunk costs exactly its size, and
// the collector scans no pointers in it.
//
// Space freed in a chunk (a deleted key, a value that outgrew its slot) is
// not reused; when the freed space reaches an eighth of a shard's chunks,
// the shard's values are copied into fresh chunks (under its write lock, a
// few milliseconds for a shard of 4,000 heartbeats), so memory stays within
// 8/7 of the live values however keys churn, and each value moved out of
// its slot costs about seven more copies of its size.
const (
	slabMaxValue = 8 << 10 // larger values get their own allocation
	// slabAlign rounds slots up so a heartbeat that grows by a few bytes on
	// its next write usually still fits its slot.
	slabAlign       = 16
	chunkMin        = 16 << 10
	chunkMax        = 256 << 10
	compactMinWaste = 64 << 10 // below this, a shard is not worth compacting
)

// slab is a shard's chunk allocator. Its owner's lock guards it.
type slab struct {
	chunk []byte // the chunk being filled: free space is chunk[len:cap]
	total int64  // bytes of the chunks handed out since the last compaction
	live  int64  // bytes of slots held by stored values
	// hint sizes chunks during a compaction: the live bytes to copy.
	hint        int64
	compactions int // for tests
	// hold defers compaction while bulk deletes run in the shard (see
	// bulk.go): compacting mid-way would copy values about to be deleted.
	hold int
}

// inSlab reports whether a stored value lives in a chunk. Slot sizes are
// multiples of slabAlign, so a slot's capacity never exceeds slabMaxValue,
// and a value with its own allocation is longer than that.
func inSlab(v []byte) bool { return cap(v) <= slabMaxValue }

// alloc returns a slot of n bytes, capacity rounded up to slabAlign.
func (sl *slab) alloc(n int) []byte {
	if n > slabMaxValue {
		return make([]byte, n)
	}
	size := (n + slabAlign - 1) &^ (slabAlign - 1)
	if size == 0 {
		return []byte{}
	}
	if cap(sl.chunk)-len(sl.chunk) < size {
		// Chunks grow with the shard, so a small store stays small and a
		// large one wastes little in chunk tails.
		c := max(chunkMin, min(chunkMax, 1<<bits.Len64(uint64(max(sl.total/8, sl.hint)))))
		sl.chunk = make([]byte, 0, c)
		sl.total += int64(c)
	}
	off := len(sl.chunk)
	sl.chunk = sl.chunk[:off+size]
	sl.live += int64(size)
	return sl.chunk[off : off+n : off+size]
}

// store returns a copy of value in storage the slab owns.
func (sl *slab) store(value []byte) []byte {
	v := sl.alloc(len(value))
	copy(v, value)
	return v
}

// release forgets a value's slot; its space is reclaimed by compaction.
func (sl *slab) release(v []byte) {
	if inSlab(v) {
		sl.live -= int64(cap(v))
	}
}

// waste is the space in chunks that no stored value holds and no future
// value will: the current chunk's free tail does not count.
func (sl *slab) waste() int64 {
	return sl.total - sl.live - int64(cap(sl.chunk)-len(sl.chunk))
}

// wasteful reports whether enough chunk space is dead to compact.
func (sl *slab) wasteful() bool {
	w := sl.waste()
	return w >= compactMinWaste && w >= sl.total/8
}

// rewrite replaces e's value, in place when the new one fits its slot
// without wasting more than half of it, and is smaller than SharedValueMin
// (readers may hold on to larger values).
func (sh *shard) rewrite(e *entry, value []byte) {
	if c := cap(e.value); c >= len(value) && c <= 2*len(value)+64 && len(value) < SharedValueMin {
		e.value = e.value[:len(value)]
		copy(e.value, value)
		return
	}
	sh.release(e.value)
	e.value = sh.store(value)
	sh.compactIfWasteful()
}

// compactIfWasteful copies the shard's chunked values into fresh chunks
// when an eighth of its chunk space is dead. The caller holds sh.mu.
func (sh *shard) compactIfWasteful() {
	if sh.hold > 0 || !sh.wasteful() {
		return
	}
	sh.slab = slab{hint: sh.live, compactions: sh.compactions + 1, hold: sh.hold}
	for _, e := range sh.m {
		if inSlab(e.value) && cap(e.value) > 0 {
			v := sh.alloc(cap(e.value))[:len(e.value)]
			copy(v, e.value)
			e.value = v
		}
	}
	sh.hint = 0
}
