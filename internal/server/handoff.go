package server

import (
	"context"
	"fmt"
	"os"

	"golang.org/x/sys/unix"

	"github.com/storm-pacemaker/pacemaker/internal/handoff"
)

// HandOver is Shutdown that keeps the connections: it stops accepting
// (what is queued on the listeners stays there for the successor), lets
// each connection answer every whole request it has received, then returns
// its socket with its state instead of closing it. Connections in the
// middle of an authentication handshake, or of a frame too large for the
// read buffer, are closed (logged), since that state cannot move.
func (s *Server) HandOver(ctx context.Context) ([]handoff.Conn, error) {
	s.mu.Lock()
	s.handed = nil
	s.handingOver.Store(true)
	s.mu.Unlock()
	err := s.Shutdown(ctx) // every connection has handed itself over or closed
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.handed
	s.handed = nil
	return out, err
}

// handOver passes c, drained, to the successor if it can move; it reports
// whether it did.
func (c *conn) handOver() bool {
	if c.exchange != nil {
		c.s.warns.Warn(c.host, "hand-over", "closing a connection in the middle of authentication at hand-over", "peer", c.peer)
		return false
	}
	if c.bigLen >= 0 {
		c.s.warns.Warn(c.host, "hand-over", "closing a connection in the middle of a large frame at hand-over", "peer", c.peer)
		return false
	}
	fd, err := dupFD(c.ec.Fd())
	if err != nil {
		c.s.warns.Warn(c.host, "hand-over", "cannot duplicate a socket for hand-over; closing it", "peer", c.peer, "err", err)
		return false
	}
	hc := handoff.Conn{
		File:          os.NewFile(uintptr(fd), "connection "+c.peer),
		Peer:          c.peer,
		Authenticated: c.state.Load() == stateAuthenticated,
		Identity:      c.identity,
		Method:        c.method,
		Credentials:   c.creds,
		Pending:       append([]byte(nil), c.ec.Unread()...),
	}
	c.s.mu.Lock()
	c.s.handed = append(c.s.handed, hc)
	c.s.mu.Unlock()
	return true
}

// TakeOver serves a connection handed over by a previous process, with the
// bytes it had read and not handled. It bypasses the connection limits:
// the client was already admitted. hc.File is closed.
func (s *Server) TakeOver(hc handoff.Conn) error {
	fd, err := dupSocket(hc.File)
	hc.File.Close()
	if err != nil {
		return fmt.Errorf("take over connection from %s: %w", hc.Peer, err)
	}
	if s.engErr != nil {
		unix.Close(fd)
		return s.engErr
	}
	if s.closing.Load() {
		unix.Close(fd)
		return ErrServerClosed
	}
	hc.File = nil
	if err := s.eng.Adopt(fd, hc.Pending, &hc); err != nil {
		return fmt.Errorf("take over connection from %s: %w", hc.Peer, err)
	}
	return nil
}

// takeOver gives c the state a previous process handed over with it.
func (c *conn) takeOver(hc *handoff.Conn) {
	if hc.Authenticated {
		st := c.s.settings.Load()
		c.identity = hc.Identity
		c.state.Store(stateAuthenticated)
		c.method, c.creds = hc.Method, hc.Credentials
		if c.method == "" {
			c.method, c.creds = st.Method, st.Credentials
		}
		if st.Mechanism != nil {
			c.mech = st.Mechanism
		}
	}
	c.s.log.Debug("took over a connection from the previous process", "peer", c.peer, "identity", c.identityName(), "pending_bytes", len(hc.Pending))
}
