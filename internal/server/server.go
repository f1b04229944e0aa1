// Package server accepts Pacemaker connections and answers their requests:
// one goroutine per connection reads frames, decodes them in place, passes
// them through the connection's auth state to the store, and writes the
// answers in batches (one write per burst of pipelined requests).
//
// A bad frame, a failed handshake or a misbehaving peer costs only that
// peer's connection, never the daemon (Storm's Java server exits on one
// malformed frame).
package server

import (
	"context"
	"errors"
	"log/slog"
	"math"
	"net"
	"sync"
	"sync/atomic"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/handoff"
	"github.com/storm-pacemaker/pacemaker/internal/logging"
	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// Settings are the reloadable parts of the server's behaviour. A reload
// swaps the whole value; each request reads the current one.
type Settings struct {
	Method    auth.Method
	Mechanism auth.Mechanism // nil when Method is NONE
	// Credentials fingerprints the secret or keys Mechanism checks
	// against: a connection authenticated under other credentials (a
	// changed password, a new keytab) counts as unauthenticated.
	Credentials string
	// AuthWrites makes writes need an authenticated connection too.
	AuthWrites bool
	MaxFrame   int
	// FrameTimeout bounds a frame that has started arriving and a write to
	// a peer that does not read. There is deliberately no idle timeout:
	// Storm's client does not notice a clean close and stalls ~11 s.
	FrameTimeout     time.Duration
	HandshakeTimeout time.Duration
	MaxConns         int
	MaxConnsPerPeer  int
	// MaxBuffered bounds the bytes held for I/O across all connections
	// beyond their fixed buffers (see buffers); 0 = unbounded.
	MaxBuffered int64
}

// readBufferSize is each connection's bufio size: frames up to this size are
// decoded straight from it; larger ones get a buffer of their own.
const readBufferSize = 16 << 10

// flushThreshold makes a long burst of pipelined requests flush part-way.
const flushThreshold = 64 << 10

// Server serves one store on any number of listeners.
type Server struct {
	store    *store.Store
	log      *slog.Logger
	settings atomic.Pointer[Settings]
	stats    Stats
	buf      buffers

	mu        sync.Mutex
	conns     map[*conn]struct{}
	perPeer   map[string]int
	listeners map[net.Listener]struct{}
	closing   atomic.Bool
	connWG    sync.WaitGroup
	acceptWG  sync.WaitGroup

	lastAccept atomic.Int64 // unix nanoseconds, for the health check
	wedged     atomic.Bool
	wedge      chan struct{} // closed to unwedge; see Wedge

	warns    *logging.Limiter // every line a client can cause goes through it
	panicLog rateLimiter      // stacks of recovered panics
	observer Observer

	handoff atomic.Bool    // Shutdown hands connections over instead of closing them
	handed  []handoff.Conn // filled by connections during Handoff
}

// Observer sees every request as it is answered. Implementations must not
// lock: it runs on the request path of every connection at once.
type Observer interface {
	// Request reports one handled request of type t and the time spent
	// decoding-to-answered (not network time).
	Request(t wire.MessageType, d time.Duration)
	// PulseSize reports the size of a received heartbeat.
	PulseSize(n int)
}

// SetObserver installs o; call before Serve.
func (s *Server) SetObserver(o Observer) { s.observer = o }

// New returns a server over st.
func New(st *store.Store, log *slog.Logger, s Settings) *Server {
	srv := &Server{
		store:     st,
		log:       log,
		conns:     map[*conn]struct{}{},
		perPeer:   map[string]int{},
		listeners: map[net.Listener]struct{}{},
		wedge:     make(chan struct{}),
		warns:     logging.NewLimiter(log, logging.LimitConfig{}),
	}
	srv.buf.freed = make(chan struct{})
	srv.SetSettings(s)
	return srv
}

// SetSettings applies a reload. Every request is judged by the settings in
// force when its frame is complete: a connection authenticated under
// another method counts as unauthenticated from its next request on, and
// read permission is checked again against the new mechanism.
func (s *Server) SetSettings(st Settings) {
	max := st.MaxBuffered
	if max <= 0 {
		max = math.MaxInt64
	}
	s.buf.max.Store(max)
	s.settings.Store(&st)
	s.buf.wake() // a larger budget may let waiters go on
}

// Settings returns the settings in force.
func (s *Server) Settings() Settings { return *s.settings.Load() }

// Stats returns the server's counters.
func (s *Server) Stats() *Stats { return &s.stats }

// Store returns the store the server serves.
func (s *Server) Store() *store.Store { return s.store }

// ErrServerClosed is returned by Serve after Shutdown.
var ErrServerClosed = errors.New("server closed")

// Serve accepts connections on ln until Shutdown. It does not close ln's
// underlying socket twice: systemd may hold another copy of it.
func (s *Server) Serve(ln net.Listener) error {
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		return ErrServerClosed
	}
	s.listeners[ln] = struct{}{}
	s.acceptWG.Add(1)
	s.mu.Unlock()
	defer s.acceptWG.Done()

	var backoff time.Duration
	for {
		s.lastAccept.Store(time.Now().UnixNano())
		if s.wedged.Load() {
			<-s.wedge
		}
		nc, err := ln.Accept()
		if err != nil {
			if s.closing.Load() {
				s.acceptQueued(ln)
				_ = ln.Close()
				return ErrServerClosed
			}
			var ne net.Error
			if errors.As(err, &ne) && !errors.Is(err, net.ErrClosed) {
				// EMFILE and friends: wait instead of spinning.
				backoff = min(max(2*backoff, 5*time.Millisecond), time.Second)
				s.warns.Warn(ln.Addr().String(), "accept failed", "accept failed; retrying", "listener", ln.Addr().String(), "err", err, "backoff", backoff)
				time.Sleep(backoff)
				continue
			}
			return err
		}
		backoff = 0
		s.accept(nc)
	}
}

func (s *Server) accept(nc net.Conn) {
	st := s.settings.Load()
	peer, host := peerOf(nc)
	s.mu.Lock()
	var reason string
	reserve := 0
	if isLoopback(host) {
		reserve = loopbackReserve
	}
	switch {
	case s.closing.Load():
		// Accepted as Shutdown began: serve it like the others (answer what
		// it sent, or hand it over) rather than reset a client who did
		// nothing wrong.
		c := newConn(s, nc, peer, host)
		_ = nc.SetReadDeadline(time.Now())
		s.startLocked(c)
		return
	case st.MaxConns > 0 && len(s.conns) >= st.MaxConns+reserve:
		reason = "max connections"
	case st.MaxConnsPerPeer > 0 && s.perPeer[host] >= st.MaxConnsPerPeer+reserve:
		reason = "max connections per peer"
	}
	if reason != "" {
		s.mu.Unlock()
		s.stats.reject(reason)
		s.warns.Warn(host, reason, "connection refused", "peer", peer, "reason", reason, "open", s.OpenConns())
		_ = nc.Close()
		return
	}
	s.startLocked(newConn(s, nc, peer, host))
}

// peerOf returns a connection's remote address and its host part, the key
// of the per-peer limit.
func peerOf(nc net.Conn) (peer, host string) {
	peer = nc.RemoteAddr().String()
	host = peer
	if h, _, err := net.SplitHostPort(peer); err == nil {
		host = h
	}
	return peer, host
}

// startLocked counts c among the open connections and starts serving it.
// s.mu is held on entry and released.
func (s *Server) startLocked(c *conn) {
	s.conns[c] = struct{}{}
	s.perPeer[c.host]++
	s.connWG.Add(1)
	s.mu.Unlock()
	s.stats.ConnsOpened.Add(1)
	go c.serve()
}

func (s *Server) forget(c *conn) {
	s.mu.Lock()
	delete(s.conns, c)
	if s.perPeer[c.host]--; s.perPeer[c.host] <= 0 {
		delete(s.perPeer, c.host)
	}
	s.mu.Unlock()
	s.releaseAll(c)
	s.stats.ConnsClosed.Add(1)
	s.connWG.Done()
}

// OpenConns returns the number of open connections.
func (s *Server) OpenConns() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.conns)
}

// ConnCounts returns open connections by auth state: unauthenticated,
// mid-handshake, authenticated.
func (s *Server) ConnCounts() (unauth, handshaking, authed int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.conns {
		switch c.state.Load() {
		case stateHandshaking:
			handshaking++
		case stateAuthenticated:
			authed++
		default:
			unauth++
		}
	}
	return
}

// Shutdown stops accepting, lets every connection finish the requests it
// has already received, answers them, and closes. When ctx ends first, the
// remaining connections are closed at once.
func (s *Server) Shutdown(ctx context.Context) error {
	defer s.warns.Flush() // what was suppressed since the last report
	s.mu.Lock()
	s.closing.Store(true)
	for ln := range s.listeners {
		// Wake the accept loop, which takes what is queued, then closes.
		if dl, ok := ln.(interface{ SetDeadline(time.Time) error }); !ok || dl.SetDeadline(time.Now()) != nil {
			_ = ln.Close()
		}
	}
	for c := range s.conns {
		// Wake idle readers; buffered frames are still answered.
		_ = c.nc.SetReadDeadline(time.Now())
	}
	s.mu.Unlock()
	if s.wedged.Swap(false) {
		close(s.wedge)
	}
	s.acceptWG.Wait()

	done := make(chan struct{})
	go func() { s.connWG.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		s.mu.Lock()
		for c := range s.conns {
			_ = c.nc.Close()
		}
		s.mu.Unlock()
		<-done
		return ctx.Err()
	}
}

// Listening returns how many listeners Serve has taken up so far (each
// Serve call registers its listener as it starts).
func (s *Server) Listening() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.listeners)
}

// Closing reports whether Shutdown has begun (for /readyz).
func (s *Server) Closing() bool { return s.closing.Load() }

// Health proves that the accept loops and the request path still make
// progress: it connects to each listener, sends one request through the
// whole path and waits for its answer. The watchdog pings only while it
// succeeds, so a wedged daemon gets killed and restarted by systemd.
func (s *Server) Health(ctx context.Context) error {
	s.mu.Lock()
	addrs := make([]net.Addr, 0, len(s.listeners))
	for ln := range s.listeners {
		addrs = append(addrs, ln.Addr())
	}
	s.mu.Unlock()
	if len(addrs) == 0 {
		return errors.New("no listener")
	}
	for _, a := range addrs {
		if err := selfRequest(ctx, a); err != nil {
			return err
		}
	}
	return nil
}

// Wedge stops the accept loops and every connection before its next request
// until Shutdown: a test hook that lets a test prove the watchdog kills a
// daemon that stopped making progress. Never called unless the operator
// enables the hidden test switch.
func (s *Server) Wedge() {
	s.wedged.Store(true)
}

func (s *Server) waitWedge() {
	if s.wedged.Load() {
		<-s.wedge
	}
}

// rateLimiter lets one log line through per second.
type rateLimiter struct{ last atomic.Int64 }

func (r *rateLimiter) allow() bool {
	now := time.Now().UnixNano()
	last := r.last.Load()
	return now-last >= int64(time.Second) && r.last.CompareAndSwap(last, now)
}
