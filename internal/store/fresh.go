package store

import "strings"

// WriteTimes calls fn for every stored key that starts with prefix, with the
// time it was last written (unix nanoseconds, the clock the TTL uses). It
// reads what the store keeps anyway for the TTL: no value is decoded.
//
// It walks the shards one at a time under each shard's read lock, so a
// writer waits at most for one shard's scan (1/256 of the keys), never for
// the whole walk; keys written during the walk may or may not be seen, as
// if the walk ran just before or just after. Cost: one pass over the keys.
//
// fn runs under a shard's read lock: it must be quick, must not call the
// store, and must not retain key beyond the call (copy what it keeps).
func (s *Store) WriteTimes(prefix string, fn func(key string, written int64)) {
	for i := range s.shards {
		sh := &s.shards[i]
		sh.mu.RLock()
		for k, e := range sh.m {
			if strings.HasPrefix(k, prefix) {
				fn(k, e.written)
			}
		}
		sh.mu.RUnlock()
	}
}

// Limits returns the limits in force (for the metrics that show how near
// the store is to them).
func (s *Store) Limits() Limits { return *s.limits.Load() }
