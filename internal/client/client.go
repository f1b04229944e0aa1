// Package client speaks Pacemaker's protocol to one server (Conn) or to
// several the way Storm's PacemakerClientPool does (Pool): writes go to one
// server and fail over, reads ask every server and merge.
//
// A Conn pipelines: any number of goroutines may call it at once, each
// request tagged with its own message_id and answered in any order.
package client

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"sync"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// ErrNotAuthorized is the server's NOT_AUTHORIZED answer: a read without an
// authorized identity, or a write refused by a limit or by auth.writes.
var ErrNotAuthorized = errors.New("server answered NOT_AUTHORIZED")

// ErrHandshake wraps every failure to authenticate (wrong credentials, a
// server that closed the handshake, a Kerberos error).
var ErrHandshake = errors.New("authentication failed")

// ErrClosed is returned for requests on a closed or broken connection.
var ErrClosed = errors.New("connection closed")

// Options configure a connection.
type Options struct {
	// Auth authenticates the connection right after it opens; nil = none.
	Auth auth.ClientMechanism
	// DialTimeout bounds connecting and authenticating (default 10 s).
	DialTimeout time.Duration
	// MaxFrame is the largest answer accepted (default Storm's 10 MiB).
	MaxFrame int
}

// Conn is one connection to one server. Safe for concurrent use.
type Conn struct {
	addr string
	nc   net.Conn

	wmu  sync.Mutex // serializes frame writes
	wbuf []byte

	mu      sync.Mutex
	nextID  int32
	pending map[int32]chan *wire.Message
	err     error // set once broken
	done    chan struct{}
}

// Dial connects to addr ("host:port") and authenticates when opts.Auth is set.
func Dial(ctx context.Context, addr string, opts Options) (*Conn, error) {
	if opts.DialTimeout <= 0 {
		opts.DialTimeout = 10 * time.Second
	}
	if opts.MaxFrame <= 0 {
		opts.MaxFrame = wire.DefaultMaxFrame
	}
	ctx, cancel := context.WithTimeout(ctx, opts.DialTimeout)
	defer cancel()
	var d net.Dialer
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	br := bufio.NewReaderSize(nc, 64<<10)
	fr := wire.NewFrameReader(br, opts.MaxFrame)
	if opts.Auth != nil {
		if dl, ok := ctx.Deadline(); ok {
			_ = nc.SetDeadline(dl)
		}
		if err := authenticate(nc, fr, addr, opts.Auth); err != nil {
			nc.Close()
			return nil, fmt.Errorf("authenticate to %s with %s: %w: %w", addr, opts.Auth.Name(), ErrHandshake, err)
		}
		_ = nc.SetDeadline(time.Time{})
	}
	c := &Conn{addr: addr, nc: nc, pending: map[int32]chan *wire.Message{}, done: make(chan struct{})}
	go c.readLoop(fr)
	return c, nil
}

// authenticate runs the SASL exchange before any request, as Storm's
// client does: DIGEST opens with CONTROL -202, GSSAPI with its token; the
// server's CONTROL -203 ends it. The server is not authenticated yet:
// whatever it sends that makes the mechanism code panic becomes an error,
// not a crash of the caller (pacemakerctl, Nimbus-side tools).
func authenticate(nc net.Conn, fr *wire.FrameReader, addr string, mech auth.ClientMechanism) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = fmt.Errorf("%s mechanism failed on the server's token (panic: %v)", mech.Name(), r)
		}
	}()
	host, _, err := net.SplitHostPort(addr)
	if err != nil {
		host = addr
	}
	ex, err := mech.NewClientExchange(host)
	if err != nil {
		return err
	}
	first, err := ex.Start()
	if err != nil {
		return err
	}
	var out []byte
	if first == nil {
		out = wire.AppendFrame(out, wire.NewControl(wire.ControlSaslRequest))
	} else {
		out = wire.AppendFrame(out, wire.NewSaslToken(first))
	}
	if _, err := nc.Write(out); err != nil {
		return err
	}
	var m wire.Message
	for {
		body, err := fr.Next()
		if err != nil {
			return fmt.Errorf("server closed the handshake (wrong credentials?): %w", err)
		}
		if err := wire.Decode(body, &m); err != nil {
			return err
		}
		switch m.Type {
		case wire.ControlMessage:
			code, err := wire.ParseControl(&m)
			if err != nil {
				return err
			}
			if code == wire.ControlSaslComplete {
				return nil
			}
			return fmt.Errorf("unexpected control code %d during handshake", code)
		case wire.SaslMessageToken:
			tok, err := wire.ParseSaslToken(&m)
			if err != nil {
				return err
			}
			resp, err := ex.Step(tok)
			if err != nil {
				return err
			}
			if resp != nil {
				if _, err := nc.Write(wire.AppendFrame(nil, wire.NewSaslToken(resp))); err != nil {
					return err
				}
			}
		default:
			return fmt.Errorf("unexpected %s during handshake", m.Type)
		}
	}
}

func (c *Conn) readLoop(fr *wire.FrameReader) {
	var err error
	for {
		var body []byte
		body, err = fr.Next()
		if err != nil {
			break
		}
		m := new(wire.Message)
		if err = wire.Decode(body, m); err != nil {
			break
		}
		if m.Type == wire.ControlMessage {
			continue // e.g. Storm's second SASL_COMPLETE for Kerberos
		}
		c.mu.Lock()
		ch := c.pending[m.MessageID()]
		delete(c.pending, m.MessageID())
		c.mu.Unlock()
		if ch != nil {
			ch <- m
		}
	}
	c.fail(fmt.Errorf("%w: %s: %v", ErrClosed, c.addr, err))
}

func (c *Conn) fail(err error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.err != nil {
		return
	}
	c.err = err
	close(c.done)
	c.nc.Close()
	for id, ch := range c.pending {
		delete(c.pending, id)
		close(ch)
	}
}

// Close closes the connection; requests in flight fail with ErrClosed.
func (c *Conn) Close() error {
	c.fail(fmt.Errorf("%w: %s: closed by caller", ErrClosed, c.addr))
	return nil
}

// Err returns why the connection broke, or nil while it is usable.
func (c *Conn) Err() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.err
}

// Addr is the server's address as dialed.
func (c *Conn) Addr() string { return c.addr }

// Do sends req (its ID is assigned here) and waits for the answer.
func (c *Conn) Do(ctx context.Context, req *wire.Message) (*wire.Message, error) {
	ch := make(chan *wire.Message, 1)
	c.mu.Lock()
	if c.err != nil {
		c.mu.Unlock()
		return nil, c.err
	}
	id := c.nextID
	for c.pending[id] != nil || id < 0 {
		id = (id + 1) & 0x7fffffff
	}
	c.nextID = (id + 1) & 0x7fffffff
	c.pending[id] = ch
	c.mu.Unlock()

	req.ID, req.HasID = id, true
	c.wmu.Lock()
	c.wbuf = wire.AppendFrame(c.wbuf[:0], req)
	if dl, ok := ctx.Deadline(); ok {
		_ = c.nc.SetWriteDeadline(dl)
	}
	_, err := c.nc.Write(c.wbuf)
	c.wmu.Unlock()
	if err != nil {
		c.fail(fmt.Errorf("%w: %s: write: %v", ErrClosed, c.addr, err))
		return nil, c.Err()
	}
	select {
	case m, ok := <-ch:
		if !ok {
			return nil, c.Err()
		}
		return m, nil
	case <-ctx.Done():
		c.mu.Lock()
		delete(c.pending, id)
		c.mu.Unlock()
		return nil, fmt.Errorf("%s to %s: %w", req.Type, c.addr, ctx.Err())
	}
}

// call sends a request and checks the answer's type.
func (c *Conn) call(ctx context.Context, req *wire.Message, want wire.MessageType) (*wire.Message, error) {
	resp, err := c.Do(ctx, req)
	if err != nil {
		return nil, err
	}
	switch resp.Type {
	case want:
		return resp, nil
	case wire.NotAuthorized:
		return nil, fmt.Errorf("%s %s on %s: %w", req.Type, pathOf(req), c.addr, ErrNotAuthorized)
	}
	return nil, fmt.Errorf("%s %s on %s: unexpected answer %s", req.Type, pathOf(req), c.addr, resp.Type)
}

func pathOf(m *wire.Message) string {
	if m.Field == wire.FieldPulse {
		return m.Pulse.ID
	}
	return m.Path
}

func pathReq(t wire.MessageType, path string) *wire.Message {
	return &wire.Message{Type: t, Field: wire.FieldPath, Path: path}
}

// SendPulse stores details under id.
func (c *Conn) SendPulse(ctx context.Context, id string, details []byte) error {
	if details == nil {
		details = []byte{}
	}
	_, err := c.call(ctx, &wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: id, Details: details}}, wire.SendPulseResponse)
	return err
}

// GetPulse returns the details stored under path; found is false when the
// server has none.
func (c *Conn) GetPulse(ctx context.Context, path string) (details []byte, found bool, err error) {
	resp, err := c.call(ctx, pathReq(wire.GetPulse, path), wire.GetPulseResponse)
	if err != nil {
		return nil, false, err
	}
	if resp.Field != wire.FieldPulse || resp.Pulse.Details == nil {
		return nil, false, nil
	}
	return resp.Pulse.Details, true, nil
}

// Exists reports whether path is a stored key.
func (c *Conn) Exists(ctx context.Context, path string) (bool, error) {
	resp, err := c.call(ctx, pathReq(wire.Exists, path), wire.ExistsResponse)
	if err != nil {
		return false, err
	}
	return resp.Field == wire.FieldBool && resp.Bool, nil
}

// Children lists the names directly below path.
func (c *Conn) Children(ctx context.Context, path string) ([]string, error) {
	resp, err := c.call(ctx, pathReq(wire.GetAllNodesForPath, path), wire.GetAllNodesForPathResponse)
	if err != nil {
		return nil, err
	}
	if resp.Field != wire.FieldNodes {
		return []string{}, nil
	}
	return resp.Nodes, nil
}

// CreatePath is Storm's no-op CREATE_PATH.
func (c *Conn) CreatePath(ctx context.Context, path string) error {
	_, err := c.call(ctx, pathReq(wire.CreatePath, path), wire.CreatePathResponse)
	return err
}

// DeletePath removes path and everything under it.
func (c *Conn) DeletePath(ctx context.Context, path string) error {
	_, err := c.call(ctx, pathReq(wire.DeletePath, path), wire.DeletePathResponse)
	return err
}

// DeletePulseID removes exactly the key path.
func (c *Conn) DeletePulseID(ctx context.Context, path string) error {
	_, err := c.call(ctx, pathReq(wire.DeletePulseID, path), wire.DeletePulseIDResponse)
	return err
}
