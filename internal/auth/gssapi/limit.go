package gssapi

import (
	"hash/maphash"
	"net/netip"
	"sync"
	"time"
)

// DefaultHandshakeRate is the default of
// pacemaker.kerberos.handshakes.per.peer: AP-REQs a second from one
// address (an IPv6 /64 counts as one), with bursts of twice as many.
// Decrypting a ticket and an authenticator is the costliest thing an
// unauthenticated peer can make the daemon do; Nimbus opens a handful of
// connections a minute.
const DefaultHandshakeRate = 50

// peerLimiter is a GCRA (token bucket) per peer address, in shards with
// their own locks. Each shard holds at most limiterShardCap addresses: a
// full shard first drops the addresses whose bucket is full again (which
// loses nothing), then arbitrary ones down to three quarters, so that a flood from many addresses
// costs a bounded table and at worst a fresh burst for some of them.
type peerLimiter struct {
	seed   maphash.Seed
	shards [limiterShards]limiterShard
}

const (
	limiterShards   = 64
	limiterShardCap = 1024
)

type limiterShard struct {
	mu  sync.Mutex
	tat map[netip.Addr]int64 // theoretical arrival time, unix nanoseconds
}

func newPeerLimiter() *peerLimiter {
	l := &peerLimiter{seed: maphash.MakeSeed()}
	for i := range l.shards {
		l.shards[i].tat = map[netip.Addr]int64{}
	}
	return l
}

// processLimiter is shared by every Mechanism of the process: a reload
// does not hand everyone a fresh burst.
var processLimiter = newPeerLimiter()

// limiterKey is the address a peer is counted under: IPv4 as is, IPv6 by
// its /64 (one host usually has a whole /64 to pick addresses from).
func limiterKey(peer string) netip.Addr {
	ap, err := netip.ParseAddrPort(peer)
	var a netip.Addr
	if err == nil {
		a = ap.Addr()
	} else if a, err = netip.ParseAddr(peer); err != nil {
		return netip.Addr{}
	}
	a = a.Unmap().WithZone("")
	if a.Is6() {
		p, _ := a.Prefix(64)
		a = p.Addr()
	}
	return a
}

// allow takes one handshake from peer's bucket: rate a second, burst at
// once. rate <= 0 allows everything.
func (l *peerLimiter) allow(peer netip.Addr, now time.Time, rate float64, burst int) bool {
	if rate <= 0 {
		return true
	}
	interval := int64(float64(time.Second) / rate)
	t := now.UnixNano()
	s := &l.shards[maphash.Comparable(l.seed, peer)%limiterShards]
	s.mu.Lock()
	defer s.mu.Unlock()
	tat, ok := s.tat[peer]
	if tat < t {
		tat = t
	}
	next := tat + interval
	if next-t > interval*int64(max(burst, 1)) {
		return false
	}
	if !ok && len(s.tat) >= limiterShardCap {
		s.evict(t)
	}
	s.tat[peer] = next
	return true
}

// evict makes room in a full shard; s is locked.
func (s *limiterShard) evict(now int64) {
	for k, tat := range s.tat {
		if tat <= now {
			delete(s.tat, k)
		}
	}
	for k := range s.tat {
		if len(s.tat) < limiterShardCap*3/4 {
			break
		}
		delete(s.tat, k)
	}
}
