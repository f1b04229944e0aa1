// Package benchcmd is pacemaker-bench, the load generator: Storm-shaped
// heartbeat load against pacemaker, redis or ZooKeeper, measured
// (internal/bench is the library). It is a developer's tool, not shipped in
// the packages; it takes pacemakerctl's connection flags (ctl.Global).
package benchcmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/bench"
	"github.com/storm-pacemaker/pacemaker/internal/cliflag"
	"github.com/storm-pacemaker/pacemaker/internal/ctl"
	"github.com/storm-pacemaker/pacemaker/internal/stormhb"
	"github.com/storm-pacemaker/pacemaker/internal/version"
)

// Exit codes: pacemakerctl's.
const (
	exitOK      = ctl.ExitOK
	exitUsage   = ctl.ExitUsage
	exitFailure = ctl.ExitFailure
)

// benchFlags are bench's own flags.
type benchFlags struct {
	mode, target, label, out, compression string
	asJSON, verify                        bool
	pid                                   int
	warmup, duration, grace               time.Duration

	supervisors, workers, executors, streams, topologyWorkers int
	period, nimbusPeriod                                      time.Duration

	conns, keys, valueSize int
	rate                   float64

	fillConns, listQueries int
	settle, idle           time.Duration

	maxCPU                       float64
	maxStart, maxLimit, maxSteps int
	zkSessions                   int
	workersPerConn               int
	zkSessionTimeout             time.Duration
}

// parseFlags reads the command line; a nil result comes with the exit
// code (help printed, or a usage error).
func parseFlags(g *ctl.Global, args []string, stdout, stderr io.Writer) (*benchFlags, int) {
	f := &benchFlags{}
	fs := cliflag.New("pacemaker-bench")
	g.AddFlags(fs)
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.StringVar(&f.mode, "mode", "storm", "storm: a simulated cluster's workers and Nimbus; load: plain writes of one value size; fill: store a whole cluster once, then measure RSS and listing; max: the largest cluster within --max-cpu; idle: the server's RSS per idle connection that served one write")
	fs.StringVar(&f.target, "target", "pacemaker", "server under test: pacemaker, redis (RESP SET) or zookeeper (setData); --servers gives its address")
	fs.IntVar(&f.pid, "pid", 0, "the server's process id, to read its CPU time and RSS from /proc")
	fs.BoolVar(&f.asJSON, "json", false, "print the result as JSON")
	fs.StringVar(&f.out, "out", "", "also write the JSON result to this file")
	fs.StringVar(&f.label, "label", "", "a name for this run, kept in the result")
	fs.DurationVar(&f.warmup, "warmup", 5*time.Second, "unmeasured time before the window (storm: at least one --period)")
	fs.DurationVar(&f.duration, "duration", 30*time.Second, "measured window")
	fs.DurationVar(&f.grace, "grace", 0, "after the window, time to finish sends scheduled in it before the rest count as missed (default 2 × --period, at least 5s)")

	fs.IntVar(&f.supervisors, "supervisors", 270, "storm: simulated supervisor nodes")
	fs.IntVar(&f.workers, "workers", 4, "storm, fill: workers per supervisor (supervisor.slots.ports)")
	fs.IntVar(&f.executors, "executors", 16, "executors per worker: sets the heartbeat size (16 ≈ 4.6 KiB gzip)")
	fs.IntVar(&f.streams, "streams", 1, "user streams per executor")
	fs.IntVar(&f.topologyWorkers, "topology-workers", 100, "workers per topology")
	fs.StringVar(&f.compression, "compression", "gzip", "heartbeat wrapping: gzip (Storm 2.x), zstd (Storm 3.x) or raw")
	fs.DurationVar(&f.period, "period", 3*time.Second, "storm: task.heartbeat.frequency.secs (3s Storm 2.x, 1s Storm 1.x)")
	fs.DurationVar(&f.nimbusPeriod, "nimbus-period", 10*time.Second, "storm: nimbus.monitor.freq.secs; 0 = no Nimbus reads")
	fs.BoolVar(&f.verify, "verify", true, "storm: decode a sample of the heartbeats Nimbus reads")
	fs.IntVar(&f.workersPerConn, "workers-per-conn", 1, "storm, max: workers of a supervisor taking turns on one connection (Storm: 1; more when the open-file limit is too low for one each)")

	fs.IntVar(&f.conns, "conns", 64, "load: connections, one request in flight each; idle: connections opened")
	fs.Float64Var(&f.rate, "rate", 0, "load: total offered writes per second, open loop; 0 = closed loop")
	fs.IntVar(&f.keys, "keys", 4000, "load: distinct keys rewritten; fill: keys stored")
	fs.IntVar(&f.valueSize, "value-size", 4096, "load, idle: value bytes (a fixed pattern); 0 = a Storm heartbeat of --executors")

	fs.IntVar(&f.fillConns, "fill-conns", 64, "fill: connections storing keys")
	fs.IntVar(&f.listQueries, "list-queries", 2000, "fill: GET_ALL_NODES_FOR_PATH (and GET_PULSE) requests timed after filling")
	fs.DurationVar(&f.settle, "settle", 3*time.Second, "fill: pause before reading the server's RSS; idle: pause before each reading (over 2m guarantees a Go server a collection in between)")
	fs.DurationVar(&f.idle, "idle", 0, "fill: after the reads, wait this long and read RSS again (Go collects at least every 2 minutes; 130s shows the idle steady state)")

	fs.Float64Var(&f.maxCPU, "max-cpu", 100, "max: CPU budget, percent of one core")
	fs.IntVar(&f.maxStart, "max-start", 270, "max: first cluster size tried (supervisors)")
	fs.IntVar(&f.maxLimit, "max-limit", 8000, "max: largest cluster tried (every --workers-per-conn workers are one connection, on this machine too)")
	fs.IntVar(&f.maxSteps, "max-steps", 4, "max: bisection steps after the doubling")

	fs.IntVar(&f.zkSessions, "zk-sessions", 0, "zookeeper: sessions the writers share (0 = one per writer, as Storm workers had)")
	fs.DurationVar(&f.zkSessionTimeout, "zk-session-timeout", 30*time.Second, "zookeeper: session timeout asked for")
	help := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: pacemaker-bench [flags]\n\n%s\n\nFlags:\n", cliflag.Wrap(
			"Generates Storm-shaped heartbeat load (open loop: latency counts from each request's scheduled time) "+
				"and measures latency percentiles, achieved against offered rate, errors, and with --pid the server's "+
				"CPU seconds and RSS from /proc. --servers, --auth and --jaas are pacemakerctl's; --auth/--jaas "+
				"authenticate the simulated Nimbus, workers never do. --timeout bounds connecting.", 96, ""))
		cliflag.PrintFlags(w, fs)
		fmt.Fprintf(w, "\nExit status: 0 done; 2 usage error or bad local input; 3 the run failed.\n")
	}
	if err := cliflag.Parse(fs, args, stdout, help); err != nil {
		if errors.Is(err, cliflag.ErrHelp) {
			return nil, exitOK
		}
		fmt.Fprintf(stderr, "pacemaker-bench: %v (try --help)\n", err)
		return nil, exitUsage
	}
	if *showVersion {
		fmt.Fprintf(stdout, "pacemaker-bench %s\n", version.String())
		return nil, exitOK
	}
	if fs.NArg() > 0 {
		fmt.Fprintf(stderr, "pacemaker-bench: unexpected argument %q (try --help)\n", fs.Arg(0))
		return nil, exitUsage
	}
	if err := g.Resolve(); err != nil {
		fmt.Fprintf(stderr, "pacemaker-bench: %v\n", err)
		return nil, exitUsage
	}
	if f.grace == 0 {
		f.grace = max(2*f.period, 5*time.Second)
	}
	return f, -1
}

func (f *benchFlags) cluster(supervisors int) (bench.Cluster, error) {
	var c stormhb.Compression
	switch strings.ToLower(f.compression) {
	case "gzip":
		c = stormhb.Gzip
	case "zstd":
		c = stormhb.Zstd
	case "raw", "none":
		c = stormhb.Raw
	default:
		return bench.Cluster{}, fmt.Errorf("--compression %q: want gzip, zstd or raw", f.compression)
	}
	return bench.Cluster{
		Supervisors: supervisors, WorkersPerSupervisor: max(f.workers, 1), TopologyWorkers: max(f.topologyWorkers, 1),
		Executors: max(f.executors, 1), Streams: max(f.streams, 1), Compression: c,
	}, nil
}

// Main runs pacemaker-bench and returns its exit code.
func Main(args []string, stdout, stderr io.Writer) int {
	g := ctl.NewGlobal()
	f, code := parseFlags(g, args, stdout, stderr)
	if f == nil {
		return code
	}
	usageErr := func(err error) int {
		fmt.Fprintf(stderr, "pacemaker-bench: %v\n", err)
		return exitUsage
	}
	fail := func(err error) int {
		fmt.Fprintf(stderr, "pacemaker-bench: %v\n", err)
		return exitFailure
	}
	// Ctrl-C stops a run.
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	// SIGUSR1 prints the answers so far, so that a tool counting something
	// in the server (bench/run.sh: perf, its system calls) over an interval
	// knows the answers given in exactly that interval.
	usr1 := make(chan os.Signal, 1)
	signal.Notify(usr1, syscall.SIGUSR1)
	done := make(chan struct{})
	defer func() { signal.Stop(usr1); close(done) }()
	go func() {
		for {
			select {
			case <-usr1:
				fmt.Fprintf(stderr, "pacemaker-bench: answered %d\n", bench.Answered())
			case <-done:
				return
			}
		}
	}()

	mech, err := ctl.ClientMechanism(g)
	if err != nil {
		return usageErr(err)
	}
	target, err := bench.NewTarget(f.target, bench.TargetOptions{
		DialTimeout: g.Timeout, ReaderAuth: mech,
		ZooKeeperSessions: f.zkSessions, ZooKeeperSessionTimeout: f.zkSessionTimeout,
	})
	if err != nil {
		return usageErr(err)
	}
	defer target.Close()
	common := bench.Common{
		Target: target, Servers: g.Servers, PID: f.pid, Label: f.label, Progress: stderr,
		Timeline: bench.Timeline{Warmup: f.warmup, Duration: f.duration, Grace: f.grace},
	}
	if f.pid > 0 && len(g.Servers) > 1 {
		return usageErr(fmt.Errorf("--pid measures one server; give one in --servers"))
	}

	var res *bench.Result
	switch f.mode {
	case "storm", "max":
		cl, err := f.cluster(f.supervisors)
		if err != nil {
			return usageErr(err)
		}
		so := bench.StormOptions{Common: common, Cluster: cl, Period: f.period, NimbusPeriod: f.nimbusPeriod, Verify: f.verify, WorkersPerConn: f.workersPerConn}
		if f.mode == "storm" {
			res, err = bench.RunStorm(ctx, so)
		} else {
			res, err = bench.RunMax(ctx, bench.MaxOptions{StormOptions: so, MaxCPU: f.maxCPU, Start: f.maxStart, Limit: f.maxLimit, Steps: f.maxSteps})
		}
		if err != nil {
			return fail(fmt.Errorf("bench %s: %w", f.mode, err))
		}
	case "load", "idle":
		value := make([]byte, f.valueSize)
		for i := range value {
			value[i] = byte('a' + i%26)
		}
		if f.valueSize == 0 {
			cl, err := f.cluster(1)
			if err != nil {
				return usageErr(err)
			}
			value = cl.Payload(0, time.Now(), time.Minute)
		}
		if f.mode == "idle" {
			res, err = bench.RunIdle(ctx, bench.IdleOptions{Common: common, Conns: f.conns, Value: value, Settle: f.settle, PerSource: 100})
		} else {
			res, err = bench.RunLoad(ctx, bench.LoadOptions{Common: common, Conns: f.conns, Rate: f.rate, Keys: f.keys, Value: value, ZooKeeperSessions: f.zkSessions})
		}
		if err != nil {
			return fail(fmt.Errorf("bench %s: %w", f.mode, err))
		}
	case "fill":
		tw := max(f.topologyWorkers, 1)
		cl, err := f.cluster(0)
		if err != nil {
			return usageErr(err)
		}
		// --keys workers, grouped --topology-workers per topology.
		cl.Supervisors = (max(f.keys, tw) + cl.WorkersPerSupervisor - 1) / cl.WorkersPerSupervisor
		res, err = bench.RunFill(ctx, bench.FillOptions{Common: common, Cluster: cl, Conns: f.fillConns, ListQueries: f.listQueries, Settle: f.settle, Idle: f.idle})
		if err != nil {
			return fail(fmt.Errorf("bench fill: %w", err))
		}
	default:
		return usageErr(fmt.Errorf("unknown --mode %q (want storm, load, fill, max or idle)", f.mode))
	}

	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return fail(fmt.Errorf("encode result: %w", err))
	}
	data = append(data, '\n')
	if f.out != "" {
		if err := os.WriteFile(f.out, data, 0o644); err != nil {
			return fail(fmt.Errorf("write result: %w", err))
		}
	}
	if f.asJSON {
		_, err = stdout.Write(data)
	} else {
		_, err = fmt.Fprint(stdout, res.Summary())
	}
	if err != nil {
		return fail(fmt.Errorf("write result: %w", err))
	}
	return exitOK
}
