package gssapi

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultReplayCacheMax is the default cap on remembered authenticators
// (pacemaker.kerberos.replay.cache.max): at two clock-skew windows (10
// minutes) of memory each, 100000 allow about 160 handshakes a second, far
// more than a Storm cluster's Nimbus makes. An entry costs about 66 bytes
// (measured: 6.6 MB for 100000), 24 in the restart hand-over.
const DefaultReplayCacheMax = 100000

// ReplayCache remembers the authenticators accepted, for as long as they
// could pass the clock-skew check, so a captured AP-REQ cannot be presented
// twice. It is keyed, as MIT's is since 1.18, by a hash of the
// authenticator's ciphertext rather than by (client, time), so two
// connections of one principal in the same microsecond are not mistaken
// for a replay. Only authenticators that decrypted are added.
//
// It is bounded: each Mechanism gives a cap, and when the cache holds that
// many live entries new authenticators are refused (rather than old ones
// forgotten, which would let a replay through). It is split into shards,
// each with its own lock and a queue in insertion order, so expired
// entries are dropped a few at a time as new ones arrive, never by a walk
// of the whole cache under one lock.
//
// A process remembers nothing from before it started: authenticators made
// before NotBefore are refused, unless a predecessor handed its cache over
// (Restore), which carries the predecessor's NotBefore along.
type ReplayCache struct {
	shards    [replayShards]replayShard
	n         atomic.Int64 // live entries in all shards
	notBefore atomic.Int64 // unix nanoseconds
}

const replayShards = 64

type replayKey [16]byte

type replayEntry struct {
	key replayKey
	exp int64 // unix nanoseconds
}

type replayShard struct {
	mu    sync.Mutex
	seen  map[replayKey]int64 // → expiry
	queue []replayEntry       // insertion order: expiries (nearly) ascending
	head  int                 // queue[:head] are done
}

// NewReplayCache makes an empty cache that refuses authenticators made
// before start.
func NewReplayCache(start time.Time) *ReplayCache {
	c := &ReplayCache{}
	for i := range c.shards {
		c.shards[i].seen = map[replayKey]int64{}
	}
	c.notBefore.Store(start.UnixNano())
	return c
}

// processReplays is shared by every Mechanism of the process, so a reload
// (which builds a new Mechanism) does not forget what was seen. Its
// NotBefore is the process's start, near enough.
var processReplays = NewReplayCache(time.Now())

// ProcessReplayCache is the cache the daemon's mechanisms share, for the
// restart hand-over.
func ProcessReplayCache() *ReplayCache { return processReplays }

// NotBefore is the time before which authenticators are refused.
func (c *ReplayCache) NotBefore() time.Time { return time.Unix(0, c.notBefore.Load()) }

// Len is the number of entries held (live, or expired and not yet dropped).
func (c *ReplayCache) Len() int { return int(c.n.Load()) }

var (
	errReplay          = errors.New("replayed authenticator")
	errReplayCacheFull = errors.New("replay cache full")
)

func hashAuthenticator(ciphertext []byte) replayKey {
	h := sha256.Sum256(ciphertext)
	return replayKey(h[:16])
}

// add records the authenticator's ciphertext until now+keep. It returns
// errReplay when it is already there and errReplayCacheFull when max
// entries are live.
func (c *ReplayCache) add(ciphertext []byte, now time.Time, keep time.Duration, max int) error {
	k := hashAuthenticator(ciphertext)
	t := now.UnixNano()
	if c.n.Load() >= int64(max) {
		c.sweep(t)
	}
	s := &c.shards[int(k[0])%replayShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	c.expire(s, t)
	exp, ok := s.seen[k]
	if ok && exp > t {
		return errReplay
	}
	if !ok {
		if c.n.Add(1) > int64(max) {
			c.n.Add(-1)
			return errReplayCacheFull
		}
	}
	exp = t + int64(keep)
	s.seen[k] = exp
	s.queue = append(s.queue, replayEntry{k, exp})
	return nil
}

// expire drops the expired entries at the front of s's queue; s is locked.
// An entry re-added since keeps its newer expiry.
func (c *ReplayCache) expire(s *replayShard, now int64) {
	for s.head < len(s.queue) && s.queue[s.head].exp <= now {
		e := s.queue[s.head]
		s.queue[s.head] = replayEntry{}
		s.head++
		if exp, ok := s.seen[e.key]; ok && exp == e.exp {
			delete(s.seen, e.key)
			c.n.Add(-1)
		}
	}
	if s.head == len(s.queue) {
		s.queue, s.head = s.queue[:0], 0
	} else if s.head >= 1024 && 2*s.head >= len(s.queue) {
		n := copy(s.queue, s.queue[s.head:])
		clear(s.queue[n:])
		s.queue, s.head = s.queue[:n], 0
	}
}

// sweep expires the front of every shard, one shard locked at a time.
func (c *ReplayCache) sweep(now int64) {
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		c.expire(s, now)
		s.mu.Unlock()
	}
}

// Snapshot encoding: magic, NotBefore, count, then (key, expiry) pairs.
const replayMagic = "PMRC1"

// MarshalBinary snapshots the live entries and NotBefore, for the
// successor of a restart.
func (c *ReplayCache) MarshalBinary() ([]byte, error) {
	now := time.Now().UnixNano()
	var entries []replayEntry
	for i := range c.shards {
		s := &c.shards[i]
		s.mu.Lock()
		for k, exp := range s.seen {
			if exp > now {
				entries = append(entries, replayEntry{k, exp})
			}
		}
		s.mu.Unlock()
	}
	b := make([]byte, 0, len(replayMagic)+12+len(entries)*24)
	b = append(b, replayMagic...)
	b = binary.BigEndian.AppendUint64(b, uint64(c.notBefore.Load()))
	b = binary.BigEndian.AppendUint32(b, uint32(len(entries)))
	for _, e := range entries {
		b = append(b, e.key[:]...)
		b = binary.BigEndian.AppendUint64(b, uint64(e.exp))
	}
	return b, nil
}

// Restore takes over a predecessor's snapshot (MarshalBinary): its
// entries that have not expired, and its NotBefore, which replaces ours —
// what it remembered is remembered here now. A damaged snapshot changes
// nothing.
func (c *ReplayCache) Restore(b []byte, now time.Time) error {
	if len(b) < len(replayMagic)+12 || string(b[:len(replayMagic)]) != replayMagic {
		return errors.New("not a replay cache snapshot")
	}
	b = b[len(replayMagic):]
	notBefore := int64(binary.BigEndian.Uint64(b))
	n := int(binary.BigEndian.Uint32(b[8:]))
	b = b[12:]
	if n > len(b)/24 || len(b) != n*24 {
		return fmt.Errorf("replay cache snapshot holds %d bytes for %d entries", len(b), n)
	}
	entries := make([]replayEntry, 0, n)
	t := now.UnixNano()
	for i := 0; i < n; i++ {
		var e replayEntry
		copy(e.key[:], b[i*24:])
		e.exp = int64(binary.BigEndian.Uint64(b[i*24+16:]))
		if e.exp > t {
			entries = append(entries, e)
		}
	}
	slices.SortFunc(entries, func(a, b replayEntry) int { return cmp.Compare(a.exp, b.exp) })
	for _, e := range entries {
		s := &c.shards[int(e.key[0])%replayShards]
		s.mu.Lock()
		if old, ok := s.seen[e.key]; !ok {
			c.n.Add(1)
			s.seen[e.key] = e.exp
		} else if e.exp > old {
			s.seen[e.key] = e.exp
		}
		s.queue = append(s.queue, e)
		s.mu.Unlock()
	}
	c.notBefore.Store(notBefore)
	return nil
}
