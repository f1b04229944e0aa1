package server

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"runtime/debug"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// Connection auth states, for metrics and the status line.
const (
	stateUnauthenticated int32 = iota
	stateHandshaking
	stateAuthenticated
)

type conn struct {
	s    *Server
	nc   net.Conn
	peer string // ip:port, in every log line about this connection
	host string // ip, for the per-peer limit
	br   *bufio.Reader
	fr   *wire.FrameReader
	out  []byte
	req  wire.Message

	state    atomic.Int32
	mech     auth.Mechanism // the mechanism this connection authenticates with
	method   auth.Method    // the method it authenticated under
	creds    string         // and the Settings.Credentials then in force
	exchange auth.Exchange  // non-nil during a handshake
	// authzFor is the settings mayRead was judged under: a reload
	// re-judges it at the next read.
	authzFor    *Settings
	hsDeadline  time.Time
	identity    string
	mayRead     bool
	writeDenied bool
	readDenied  bool // a refused read was logged (since authzFor was set)
	// unauthReadLogged: a read refused for lack of authentication was logged.
	unauthReadLogged bool
	demoted          bool // a reload changed the method since it authenticated (logged)

	// held is what this connection has reserved of the buffered budget
	// (large frame buffer and answers beyond writeCredit); outHeld is the
	// answers' part. evicted: the budget closed it for holding the most.
	held    atomic.Int64
	outHeld int64
	evicted atomic.Bool
	// writeDeadline is the write deadline last set, and writeTimeout the
	// frame timeout it was computed from.
	writeDeadline time.Time
	writeTimeout  time.Duration
	// readDeadline is the read deadline this connection last set (Shutdown
	// sets its own, and closing tells of it).
	readDeadline time.Time
}

func newConn(s *Server, nc net.Conn, peer, host string) *conn {
	if tc, ok := nc.(*net.TCPConn); ok {
		_ = tc.SetNoDelay(true)
		_ = tc.SetKeepAliveConfig(net.KeepAliveConfig{Enable: true, Idle: 60 * time.Second, Interval: 15 * time.Second, Count: 4})
	}
	st := s.settings.Load()
	c := &conn{s: s, nc: nc, peer: peer, host: host}
	c.br = bufio.NewReaderSize(&arrivedReader{c: c}, readBufferSize)
	c.setFrameReader(st)
	return c
}

// setFrameReader reads frames from c.br: their maximum is the one in force
// when each length prefix arrives, large ones are counted in the budget.
func (c *conn) setFrameReader(st *Settings) {
	c.fr = wire.NewFrameReader(c.br, st.MaxFrame)
	c.fr.Stall = c.stall
	c.fr.Max = func() int { return c.s.settings.Load().MaxFrame }
	c.fr.Budget = frameBudget{c}
	if tc, ok := c.nc.(*net.TCPConn); ok {
		if rc, err := tc.SyscallConn(); err == nil {
			c.fr.Queued = func() int { return queued(rc) }
		}
	}
}

// queued returns the bytes waiting in a socket's receive queue.
func queued(rc syscall.RawConn) int {
	n := 0
	_ = rc.Control(func(fd uintptr) { n, _ = unix.IoctlGetInt(int(fd), unix.SIOCINQ) })
	return n
}

// errClose ends a connection after its reason has been logged.
var errClose = errors.New("close connection")

// errEnded is handleFrame's word that the connection must close; the reason
// has been logged.
var errEnded = errors.New("connection ended")

func (c *conn) serve() {
	defer c.s.forget(c)
	defer c.nc.Close()
	defer c.recoverPanic()
	c.s.log.Debug("connection opened", "peer", c.peer)
	for {
		err := c.serveFrame()
		if err == nil {
			continue
		}
		if err == errEnded {
			break
		}
		if c.s.closing.Load() && errors.Is(err, os.ErrDeadlineExceeded) && c.handOver() {
			c.s.log.Debug("connection handed over", "peer", c.peer)
			return // the deferred Close closes our copy; the successor has the socket
		}
		c.readFailed(err)
		break
	}
	c.s.log.Debug("connection closed", "peer", c.peer, "identity", c.identityName())
}

// recoverPanic keeps a panic in the code serving one connection (a
// mechanism handed a hostile token, a bug) from ending the process and
// every other connection with it: that connection is closed (serve's
// deferred Close), counted as rejected with reason "panic", and logged
// with the peer and the stack — the stack at most once a second, so a
// peer that found a panic cannot flood the log with it.
func (c *conn) recoverPanic() {
	r := recover()
	if r == nil {
		return
	}
	c.s.stats.reject("panic")
	attrs := []any{"peer", c.peer, "method", c.mechName(), "panic", fmt.Sprint(r)}
	if c.s.panicLog.allow() {
		attrs = append(attrs, "stack", string(debug.Stack()))
	}
	c.s.log.Error("panic while serving a connection; closing it and serving on", attrs...)
}

// serveFrame reads one frame with blocking reads (net.Conn.Read, which
// parks in the netpoller) and handles it. It returns a read error, errEnded,
// or nil to go on.
func (c *conn) serveFrame() error {
	c.s.waitWedge()
	body, err := c.fr.Next()
	if err != nil {
		return err
	}
	// The settings in force now judge the request, not those of when the
	// connection began to wait for it.
	return c.handleFrame(c.s.settings.Load(), body)
}

// handleFrame answers one frame and flushes the answers once no further
// whole frame is buffered. It returns errEnded when
// the connection must close (logged), else nil.
func (c *conn) handleFrame(st *Settings, body []byte) error {
	c.s.stats.BytesIn.Add(uint64(len(body) + 4))
	if err := wire.DecodeRequest(body, &c.req); err != nil {
		c.s.stats.reject("malformed frame")
		c.s.warns.Warn(c.host, "malformed frame", "malformed frame; closing connection", "peer", c.peer, "err", err, "bytes", len(body))
		return errEnded
	}
	var start time.Time
	if c.s.observer != nil {
		start = time.Now()
	}
	err := c.handle(st, &c.req)
	if c.s.observer != nil && err == nil && c.req.Type.Valid() {
		c.s.observer.Request(c.req.Type, time.Since(start))
	}
	if len(body)+4 > readBufferSize { // it had a buffer of its own
		// c.req aliases it: an idle connection must not pin it.
		c.req = wire.Message{}
	}
	if err != nil {
		if !errors.Is(err, errClose) {
			c.s.stats.reject("protocol error")
			c.s.warns.Warn(c.host, "protocol error", "protocol error; closing connection", "peer", c.peer, "request", c.req.Type.String(), "err", err)
		}
		_ = c.flush(st) // answer what was answered, e.g. before a failed handshake
		return errEnded
	}
	// Answer a burst of pipelined requests with one write.
	if len(c.out) >= flushThreshold || !c.fr.Ready() {
		if err := c.flush(st); err != nil {
			c.s.warns.Log(slog.LevelInfo, c.host, "write failed", "write failed; closing connection", "peer", c.peer, "err", err)
			return errEnded
		}
	}
	return nil
}

func (c *conn) flush(st *Settings) error {
	if len(c.out) == 0 {
		return nil
	}
	c.refreshWriteDeadline(st.FrameTimeout)
	n, err := c.nc.Write(c.out)
	c.s.stats.BytesOut.Add(uint64(n))
	c.wrote()
	return err
}

// wrote empties c.out after a write and gives back its reservation; an
// out buffer larger than the credit is let go, so an idle connection holds
// no more than writeCredit for its answers.
func (c *conn) wrote() {
	if cap(c.out) > writeCredit {
		c.out = nil
	} else {
		c.out = c.out[:0]
	}
	c.s.release(c, c.outHeld)
	c.outHeld = 0
}

// room makes sure an answer of n more bytes is counted: what c.out would
// hold beyond writeCredit is reserved from the buffered budget before it is
// allocated. Pending answers are written first, so a connection that waits
// for memory holds none. An error ends the connection (logged).
func (c *conn) room(st *Settings, n int) error {
	over := int64(len(c.out)+n-writeCredit) - c.outHeld
	if over <= 0 {
		return nil
	}
	if len(c.out) > 0 {
		if err := c.flush(st); err != nil {
			c.s.warns.Log(slog.LevelInfo, c.host, "write failed", "write failed; closing connection", "peer", c.peer, "err", err)
			return errClose
		}
		if over = int64(n - writeCredit); over <= 0 {
			return nil
		}
	}
	if err := c.s.reserve(c, over, time.Now().Add(st.FrameTimeout)); err != nil {
		c.budgetFailed(err, over)
		return errClose
	}
	c.outHeld += over
	return nil
}

// budgetFailed logs a reservation that ended the connection.
func (c *conn) budgetFailed(err error, n int64) {
	if errors.Is(err, errEvicted) {
		return // logged by the eviction
	}
	c.s.stats.reject("buffer budget")
	used, max := c.s.Buffered()
	c.s.warns.Warn(c.host, "buffer budget", "buffered memory budget spent; closing connection", "peer", c.peer, "wanted_bytes", n,
		"buffered_bytes", used, "max_buffered_bytes", max)
}

// answer appends m to the pending answers after checking it against the
// frame maximum (a client could not read a larger one: it is refused with
// NOT_AUTHORIZED, logged and counted) and the buffered budget.
func (c *conn) answer(st *Settings, m *wire.Message) error {
	n := wire.FrameSize(m)
	if n-4 > st.MaxFrame {
		c.answerTooLarge(st, m, n)
		m = &wire.Message{Type: wire.NotAuthorized, ID: m.ID, HasID: true}
		n = wire.FrameSize(m)
	}
	if err := c.room(st, n); err != nil {
		return err
	}
	c.out = wire.AppendFrame(c.out, m)
	return nil
}

func (c *conn) answerTooLarge(st *Settings, m *wire.Message, n int) {
	c.s.stats.reject("answer too large")
	c.s.warns.Warn(c.host, "answer too large", "answer larger than pacemaker.thrift.message.size.max refused; answering NOT_AUTHORIZED",
		"peer", c.peer, "answer", m.Type.String(), "bytes", n-4, "max", st.MaxFrame)
}

// refreshWriteDeadline keeps a write deadline of about timeout ahead, so a
// peer that stops reading cannot pin this goroutine forever. Setting it on
// every flush cost 2 % of the server's CPU under load, so it is moved only
// once a quarter of the timeout (at most a second) has passed: a write then
// times out after between 3/4 of the timeout and the whole of it.
func (c *conn) refreshWriteDeadline(timeout time.Duration) {
	now := time.Now()
	if timeout == c.writeTimeout && now.Before(c.writeDeadline.Add(-timeout+min(time.Second, timeout/4))) {
		return
	}
	c.writeDeadline, c.writeTimeout = now.Add(timeout), timeout
	_ = c.nc.SetWriteDeadline(c.writeDeadline)
}

// stall puts a deadline on a frame that started but has not fully arrived
// (slowloris), and lifts it once the frame is complete.
func (c *conn) stall(stalled bool) {
	if c.s.closing.Load() {
		return
	}
	if stalled {
		d := time.Now().Add(c.s.settings.Load().FrameTimeout)
		if !c.hsDeadline.IsZero() && c.hsDeadline.Before(d) {
			d = c.hsDeadline
		}
		c.setReadDeadline(d)
		return
	}
	c.setReadDeadline(c.hsDeadline) // zero when no handshake: no deadline
}

// setReadDeadline sets the socket's read deadline and remembers it.
func (c *conn) setReadDeadline(t time.Time) {
	c.readDeadline = t
	_ = c.nc.SetReadDeadline(t)
}

func (c *conn) readFailed(err error) {
	var tooLarge *wire.FrameTooLargeError
	switch {
	case c.s.closing.Load():
		// Shutdown woke us; nothing to report.
	case errors.Is(err, io.EOF):
		if c.exchange != nil {
			c.s.warns.Log(slog.LevelInfo, c.host, "closed in handshake", "peer closed during authentication", "peer", c.peer)
		}
	case errors.As(err, &tooLarge):
		c.s.stats.reject("frame too large")
		c.s.warns.Warn(c.host, "frame too large", "frame length out of range; closing connection", "peer", c.peer, "length", tooLarge.Length, "max", tooLarge.Max)
	case errors.Is(err, io.ErrUnexpectedEOF):
		c.s.stats.reject("truncated frame")
		c.s.warns.Warn(c.host, "truncated frame", "connection closed in the middle of a frame", "peer", c.peer)
	case errors.Is(err, errEvicted):
		// Logged by the eviction.
	case errors.Is(err, errBudgetSpent):
		c.budgetFailed(err, 0)
	case c.evicted.Load():
		// Its socket was closed by the eviction, which logged it.
	case errors.Is(err, os.ErrDeadlineExceeded):
		if c.exchange != nil {
			c.s.stats.authFailure(c.mechName(), auth.ReasonTimeout)
			c.s.warns.Warn(c.host, "handshake timeout", "authentication handshake timed out; closing connection", "peer", c.peer, "method", c.mechName())
		} else {
			c.s.stats.reject("frame timeout")
			c.s.warns.Warn(c.host, "frame timeout", "frame stalled past the frame timeout; closing connection", "peer", c.peer)
		}
	default:
		c.s.warns.Log(slog.LevelInfo, c.host, "read failed", "read failed; closing connection", "peer", c.peer, "err", err)
	}
}

func (c *conn) mechName() string {
	if c.mech == nil {
		return "none"
	}
	return c.mech.Name()
}

// reply appends an answer with no data to the request's message_id. Storm
// always sets message_id on answers (-1 when the request had none).
func (c *conn) reply(st *Settings, t wire.MessageType, id int32) error {
	return c.answer(st, &wire.Message{Type: t, ID: id, HasID: true})
}

func (c *conn) handle(st *Settings, m *wire.Message) error {
	switch m.Type {
	case wire.ControlMessage:
		return c.control(st, m)
	case wire.SaslMessageToken:
		return c.saslToken(st, m)
	}
	if !m.Type.Valid() {
		return fmt.Errorf("unknown message type %d", int32(m.Type))
	}
	c.s.stats.Requests[m.Type].Add(1)
	id := m.MessageID()
	switch m.Type {
	case wire.CreatePath:
		// A no-op in Storm: keys need no parent directories.
		if m.Field != wire.FieldPath {
			return fmt.Errorf("%s without a path", m.Type)
		}
		if ok, err := c.writeAllowed(st, m); !ok {
			return err
		}
		return c.reply(st, wire.CreatePathResponse, id)
	case wire.SendPulse:
		if m.Field != wire.FieldPulse || m.Pulse.Details == nil {
			return errors.New("SEND_PULSE without a pulse with details")
		}
		if ok, err := c.writeAllowed(st, m); !ok {
			return err
		}
		c.s.stats.PulseBytes.Add(uint64(len(m.Pulse.Details)))
		if c.s.observer != nil {
			c.s.observer.PulseSize(len(m.Pulse.Details))
		}
		if err := c.s.store.Put(m.Pulse.ID, m.Pulse.Details); err != nil {
			return c.limitHit(st, m, err)
		}
		return c.reply(st, wire.SendPulseResponse, id)
	case wire.DeletePath, wire.DeletePulseID:
		if m.Field != wire.FieldPath {
			return fmt.Errorf("%s without a path", m.Type)
		}
		if ok, err := c.writeAllowed(st, m); !ok {
			return err
		}
		if m.Type == wire.DeletePath {
			c.s.store.DeletePath(m.Path)
			return c.reply(st, wire.DeletePathResponse, id)
		}
		c.s.store.Delete(m.Path)
		return c.reply(st, wire.DeletePulseIDResponse, id)
	case wire.Exists, wire.GetPulse, wire.GetAllNodesForPath, wire.GetAllPulseForPath:
		if m.Field != wire.FieldPath {
			return fmt.Errorf("%s without a path", m.Type)
		}
		if ok, err := c.readAllowed(st, m); !ok {
			return err
		}
		return c.read(st, m, id)
	default:
		// A known type that is not a request (an answer type sent to us).
		// Storm logs and answers nothing, leaving the client to retry for
		// ~11 s; we answer NOT_AUTHORIZED so the request fails at once.
		c.s.stats.reject("unexpected type")
		c.s.warns.Warn(c.host, "unexpected type", "unexpected message type; answering NOT_AUTHORIZED", "peer", c.peer, "type", m.Type.String())
		return c.reply(st, wire.NotAuthorized, id)
	}
}

func (c *conn) read(st *Settings, m *wire.Message, id int32) error {
	switch m.Type {
	case wire.Exists:
		return c.answer(st, &wire.Message{Type: wire.ExistsResponse, Field: wire.FieldBool,
			Bool: c.s.store.Exists(m.Path), ID: id, HasID: true})
	case wire.GetPulse:
		return c.getPulse(st, m.Path, id)
	case wire.GetAllNodesForPath:
		return c.answer(st, &wire.Message{Type: wire.GetAllNodesForPathResponse, Field: wire.FieldNodes,
			Nodes: c.s.store.Children(m.Path), ID: id, HasID: true})
	default: // GET_ALL_PULSE_FOR_PATH
		// Storm's server answers this with no data; so do we.
		return c.reply(st, wire.GetAllPulseForPathResponse, id)
	}
}

// getPulse answers GET_PULSE. The answer's room is reserved before it is
// built (a first look at the value's size), and a value of
// store.SharedValueMin bytes or more is written to the socket from where it
// is stored rather than copied for each reader.
func (c *conn) getPulse(st *Settings, key string, id int32) error {
	resp := wire.Message{Type: wire.GetPulseResponse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: key}, ID: id, HasID: true}
	size := -1
	c.s.store.View(key, func(v []byte) { size = len(v) })
	if size < 0 {
		// Storm answers a pulse with the id and no details.
		return c.answer(st, &resp)
	}
	resp.Pulse.Details = make([]byte, 0) // sized as present, for FrameSize
	n := wire.FrameSize(&resp) + size
	if n-4 > st.MaxFrame {
		c.answerTooLarge(st, &resp, n)
		return c.reply(st, wire.NotAuthorized, id)
	}
	if err := c.room(st, n); err != nil {
		return err
	}
	var shared []byte
	found := c.s.store.View(key, func(v []byte) {
		c.s.stats.PulseBytesOut.Add(uint64(len(v)))
		if len(v) >= store.SharedValueMin {
			shared = v
			return
		}
		resp.Pulse.Details = v
		if v == nil {
			resp.Pulse.Details = []byte{}
		}
		c.out = wire.AppendFrame(c.out, &resp)
	})
	switch {
	case !found: // deleted since the first look
		resp.Pulse.Details = nil
		c.out = wire.AppendFrame(c.out, &resp)
	case shared != nil:
		resp.Pulse.Details = shared
		var at int
		c.out, at = wire.AppendFrameSplit(c.out, &resp)
		c.refreshWriteDeadline(st.FrameTimeout)
		bufs := net.Buffers{c.out[:at], shared, c.out[at:]}
		written, err := bufs.WriteTo(c.nc)
		c.s.stats.BytesOut.Add(uint64(written))
		c.wrote()
		if err != nil {
			c.s.warns.Log(slog.LevelInfo, c.host, "write failed", "write failed; closing connection", "peer", c.peer, "err", err)
			return errClose
		}
	}
	return nil
}

// authenticated reports whether c counts as authenticated under st: it
// finished a handshake under the method and credentials still in force.
func (c *conn) authenticated(st *Settings) bool {
	if c.state.Load() != stateAuthenticated {
		return false
	}
	if c.method != st.Method || c.creds != st.Credentials {
		if !c.demoted {
			c.demoted = true
			c.s.warns.Warn(c.host, "stale authentication", "connection authenticated under another pacemaker.auth.method or other credentials; a reload changed them, so it counts as unauthenticated",
				"peer", c.peer, "identity", c.identityName(), "authenticated_with", string(c.method), "method", string(st.Method))
		}
		return false
	}
	return true
}

// writeAllowed answers NOT_AUTHORIZED to a write that needs authentication
// under st and reports false (with an error only when the answer failed).
func (c *conn) writeAllowed(st *Settings, m *wire.Message) (bool, error) {
	if !st.AuthWrites || st.Method == auth.None || c.authenticated(st) {
		return true, nil
	}
	c.s.stats.reject("unauthenticated write")
	if !c.writeDenied {
		c.writeDenied = true
		c.s.warns.Warn(c.host, "unauthenticated write", "write refused: pacemaker.auth.writes needs an authenticated connection", "peer", c.peer, "request", m.Type.String())
	}
	return false, c.reply(st, wire.NotAuthorized, m.MessageID())
}

// readAllowed is writeAllowed for reads: they need an authenticated
// identity that the mechanism in force lets read.
func (c *conn) readAllowed(st *Settings, m *wire.Message) (bool, error) {
	if st.Method == auth.None {
		return true, nil
	}
	authed := c.authenticated(st)
	if authed && c.authzFor != st {
		// First read under these settings: judge the identity again.
		c.mayRead, _ = st.Mechanism.MayRead(c.identity)
		c.authzFor = st
		c.readDenied = false
	}
	if authed && c.mayRead {
		return true, nil
	}
	switch {
	case authed && !c.readDenied:
		// An authenticated principal that may not read is a
		// misconfiguration: say why, once per connection and settings.
		c.readDenied = true
		_, reason := st.Mechanism.MayRead(c.identity)
		c.s.warns.Warn(c.host, "read refused", "read refused", "peer", c.peer, "identity", c.identityName(), "reason", reason)
	case !authed && !c.unauthReadLogged:
		// Normal from a client without credentials (workers never read):
		// info, once per connection, through the per-peer limiter.
		c.unauthReadLogged = true
		c.s.warns.Log(slog.LevelInfo, c.host, "unauthenticated read", "read refused: not authenticated",
			"peer", c.peer, "type", m.Type.String(), "auth", string(st.Method))
	}
	c.s.stats.reject("unauthorized read")
	return false, c.reply(st, wire.NotAuthorized, m.MessageID())
}

// identityName is the connection's identity as the log shows it (DIGEST:
// the client's name, not its base64).
func (c *conn) identityName() string {
	if c.mech == nil {
		return c.identity
	}
	return auth.IdentityName(c.mech, c.identity)
}

// limitHit answers a write the store refused. The protocol has no error
// answer but NOT_AUTHORIZED, which Storm's client turns into a failed write
// that it retries.
func (c *conn) limitHit(st *Settings, m *wire.Message, err error) error {
	reason := "store limit"
	switch {
	case errors.Is(err, store.ErrTooManyKeys):
		reason = "max keys"
	case errors.Is(err, store.ErrStoreFull):
		reason = "max stored bytes"
	case errors.Is(err, store.ErrValueTooLarge):
		reason = "heartbeat too large"
	case errors.Is(err, store.ErrKeyTooLong):
		reason = "key too long"
	}
	c.s.stats.reject(reason)
	if c.s.warns.Allow(c.host, reason) {
		key := m.Pulse.ID
		if len(key) > 256 {
			key = key[:256] + "…"
		}
		c.s.log.Warn("write refused by a store limit", "peer", c.peer, "key", key, "key_bytes", len(m.Pulse.ID), "reason", reason,
			"bytes", len(m.Pulse.Details), "keys", c.s.store.Keys(), "stored_bytes", c.s.store.Bytes())
	}
	return c.reply(st, wire.NotAuthorized, m.MessageID())
}

func (c *conn) control(st *Settings, m *wire.Message) error {
	code, err := wire.ParseControl(m)
	if err != nil {
		return err
	}
	if st.Method == auth.None {
		return fmt.Errorf("SASL control message %d on a server with pacemaker.auth.method NONE", code)
	}
	if code != wire.ControlSaslRequest {
		return fmt.Errorf("unexpected control code %d from a client", code)
	}
	if c.exchange != nil {
		// Restarting would also restart the handshake deadline, forever.
		return c.authFailed(auth.Failf(auth.ReasonProtocol, "SASL request (CONTROL -202) in the middle of a handshake"))
	}
	c.begin(st)
	challenge, err := c.exchange.Start()
	if err != nil {
		return c.authFailed(err)
	}
	if challenge != nil {
		return c.answer(st, wire.NewSaslToken(challenge))
	}
	return nil
}

// begin starts a handshake with the mechanism in force now; a reload
// mid-handshake does not change it.
func (c *conn) begin(st *Settings) {
	c.mech, c.method, c.creds = st.Mechanism, st.Method, st.Credentials
	c.exchange = c.mech.NewExchange(c.peer)
	c.state.Store(stateHandshaking)
	c.hsDeadline = time.Now().Add(st.HandshakeTimeout)
	c.setReadDeadline(c.hsDeadline)
}

func (c *conn) saslToken(st *Settings, m *wire.Message) error {
	token, err := wire.ParseSaslToken(m)
	if err != nil {
		return err
	}
	if st.Method == auth.None {
		return errors.New("SASL token on a server with pacemaker.auth.method NONE")
	}
	if c.exchange == nil {
		// Kerberos clients open with their token; no control request first.
		c.begin(st)
	}
	reply, done, err := c.exchange.Step(token)
	if err != nil {
		return c.authFailed(err)
	}
	if reply != nil {
		if err := c.answer(st, wire.NewSaslToken(reply)); err != nil {
			return err
		}
	}
	if !done {
		return nil
	}
	c.identity = c.exchange.Identity()
	c.exchange = nil
	c.hsDeadline = time.Time{}
	c.setReadDeadline(time.Time{})
	c.state.Store(stateAuthenticated)
	var reason string
	c.mayRead, reason = c.mech.MayRead(c.identity)
	c.authzFor = nil // judged again at the first read, under the settings then in force
	if c.mech == st.Mechanism {
		c.authzFor = st
	}
	if err := c.answer(st, wire.NewControl(wire.ControlSaslComplete)); err != nil {
		return err
	}
	c.s.stats.AuthSuccesses.Add(1)
	attrs := []any{"peer", c.peer, "method", c.mech.Name(), "identity", c.identityName(), "may_read", c.mayRead}
	if !c.mayRead {
		attrs = append(attrs, "reason", reason)
	}
	c.s.log.Info("client authenticated", attrs...)
	return nil
}

// authFailed logs a failed handshake. Storm's server closes the connection
// without an error frame; so do we. The metric's reason is the fixed
// auth.Reason the mechanism classified the error with; its text, which
// carries what the client sent, goes to the log only.
func (c *conn) authFailed(err error) error {
	reason := auth.ReasonOf(err)
	c.s.stats.authFailure(c.mech.Name(), reason)
	c.s.warns.Warn(c.host, "auth failed: "+string(reason), "authentication failed; closing connection", "peer", c.peer, "method", c.mech.Name(), "err", err)
	c.exchange = nil
	return errClose
}
