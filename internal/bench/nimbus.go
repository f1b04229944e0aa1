package bench

import (
	"context"
	"fmt"
	"path"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/stormhb"
)

// NimbusStats measure the simulated Nimbus's reads.
type NimbusStats struct {
	// Cycles run inside the window; each lists /workerbeats, lists every
	// topology and reads every worker's heartbeat from every server.
	Cycles int `json:"cycles"`
	// Cycle runs from a cycle's scheduled start to its end.
	Cycle Latency `json:"cycle"`
	// ListRoot is GET_ALL_NODES_FOR_PATH /workerbeats, ListTopology the
	// same for /workerbeats/<topology-id>, Get GET_PULSE; per request.
	ListRoot     OpStats `json:"list_root"`
	ListTopology OpStats `json:"list_topology"`
	Get          OpStats `json:"get_pulse"`
	// From the last cycle: topologies listed, workers whose heartbeat some
	// server had, workers no server had, heartbeats that did not decode.
	TopologiesSeen int    `json:"topologies_seen"`
	WorkersFound   int    `json:"workers_found"`
	WorkersMissing int    `json:"workers_missing"`
	DecodeErrors   uint64 `json:"decode_errors"`
}

const verifySample = 1000

// nimbus simulates Nimbus reading heartbeats every period.
type nimbus struct {
	readers     []Reader // one per server
	cluster     Cluster
	keys        []string // every worker's heartbeat path
	period      time.Duration
	concurrency int // requests in flight per server
	verify      bool

	window                 Window
	cycle                  *Histogram
	cycles                 atomic.Int64
	listRoot, listTop, get *opRecorder
	decodeErrs             atomic.Uint64

	mu                                    sync.Mutex
	topSeen, workersFound, workersMissing int
}

func newNimbus(readers []Reader, c Cluster, keys []string, period time.Duration, win Window, verify bool) *nimbus {
	return &nimbus{
		readers: readers, cluster: c, keys: keys, period: period, concurrency: 32, verify: verify,
		window: win, cycle: NewHistogram(),
		listRoot: newOpRecorder(win), listTop: newOpRecorder(win), get: newOpRecorder(win),
	}
}

// run starts a cycle every period (the first half a period in, once
// workers have written) until the window ends; a late cycle starts as soon
// as the previous one ends and is charged from its scheduled time.
func (n *nimbus) run(ctx context.Context, start time.Time) {
	for k := 0; ; k++ {
		due := n.period/2 + time.Duration(k)*n.period
		if due >= n.window.End {
			return
		}
		sleepCtx(ctx, due-time.Since(start))
		if ctx.Err() != nil {
			return
		}
		n.runCycle(ctx, start, n.window.Contains(due))
		if n.window.Contains(due) {
			n.cycle.Record(time.Since(start) - due)
			n.cycles.Add(1)
		}
	}
}

// timed runs one request and records it.
func timed[T any](rec *opRecorder, start time.Time, fn func() (T, error)) (T, error) {
	sent := time.Since(start)
	v, err := fn()
	rec.done(sent, sent, time.Since(start), err)
	return v, err
}

// runCycle reads everything once; measured says whether its findings
// count (a cycle in the warm-up may find workers that have not written yet).
func (n *nimbus) runCycle(ctx context.Context, start time.Time, measured bool) {
	// 1. List /workerbeats on every server (topology ids).
	tops := map[string]bool{}
	for _, r := range n.readers {
		names, err := timed(n.listRoot, start, func() ([]string, error) { return r.Children(ctx, WorkerbeatsRoot) })
		if err == nil {
			for _, t := range names {
				tops[t] = true
			}
		}
	}
	// 2. List every topology on every server, 3. read every assigned
	// worker's heartbeat from every server and keep the newest.
	var wg sync.WaitGroup
	for _, r := range n.readers {
		wg.Go(func() {
			for t := range n.cluster.Topologies() {
				_, _ = timed(n.listTop, start, func() ([]string, error) { return r.Children(ctx, n.cluster.TopologyPath(t)) })
			}
		})
	}
	wg.Wait()

	newest := make([][]byte, len(n.keys))
	var mu sync.Mutex
	for _, r := range n.readers {
		sem := make(chan struct{}, n.concurrency)
		for i, key := range n.keys {
			if ctx.Err() != nil {
				break
			}
			sem <- struct{}{}
			wg.Go(func() {
				defer func() { <-sem }()
				type got struct {
					b     []byte
					found bool
				}
				g, err := timed(n.get, start, func() (got, error) {
					b, found, err := r.Get(ctx, key)
					return got{b, found}, err
				})
				if err != nil || !g.found {
					return
				}
				mu.Lock()
				if newest[i] == nil || (n.verify && stormhb.Newer(g.b, newest[i])) {
					newest[i] = g.b
				}
				mu.Unlock()
			})
		}
	}
	wg.Wait()

	// Decode a sample of up to verifySample heartbeats per cycle: all of
	// them would cost the generator more than the reads cost the server.
	step := max(1, len(newest)/verifySample)
	found, missing := 0, 0
	for i, b := range newest {
		if b == nil {
			missing++
			continue
		}
		found++
		if n.verify && measured && i%step == 0 {
			hb, err := stormhb.Decode(b)
			if err != nil || hb.StormID != path.Base(path.Dir(n.keys[i])) {
				n.decodeErrs.Add(1)
			}
		}
	}
	if measured {
		n.mu.Lock()
		n.topSeen, n.workersFound, n.workersMissing = len(tops), found, missing
		n.mu.Unlock()
	}
}

func (n *nimbus) stats() *NimbusStats {
	n.mu.Lock()
	defer n.mu.Unlock()
	return &NimbusStats{
		Cycles:         int(n.cycles.Load()),
		Cycle:          n.cycle.Summary(),
		ListRoot:       n.listRoot.stats(0),
		ListTopology:   n.listTop.stats(0),
		Get:            n.get.stats(0),
		TopologiesSeen: n.topSeen,
		WorkersFound:   n.workersFound,
		WorkersMissing: n.workersMissing,
		DecodeErrors:   n.decodeErrs.Load(),
	}
}

// requests is how many reads the window saw, for per-CPU-second figures.
func (s *NimbusStats) requests() uint64 {
	if s == nil {
		return 0
	}
	return s.ListRoot.Completed + s.ListTopology.Completed + s.Get.Completed
}

func (s *NimbusStats) String() string {
	out := fmt.Sprintf("%d cycles, cycle p99 %.1f ms; list p99 %.2f ms; get p99 %.2f ms; %d workers found, %d missing, %d undecodable",
		s.Cycles, s.Cycle.P99, s.ListTopology.Latency.P99, s.Get.Latency.P99, s.WorkersFound, s.WorkersMissing, s.DecodeErrors)
	if errs := s.ListRoot.Errors + s.ListTopology.Errors + s.Get.Errors; errs > 0 {
		out += fmt.Sprintf("; %d read errors", errs)
		for _, op := range []OpStats{s.ListRoot, s.ListTopology, s.Get} {
			for _, k := range sortedKeys(op.ErrorSamples) {
				out += "\n    read error: " + k
				if strings.Contains(k, client.ErrNotAuthorized.Error()) {
					out += " (reads need authentication on this server: pass --auth and --jaas)"
				}
				return out
			}
		}
	}
	return out
}
