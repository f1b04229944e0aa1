// Package store keeps heartbeats in memory with Storm's Pacemaker semantics:
// byte-array values under ZooKeeper-like slash-separated keys.
//
// Values live in a sharded map so that writers on many connections do not
// serialize on one lock; a separate path index answers directory listings.
// Limits bound the number of keys and the stored bytes, and an optional TTL
// drops heartbeats that stopped being rewritten.
package store

import (
	"errors"
	"hash/maphash"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// shardCount is a power of two large enough that 2 cores' worth of writers
// rarely meet on a lock, and small enough that one shard's TTL sweep is short.
const shardCount = 256

// Errors returned by Put when a limit would be exceeded.
var (
	ErrTooManyKeys   = errors.New("store holds the maximum number of keys")
	ErrStoreFull     = errors.New("store holds the maximum number of bytes")
	ErrValueTooLarge = errors.New("heartbeat larger than the maximum heartbeat size")
	ErrKeyTooLong    = errors.New("heartbeat path longer than pacemaker.max.key.bytes")
)

// Limits bound what the store may hold. Zero means unlimited.
type Limits struct {
	MaxKeys       int64
	MaxBytes      int64 // sum of Cost over the stored keys
	MaxValueBytes int   // one value
	MaxKeyBytes   int   // one key
}

// EntryOverhead is what one stored key costs beyond its path and value
// bytes: its map slot and entry, its place in the path index, slab slot
// rounding. Measured at 1 M keys (store.TestMemoryPerKey and the fill
// benchmark): 150–250 bytes; the budget counts the upper end.
const EntryOverhead = 256

// Cost is what a key and its value count against Limits.MaxBytes.
func Cost(key string, value []byte) int64 {
	return int64(len(key)) + int64(len(value)) + EntryOverhead
}

// SharedValueMin is the size from which a stored value is never modified
// in place: a rewrite stores a new buffer. A reader may then keep such a
// value past View (an answer written straight from it, not copied per
// connection) and see it whole even if the key is rewritten meanwhile.
// Smaller values are rewritten in place: a flood of rewrites of 256 KiB
// values then makes no garbage (answers with them are copied, and counted
// in the buffered budget).
const SharedValueMin = 1 << 20

// Store is safe for concurrent use.
type Store struct {
	shards [shardCount]shard // first: a large allocation starts page-aligned
	seed   maphash.Seed
	idx    index

	keys   atomic.Int64
	bytes  atomic.Int64
	peak   atomic.Int64 // high-water mark of bytes since the last TakePeak
	limits atomic.Pointer[Limits]
	ttl    atomic.Int64 // nanoseconds; 0 = keep forever

	now func() int64 // unix nanoseconds; replaceable in tests
}

type shard struct {
	mu sync.RWMutex
	// Values are pointers so a rewrite mutates the entry in place: assigning
	// m[key] again would make the map keep the caller's key string, which
	// may alias a reused network buffer.
	m map[string]*entry
	slab
	_ [32]byte // 128 bytes: one shard's hot fields never share a cache line with another's
}

type entry struct {
	value   []byte
	written int64 // unix nanoseconds of the last write, for the TTL
}

// New returns an empty store.
func New(l Limits) *Store {
	s := &Store{seed: maphash.MakeSeed(), now: func() int64 { return time.Now().UnixNano() }}
	for i := range s.shards {
		s.shards[i].m = make(map[string]*entry)
	}
	s.SetLimits(l)
	return s
}

// SetLimits replaces the limits; stored data above new limits is kept.
func (s *Store) SetLimits(l Limits) { s.limits.Store(&l) }

// SetTTL makes heartbeats not rewritten within ttl eligible for expiry by
// Sweep; 0 keeps them forever (Storm's behaviour).
func (s *Store) SetTTL(ttl time.Duration) { s.ttl.Store(int64(ttl)) }

// TTL returns the current TTL.
func (s *Store) TTL() time.Duration { return time.Duration(s.ttl.Load()) }

func (s *Store) shard(key string) *shard {
	return &s.shards[maphash.String(s.seed, key)&(shardCount-1)]
}

// Put stores a copy of value under key. Key may alias a buffer the caller
// reuses: the store copies it when the key is new. Rewriting an existing key
// with a value of similar size reuses the stored buffer and allocates nothing.
func (s *Store) Put(key string, value []byte) error {
	return s.PutAt(key, value, s.now())
}

// PutAt is Put with the write time given (Unix nanoseconds), for a caller
// that has read the clock already.
func (s *Store) PutAt(key string, value []byte, now int64) error {
	l := s.limits.Load()
	if l.MaxValueBytes > 0 && len(value) > l.MaxValueBytes {
		return ErrValueTooLarge
	}
	if l.MaxKeyBytes > 0 && len(key) > l.MaxKeyBytes {
		return ErrKeyTooLong
	}
	sh := s.shard(key)
	sh.mu.Lock()
	e, ok := sh.m[key]
	grow := Cost(key, value)
	if ok {
		grow = int64(len(value)) - int64(len(e.value))
	}
	// Limits are reserved with one atomic add before the copy, so writers
	// racing on different shards cannot pass a check together and overshoot.
	reserved := grow > 0 && l.MaxBytes > 0
	if reserved && s.bytes.Add(grow) > l.MaxBytes {
		s.bytes.Add(-grow)
		sh.mu.Unlock()
		return ErrStoreFull
	}
	addBytes := func() {
		if !reserved && grow != 0 {
			s.bytes.Add(grow)
		}
		if grow > 0 {
			s.notePeak()
		}
	}
	if ok {
		sh.rewrite(e, value)
		e.written = now
		sh.mu.Unlock()
		addBytes()
		return nil
	}
	if l.MaxKeys > 0 {
		if s.keys.Add(1) > l.MaxKeys {
			s.keys.Add(-1)
			if reserved {
				s.bytes.Add(-grow)
			}
			sh.mu.Unlock()
			return ErrTooManyKeys
		}
	} else {
		s.keys.Add(1)
	}
	owned := strings.Clone(key)
	sh.m[owned] = &entry{value: sh.store(value), written: now}
	sh.compactIfWasteful() // a new chunk may have left the last one's tail behind
	s.idx.add(owned)
	sh.mu.Unlock()
	addBytes()
	return nil
}

// Restore stores a copy of value under key with its original write time,
// ignoring limits: it refills the store from a predecessor's snapshot.
func (s *Store) Restore(key string, value []byte, written time.Time) {
	sh := s.shard(key)
	sh.mu.Lock()
	if e, ok := sh.m[key]; ok {
		s.bytes.Add(int64(len(value) - len(e.value)))
		sh.rewrite(e, value)
		e.written = written.UnixNano()
		sh.mu.Unlock()
		return
	}
	owned := strings.Clone(key)
	sh.m[owned] = &entry{value: sh.store(value), written: written.UnixNano()}
	sh.compactIfWasteful() // a new chunk may have left the last one's tail behind
	s.idx.add(owned)
	sh.mu.Unlock()
	s.keys.Add(1)
	s.bytes.Add(Cost(key, value))
}

func clone(b []byte) []byte {
	return append(make([]byte, 0, len(b)), b...)
}

// View calls fn with the value stored under key while holding the shard's
// read lock, so the caller can encode it without a copy. fn must not append
// to value, nor retain it unless it is at least SharedValueMin bytes long. It reports whether the key exists; fn is not called when it does not.
func (s *Store) View(key string, fn func(value []byte)) bool {
	sh := s.shard(key)
	sh.mu.RLock()
	defer sh.mu.RUnlock()
	e, ok := sh.m[key]
	if ok {
		fn(e.value)
	}
	return ok
}

// Get returns a copy of the value under key.
func (s *Store) Get(key string) ([]byte, bool) {
	var out []byte
	ok := s.View(key, func(v []byte) { out = clone(v) })
	return out, ok
}

// Exists reports whether key is stored.
func (s *Store) Exists(key string) bool {
	sh := s.shard(key)
	sh.mu.RLock()
	_, ok := sh.m[key]
	sh.mu.RUnlock()
	return ok
}

// Delete removes exactly key (DELETE_PULSE_ID).
func (s *Store) Delete(key string) bool {
	return s.deleteIf(key, func(*entry) bool { return true })
}

func (s *Store) deleteIf(key string, cond func(*entry) bool) bool {
	sh := s.shard(key)
	sh.mu.Lock()
	e, ok := sh.m[key]
	if !ok || !cond(e) {
		sh.mu.Unlock()
		return false
	}
	delete(sh.m, key)
	s.idx.remove(key)
	sh.release(e.value)
	sh.compactIfWasteful()
	sh.mu.Unlock()
	s.keys.Add(-1)
	s.bytes.Add(-Cost(key, e.value))
	return true
}

// Children returns the distinct names directly below path that have keys
// under them (GET_ALL_NODES_FOR_PATH). Storm promises no order; these are
// sorted. The slice is shared with other callers until the listing changes:
// it must not be modified.
func (s *Store) Children(path string) []string { return s.idx.children(path) }

// Keys returns the number of stored keys.
func (s *Store) Keys() int64 { return s.keys.Load() }

// notePeak raises the high-water mark of Bytes to the current value.
func (s *Store) notePeak() {
	b := s.bytes.Load()
	for h := s.peak.Load(); b > h && !s.peak.CompareAndSwap(h, b); h = s.peak.Load() {
	}
}

// TakePeak returns the highest Bytes since the last TakePeak (or since the
// store was made) and starts a new mark at the current value. Memory
// trimming uses it: a fill and a delete between two samples of Bytes would
// otherwise go unseen.
func (s *Store) TakePeak() int64 {
	return max(s.peak.Swap(s.bytes.Load()), s.bytes.Load())
}

// Bytes returns the sum of Cost over the stored keys: what
// Limits.MaxBytes bounds.
func (s *Store) Bytes() int64 { return s.bytes.Load() }

// Snapshot calls fn for every stored key and value, shard by shard (for a
// hand-over to a new process). fn must not retain value.
func (s *Store) Snapshot(fn func(key string, value []byte, written time.Time) error) error {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for k, e := range sh.m {
			if err := fn(k, e.value, time.Unix(0, e.written)); err != nil {
				sh.mu.RUnlock()
				return err
			}
		}
		sh.mu.RUnlock()
	}
	return nil
}
