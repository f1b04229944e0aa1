// Package status builds an operator's view of a Pacemaker cluster: for
// every server, whether it answers and what it holds, and for every Storm
// topology, which workers' heartbeats have gone stale (as Nimbus would
// judge them: the newest copy across servers) and where each heartbeat
// lives. Scan reads one server, Build merges scans into a Report, and the
// Report renders as an aligned table or as JSON.
package status

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/stormhb"
)

// WorkerbeatsRoot is where Storm workers write their heartbeats:
// /workerbeats/<topology-id>/<supervisor-id>-<port>.
const WorkerbeatsRoot = "/workerbeats"

// scanParallel bounds the requests in flight per server while scanning; the
// client pipelines them on one connection. With the frame maximum it
// bounds the answers held at once (32 × 10 MiB).
const scanParallel = 32

// decodeParallel bounds the heartbeats decompressed at once (each up to
// stormhb.MaxDecompressed, 100 MiB, from a hostile server).
const decodeParallel = 2

// Limits bound a walk, so that a hostile or broken server cannot make it
// run out of memory: it keeps every key's path (for the per-worker report),
// so names and their bytes are what it holds; depth bounds the length of
// one path in segments. A walk that reaches a limit stops with a
// *LimitError. Zero fields take the defaults.
type Limits struct {
	// MaxDepth is the deepest key, in path segments (Storm's are 3 deep:
	// /workerbeats/<topology>/<worker>).
	MaxDepth int
	// MaxNames bounds the names listed by the whole walk.
	MaxNames int
	// MaxNameBytes bounds the bytes of the paths the walk holds.
	MaxNameBytes int64
	// RequestTimeout bounds each request (the walk as a whole is bounded by
	// the caller's context).
	RequestTimeout time.Duration
}

// The default limits: four times the depth Storm writes, and room for a
// 1 M-worker store twice over (its paths are ~80 bytes).
const (
	DefaultMaxDepth     = 12
	DefaultMaxNames     = 2_000_000
	DefaultMaxNameBytes = 256 << 20
)

func (l Limits) withDefaults() Limits {
	if l.MaxDepth <= 0 {
		l.MaxDepth = DefaultMaxDepth
	}
	if l.MaxNames <= 0 {
		l.MaxNames = DefaultMaxNames
	}
	if l.MaxNameBytes <= 0 {
		l.MaxNameBytes = DefaultMaxNameBytes
	}
	if l.RequestTimeout <= 0 {
		l.RequestTimeout = 10 * time.Second
	}
	return l
}

// LimitError says which limit stopped a walk, and where.
type LimitError struct {
	Limit string // "levels of depth", "names" or "bytes of key paths"
	Max   int64
	Flag  string // the pacemakerctl status flag that raises it
	Path  string // the directory being listed when it was reached
}

func (e *LimitError) Error() string {
	return fmt.Sprintf("walk stopped at %.200q: more than %d %s (%s raises the limit)", e.Path, e.Max, e.Limit, e.Flag)
}

// Beat is one stored worker heartbeat, decoded.
type Beat struct {
	Key  string // the stored key (the report's Worker.Key shares it)
	Size int
	HB   stormhb.Heartbeat
	Err  error // the payload did not decode
}

// ServerScan is what one server holds.
type ServerScan struct {
	Addr  string
	Keys  int   // every stored key, found by walking the tree from "/"
	Bytes int64 // sum of their values' sizes
	// Beats are the worker heartbeats: topology id → worker → beat.
	Beats map[string]map[string]Beat
}

// Scan walks every key on the server behind c (the protocol has no stats
// request: it lists each directory and reads each key) within lim and
// decodes the worker heartbeats under /workerbeats.
func Scan(ctx context.Context, c *client.Conn, lim Limits) (*ServerScan, error) {
	s := &ServerScan{Addr: c.Addr(), Beats: map[string]map[string]Beat{}}
	var mu sync.Mutex
	decoding := make(chan struct{}, decodeParallel)
	visit := func(key string, value []byte) {
		var beat Beat
		topo, worker, isBeat := splitWorkerKey(key)
		if isBeat {
			beat.Key, beat.Size = key, len(value)
			decoding <- struct{}{}
			beat.HB, beat.Err = stormhb.Decode(value)
			<-decoding
			beat.HB.StormID = "" // the key names the topology; a million copies add up
		}
		mu.Lock()
		defer mu.Unlock()
		s.Keys++
		s.Bytes += int64(len(value))
		if isBeat {
			if s.Beats[topo] == nil {
				s.Beats[topo] = map[string]Beat{}
			}
			s.Beats[topo][worker] = beat
		}
	}
	if err := walk(ctx, c, lim.withDefaults(), visit); err != nil {
		return nil, err
	}
	return s, nil
}

// splitWorkerKey recognises /workerbeats/<topology>/<worker>.
func splitWorkerKey(key string) (topo, worker string, ok bool) {
	rest, ok := strings.CutPrefix(key, WorkerbeatsRoot+"/")
	if !ok {
		return "", "", false
	}
	topo, worker, ok = strings.Cut(rest, "/")
	if !ok || topo == "" || worker == "" || strings.Contains(worker, "/") {
		return "", "", false
	}
	return topo, worker, true
}

func join(dir, name string) string {
	if dir == "/" {
		return "/" + name
	}
	return dir + "/" + name
}

// walk visits every key below "/" with up to scanParallel requests in
// flight: each node is read (it may be a key) and listed (it may be a
// directory). The first error stops the walk.
func walk(ctx context.Context, c *client.Conn, lim Limits, visit func(key string, value []byte)) error {
	w := &walker{queue: []node{{"/", 0}}, lim: lim}
	w.cond = sync.NewCond(&w.mu)
	var wg sync.WaitGroup
	for range scanParallel {
		wg.Go(func() {
			for {
				n, ok := w.next()
				if !ok {
					return
				}
				w.done(w.visitNode(ctx, c, n, visit))
			}
		})
	}
	wg.Wait()
	return w.err
}

// node is a path to visit and its depth in segments ("/" is 0).
type node struct {
	path  string
	depth int
}

type walker struct {
	lim   Limits
	mu    sync.Mutex
	cond  *sync.Cond
	queue []node // a stack: depth first, so it holds about depth × fan-out
	busy  int    // nodes being visited; their children are not queued yet
	err   error

	names     int   // listed so far
	nameBytes int64 // bytes of the paths built so far
}

// next hands out a path, waiting while others may still queue more; false
// once the walk is over (or failed).
func (w *walker) next() (node, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.queue) == 0 && w.busy > 0 && w.err == nil {
		w.cond.Wait()
	}
	if w.err != nil || len(w.queue) == 0 {
		return node{}, false
	}
	p := w.queue[len(w.queue)-1]
	w.queue = w.queue[:len(w.queue)-1]
	w.busy++
	return p, true
}

func (w *walker) done(children []node, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.busy--
	if err != nil && w.err == nil {
		w.err = err
	}
	w.queue = append(w.queue, children...)
	w.cond.Broadcast()
}

func (w *walker) visitNode(ctx context.Context, c *client.Conn, n node, visit func(string, []byte)) ([]node, error) {
	if n.path != "/" {
		rctx, cancel := context.WithTimeout(ctx, w.lim.RequestTimeout)
		v, found, err := c.GetPulse(rctx, n.path)
		cancel()
		if err != nil {
			return nil, err
		}
		if found {
			visit(n.path, v)
		}
	}
	rctx, cancel := context.WithTimeout(ctx, w.lim.RequestTimeout)
	names, err := c.Children(rctx, n.path)
	cancel()
	if err != nil || len(names) == 0 {
		return nil, err
	}
	if err := w.reserve(n, names); err != nil {
		return nil, err
	}
	children := make([]node, len(names))
	for i, name := range names {
		children[i] = node{join(n.path, name), n.depth + 1}
	}
	return children, nil
}

// reserve counts the children of n against the limits before their paths
// are built.
func (w *walker) reserve(n node, names []string) error {
	size := int64(0)
	for _, name := range names {
		size += int64(len(n.path) + 1 + len(name))
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	w.names += len(names)
	w.nameBytes += size
	switch {
	case n.depth+1 > w.lim.MaxDepth:
		return &LimitError{Limit: "levels of depth", Max: int64(w.lim.MaxDepth), Flag: "--max-depth", Path: n.path}
	case w.names > w.lim.MaxNames:
		return &LimitError{Limit: "names", Max: int64(w.lim.MaxNames), Flag: "--max-names", Path: n.path}
	case w.nameBytes > w.lim.MaxNameBytes:
		return &LimitError{Limit: "bytes of key paths", Max: w.lim.MaxNameBytes, Flag: "--max-name-bytes", Path: n.path}
	}
	return nil
}
