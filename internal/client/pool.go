package client

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"slices"
	"sync"
)

// Pool spreads requests over several servers as Storm's PacemakerClientPool
// does: the server list is shuffled once; writes go to one server and move
// to the next when it fails; reads go to every server and are merged by the
// caller (or by the helpers here).
type Pool struct {
	addrs []string
	opts  Options

	// WriteFailed, when set, hears of each server a write moved past (it
	// failed with a connection error), e.g. to name it to an operator.
	WriteFailed func(addr string, err error)

	mu     sync.Mutex
	conns  map[string]*Conn
	writer int // index into addrs of the server writes go to
}

// NewPool returns a pool over addrs; connections open on first use.
func NewPool(addrs []string, opts Options) *Pool {
	a := slices.Clone(addrs)
	rand.Shuffle(len(a), func(i, j int) { a[i], a[j] = a[j], a[i] })
	return &Pool{addrs: a, opts: opts, conns: map[string]*Conn{}}
}

// Addrs returns the servers in the pool's (shuffled) order.
func (p *Pool) Addrs() []string { return slices.Clone(p.addrs) }

// Conn returns an open connection to addr, redialing a broken one.
func (p *Pool) Conn(ctx context.Context, addr string) (*Conn, error) {
	p.mu.Lock()
	c := p.conns[addr]
	p.mu.Unlock()
	if c != nil && c.Err() == nil {
		return c, nil
	}
	nc, err := Dial(ctx, addr, p.opts)
	if err != nil {
		return nil, err
	}
	p.mu.Lock()
	defer p.mu.Unlock()
	if old := p.conns[addr]; old != nil && old != c && old.Err() == nil {
		nc.Close() // another goroutine redialed first
		return old, nil
	}
	p.conns[addr] = nc
	return nc, nil
}

// Close closes every connection.
func (p *Pool) Close() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for a, c := range p.conns {
		c.Close()
		delete(p.conns, a)
	}
}

// Write runs fn against the current write server, moving on to the next
// server when it fails with a connection error, until every server was tried.
// NOT_AUTHORIZED is the server's answer, not a failure, and is returned as is.
func (p *Pool) Write(ctx context.Context, fn func(*Conn) error) error {
	p.mu.Lock()
	start := p.writer
	p.mu.Unlock()
	var errs []error
	for i := range p.addrs {
		idx := (start + i) % len(p.addrs)
		c, err := p.Conn(ctx, p.addrs[idx])
		if err == nil {
			err = fn(c)
			if err == nil || errors.Is(err, ErrNotAuthorized) {
				if i > 0 {
					p.mu.Lock()
					p.writer = idx
					p.mu.Unlock()
				}
				return err
			}
		}
		if ctx.Err() != nil {
			return err
		}
		if p.WriteFailed != nil {
			p.WriteFailed(p.addrs[idx], err)
		}
		errs = append(errs, fmt.Errorf("server %s: %w", p.addrs[idx], err))
	}
	if len(errs) == 0 {
		return errors.New("no pacemaker servers configured")
	}
	return fmt.Errorf("every pacemaker server failed: %w", errors.Join(errs...))
}

// Result is one server's part of a read from all servers.
type Result[T any] struct {
	Addr  string
	Value T
	Err   error
}

// All runs fn against every server at once and returns each outcome in the
// pool's server order.
func All[T any](ctx context.Context, p *Pool, fn func(*Conn) (T, error)) []Result[T] {
	out := make([]Result[T], len(p.addrs))
	var wg sync.WaitGroup
	for i, a := range p.addrs {
		out[i].Addr = a
		wg.Go(func() {
			c, err := p.Conn(ctx, a)
			if err == nil {
				out[i].Value, err = fn(c)
			}
			out[i].Err = err
		})
	}
	wg.Wait()
	return out
}

// SendPulse writes a heartbeat to one server, failing over.
func (p *Pool) SendPulse(ctx context.Context, id string, details []byte) error {
	return p.Write(ctx, func(c *Conn) error { return c.SendPulse(ctx, id, details) })
}

// Children merges the listings of every server that answered. It fails only
// when none did.
func (p *Pool) Children(ctx context.Context, path string) ([]string, error) {
	res := All(ctx, p, func(c *Conn) ([]string, error) { return c.Children(ctx, path) })
	set := map[string]struct{}{}
	var errs []error
	answered := false
	for _, r := range res {
		if r.Err != nil {
			errs = append(errs, r.Err)
			continue
		}
		answered = true
		for _, n := range r.Value {
			set[n] = struct{}{}
		}
	}
	if !answered {
		return nil, errors.Join(errs...)
	}
	out := make([]string, 0, len(set))
	for n := range set {
		out = append(out, n)
	}
	slices.Sort(out)
	return out, nil
}

// Newer reports whether heartbeat a is newer than b (Storm compares the
// ClusterWorkerHeartbeat's time_secs).
type Newer func(a, b []byte) bool

// GetPulse reads path from every server and keeps the newest copy by newer
// (nil: the first found). found is false when no server has it; the error
// is set only when no server answered.
func (p *Pool) GetPulse(ctx context.Context, path string, newer Newer) (details []byte, found bool, err error) {
	type pulse struct {
		b     []byte
		found bool
	}
	res := All(ctx, p, func(c *Conn) (pulse, error) {
		b, ok, err := c.GetPulse(ctx, path)
		return pulse{b, ok}, err
	})
	var errs []error
	answered := false
	for _, r := range res {
		if r.Err != nil {
			errs = append(errs, r.Err)
			continue
		}
		answered = true
		if !r.Value.found {
			continue
		}
		if !found || (newer != nil && newer(r.Value.b, details)) {
			details, found = r.Value.b, true
		}
	}
	if !answered {
		return nil, false, errors.Join(errs...)
	}
	return details, found, nil
}

// DeletePath deletes path on every server, as Storm's delete_worker_hb
// does; it fails when any server failed.
func (p *Pool) DeletePath(ctx context.Context, path string) error {
	res := All(ctx, p, func(c *Conn) (struct{}, error) { return struct{}{}, c.DeletePath(ctx, path) })
	var errs []error
	for _, r := range res {
		if r.Err != nil {
			errs = append(errs, r.Err)
		}
	}
	return errors.Join(errs...)
}
