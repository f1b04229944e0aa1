package metrics

import (
	"context"
	"net"
	"net/http"
	"sync"
	"time"
)

// The metrics port is reachable by whoever can reach the daemon, so its
// HTTP server is bounded like the heartbeat port: a client may hold at most
// one of MaxConns connections, for at most idleTimeout between requests,
// and send at most maxHeaderBytes of headers within readHeaderTimeout. At
// the cap a newcomer evicts the connection idle longest, so idle keep-alive
// connections cannot lock out a health checker, and the descriptors the
// port can take stay within the daemon's budget (see MaxConns).
const (
	// MaxConns is the most connections the metrics port holds at once;
	// the daemon counts them in its descriptor budget.
	MaxConns          = 64
	maxHeaderBytes    = 8 << 10
	readHeaderTimeout = 5 * time.Second
	readTimeout       = 10 * time.Second
	writeTimeout      = 30 * time.Second
	idleTimeout       = 30 * time.Second
	// evictAfter protects a new connection from eviction while it sends
	// its first request, so a health checker's fresh connection is not
	// pushed out by a flood of newer ones.
	evictAfter = time.Second
)

// NewServer returns an HTTP server for m's Handler with the limits above.
// Serve it on lim.Listener(ln): the connection cap lives in the listener.
func (m *Metrics) NewServer(lim *Limiter) *http.Server {
	h := m.Handler()
	return &http.Server{
		Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			c, _ := r.Context().Value(connKey{}).(net.Conn)
			lim.serving(c, true)
			defer lim.serving(c, false)
			h.ServeHTTP(w, r)
		}),
		ReadHeaderTimeout: readHeaderTimeout,
		ReadTimeout:       readTimeout,
		WriteTimeout:      writeTimeout,
		IdleTimeout:       idleTimeout,
		MaxHeaderBytes:    maxHeaderBytes,
		ConnState:         lim.connState,
		ConnContext: func(ctx context.Context, c net.Conn) context.Context {
			return context.WithValue(ctx, connKey{}, c)
		},
	}
}

// connKey carries a request's connection in its context, for the Limiter.
type connKey struct{}

// Limiter caps the connections of one http.Server: wrap its listener with
// Listener and pass the Limiter to NewServer.
type Limiter struct {
	max   int
	mu    sync.Mutex
	conns map[net.Conn]*connInfo
	wake  chan struct{} // a slot was freed
}

type connInfo struct {
	serving bool // a handler is answering a request on it
	idle    bool // between requests (keep-alive)
	opened  time.Time
	since   time.Time // of its last change; the oldest goes first
}

// NewLimiter returns a limiter of n connections.
func NewLimiter(n int) *Limiter {
	return &Limiter{max: n, conns: map[net.Conn]*connInfo{}, wake: make(chan struct{}, 1)}
}

// Open returns the number of connections held now.
func (l *Limiter) Open() int {
	l.mu.Lock()
	defer l.mu.Unlock()
	return len(l.conns)
}

// Listener wraps ln so that its Accept admits a connection only under the
// cap.
func (l *Limiter) Listener(ln net.Listener) net.Listener { return &limitedListener{Listener: ln, l: l} }

type limitedListener struct {
	net.Listener
	l *Limiter
}

func (ll *limitedListener) Accept() (net.Conn, error) {
	c, err := ll.Listener.Accept()
	if err != nil {
		return nil, err
	}
	ll.l.admit(c)
	return c, nil
}

// admit counts c in, first evicting, when at the cap, the connection idle
// longest between requests, or else the one that has waited longest for its
// request (still sending its headers) among those open for evictAfter; when
// none qualifies it waits for one to (bounded by the server's header, read
// and write timeouts), leaving newcomers in the listener's queue.
func (l *Limiter) admit(c net.Conn) {
	for {
		l.mu.Lock()
		if len(l.conns) < l.max {
			now := time.Now()
			l.conns[c] = &connInfo{opened: now, since: now}
			l.mu.Unlock()
			return
		}
		var victim net.Conn
		var vi *connInfo
		now := time.Now()
		for vc, ci := range l.conns {
			if ci.serving || (!ci.idle && now.Sub(ci.opened) < evictAfter) {
				continue
			}
			if vi == nil || (ci.idle && !vi.idle) || (ci.idle == vi.idle && ci.since.Before(vi.since)) {
				victim, vi = vc, ci
			}
		}
		if victim != nil {
			delete(l.conns, victim)
		}
		l.mu.Unlock()
		if victim != nil {
			_ = victim.Close()
			continue
		}
		select {
		case <-l.wake:
		case <-time.After(evictAfter / 10):
		}
	}
}

// connState follows the server's connections (http.Server.ConnState).
func (l *Limiter) connState(c net.Conn, s http.ConnState) {
	l.mu.Lock()
	defer l.mu.Unlock()
	ci, ok := l.conns[c]
	if !ok {
		return // evicted already
	}
	switch s {
	case http.StateClosed, http.StateHijacked:
		delete(l.conns, c)
		select {
		case l.wake <- struct{}{}:
		default:
		}
	case http.StateIdle:
		ci.idle, ci.since = true, time.Now()
	case http.StateActive:
		ci.idle = false
	}
}

// serving marks c as answering a request (not to be evicted) or done.
func (l *Limiter) serving(c net.Conn, on bool) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if ci, ok := l.conns[c]; ok {
		ci.serving, ci.since = on, time.Now()
	}
}
