package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
	"sync"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
)

// Target is a server under test, spoken to in its own protocol.
type Target interface {
	// Name is "pacemaker", "redis" or "zookeeper".
	Name() string
	// Dial opens the connection of writer i to addr, from local (nil: any
	// local address).
	Dial(ctx context.Context, i int, addr string, local net.Addr) (Writer, error)
	// Prepare makes keys writable before a run (ZooKeeper: create the
	// znodes and their parents, as Storm's cluster state did). It may
	// store value(i) under keys[i].
	Prepare(ctx context.Context, addr string, keys []string, value func(i int) []byte) error
	// DialReader opens a reading connection (Nimbus's) to addr;
	// errors.ErrUnsupported when the target has no hierarchy to list.
	DialReader(ctx context.Context, addr string) (Reader, error)
	// Close releases what the target shares between writers.
	Close() error
}

// Writer is one connection writing heartbeats; one request in flight, as a
// Storm worker's heartbeat thread has.
type Writer interface {
	Write(key string, value []byte) error
	Close() error
}

// Reader is Nimbus's view of a server.
type Reader interface {
	Children(ctx context.Context, path string) ([]string, error)
	Get(ctx context.Context, path string) (value []byte, found bool, err error)
	Close() error
}

// requestTimeout bounds one request, so a wedged server shows up as errors
// instead of a hung run.
const requestTimeout = 30 * time.Second

// NewTarget returns the target named name ("pacemaker", "redis" or
// "zookeeper").
func NewTarget(name string, opts TargetOptions) (Target, error) {
	switch strings.ToLower(name) {
	case "pacemaker":
		return &pacemakerTarget{opts: opts}, nil
	case "redis":
		return &redisTarget{opts: opts}, nil
	case "zookeeper", "zk":
		return newZooKeeperTarget(opts), nil
	}
	return nil, fmt.Errorf("unknown target %q (want pacemaker, redis or zookeeper)", name)
}

// TargetOptions configure how targets connect.
type TargetOptions struct {
	// DialTimeout bounds connecting (and authenticating).
	DialTimeout time.Duration
	// ReaderAuth authenticates Pacemaker readers (Nimbus). Writers never
	// authenticate: Storm 2.x workers connect with NONE.
	ReaderAuth auth.ClientMechanism
	// ZooKeeperSessions is how many ZooKeeper sessions writers share
	// (0: one session per writer, as each Storm worker had its own).
	ZooKeeperSessions int
	// ZooKeeperSessionTimeout is the session timeout asked for (default 30 s).
	ZooKeeperSessionTimeout time.Duration
}

func (o TargetOptions) dialTimeout() time.Duration {
	if o.DialTimeout <= 0 {
		return 10 * time.Second
	}
	return o.DialTimeout
}

// dialTCP connects from local (when set) with TCP_NODELAY, as every
// client here sends whole requests.
func dialTCP(ctx context.Context, addr string, local net.Addr, timeout time.Duration) (net.Conn, error) {
	d := net.Dialer{Timeout: timeout, LocalAddr: local}
	nc, err := d.DialContext(ctx, "tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("connect %s: %w", addr, err)
	}
	return nc, nil
}

// bufPool holds request buffers: at any moment only the writers with a
// request in flight need one, a small fraction of tens of thousands.
var bufPool = sync.Pool{New: func() any { b := make([]byte, 0, 8<<10); return &b }}

func getBuf() *[]byte { return bufPool.Get().(*[]byte) }

func putBuf(b *[]byte) {
	if cap(*b) > 1<<20 {
		return
	}
	*b = (*b)[:0]
	bufPool.Put(b)
}

// errUnsupported marks what a target cannot do.
var errUnsupported = errors.ErrUnsupported

// Sources spreads writers over loopback source addresses, one per
// simulated host, so a server's per-peer connection limit sees as many
// peers as a real cluster has hosts, and no source runs out of ports.
type Sources struct {
	// PerHost is how many writers share one source address.
	PerHost int
	enabled bool
}

// SourcesFor enables spreading when every address is a loopback IP.
func SourcesFor(addrs []string, perHost int) Sources {
	for _, a := range addrs {
		host, _, err := net.SplitHostPort(a)
		if err != nil {
			return Sources{}
		}
		ip := net.ParseIP(host)
		if ip == nil || ip.To4() == nil || !ip.IsLoopback() {
			return Sources{}
		}
	}
	return Sources{PerHost: max(perHost, 1), enabled: len(addrs) > 0}
}

// Addr is writer i's source address, or nil when not spreading:
// 127.1.0.1, 127.1.0.2, … (127.0.0.1 stays the generator's own).
func (s Sources) Addr(i int) net.Addr {
	if !s.enabled {
		return nil
	}
	return &net.TCPAddr{IP: sourceIP(i / s.PerHost)}
}

func sourceIP(host int) net.IP {
	return net.IPv4(127, byte(1+host/(250*256)), byte(host/250%256), byte(1+host%250))
}
