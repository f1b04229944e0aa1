package store

import (
	"hash/maphash"
	"runtime"
)

// Bulk deletes (DELETE_PATH, the TTL sweep) cost O(keys deleted) and stall
// nobody for long: keys are grouped by shard and removed bulkBatch at a
// time per hold of a shard's lock (and, for a sweep, of the index's), and
// every shard they touch defers its compaction until the whole delete is
// done, so no value that is about to die is copied. DELETE_PATH first takes
// the whole subtree out of the index in O(depth) (index.detach), so it
// holds the index lock for no time at all.
const (
	bulkBatch = 256     // keys removed per hold of one shard's lock
	bulkFlush = 1 << 14 // keys gathered before they are removed
)

// bulkDelete removes many keys; call finish once at the end.
type bulkDelete struct {
	s *Store
	// indexed: the keys are still in the index (a sweep), not in a
	// detached subtree (a path delete).
	indexed bool
	cond    func(*entry) bool // nil: remove unconditionally
	held    [shardCount]bool  // shards whose compaction this delete defers
	groups  [shardCount][]string
	pending int
	gone    []string
	n       int
}

// add queues key, removing the queued keys once enough are gathered.
func (b *bulkDelete) add(key string) {
	i := maphash.String(b.s.seed, key) & (shardCount - 1)
	b.groups[i] = append(b.groups[i], key)
	if b.pending++; b.pending >= bulkFlush {
		b.flush()
	}
}

func (b *bulkDelete) flush() {
	for i := range b.groups {
		if len(b.groups[i]) > 0 {
			b.shard(i, b.groups[i])
			b.groups[i] = b.groups[i][:0]
		}
	}
	b.pending = 0
}

// shard removes keys, all of shard i, bulkBatch per lock hold.
func (b *bulkDelete) shard(i int, keys []string) {
	sh := &b.s.shards[i]
	for len(keys) > 0 {
		part := keys[:min(len(keys), bulkBatch)]
		keys = keys[len(part):]
		var freed int64
		b.gone = b.gone[:0]
		sh.mu.Lock()
		if !b.held[i] {
			b.held[i] = true
			sh.hold++
		}
		for _, key := range part {
			e, ok := sh.m[key]
			if !ok || (b.cond != nil && !b.cond(e)) {
				continue
			}
			delete(sh.m, key)
			sh.release(e.value)
			freed += Cost(key, e.value)
			b.gone = append(b.gone, key)
		}
		if b.indexed && len(b.gone) > 0 {
			b.s.idx.removeAll(b.gone)
		}
		sh.mu.Unlock()
		b.s.keys.Add(-int64(len(b.gone)))
		b.s.bytes.Add(-freed)
		b.n += len(b.gone)
		// On a busy machine the goroutines waiting to answer requests
		// would otherwise wait for the scheduler to preempt this one
		// (10 ms slices).
		runtime.Gosched()
	}
}

// finish removes what is still queued, lets the touched shards compact
// (once each) and returns how many keys were removed.
func (b *bulkDelete) finish() int {
	b.flush()
	for i, held := range b.held {
		if !held {
			continue
		}
		sh := &b.s.shards[i]
		sh.mu.Lock()
		sh.hold--
		sh.compactIfWasteful()
		sh.mu.Unlock()
		b.held[i] = false
	}
	return b.n
}

// DeletePath removes path and every key below it (DELETE_PATH) and returns
// how many keys it removed. Keys written concurrently may survive, as if
// written just after.
func (s *Store) DeletePath(path string) int {
	self, sub, prefix := s.idx.detach(path)
	n := 0
	for _, key := range self {
		if s.Delete(key) {
			n++
		}
	}
	if sub == nil {
		return n
	}
	b := &bulkDelete{s: s}
	sub.walk(prefix, b.add)
	return n + b.finish()
}

// Sweep drops heartbeats older than the TTL and returns how many it
// dropped. A no-op without a TTL.
func (s *Store) Sweep() int {
	ttl := s.ttl.Load()
	if ttl <= 0 {
		return 0
	}
	b := &bulkDelete{s: s, indexed: true}
	for i := range s.shards {
		cutoff := s.now() - ttl
		// Re-checked under the write lock: a key may be rewritten meanwhile.
		b.cond = func(e *entry) bool { return e.written < cutoff }
		sh := &s.shards[i]
		sh.mu.RLock()
		for k, e := range sh.m {
			if e.written < cutoff {
				b.groups[i] = append(b.groups[i], k)
			}
		}
		sh.mu.RUnlock()
		b.shard(i, b.groups[i])
		b.groups[i] = b.groups[i][:0]
	}
	return b.finish()
}
