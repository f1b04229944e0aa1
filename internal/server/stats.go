package server

import (
	"sync"
	"sync/atomic"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// Stats are the server's counters: atomics only, so counting takes no lock
// on the request path. The metrics package reads them on scrape.
type Stats struct {
	Requests      [wire.NotAuthorized + 1]atomic.Uint64 // by request type
	BytesIn       atomic.Uint64                         // frames received, length prefixes included
	BytesOut      atomic.Uint64
	PulseBytes    atomic.Uint64 // heartbeat bytes received (SEND_PULSE details)
	PulseBytesOut atomic.Uint64 // heartbeat bytes sent (GET_PULSE details)
	ConnsOpened   atomic.Uint64
	ConnsClosed   atomic.Uint64
	AuthSuccesses atomic.Uint64

	rejects      sync.Map // reason → *atomic.Uint64
	authFailures sync.Map // authKey → *atomic.Uint64
}

type authKey struct{ Method, Reason string }

func counter(m *sync.Map, k any) *atomic.Uint64 {
	if v, ok := m.Load(k); ok {
		return v.(*atomic.Uint64)
	}
	v, _ := m.LoadOrStore(k, new(atomic.Uint64))
	return v.(*atomic.Uint64)
}

func (s *Stats) reject(reason string) { counter(&s.rejects, reason).Add(1) }

func (s *Stats) authFailure(method string, reason auth.Reason) {
	counter(&s.authFailures, authKey{method, string(reason)}).Add(1)
}

// Rejects calls fn for each rejection reason and its count.
func (s *Stats) Rejects(fn func(reason string, n uint64)) {
	s.rejects.Range(func(k, v any) bool { fn(k.(string), v.(*atomic.Uint64).Load()); return true })
}

// AuthFailures calls fn for each (method, reason) and its count.
func (s *Stats) AuthFailures(fn func(method, reason string, n uint64)) {
	s.authFailures.Range(func(k, v any) bool {
		ak := k.(authKey)
		fn(ak.Method, ak.Reason, v.(*atomic.Uint64).Load())
		return true
	})
}
