// Package status builds an operator's view of a Pacemaker cluster: for
// every server, whether it answers and what it holds, and for every Storm
// topology, which workers' heartbeats have gone stale (as Nimbus would
// judge them: the newest copy across servers) and where each heartbeat
// lives. Scan reads one server, Build merges scans into a Report, and the
// Report renders as an aligned table or as JSON.
package status

import (
	"context"
	"strings"
	"sync"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/stormhb"
)

// WorkerbeatsRoot is where Storm workers write their heartbeats:
// /workerbeats/<topology-id>/<supervisor-id>-<port>.
const WorkerbeatsRoot = "/workerbeats"

// scanParallel bounds the requests in flight per server while scanning; the
// client pipelines them on one connection.
const scanParallel = 32

// Beat is one stored worker heartbeat, decoded.
type Beat struct {
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
// request: it lists each directory and reads each key) and decodes the
// worker heartbeats under /workerbeats.
func Scan(ctx context.Context, c *client.Conn) (*ServerScan, error) {
	s := &ServerScan{Addr: c.Addr(), Beats: map[string]map[string]Beat{}}
	var mu sync.Mutex
	visit := func(key string, value []byte) {
		var beat Beat
		topo, worker, isBeat := splitWorkerKey(key)
		if isBeat {
			beat.Size = len(value)
			beat.HB, beat.Err = stormhb.Decode(value)
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
	if err := walk(ctx, c, visit); err != nil {
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
func walk(ctx context.Context, c *client.Conn, visit func(key string, value []byte)) error {
	w := &walker{queue: []string{"/"}}
	w.cond = sync.NewCond(&w.mu)
	var wg sync.WaitGroup
	for range scanParallel {
		wg.Go(func() {
			for {
				path, ok := w.next()
				if !ok {
					return
				}
				w.done(w.visitNode(ctx, c, path, visit))
			}
		})
	}
	wg.Wait()
	return w.err
}

type walker struct {
	mu    sync.Mutex
	cond  *sync.Cond
	queue []string
	busy  int // nodes being visited; their children are not queued yet
	err   error
}

// next hands out a path, waiting while others may still queue more; false
// once the walk is over (or failed).
func (w *walker) next() (string, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	for len(w.queue) == 0 && w.busy > 0 && w.err == nil {
		w.cond.Wait()
	}
	if w.err != nil || len(w.queue) == 0 {
		return "", false
	}
	p := w.queue[len(w.queue)-1]
	w.queue = w.queue[:len(w.queue)-1]
	w.busy++
	return p, true
}

func (w *walker) done(children []string, err error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.busy--
	if err != nil && w.err == nil {
		w.err = err
	}
	w.queue = append(w.queue, children...)
	w.cond.Broadcast()
}

func (w *walker) visitNode(ctx context.Context, c *client.Conn, path string, visit func(string, []byte)) ([]string, error) {
	if path != "/" {
		v, found, err := c.GetPulse(ctx, path)
		if err != nil {
			return nil, err
		}
		if found {
			visit(path, v)
		}
	}
	names, err := c.Children(ctx, path)
	if err != nil {
		return nil, err
	}
	children := make([]string, len(names))
	for i, n := range names {
		children[i] = join(path, n)
	}
	return children, nil
}
