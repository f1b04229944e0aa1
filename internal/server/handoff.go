package server

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"net"
	"os"

	"github.com/storm-pacemaker/pacemaker/internal/handoff"
)

// HandOver is Shutdown that keeps the connections: it stops accepting, lets
// each connection answer every whole request it has read, then returns its
// socket with its state instead of closing it. Connections in the middle of
// an authentication handshake, or of a frame too large to hold, are closed
// (logged), since that state cannot move.
func (s *Server) HandOver(ctx context.Context) ([]handoff.Conn, error) {
	s.mu.Lock()
	s.handed = nil
	s.handoff.Store(true)
	s.mu.Unlock()
	err := s.Shutdown(ctx) // every connection has handed itself over or closed
	s.mu.Lock()
	defer s.mu.Unlock()
	out := s.handed
	s.handed = nil
	return out, err
}

// handOver passes c to the successor if it can move; it reports whether it did.
func (c *conn) handOver() bool {
	if !c.s.handoff.Load() {
		return false
	}
	if c.exchange != nil {
		c.s.warns.Warn(c.host, "hand-over", "closing a connection in the middle of authentication at hand-over", "peer", c.peer)
		return false
	}
	pending, ok := c.fr.Pending()
	if !ok {
		c.s.warns.Warn(c.host, "hand-over", "closing a connection in the middle of a large frame at hand-over", "peer", c.peer)
		return false
	}
	fc, ok := c.nc.(interface{ File() (*os.File, error) })
	if !ok {
		return false
	}
	f, err := fc.File()
	if err != nil {
		c.s.warns.Warn(c.host, "hand-over", "cannot duplicate a socket for hand-over; closing it", "peer", c.peer, "err", err)
		return false
	}
	c.s.addHanded(handoff.Conn{
		File:          f,
		Peer:          c.peer,
		Authenticated: c.state.Load() == stateAuthenticated,
		Identity:      c.identity,
		Method:        c.method,
		Credentials:   c.creds,
		Pending:       pending,
	})
	return true
}

func (s *Server) addHanded(hc handoff.Conn) {
	s.mu.Lock()
	s.handed = append(s.handed, hc)
	s.mu.Unlock()
}

// TakeOver serves a connection handed over by a previous process. It bypasses
// the connection limits: the client was already admitted.
func (s *Server) TakeOver(hc handoff.Conn) error {
	nc, err := net.FileConn(hc.File)
	hc.File.Close()
	if err != nil {
		return fmt.Errorf("adopt connection from %s: %w", hc.Peer, err)
	}
	peer, host := peerOf(nc)
	s.mu.Lock()
	if s.closing.Load() {
		s.mu.Unlock()
		nc.Close()
		return ErrServerClosed
	}
	c := newConn(s, nc, peer, host)
	if len(hc.Pending) > 0 {
		c.br = bufio.NewReaderSize(&arrivedReader{c: c, src: bytes.NewReader(hc.Pending)}, readBufferSize)
		c.setFrameReader(s.settings.Load())
	}
	if hc.Authenticated {
		st := s.settings.Load()
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
	s.log.Debug("adopted connection from the previous process", "peer", peer, "identity", c.identityName(), "pending_bytes", len(hc.Pending))
	s.startLocked(c)
	return nil
}
