package bench

import (
	"bufio"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"net"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// The ZooKeeper client here speaks ZooKeeper's own wire protocol (jute
// records, length-prefixed, requests answered in order per session), just
// the operations Storm's heartbeats used: create, setData, getData,
// getChildren, ping. A Go client keeps the load generator's CPU cost the
// same for all three servers; a JVM client would not.

// ZooKeeper operation codes (ZooDefs.OpCode).
const (
	zkOpCreate       int32 = 1
	zkOpGetData      int32 = 4
	zkOpSetData      int32 = 5
	zkOpGetChildren  int32 = 8
	zkOpPing         int32 = 11
	zkOpCloseSession int32 = -11
)

// ZooKeeper error codes (KeeperException.Code) we act on.
const (
	zkOK         int32 = 0
	zkNoNode     int32 = -101
	zkNodeExists int32 = -110
)

const (
	zkPingXid  int32 = -2
	zkWatchXid int32 = -1
	zkPermsAll int32 = 31 // READ|WRITE|CREATE|DELETE|ADMIN
)

// ZooKeeperError is an answer with a non-zero error code.
type ZooKeeperError struct {
	Op   int32
	Path string
	Code int32
}

func (e *ZooKeeperError) Error() string {
	name := map[int32]string{zkNoNode: "NONODE", zkNodeExists: "NODEEXISTS", -4: "CONNECTIONLOSS", -112: "SESSIONEXPIRED"}[e.Code]
	if name == "" {
		name = fmt.Sprintf("error %d", e.Code)
	}
	return fmt.Sprintf("zookeeper op %d %s: %s", e.Op, e.Path, name)
}

func zkCode(err error) int32 {
	var ze *ZooKeeperError
	if errors.As(err, &ze) {
		return ze.Code
	}
	return 1
}

// jute appends jute-serialized values.
type jute []byte

func (j jute) i32(v int32) jute { return binary.BigEndian.AppendUint32(j, uint32(v)) }
func (j jute) i64(v int64) jute { return binary.BigEndian.AppendUint64(j, uint64(v)) }
func (j jute) boolean(v bool) jute {
	if v {
		return append(j, 1)
	}
	return append(j, 0)
}
func (j jute) str(s string) jute { return append(j.i32(int32(len(s))), s...) }
func (j jute) buf(b []byte) jute { return append(j.i32(int32(len(b))), b...) }

// finishFrame writes the frame length into the 4 bytes reserved at start.
func finishFrame(b []byte, start int) {
	binary.BigEndian.PutUint32(b[start:], uint32(len(b)-start-4))
}

// juteReader reads jute values, remembering the first error.
type juteReader struct {
	b   []byte
	err error
}

func (r *juteReader) need(n int) bool {
	if r.err == nil && len(r.b) < n {
		r.err = io.ErrUnexpectedEOF
	}
	return r.err == nil
}
func (r *juteReader) i32() int32 {
	if !r.need(4) {
		return 0
	}
	v := int32(binary.BigEndian.Uint32(r.b))
	r.b = r.b[4:]
	return v
}
func (r *juteReader) i64() int64 {
	if !r.need(8) {
		return 0
	}
	v := int64(binary.BigEndian.Uint64(r.b))
	r.b = r.b[8:]
	return v
}
func (r *juteReader) bytes() []byte {
	n := r.i32()
	if n < 0 || !r.need(int(n)) {
		return nil
	}
	v := r.b[:n:n]
	r.b = r.b[n:]
	return v
}

// zkCall is one request waiting for its answer.
type zkCall struct {
	xid      int32
	op       int32
	path     string
	wantBody bool
	done     chan struct{}
	code     int32
	body     []byte
	err      error
}

// zkSession is one ZooKeeper session on one connection; any number of
// goroutines may call it, their requests pipelined and answered in order.
type zkSession struct {
	addr    string
	nc      net.Conn
	timeout time.Duration

	wmu sync.Mutex // orders xids, the queue and writes alike
	xid int32

	qmu   sync.Mutex
	queue []*zkCall
	err   error

	lastSend atomic.Int64
	done     chan struct{}
}

func dialZooKeeper(ctx context.Context, addr string, local net.Addr, timeout, sessionTimeout time.Duration) (*zkSession, error) {
	nc, err := dialTCP(ctx, addr, local, timeout)
	if err != nil {
		return nil, err
	}
	s := &zkSession{addr: addr, nc: nc, done: make(chan struct{})}
	br := bufio.NewReaderSize(nc, 16<<10)
	_ = nc.SetDeadline(time.Now().Add(timeout))
	b := make(jute, 4, 64)
	b = b.i32(0).i64(0).i32(int32(sessionTimeout / time.Millisecond)).i64(0).buf(make([]byte, 16)).boolean(false)
	finishFrame(b, 0)
	if _, err := nc.Write(b); err != nil {
		nc.Close()
		return nil, fmt.Errorf("zookeeper %s: send connect request: %w", addr, err)
	}
	frame, err := readZKFrame(br, nil)
	if err != nil {
		nc.Close()
		return nil, fmt.Errorf("zookeeper %s: read connect answer: %w", addr, err)
	}
	r := juteReader{b: frame}
	r.i32() // protocol version
	negotiated := r.i32()
	r.i64() // session id
	if r.err != nil || negotiated <= 0 {
		nc.Close()
		return nil, fmt.Errorf("zookeeper %s: session refused (timeout %d, %v)", addr, negotiated, r.err)
	}
	_ = nc.SetDeadline(time.Time{})
	s.timeout = time.Duration(negotiated) * time.Millisecond
	s.lastSend.Store(time.Now().UnixNano())
	go s.readLoop(br)
	go s.pinger()
	return s, nil
}

func readZKFrame(br *bufio.Reader, buf []byte) ([]byte, error) {
	var hdr [4]byte
	if _, err := io.ReadFull(br, hdr[:]); err != nil {
		return nil, err
	}
	n := int(binary.BigEndian.Uint32(hdr[:]))
	if n < 0 || n > 64<<20 {
		return nil, fmt.Errorf("zookeeper frame of %d bytes", n)
	}
	if cap(buf) < n {
		buf = make([]byte, n)
	}
	buf = buf[:n]
	_, err := io.ReadFull(br, buf)
	return buf, err
}

func (s *zkSession) readLoop(br *bufio.Reader) {
	var buf []byte
	var err error
	for {
		buf, err = readZKFrame(br, buf)
		if err != nil {
			break
		}
		r := juteReader{b: buf}
		xid := r.i32()
		r.i64() // zxid
		code := r.i32()
		if r.err != nil {
			err = r.err
			break
		}
		if xid == zkWatchXid || xid == zkPingXid {
			continue // we set no watches; pings are not queued
		}
		s.qmu.Lock()
		if len(s.queue) == 0 {
			s.qmu.Unlock()
			err = fmt.Errorf("answer xid %d with nothing pending", xid)
			break
		}
		c := s.queue[0]
		s.queue[0] = nil
		s.queue = s.queue[1:]
		s.qmu.Unlock()
		if c.xid != xid {
			err = fmt.Errorf("answer xid %d, expected %d", xid, c.xid)
			c.err = err
			close(c.done)
			break
		}
		c.code = code
		if c.wantBody && code == zkOK {
			c.body = slices.Clone(r.b)
		}
		close(c.done)
	}
	s.fail(fmt.Errorf("zookeeper %s: %w", s.addr, err))
}

func (s *zkSession) fail(err error) {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	if s.err != nil {
		return
	}
	s.err = err
	close(s.done)
	s.nc.Close()
	for _, c := range s.queue {
		c.err = err
		close(c.done)
	}
	s.queue = nil
}

// Err is why the session broke, or nil.
func (s *zkSession) Err() error {
	s.qmu.Lock()
	defer s.qmu.Unlock()
	return s.err
}

// pinger keeps an idle session alive, as ZooKeeper's client does.
func (s *zkSession) pinger() {
	every := max(s.timeout/3, 100*time.Millisecond)
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-s.done:
			return
		case <-t.C:
			if time.Since(time.Unix(0, s.lastSend.Load())) >= every {
				s.ping()
			}
		}
	}
}

// ping sends a ping without waiting: its answer is skipped by xid.
func (s *zkSession) ping() {
	b := make(jute, 4, 16).i32(zkPingXid).i32(zkOpPing)
	finishFrame(b, 0)
	s.wmu.Lock()
	defer s.wmu.Unlock()
	_ = s.nc.SetWriteDeadline(time.Now().Add(requestTimeout))
	if _, err := s.nc.Write(b); err != nil {
		go s.fail(fmt.Errorf("zookeeper %s: write ping: %w", s.addr, err))
	}
	s.lastSend.Store(time.Now().UnixNano())
}

// call sends one request whose body body appends, and waits for the answer.
func (s *zkSession) call(op int32, path string, wantBody bool, body func(jute) jute) ([]byte, error) {
	c := &zkCall{op: op, path: path, wantBody: wantBody, done: make(chan struct{})}
	buf := getBuf()
	s.wmu.Lock()
	s.xid++
	c.xid = s.xid
	s.qmu.Lock()
	if s.err != nil {
		err := s.err
		s.qmu.Unlock()
		s.wmu.Unlock()
		putBuf(buf)
		return nil, err
	}
	s.queue = append(s.queue, c)
	s.qmu.Unlock()
	b := append(jute(*buf), 0, 0, 0, 0).i32(c.xid).i32(op)
	b = body(b)
	finishFrame(b, 0)
	_ = s.nc.SetWriteDeadline(time.Now().Add(requestTimeout))
	_, err := s.nc.Write(b)
	s.lastSend.Store(time.Now().UnixNano())
	s.wmu.Unlock()
	*buf = b
	putBuf(buf)
	if err != nil {
		s.fail(fmt.Errorf("zookeeper %s: write: %w", s.addr, err))
	}
	select {
	case <-c.done:
	case <-time.After(requestTimeout):
		s.fail(fmt.Errorf("zookeeper %s: no answer in %v", s.addr, requestTimeout))
		<-c.done
	}
	if c.err != nil {
		return nil, c.err
	}
	if c.code != zkOK {
		return nil, &ZooKeeperError{Op: op, Path: path, Code: c.code}
	}
	return c.body, nil
}

func (s *zkSession) setData(path string, data []byte) error {
	_, err := s.call(zkOpSetData, path, false, func(b jute) jute { return b.str(path).buf(data).i32(-1) })
	return err
}

// create makes a persistent znode readable and writable by anyone
// (OPEN_ACL_UNSAFE), as Storm's cluster state did without auth.
func (s *zkSession) create(path string, data []byte) error {
	_, err := s.call(zkOpCreate, path, false, func(b jute) jute {
		return b.str(path).buf(data).i32(1).i32(zkPermsAll).str("world").str("anyone").i32(0)
	})
	return err
}

func (s *zkSession) getData(path string) ([]byte, error) {
	body, err := s.call(zkOpGetData, path, true, func(b jute) jute { return b.str(path).boolean(false) })
	if err != nil {
		return nil, err
	}
	r := juteReader{b: body}
	data := r.bytes()
	return data, r.err
}

func (s *zkSession) getChildren(path string) ([]string, error) {
	body, err := s.call(zkOpGetChildren, path, true, func(b jute) jute { return b.str(path).boolean(false) })
	if err != nil {
		return nil, err
	}
	r := juteReader{b: body}
	n := r.i32()
	if n < 0 || n > 1<<24 {
		return nil, fmt.Errorf("zookeeper getChildren %s: %d children", path, n)
	}
	out := make([]string, 0, n)
	for range n {
		out = append(out, string(r.bytes()))
	}
	return out, r.err
}

// mkdirs creates path and its parents, tolerating ones that exist.
func (s *zkSession) mkdirs(path string) error {
	parts := strings.Split(strings.Trim(path, "/"), "/")
	p := ""
	for _, part := range parts {
		p += "/" + part
		if err := s.create(p, nil); err != nil && zkCode(err) != zkNodeExists {
			return err
		}
	}
	return nil
}

// Close ends the session politely, so the server frees it at once.
func (s *zkSession) Close() error {
	if s.Err() == nil {
		done := make(chan struct{})
		go func() {
			_, _ = s.call(zkOpCloseSession, "", false, func(b jute) jute { return b })
			close(done)
		}()
		select {
		case <-done:
		case <-time.After(2 * time.Second):
		}
	}
	s.fail(fmt.Errorf("zookeeper %s: %w", s.addr, net.ErrClosed))
	return nil
}

// zooKeeperTarget writes heartbeats as Storm did before Pacemaker: setData
// on a znode per worker, creating it (and its parents) when missing.
type zooKeeperTarget struct {
	opts TargetOptions

	mu       sync.Mutex
	sessions map[string]*zkSession // shared sessions by "addr#slot"
}

func newZooKeeperTarget(opts TargetOptions) *zooKeeperTarget {
	return &zooKeeperTarget{opts: opts, sessions: map[string]*zkSession{}}
}

func (t *zooKeeperTarget) Name() string { return "zookeeper" }

func (t *zooKeeperTarget) sessionTimeout() time.Duration {
	if t.opts.ZooKeeperSessionTimeout <= 0 {
		return 30 * time.Second
	}
	return t.opts.ZooKeeperSessionTimeout
}

func (t *zooKeeperTarget) dial(ctx context.Context, addr string, local net.Addr) (*zkSession, error) {
	return dialZooKeeper(ctx, addr, local, t.opts.dialTimeout(), t.sessionTimeout())
}

func (t *zooKeeperTarget) Dial(ctx context.Context, i int, addr string, local net.Addr) (Writer, error) {
	if t.opts.ZooKeeperSessions <= 0 {
		s, err := t.dial(ctx, addr, local)
		if err != nil {
			return nil, err
		}
		return &zkWriter{s: s, owned: true}, nil
	}
	slot := fmt.Sprintf("%s#%d", addr, i%t.opts.ZooKeeperSessions)
	t.mu.Lock()
	defer t.mu.Unlock()
	if s := t.sessions[slot]; s != nil && s.Err() == nil {
		return &zkWriter{s: s}, nil
	}
	s, err := t.dial(ctx, addr, local)
	if err != nil {
		return nil, err
	}
	t.sessions[slot] = s
	return &zkWriter{s: s}, nil
}

func (t *zooKeeperTarget) Close() error {
	t.mu.Lock()
	defer t.mu.Unlock()
	for k, s := range t.sessions {
		s.Close()
		delete(t.sessions, k)
	}
	return nil
}

// Prepare creates every key's parents and the keys themselves, with
// value(i), so the measured run only updates.
func (t *zooKeeperTarget) Prepare(ctx context.Context, addr string, keys []string, value func(int) []byte) error {
	s, err := t.dial(ctx, addr, nil)
	if err != nil {
		return err
	}
	defer s.Close()
	parents := map[string]bool{}
	for _, k := range keys {
		if i := strings.LastIndexByte(k, '/'); i > 0 {
			parents[k[:i]] = true
		}
	}
	dirs := make([]string, 0, len(parents))
	for p := range parents {
		dirs = append(dirs, p)
	}
	slices.Sort(dirs)
	for _, d := range dirs {
		if err := s.mkdirs(d); err != nil {
			return fmt.Errorf("zookeeper prepare %s: %w", d, err)
		}
	}
	// Create the znodes pipelined: 64 requests in flight.
	sem := make(chan struct{}, 64)
	var wg sync.WaitGroup
	var (
		once     sync.Once
		firstErr error
	)
	for i, k := range keys {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			err := s.create(k, value(i))
			if zkCode(err) == zkNodeExists {
				err = s.setData(k, value(i)) // left by an earlier run
			}
			if err != nil {
				once.Do(func() { firstErr = err })
			}
		})
	}
	wg.Wait()
	if firstErr != nil {
		return fmt.Errorf("zookeeper prepare: %w", firstErr)
	}
	return ctx.Err()
}

type zkWriter struct {
	s     *zkSession
	owned bool
}

// Write sets the znode's data, creating it when missing, as Storm's
// ZooKeeper state store did (set-data, or mkdirs and create).
func (w *zkWriter) Write(key string, value []byte) error {
	err := w.s.setData(key, value)
	if zkCode(err) != zkNoNode {
		return err
	}
	if i := strings.LastIndexByte(key, '/'); i > 0 {
		if err := w.s.mkdirs(key[:i]); err != nil {
			return err
		}
	}
	if err := w.s.create(key, value); err != nil && zkCode(err) != zkNodeExists {
		return err
	}
	return nil
}

func (w *zkWriter) Close() error {
	if w.owned {
		return w.s.Close()
	}
	return nil
}

func (t *zooKeeperTarget) DialReader(ctx context.Context, addr string) (Reader, error) {
	s, err := t.dial(ctx, addr, nil)
	if err != nil {
		return nil, err
	}
	return &zkReader{s: s}, nil
}

type zkReader struct{ s *zkSession }

func (r *zkReader) Children(_ context.Context, path string) ([]string, error) {
	c, err := r.s.getChildren(path)
	if zkCode(err) == zkNoNode {
		return []string{}, nil
	}
	return c, err
}

func (r *zkReader) Get(_ context.Context, path string) ([]byte, bool, error) {
	d, err := r.s.getData(path)
	if zkCode(err) == zkNoNode {
		return nil, false, nil
	}
	return d, err == nil, err
}

func (r *zkReader) Close() error { return r.s.Close() }
