package server

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"runtime/debug"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/engine"
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
	ec   *engine.Conn
	peer string // ip:port, in every log line about this connection
	host string // ip, for the per-peer limit
	req  wire.Message

	state    atomic.Int32
	mech     auth.Mechanism // the mechanism this connection authenticates with
	method   auth.Method    // the method it authenticated under
	creds    string         // and the Settings.Credentials then in force
	exchange auth.Exchange  // non-nil during a handshake
	// authzFor is the settings mayRead was judged under: a reload
	// re-judges it at the next read.
	authzFor    *Settings
	identity    string
	mayRead     bool
	writeDenied bool
	readDenied  bool // a refused read was logged (since authzFor was set)
	// unauthReadLogged: a read refused for lack of authentication was logged.
	unauthReadLogged bool
	demoted          bool // a reload changed the method since it authenticated (logged)

	// big collects a frame too large for the engine's read buffer as it
	// arrives (bigLen bytes; -1: none); its capacity is reserved from the
	// budget (bigHeld).
	big     []byte
	bigLen  int
	bigHeld int64

	// held is what this connection has reserved of the buffered budget
	// (big, and answers beyond writeCredit: outHeld); evicted: the budget
	// closed it for holding the most.
	held    atomic.Int64
	outHeld int64
	evicted atomic.Bool
	// writeWait: paused until the socket takes the pending answers.
	writeWait bool
	// waitingSince is when a reservation first failed (zero: not
	// waiting); evictedFor: the waiter had the largest holder closed.
	// Both under s.buf.mu while listed among the waiters.
	waitingSince time.Time
	evictedFor   bool
}

// errEnded is the word that the connection must close; the reason has been
// logged (or the client ended it cleanly).
var errEnded = errors.New("connection ended")

// errClose is what a request handler returns for a connection to close
// whose reason it logged.
var errClose = errors.New("close connection")

// onData splits the bytes in into frames and handles each whole one; see
// engine.Handler. A frame larger than the engine's read buffer is
// collected in a budgeted buffer of its own as its bytes arrive.
func (c *conn) onData(in []byte) (int, error) {
	done := 0
	for {
		if c.bigLen >= 0 {
			rest := in[done:]
			need := c.bigLen - len(c.big)
			if len(rest) < need {
				// Still arriving: take what is there.
				k, err := c.collect(rest)
				done += k
				switch {
				case err == errWait:
					return done, nil
				case err != nil:
					return done, c.budgetEnded(err)
				case k == len(rest):
					return done, nil
				}
				continue
			}
			// These bytes complete the frame. They are consumed only once
			// it is answered: a connection that pauses first keeps them
			// with the engine, which offers them again when it resumes.
			if !c.mayAnswer() {
				return done, nil
			}
			k, err := c.collect(rest[:need])
			switch {
			case err == errWait:
				return done, nil
			case err != nil:
				return done, c.budgetEnded(err)
			case k < need:
				done += k
				continue
			}
			// The settings in force now judge the request.
			err = c.handleFrame(c.s.settings.Load(), c.big)
			if err == errWait {
				c.big = c.big[:len(c.big)-need]
				return done, nil
			}
			done += need
			c.req = wire.Message{} // it aliases big: an idle connection must not pin it
			c.dropBig()
			if err != nil {
				return done, err
			}
			continue
		}
		rest := in[done:]
		st := c.s.settings.Load()
		// The frame maximum in force when the length prefix arrives.
		n, ok, err := wire.FrameLength(rest, st.MaxFrame)
		if err != nil {
			return done, err
		}
		if !ok {
			break
		}
		if 4+n > len(rest) {
			if 4+n <= readBufferSize {
				break // the engine keeps it until it is whole
			}
			done += 4
			c.bigLen = n
			c.ec.SetPartial(true)
			continue
		}
		if !c.mayAnswer() {
			return done, nil
		}
		err = c.handleFrame(st, rest[4:4+n])
		if err == errWait {
			return done, nil
		}
		done += 4 + n
		if err != nil {
			return done, err
		}
	}
	c.settle()
	return done, nil
}

// collect copies the next bytes of a large frame into c.big, growing it
// only as bytes arrive (wire.LargeFrameCap), each growth reserved first.
func (c *conn) collect(in []byte) (int, error) {
	k := min(len(in), c.bigLen-len(c.big))
	if len(c.big)+k > cap(c.big) {
		arrived := len(c.big) + len(in) + queued(c.ec.Fd())
		size := wire.LargeFrameCap(c.bigLen, cap(c.big), arrived)
		if err := c.reserve(int64(size) - c.bigHeld); err != nil {
			return 0, err
		}
		c.bigHeld = max(c.bigHeld, int64(size))
		nb := make([]byte, len(c.big), size)
		copy(nb, c.big)
		c.big = nb
		k = min(k, size-len(c.big))
	}
	c.big = append(c.big, in[:k]...)
	return k, nil
}

// dropBig lets go of a large frame's buffer and gives its memory back.
func (c *conn) dropBig() {
	c.big, c.bigLen = nil, -1
	c.release(c.bigHeld)
	c.bigHeld = 0
	c.ec.SetPartial(false)
}

// queued returns the bytes waiting in a socket's receive queue.
func queued(fd int) int {
	n, _ := unix.IoctlGetInt(fd, unix.SIOCINQ)
	return n
}

// mayAnswer reports whether c may start a request: its answers so far
// leave room for a small one in the write credit, or the socket takes
// them now. Otherwise the peer does not read its answers: c is paused
// (not read on) until the socket has taken them (OnWritten).
func (c *conn) mayAnswer() bool {
	if c.ec.Pending()+smallAnswer <= writeCredit {
		return true
	}
	pending, err := c.ec.Flush()
	if err != nil {
		return false // the engine closes c
	}
	if pending == 0 {
		c.releaseOut()
		return true
	}
	c.writeWait = true
	c.ec.Pause()
	return false
}

// settle writes answers that hold a reservation now, so the reservation
// is given back at once when the socket takes them (the engine would write
// them after onData, but nobody would be told).
func (c *conn) settle() {
	if c.outHeld == 0 {
		return
	}
	if pending, err := c.ec.Flush(); err == nil && pending == 0 {
		c.releaseOut()
	}
}

// releaseOut gives back the answers' reservation: they are written.
func (c *conn) releaseOut() {
	c.release(c.outHeld)
	c.outHeld = 0
}

// written is OnWritten: the socket took every pending answer.
func (c *conn) written() {
	c.releaseOut()
	if c.writeWait {
		c.writeWait = false
		c.ec.Resume()
	}
}

// recoverPanic keeps a panic in the code serving one connection (a
// mechanism handed a hostile token, a bug) from ending the process and
// every other connection with it: that connection is closed, counted as
// rejected with reason "panic", and logged with the peer and the stack —
// the stack at most once a second, so a peer that found a panic cannot
// flood the log with it.
func (c *conn) recoverPanic(r any) {
	c.s.stats.reject("panic")
	attrs := []any{"peer", c.peer, "method", c.mechName(), "panic", fmt.Sprint(r)}
	if c.s.panicLog.allow() {
		attrs = append(attrs, "stack", string(debug.Stack()))
	}
	c.s.log.Error("panic while serving a connection; closing it and serving on", attrs...)
}

// monoBase anchors the request-duration clock.
var monoBase = time.Now()

// handleFrame answers one frame. It returns errWait when c paused to wait
// for memory (the frame is handled again), errEnded when the connection
// must close (logged), else nil.
func (c *conn) handleFrame(st *Settings, body []byte) error {
	if err := wire.DecodeRequest(body, &c.req); err != nil {
		c.s.stats.BytesIn.Add(uint64(len(body) + 4))
		c.s.stats.reject("malformed frame")
		c.s.warns.Warn(c.host, "malformed frame", "malformed frame; closing connection", "peer", c.peer, "err", err, "bytes", len(body))
		return errEnded
	}
	var start time.Duration
	if c.s.observer != nil {
		start = time.Since(monoBase) // one monotonic clock read; time.Now reads two clocks
	}
	err := c.handle(st, &c.req)
	if err == errWait {
		return err
	}
	c.s.stats.BytesIn.Add(uint64(len(body) + 4))
	if c.s.observer != nil && err == nil && c.req.Type.Valid() {
		c.s.observer.Request(c.req.Type, time.Since(monoBase)-start)
	}
	if err != nil {
		if errors.Is(err, errBudgetSpent) {
			return c.budgetEnded(err)
		}
		if !errors.Is(err, errClose) {
			c.s.stats.reject("protocol error")
			c.s.warns.Warn(c.host, "protocol error", "protocol error; closing connection", "peer", c.peer, "request", c.req.Type.String(), "err", err)
		}
		return errEnded // what was answered is written first, e.g. before a failed handshake
	}
	return nil
}

// budgetEnded logs a reservation that can never succeed and ends c.
func (c *conn) budgetEnded(err error) error {
	c.budgetFailed(err)
	return errEnded
}

// budgetFailed logs a connection the budget ended.
func (c *conn) budgetFailed(err error) {
	if errors.Is(err, errEvicted) {
		return // logged by the eviction
	}
	c.s.stats.reject("buffer budget")
	used, max := c.s.Buffered()
	c.s.warns.Warn(c.host, "buffer budget", "buffered memory budget spent; closing connection", "peer", c.peer,
		"held_bytes", c.held.Load(), "buffered_bytes", used, "max_buffered_bytes", max)
}

// room makes sure an answer of n more bytes is counted: what the pending
// answers would hold beyond writeCredit is reserved from the buffered
// budget before it is allocated. Only reads wait for it (wait); other
// answers are small or bounded (a SASL token) and are counted at once.
func (c *conn) room(n int, wait bool) error {
	over := int64(c.ec.Pending()+n-writeCredit) - c.outHeld
	if over <= 0 {
		return nil
	}
	if !wait {
		c.force(over)
	} else if err := c.reserve(over); err != nil {
		return err
	}
	c.outHeld += over
	return nil
}

// answer appends m to the pending answers after checking it against the
// frame maximum (a client could not read a larger one: it is refused with
// NOT_AUTHORIZED, logged and counted) and the buffered budget.
func (c *conn) answer(st *Settings, m *wire.Message) error {
	return c.answerWith(st, m, false)
}

// answerRead is answer for a read's answer, which waits for memory.
func (c *conn) answerRead(st *Settings, m *wire.Message) error {
	return c.answerWith(st, m, true)
}

func (c *conn) answerWith(st *Settings, m *wire.Message, wait bool) error {
	n := wire.FrameSize(m)
	if n-4 > st.MaxFrame {
		c.answerTooLarge(st, m, n)
		m = &wire.Message{Type: wire.NotAuthorized, ID: m.ID, HasID: true}
		n = wire.FrameSize(m)
	}
	if err := c.room(n, wait); err != nil {
		return err
	}
	c.ec.SetOut(wire.AppendFrame(c.ec.Out(), m))
	c.s.stats.BytesOut.Add(uint64(n))
	return nil
}

func (c *conn) answerTooLarge(st *Settings, m *wire.Message, n int) {
	c.s.stats.reject("answer too large")
	c.s.warns.Warn(c.host, "answer too large", "answer larger than pacemaker.thrift.message.size.max refused; answering NOT_AUTHORIZED",
		"peer", c.peer, "answer", m.Type.String(), "bytes", n-4, "max", st.MaxFrame)
}

// ended logs why a connection ended (OnClose), unless it was logged where
// it was decided or is no news.
func (c *conn) ended(err error) {
	var tooLarge *wire.FrameTooLargeError
	switch {
	case errors.Is(err, errEnded), errors.Is(err, errEvicted), errors.Is(err, engine.ErrDrained), errors.Is(err, engine.ErrClosed):
	case c.s.closing.Load():
		// Shutdown ended it; nothing to report.
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
	case errors.Is(err, errBudgetSpent):
		c.budgetFailed(err)
	case c.evicted.Load():
		// Closed by the eviction, which logged it.
	case errors.Is(err, engine.ErrReadTimeout), errors.Is(err, engine.ErrFrameTimeout) && c.exchange != nil:
		c.s.stats.authFailure(c.mechName(), auth.ReasonTimeout)
		c.s.warns.Warn(c.host, "handshake timeout", "authentication handshake timed out; closing connection", "peer", c.peer, "method", c.mechName())
	case errors.Is(err, engine.ErrFrameTimeout):
		c.s.stats.reject("frame timeout")
		c.s.warns.Warn(c.host, "frame timeout", "frame stalled past the frame timeout; closing connection", "peer", c.peer)
	case errors.Is(err, engine.ErrWriteTimeout):
		c.s.warns.Log(slog.LevelInfo, c.host, "write failed", "write failed; closing connection", "peer", c.peer, "err", err)
	default:
		c.s.warns.Log(slog.LevelInfo, c.host, "read failed", "connection failed; closing it", "peer", c.peer, "err", err)
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
	err := c.request(st, m)
	if err != errWait { // a waiting read is counted when it is answered
		c.s.stats.Requests[m.Type].Add(1)
	}
	return err
}

// request answers a request of a valid type.
func (c *conn) request(st *Settings, m *wire.Message) error {
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
		if err := c.s.store.PutAt(m.Pulse.ID, m.Pulse.Details, c.ec.Now()); err != nil {
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
		return c.answerRead(st, &wire.Message{Type: wire.ExistsResponse, Field: wire.FieldBool,
			Bool: c.s.store.Exists(m.Path), ID: id, HasID: true})
	case wire.GetPulse:
		return c.getPulse(st, m.Path, id)
	case wire.GetAllNodesForPath:
		return c.answerRead(st, &wire.Message{Type: wire.GetAllNodesForPathResponse, Field: wire.FieldNodes,
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
		return c.answerRead(st, &resp)
	}
	resp.Pulse.Details = make([]byte, 0) // sized as present, for FrameSize
	n := wire.FrameSize(&resp) + size
	if n-4 > st.MaxFrame {
		c.answerTooLarge(st, &resp, n)
		return c.reply(st, wire.NotAuthorized, id)
	}
	if err := c.room(n, true); err != nil {
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
		c.s.stats.BytesOut.Add(uint64(wire.FrameSize(&resp)))
		c.ec.SetOut(wire.AppendFrame(c.ec.Out(), &resp))
	})
	switch {
	case !found: // deleted since the first look
		resp.Pulse.Details = nil
		c.s.stats.BytesOut.Add(uint64(wire.FrameSize(&resp)))
		c.ec.SetOut(wire.AppendFrame(c.ec.Out(), &resp))
	case shared != nil:
		// The frame's head and tail around the value, written with it in
		// one system call; only what the socket refuses is copied.
		resp.Pulse.Details = shared
		c.s.stats.BytesOut.Add(uint64(wire.FrameSize(&resp)))
		out, at := wire.AppendFrameSplit(c.ec.Out(), &resp)
		c.ec.SetOut(out[:at])
		if _, err := c.ec.Writev(shared, out[at:]); err != nil {
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
	c.ec.SetReadDeadline(time.Now().Add(st.HandshakeTimeout))
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
	c.ec.SetReadDeadline(time.Time{})
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
