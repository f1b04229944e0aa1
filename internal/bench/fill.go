package bench

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// FillOptions store a whole cluster's heartbeats once (e.g. 1,000
// topologies × 1,000 workers = 1 M keys), then measure the server's memory
// and how fast Nimbus can list one topology among them.
type FillOptions struct {
	Common
	Cluster Cluster
	Conns   int // writers storing the keys, closed loop
	// ListQueries is how many GET_ALL_NODES_FOR_PATH of random topologies
	// to time afterwards (one at a time, authenticated), and as many
	// GET_PULSE of random workers.
	ListQueries int
	// Settle is the pause between filling and reading RSS. Idle is a
	// further wait, after the reads, before reading RSS again: the Go
	// runtime collects at least every two minutes and then returns freed
	// memory to the system, so RSS after it is the idle steady state.
	Settle, Idle time.Duration
}

// FillStats are a fill run's figures.
type FillStats struct {
	Keys         int     `json:"keys"`
	PayloadBytes int64   `json:"payload_bytes"` // sum of stored values
	KeyBytes     int64   `json:"key_bytes"`     // sum of key lengths
	FillSeconds  float64 `json:"fill_seconds"`
	FillRate     float64 `json:"fill_per_second"`
	Errors       uint64  `json:"errors"`
	// RSS before filling, after, and the bound
	// 1.25 × payload + 32 MiB.
	RSSEmptyBytes int64   `json:"rss_empty_bytes"`
	RSSBytes      int64   `json:"rss_bytes"`
	RSSLimitBytes int64   `json:"rss_limit_bytes"`
	RSSPerPayload float64 `json:"rss_per_payload_byte"`
	CPUSeconds    float64 `json:"fill_cpu_seconds"`
	// RSSIdleBytes is RSS after FillOptions.Idle more (0: not measured).
	RSSIdleBytes int64   `json:"rss_idle_bytes,omitempty"`
	IdleSeconds  float64 `json:"idle_seconds,omitempty"`
	// List is GET_ALL_NODES_FOR_PATH of a TopologyWorkers-worker topology,
	// Get is GET_PULSE of one worker, while every key is stored.
	List      Latency `json:"list_topology"`
	ListNodes int     `json:"list_nodes"` // names in the last answer
	Get       Latency `json:"get_pulse"`
}

// RunFill stores every key of the cluster, then measures memory and reads.
func RunFill(ctx context.Context, o FillOptions) (*Result, error) {
	if len(o.Servers) != 1 {
		return nil, errors.New("fill: give exactly one server")
	}
	cl := o.Cluster
	if cl.Epoch == 0 {
		cl.Epoch = 1700000000
	}
	res := o.newResult("fill")
	res.Params = stormParams(res.Params, cl, 0, 0)
	n := cl.Workers()
	conns := max(min(o.Conns, n), 1)
	res.Params.Conns, res.Params.Keys, res.Params.Closed = conns, n, true
	payloads := cl.Payloads(time.Now())
	fs := &FillStats{Keys: n}
	for i := range n {
		fs.PayloadBytes += int64(len(payloads[cl.Worker(i).Topology]))
	}
	res.Params.ValueBytes = int(fs.PayloadBytes / int64(max(n, 1)))

	var before ProcUsage
	if o.PID > 0 {
		u, err := ReadProc(o.PID)
		if err != nil {
			return nil, err
		}
		before, fs.RSSEmptyBytes = u, u.RSS
	}
	o.logf("%s: storing %d keys (%d topologies × %d workers, %d B values) over %d connections",
		o.Target.Name(), n, cl.Topologies(), cl.TopologyWorkers, res.Params.ValueBytes, conns)
	rec := newOpRecorder(Window{End: 1<<63 - 1})
	src := SourcesFor(o.Servers, 256)
	load := WriteLoad{
		Pacing: Pacing{Conns: conns},
		Dial: func(ctx context.Context, i int) (Writer, error) {
			return o.Target.Dial(ctx, i, o.Servers[0], src.Addr(i))
		},
	}
	pool, err := dialAll(ctx, load, rec)
	if err != nil {
		return nil, err
	}
	start := time.Now()
	var errs atomic.Uint64
	var keyBytes atomic.Int64
	var wg sync.WaitGroup
	for c := range pool.slots {
		w := pool.slots[c].w
		if w == nil {
			continue
		}
		wg.Go(func() {
			for i := c; i < n && ctx.Err() == nil; i += conns {
				wk := cl.Worker(i)
				key := cl.Key(wk)
				keyBytes.Add(int64(len(key)))
				if err := w.Write(key, payloads[wk.Topology]); err != nil {
					if errs.Add(1) <= 3 {
						o.logf("fill: %v", err)
					}
				}
			}
		})
	}
	wg.Wait()
	pool.close()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	fs.FillSeconds = time.Since(start).Seconds()
	fs.FillRate = float64(n) / fs.FillSeconds
	fs.Errors = errs.Load() + rec.dialErrs.Load()
	fs.KeyBytes = keyBytes.Load()
	fs.RSSLimitBytes = int64(1.25*float64(fs.PayloadBytes)) + 32<<20
	o.logf("%s: stored %d keys in %.1f s (%.0f/s, %d errors)", o.Target.Name(), n, fs.FillSeconds, fs.FillRate, fs.Errors)

	sleepCtx(ctx, o.Settle)
	if o.PID > 0 {
		u, err := ReadProc(o.PID)
		if err != nil {
			return nil, err
		}
		fs.RSSBytes = u.RSS
		fs.CPUSeconds = (u.CPU - before.CPU).Seconds()
		if fs.PayloadBytes > 0 {
			fs.RSSPerPayload = float64(u.RSS) / float64(fs.PayloadBytes)
		}
	}

	if o.ListQueries > 0 {
		if err := fillReads(ctx, o, cl, fs); err != nil {
			return nil, err
		}
	}
	if o.Idle > 0 && o.PID > 0 {
		o.logf("%s: idle for %v before reading RSS again", o.Target.Name(), o.Idle)
		sleepCtx(ctx, o.Idle)
		u, err := ReadProc(o.PID)
		if err != nil {
			return nil, err
		}
		fs.RSSIdleBytes, fs.IdleSeconds = u.RSS, o.Idle.Seconds()
	}
	res.Fill = fs
	res.Env.LoadAvgEnd = LoadAvg()
	return res, ctx.Err()
}

// fillReads times Nimbus's reads one at a time while every key is stored.
func fillReads(ctx context.Context, o FillOptions, cl Cluster, fs *FillStats) error {
	r, err := o.Target.DialReader(ctx, o.Servers[0])
	if err != nil {
		return fmt.Errorf("fill: reader: %w", err)
	}
	defer r.Close()
	rng := rand.New(rand.NewPCG(1, 2))
	list, get := NewHistogram(), NewHistogram()
	for q := 0; q < o.ListQueries && ctx.Err() == nil; q++ {
		t := rng.IntN(cl.Topologies())
		start := time.Now()
		names, err := r.Children(ctx, cl.TopologyPath(t))
		if err != nil {
			return fmt.Errorf("fill: list %s: %w%s", cl.TopologyPath(t), err, authHint(err))
		}
		list.Record(time.Since(start))
		fs.ListNodes = len(names)

		wk := cl.Worker(t*cl.TopologyWorkers + rng.IntN(cl.TopologyWorkers))
		start = time.Now()
		if _, _, err := r.Get(ctx, cl.Key(wk)); err != nil {
			return fmt.Errorf("fill: get: %w%s", err, authHint(err))
		}
		get.Record(time.Since(start))
	}
	fs.List, fs.Get = list.Summary(), get.Summary()
	return ctx.Err()
}

func authHint(err error) string {
	if isNotAuthorized(err) {
		return " (the server requires authentication for reads: pass --auth and --jaas)"
	}
	return ""
}

func (f *FillStats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  fill: %d keys, %s of values (+%s of keys), stored in %.1f s (%.0f/s), %d errors\n",
		f.Keys, MiB(f.PayloadBytes), MiB(f.KeyBytes), f.FillSeconds, f.FillRate, f.Errors)
	if f.RSSBytes > 0 {
		verdict := "within"
		if f.RSSBytes > f.RSSLimitBytes {
			verdict = "OVER"
		}
		fmt.Fprintf(&b, "  server RSS: %s empty, %s full = %.2f × payload; bound 1.25 × payload + 32 MiB = %s: %s\n",
			MiB(f.RSSEmptyBytes), MiB(f.RSSBytes), f.RSSPerPayload, MiB(f.RSSLimitBytes), verdict)
	}
	if f.RSSIdleBytes > 0 {
		fmt.Fprintf(&b, "  server RSS after %.0f s idle: %s = %.2f × payload\n", f.IdleSeconds, MiB(f.RSSIdleBytes), float64(f.RSSIdleBytes)/float64(max(f.PayloadBytes, 1)))
	}
	if f.List.Count > 0 {
		fmt.Fprintf(&b, "  GET_ALL_NODES_FOR_PATH (%d names): p50 %.3f ms  p99 %.3f ms  max %.3f ms (%d queries)\n",
			f.ListNodes, f.List.P50, f.List.P99, f.List.Max, f.List.Count)
		fmt.Fprintf(&b, "  GET_PULSE: p50 %.3f ms  p99 %.3f ms  max %.3f ms\n", f.Get.P50, f.Get.P99, f.Get.Max)
	}
	return b.String()
}
