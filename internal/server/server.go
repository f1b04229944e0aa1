// Package server accepts Pacemaker connections and answers their requests.
// Connections are served by an event engine (internal/engine): a few loops
// read every ready connection, split the bytes into frames, decode them in
// place, pass them through the connection's auth state to the store and
// write the answers with one write per burst — no goroutine and no buffer
// per idle connection.
//
// A bad frame, a failed handshake or a misbehaving peer costs only that
// peer's connection, never the daemon (Storm's Java server exits on one
// malformed frame).
package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"math"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/engine"
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

// readBufferSize is the engine's read buffer: frames up to this size are
// decoded straight from it (and kept by the engine while they arrive);
// larger ones get a budgeted buffer of their own.
const readBufferSize = 16 << 10

// Server serves one store on any number of listeners.
type Server struct {
	store    *store.Store
	log      *slog.Logger
	settings atomic.Pointer[Settings]
	stats    Stats
	buf      buffers
	eng      *engine.Engine
	engErr   error // engine.New failed: Serve and TakeOver return it

	mu        sync.Mutex
	conns     map[*conn]struct{}
	perPeer   map[string]int
	listeners map[net.Listener]int // and the engine's duplicate of each socket
	closing   atomic.Bool
	stopOnce  sync.Once
	stopped   chan struct{} // closed when Shutdown has finished: Serve returns

	wedged atomic.Bool
	wedge  chan struct{} // closed to unwedge; see Wedge

	warns    *logging.Limiter // every line a client can cause goes through it
	panicLog rateLimiter      // stacks of recovered panics
	observer Observer

	handingOver atomic.Bool    // Shutdown hands connections over instead of closing them
	handed      []handoff.Conn // filled by connections during HandOver
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
		listeners: map[net.Listener]int{},
		stopped:   make(chan struct{}),
		wedge:     make(chan struct{}),
		warns:     logging.NewLimiter(log, logging.LimitConfig{}),
	}
	srv.buf.waiters = map[*conn]struct{}{}
	srv.buf.kept = func() int64 { return 0 }
	srv.eng, srv.engErr = engine.New(engine.Config{
		Handler:        handler{srv},
		ReadBufferSize: readBufferSize,
		FrameTimeout:   s.FrameTimeout,
		WriteTimeout:   s.FrameTimeout,
		AcceptError: func(err error, backoff time.Duration) {
			srv.warns.Warn("accept", "accept failed", "accept failed; retrying", "err", err, "backoff", backoff)
		},
	})
	if srv.engErr != nil {
		srv.engErr = fmt.Errorf("start connection engine: %w", srv.engErr)
	} else {
		srv.buf.kept = srv.eng.KeptBytes
	}
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
	if s.eng != nil {
		// Frames and writes that start from now on.
		s.eng.SetFrameTimeout(st.FrameTimeout)
		s.eng.SetWriteTimeout(st.FrameTimeout)
	}
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

// Serve accepts connections on ln, a TCP listener, until Shutdown. The
// engine accepts on a duplicate of ln's socket, and ln is closed at
// Shutdown, or at once when Serve comes after it (so that connections in
// its backlog are refused rather than left waiting); systemd may hold
// another copy of the socket.
func (s *Server) Serve(ln net.Listener) error {
	if s.engErr != nil {
		return s.engErr
	}
	sc, ok := ln.(syscall.Conn)
	if !ok {
		return fmt.Errorf("serve %s: not a socket listener (%T)", ln.Addr(), ln)
	}
	fd, err := dupSocket(sc)
	if err != nil {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		unix.Close(fd)
		_ = ln.Close()
		return ErrServerClosed
	}
	s.listeners[ln] = fd
	s.mu.Unlock()
	if err := s.eng.Listen(fd); err != nil {
		return fmt.Errorf("serve %s: %w", ln.Addr(), err)
	}
	<-s.stopped
	return ErrServerClosed
}

// dupSocket returns a close-on-exec duplicate of a socket's descriptor
// (a listener's, or a handed-over connection's *os.File). Through
// SyscallConn, not os.File.Fd, which would put the socket in blocking mode.
func dupSocket(sc syscall.Conn) (int, error) {
	rc, err := sc.SyscallConn()
	if err != nil {
		return -1, err
	}
	nfd := -1
	var dupErr error
	if err := rc.Control(func(fd uintptr) { nfd, dupErr = dupFD(int(fd)) }); err != nil {
		return -1, err
	}
	return nfd, dupErr
}

// dupFD returns a close-on-exec duplicate of fd.
func dupFD(fd int) (int, error) {
	nfd, err := unix.FcntlInt(uintptr(fd), unix.F_DUPFD_CLOEXEC, 0)
	if err != nil {
		return -1, os.NewSyscallError("fcntl", err)
	}
	return nfd, nil
}

// handler is the server's side of the engine.
type handler struct{ s *Server }

// errRefused ends a connection the limits refused (logged).
var errRefused = errors.New("connection refused by a limit")

// OnOpen admits an accepted connection under the connection limits, or
// one handed over by a previous process (Context: its handoff.Conn), which
// was already admitted.
func (h handler) OnOpen(ec *engine.Conn) error {
	s := h.s
	s.waitWedge()
	ap, err := ec.PeerAddr()
	if err != nil {
		return err
	}
	c := &conn{s: s, ec: ec, peer: ap.String(), host: ap.Addr().Unmap().WithZone("").String(), bigLen: -1}
	if ap.Addr().Is4In6() {
		c.peer = netip.AddrPortFrom(ap.Addr().Unmap(), ap.Port()).String()
	}
	hc, handed := ec.Context().(*handoff.Conn)
	s.mu.Lock()
	if !handed {
		if reason := s.refuseLocked(c.host); reason != "" {
			s.mu.Unlock()
			s.stats.reject(reason)
			s.warns.Warn(c.host, reason, "connection refused", "peer", c.peer, "reason", reason, "open", s.OpenConns())
			return errRefused
		}
	}
	s.conns[c] = struct{}{}
	s.perPeer[c.host]++
	s.mu.Unlock()
	s.stats.ConnsOpened.Add(1)
	setSocketOptions(ec.Fd())
	if handed {
		c.takeOver(hc)
	}
	ec.SetContext(c)
	s.log.Debug("connection opened", "peer", c.peer)
	return nil
}

// refuseLocked names the limit a new connection from host would break, or
// "". s.mu is held.
func (s *Server) refuseLocked(host string) string {
	st := s.settings.Load()
	reserve := 0
	if isLoopback(host) {
		reserve = loopbackReserve
	}
	switch {
	case st.MaxConns > 0 && len(s.conns) >= st.MaxConns+reserve:
		return "max connections"
	case st.MaxConnsPerPeer > 0 && s.perPeer[host] >= st.MaxConnsPerPeer+reserve:
		return "max connections per peer"
	}
	return ""
}

// setSocketOptions: answers go out at once (Storm's clients wait for
// each), and a peer that vanished is found by keep-alive probes.
func setSocketOptions(fd int) {
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_NODELAY, 1)
	_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_KEEPALIVE, 1)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPIDLE, 60)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPINTVL, 15)
	_ = unix.SetsockoptInt(fd, unix.IPPROTO_TCP, unix.TCP_KEEPCNT, 4)
}

func (h handler) OnData(ec *engine.Conn, in []byte) (consumed int, err error) {
	c := ec.Context().(*conn)
	defer func() {
		if r := recover(); r != nil {
			c.recoverPanic(r)
			consumed, err = len(in), errEnded
		}
	}()
	h.s.waitWedge()
	return c.onData(in)
}

func (h handler) OnWritten(ec *engine.Conn) { ec.Context().(*conn).written() }

func (h handler) OnClose(ec *engine.Conn, err error) {
	c := ec.Context().(*conn)
	s := h.s
	if errors.Is(err, engine.ErrDrained) && s.handingOver.Load() && c.handOver() {
		s.log.Debug("connection handed over", "peer", c.peer)
	} else {
		c.ended(err)
		s.log.Debug("connection closed", "peer", c.peer, "identity", c.identityName())
	}
	s.mu.Lock()
	delete(s.conns, c)
	if s.perPeer[c.host]--; s.perPeer[c.host] <= 0 {
		delete(s.perPeer, c.host)
	}
	s.mu.Unlock()
	c.releaseAll()
	s.stats.ConnsClosed.Add(1)
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
	s.mu.Unlock()
	if s.wedged.Swap(false) {
		close(s.wedge)
	}
	var err error
	s.stopOnce.Do(func() {
		if s.eng != nil {
			if s.handingOver.Load() {
				// The queued connections stay for the successor, which
				// gets the listening socket.
				s.eng.StopAccepting()
			}
			err = s.eng.Drain(ctx)
			s.eng.Close()
		}
		s.mu.Lock()
		for ln, fd := range s.listeners {
			unix.Close(fd)
			_ = ln.Close()
		}
		s.mu.Unlock()
		close(s.stopped)
	})
	return err
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

// Wedge stops the engine's loops (accepting and every connection) at their
// next callback until Shutdown: a test hook that lets a test prove the watchdog kills a
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
