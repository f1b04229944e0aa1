package bench

import (
	"context"
	"errors"
	"fmt"
	"hash/fnv"
	"io"
	"os"
	"runtime"
	"strings"
	"sync"
	"time"
)

// Result is one run's outcome, as printed with --json.
type Result struct {
	Label   string    `json:"label,omitempty"`
	Mode    string    `json:"mode"`
	Target  string    `json:"target"`
	Servers []string  `json:"servers"`
	Started time.Time `json:"started"`
	Env     Env       `json:"environment"`
	Params  Params    `json:"params"`
	Writes  *OpStats  `json:"writes,omitempty"`
	// Nimbus is the simulated Nimbus's reads (storm mode).
	Nimbus *NimbusStats `json:"nimbus,omitempty"`
	// Server is the server process's CPU and memory in the window (when
	// its pid was given); its per-CPU-second figures count writes only.
	Server *ServerUsage `json:"server,omitempty"`
	// RequestsPerCPUSecond counts writes and reads.
	RequestsPerCPUSecond float64 `json:"requests_per_server_cpu_second,omitempty"`
	// Generator is this process's own CPU and memory: on a shared machine
	// it competes with the server for the same cores.
	Generator *ServerUsage `json:"generator,omitempty"`
	Fill      *FillStats   `json:"fill,omitempty"`
	Max       *MaxStats    `json:"max,omitempty"`
	Idle      *IdleStats   `json:"idle,omitempty"`
}

// Env describes where the run happened.
type Env struct {
	CPUs         int     `json:"cpus"`
	LoadAvgStart float64 `json:"loadavg_1m_start"`
	LoadAvgEnd   float64 `json:"loadavg_1m_end"`
}

// Params are the run's workload settings.
type Params struct {
	Conns      int     `json:"conns"`
	Rate       float64 `json:"offered_per_second"` // 0 = closed loop
	Closed     bool    `json:"closed_loop"`
	Warmup     float64 `json:"warmup_seconds"`
	Duration   float64 `json:"duration_seconds"`
	Keys       int     `json:"keys"`
	ValueBytes int     `json:"value_bytes"` // mean payload size

	Supervisors          int     `json:"supervisors,omitempty"`
	Workers              int     `json:"workers,omitempty"`
	WorkersPerConn       int     `json:"workers_per_connection,omitempty"`
	WorkersPerSupervisor int     `json:"workers_per_supervisor,omitempty"`
	Executors            int     `json:"executors_per_worker,omitempty"`
	TopologyWorkers      int     `json:"workers_per_topology,omitempty"`
	Topologies           int     `json:"topologies,omitempty"`
	Compression          string  `json:"compression,omitempty"`
	Period               float64 `json:"heartbeat_period_seconds,omitempty"`
	NimbusPeriod         float64 `json:"nimbus_period_seconds,omitempty"`
	ZooKeeperSessions    int     `json:"zookeeper_sessions,omitempty"`
}

// Common are the settings every mode shares.
type Common struct {
	Target  Target
	Servers []string
	// PID is the server's process id for CPU and RSS (0: not measured;
	// only meaningful with one server).
	PID      int
	Timeline Timeline
	Label    string
	// Progress receives one line per phase (nil: silent).
	Progress io.Writer
}

func (c Common) logf(format string, args ...any) {
	if c.Progress != nil {
		fmt.Fprintf(c.Progress, "bench: "+format+"\n", args...)
	}
}

func (c Common) newResult(mode string) *Result {
	return &Result{
		Label: c.Label, Mode: mode, Target: c.Target.Name(), Servers: c.Servers, Started: time.Now().UTC(),
		Env: Env{CPUs: runtime.NumCPU(), LoadAvgStart: LoadAvg()},
		Params: Params{
			Warmup:   c.Timeline.Warmup.Seconds(),
			Duration: c.Timeline.Duration.Seconds(),
		},
	}
}

// serverFor picks writer i's server as Storm's client pool does, by a
// shuffle fixed per worker.
func serverFor(servers []string, i int) string {
	if len(servers) == 1 {
		return servers[0]
	}
	h := fnv.New32a()
	fmt.Fprintf(h, "%d", i)
	return servers[int(h.Sum32()%uint32(len(servers)))]
}

// measured runs writers (and the Nimbus, when set) through the timeline,
// reading the server's and our own /proc figures over the window.
func measured(ctx context.Context, c Common, load WriteLoad, nim *nimbus, res *Result) error {
	win := c.Timeline.Window()
	rec := newOpRecorder(win)
	c.logf("%s: opening %d connections for %d senders", c.Target.Name(), load.connections(), load.Pacing.Conns)
	pool, err := dialAll(ctx, load, rec)
	if err != nil {
		return err
	}
	defer pool.close()
	if d := rec.dialErrs.Load(); d > 0 {
		c.logf("%d connections failed to open; they retry at their first send", d)
	}
	c.logf("%s: running %v warm-up + %v measured, %s", c.Target.Name(), c.Timeline.Warmup, c.Timeline.Duration, describePacing(load.Pacing))

	start := time.Now()
	var (
		server, self *ServerUsage
		watchErr     error
		wg           sync.WaitGroup
	)
	wg.Go(func() {
		sleepCtx(ctx, time.Until(start.Add(win.Start)))
		sw, err := WatchProc(c.PID)
		if err != nil {
			watchErr = err
			return
		}
		mw, _ := WatchProc(os.Getpid())
		sleepCtx(ctx, time.Until(start.Add(win.End)))
		ops := rec.completed.Load()
		server, watchErr = sw.Finish(ops)
		if mw != nil {
			self, _ = mw.Finish(ops)
		}
	})
	if nim != nil {
		wg.Go(func() { nim.run(ctx, start) })
	}
	runWriters(ctx, start, c.Timeline, load, pool, rec)
	wg.Wait()
	if err := ctx.Err(); err != nil {
		return err
	}
	if watchErr != nil {
		return fmt.Errorf("measure server pid %d: %w", c.PID, watchErr)
	}
	st := rec.stats(load.Pacing.Rate())
	res.Writes = &st
	res.Server, res.Generator = server, self
	if nim != nil {
		res.Nimbus = nim.stats()
	}
	if server != nil && server.CPUSeconds > 0 {
		res.RequestsPerCPUSecond = float64(st.Completed+res.Nimbus.requests()) / server.CPUSeconds
	}
	res.Env.LoadAvgEnd = LoadAvg()
	return nil
}

func describePacing(p Pacing) string {
	if p.Closed() {
		return "closed loop"
	}
	return fmt.Sprintf("open loop at %.0f/s (every %v per connection)", p.Rate(), p.Interval.Round(time.Millisecond))
}

// StormOptions simulate a Storm cluster's heartbeat traffic.
type StormOptions struct {
	Common
	Cluster Cluster
	// Period is task.heartbeat.frequency.secs (3 s in Storm 2.x, 1 s in 1.x).
	Period time.Duration
	// NimbusPeriod is nimbus.monitor.freq.secs (10 s); 0 disables the Nimbus.
	NimbusPeriod time.Duration
	// Verify decodes a sample of the heartbeats Nimbus reads.
	Verify bool
	// WorkersPerConn > 1 lets that many workers of a supervisor take turns
	// on one connection (each heartbeat still its own request): Storm gives
	// every worker its own, but a machine's open-file limit may not.
	WorkersPerConn int
}

// RunStorm runs one simulated cluster: every worker writes its heartbeat
// every Period on its own connection (unauthenticated), and Nimbus reads
// them all every NimbusPeriod (authenticated, for Pacemaker).
func RunStorm(ctx context.Context, o StormOptions) (*Result, error) {
	cl := o.Cluster
	if cl.Epoch == 0 {
		cl.Epoch = 1700000000
	}
	res := o.newResult("storm")
	workers := cl.Workers()
	if workers == 0 {
		return nil, errors.New("storm: no workers (supervisors × workers per supervisor = 0)")
	}
	now := time.Now()
	payloads := cl.Payloads(now)
	keys := make([]string, workers)
	var sum int
	for i := range keys {
		w := cl.Worker(i)
		keys[i] = cl.Key(w)
		sum += len(payloads[w.Topology])
	}
	res.Params = stormParams(res.Params, cl, o.Period, o.NimbusPeriod)
	pacing := Pacing{Conns: workers, Interval: o.Period}
	res.Params.Rate = pacing.Rate()
	if err := prepare(ctx, o.Common, keys, func(i int) []byte { return payloads[cl.Worker(i).Topology] }); err != nil {
		return nil, err
	}

	var nim *nimbus
	if o.NimbusPeriod > 0 {
		readers, err := dialReaders(ctx, o.Common)
		if err != nil && !errors.Is(err, errUnsupported) {
			return nil, err
		}
		if err == nil {
			defer closeReaders(readers)
			nim = newNimbus(readers, cl, keys, o.NimbusPeriod, o.Timeline.Window(), o.Verify)
		} else {
			o.logf("%s: no Nimbus reads (%v)", o.Target.Name(), err)
		}
	}
	src := SourcesFor(o.Servers, cl.WorkersPerSupervisor)
	load := WriteLoad{
		Pacing: pacing,
		Dial: func(ctx context.Context, i int) (Writer, error) {
			return o.Target.Dial(ctx, i, serverFor(o.Servers, i), src.Addr(i))
		},
		Key:   func(i, _ int) string { return keys[i] },
		Value: func(i, _ int) []byte { return payloads[i/max(cl.TopologyWorkers, 1)] },
		Share: max(o.WorkersPerConn, 1),
	}
	res.Params.Workers, res.Params.WorkersPerConn = workers, load.Share
	res.Params.Conns, res.Params.Keys, res.Params.ValueBytes = load.connections(), workers, sum/workers
	if err := measured(ctx, o.Common, load, nim, res); err != nil {
		return nil, err
	}
	return res, nil
}

func stormParams(p Params, cl Cluster, period, nimbus time.Duration) Params {
	p.Supervisors = cl.Supervisors
	p.WorkersPerSupervisor = cl.WorkersPerSupervisor
	p.Executors = cl.Executors
	p.TopologyWorkers = cl.TopologyWorkers
	p.Topologies = cl.Topologies()
	p.Compression = cl.Compression.String()
	p.Period = period.Seconds()
	p.NimbusPeriod = nimbus.Seconds()
	return p
}

// prepare lets the target set keys up on every server (ZooKeeper creates
// the znodes) outside the measurement.
func prepare(ctx context.Context, c Common, keys []string, value func(int) []byte) error {
	for _, addr := range c.Servers {
		start := time.Now()
		if err := c.Target.Prepare(ctx, addr, keys, value); err != nil {
			return fmt.Errorf("prepare %d keys on %s: %w", len(keys), addr, err)
		}
		if d := time.Since(start); d > time.Second {
			c.logf("%s: prepared %d keys on %s in %v", c.Target.Name(), len(keys), addr, d.Round(time.Millisecond))
		}
	}
	return nil
}

func dialReaders(ctx context.Context, c Common) ([]Reader, error) {
	var out []Reader
	for _, addr := range c.Servers {
		r, err := c.Target.DialReader(ctx, addr)
		if err != nil {
			closeReaders(out)
			return nil, err
		}
		out = append(out, r)
	}
	return out, nil
}

func closeReaders(rs []Reader) {
	for _, r := range rs {
		_ = r.Close()
	}
}

// LoadOptions are a plain key/value write load: Conns connections writing
// Value to Keys keys, closed loop (Rate 0) or at Rate writes per second in
// total — the same workload for every target, for the side-by-side.
type LoadOptions struct {
	Common
	Conns int
	Rate  float64
	Keys  int
	Value []byte
	// ZooKeeperSessions is recorded in the result (the target applies it).
	ZooKeeperSessions int
}

// LoadKeys are the keys a load run writes: heartbeat paths of 40
// topologies, as a cluster would have them.
func LoadKeys(n int) []string {
	cl := Cluster{Name: "bench-load", Supervisors: n, WorkersPerSupervisor: 1, TopologyWorkers: max(n/40, 1), Epoch: 1700000000}
	keys := make([]string, n)
	for i := range keys {
		keys[i] = cl.Key(cl.Worker(i))
	}
	return keys
}

// RunLoad runs one plain write load.
func RunLoad(ctx context.Context, o LoadOptions) (*Result, error) {
	if o.Conns <= 0 || o.Keys <= 0 {
		return nil, errors.New("load: need at least one connection and one key")
	}
	res := o.newResult("load")
	keys := LoadKeys(o.Keys)
	pacing := PacingForRate(o.Conns, o.Rate)
	res.Params.Conns, res.Params.Keys, res.Params.ValueBytes = o.Conns, o.Keys, len(o.Value)
	res.Params.Rate, res.Params.Closed = pacing.Rate(), pacing.Closed()
	res.Params.ZooKeeperSessions = o.ZooKeeperSessions
	if err := prepare(ctx, o.Common, keys, func(int) []byte { return o.Value }); err != nil {
		return nil, err
	}
	src := SourcesFor(o.Servers, 256)
	load := WriteLoad{
		Pacing: pacing,
		Dial: func(ctx context.Context, i int) (Writer, error) {
			return o.Target.Dial(ctx, i, serverFor(o.Servers, i), src.Addr(i))
		},
		// Connection i writes keys i, i+conns, i+2·conns, …: every key is
		// rewritten, no two connections write the same key at once.
		Key:   func(i, seq int) string { return keys[(i+seq*o.Conns)%len(keys)] },
		Value: func(int, int) []byte { return o.Value },
	}
	if err := measured(ctx, o.Common, load, nil, res); err != nil {
		return nil, err
	}
	return res, nil
}

// Summary is a short human-readable account of r.
func (r *Result) Summary() string {
	var b strings.Builder
	fmt.Fprintf(&b, "%s %s", r.Target, r.Mode)
	if r.Label != "" {
		fmt.Fprintf(&b, " [%s]", r.Label)
	}
	p := r.Params
	switch r.Mode {
	case "storm":
		fmt.Fprintf(&b, ": %d supervisors × %d workers = %d workers in %d topologies on %d connections, %d executors/worker (%d B %s heartbeats) every %gs",
			p.Supervisors, p.WorkersPerSupervisor, p.Workers, p.Topologies, p.Conns, p.Executors, p.ValueBytes, p.Compression, p.Period)
	case "load":
		fmt.Fprintf(&b, ": %d connections, %d keys, %d B values, %s", p.Conns, p.Keys, p.ValueBytes, loopName(p))
	case "idle":
		fmt.Fprintf(&b, ": %d connections, one %d B write each, then idle", p.Conns, p.ValueBytes)
	}
	b.WriteString("\n")
	if w := r.Writes; w != nil {
		fmt.Fprintf(&b, "  writes: offered %.0f/s, achieved %.0f/s, %d done, %d errors, %d missed\n", w.Offered, w.Achieved, w.Completed, w.Errors, w.Missed)
		fmt.Fprintf(&b, "  latency: p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  p99.9 %.3f ms  max %.3f ms\n",
			w.Latency.P50, w.Latency.P90, w.Latency.P99, w.Latency.P999, w.Latency.Max)
		for _, k := range sortedKeys(w.ErrorSamples) {
			fmt.Fprintf(&b, "  error ×%d: %s\n", w.ErrorSamples[k], k)
		}
	}
	if r.Nimbus != nil {
		fmt.Fprintf(&b, "  nimbus: %s\n", r.Nimbus)
	}
	if s := r.Server; s != nil {
		fmt.Fprintf(&b, "  server pid %d: %.2f CPU-s (%.1f%% of one core), RSS %s (max %s), %.0f writes per CPU-second, %.2f CPU-s per 10^6 writes\n",
			s.PID, s.CPUSeconds, s.CPUPercent, MiB(s.RSSBytes), MiB(s.MaxRSSBytes), s.OpsPerCPUSecond, s.CPUSecondsPerMillion)
	}
	if g := r.Generator; g != nil {
		fmt.Fprintf(&b, "  generator: %.1f%% of one core, RSS %s; load average %.2f → %.2f on %d CPUs\n",
			g.CPUPercent, MiB(g.RSSBytes), r.Env.LoadAvgStart, r.Env.LoadAvgEnd, r.Env.CPUs)
	}
	if r.Fill != nil {
		b.WriteString(r.Fill.String())
	}
	if r.Max != nil {
		b.WriteString(r.Max.String())
	}
	if r.Idle != nil {
		b.WriteString(r.Idle.String())
	}
	return b.String()
}

func loopName(p Params) string {
	if p.Closed {
		return "closed loop"
	}
	return fmt.Sprintf("open loop at %.0f/s", p.Rate)
}

// MiB formats bytes as mebibytes.
func MiB(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }
