package ctl

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/bench"
	"github.com/storm-pacemaker/pacemaker/internal/stormhb"
)

func init() {
	register("bench", command{"bench [--mode storm|load|fill|max] [flags]",
		"generate Storm-shaped heartbeat load against pacemaker, redis or zookeeper and measure it (see bench --help)", runBench})
}

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

func parseBenchFlags(env *Env, args []string) (*benchFlags, int) {
	f := &benchFlags{}
	fs := flag.NewFlagSet("bench", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	fs.StringVar(&f.mode, "mode", "storm", "storm: a simulated cluster's workers and Nimbus; load: plain writes of one value size; fill: store a whole cluster once, then measure RSS and listing; max: the largest cluster within --max-cpu")
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

	fs.IntVar(&f.conns, "conns", 64, "load: connections, one request in flight each")
	fs.Float64Var(&f.rate, "rate", 0, "load: total offered writes per second, open loop; 0 = closed loop")
	fs.IntVar(&f.keys, "keys", 4000, "load: distinct keys rewritten; fill: keys stored")
	fs.IntVar(&f.valueSize, "value-size", 4096, "load: value bytes (a fixed pattern); 0 = a Storm heartbeat of --executors")

	fs.IntVar(&f.fillConns, "fill-conns", 64, "fill: connections storing keys")
	fs.IntVar(&f.listQueries, "list-queries", 2000, "fill: GET_ALL_NODES_FOR_PATH (and GET_PULSE) requests timed after filling")
	fs.DurationVar(&f.settle, "settle", 3*time.Second, "fill: pause before reading the server's RSS")
	fs.DurationVar(&f.idle, "idle", 0, "fill: after the reads, wait this long and read RSS again (Go collects at least every 2 minutes; 130s shows the idle steady state)")

	fs.Float64Var(&f.maxCPU, "max-cpu", 100, "max: CPU budget, percent of one core")
	fs.IntVar(&f.maxStart, "max-start", 270, "max: first cluster size tried (supervisors)")
	fs.IntVar(&f.maxLimit, "max-limit", 8000, "max: largest cluster tried (every --workers-per-conn workers are one connection, on this machine too)")
	fs.IntVar(&f.maxSteps, "max-steps", 4, "max: bisection steps after the doubling")

	fs.IntVar(&f.zkSessions, "zk-sessions", 0, "zookeeper: sessions the writers share (0 = one per writer, as Storm workers had)")
	fs.DurationVar(&f.zkSessionTimeout, "zk-session-timeout", 30*time.Second, "zookeeper: session timeout asked for")
	fs.Usage = func() {
		fmt.Fprintf(env.Stderr, "Usage: pacemakerctl [--servers ADDR] [--auth M --jaas FILE] bench [flags]\n\n"+
			"Generates Storm-shaped heartbeat load (open loop: latency counts from each request's scheduled time)\n"+
			"and measures latency percentiles, achieved against offered rate, errors, and with --pid the server's\n"+
			"CPU seconds and RSS from /proc. --auth/--jaas authenticate the simulated Nimbus; workers never do.\n\nFlags:\n")
		fs.PrintDefaults()
	}
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil, ExitOK
		}
		return nil, env.usageErr("bench")
	}
	if fs.NArg() > 0 {
		return nil, env.usageErr("bench")
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

func runBench(ctx context.Context, env *Env, args []string) int {
	f, code := parseBenchFlags(env, args)
	if f == nil {
		return code
	}
	// A benchmark outlives the per-command --timeout; Ctrl-C stops it.
	ctx, stop := signal.NotifyContext(context.WithoutCancel(ctx), os.Interrupt, syscall.SIGTERM)
	defer stop()

	mech, err := clientMechanism(env.Global)
	if err != nil {
		return env.fail(err)
	}
	target, err := bench.NewTarget(f.target, bench.TargetOptions{
		DialTimeout: env.Global.Timeout, ReaderAuth: mech,
		ZooKeeperSessions: f.zkSessions, ZooKeeperSessionTimeout: f.zkSessionTimeout,
	})
	if err != nil {
		fmt.Fprintf(env.Stderr, "pacemakerctl: bench: %v\n", err)
		return ExitUsage
	}
	defer target.Close()
	common := bench.Common{
		Target: target, Servers: env.Global.Servers, PID: f.pid, Label: f.label, Progress: env.Stderr,
		Timeline: bench.Timeline{Warmup: f.warmup, Duration: f.duration, Grace: f.grace},
	}
	if f.pid > 0 && len(env.Global.Servers) > 1 {
		fmt.Fprintf(env.Stderr, "pacemakerctl: bench: --pid measures one server; give one in --servers\n")
		return ExitUsage
	}

	var res *bench.Result
	switch f.mode {
	case "storm", "max":
		cl, err := f.cluster(f.supervisors)
		if err != nil {
			fmt.Fprintf(env.Stderr, "pacemakerctl: bench: %v\n", err)
			return ExitUsage
		}
		so := bench.StormOptions{Common: common, Cluster: cl, Period: f.period, NimbusPeriod: f.nimbusPeriod, Verify: f.verify, WorkersPerConn: f.workersPerConn}
		if f.mode == "storm" {
			res, err = bench.RunStorm(ctx, so)
		} else {
			res, err = bench.RunMax(ctx, bench.MaxOptions{StormOptions: so, MaxCPU: f.maxCPU, Start: f.maxStart, Limit: f.maxLimit, Steps: f.maxSteps})
		}
		if err != nil {
			return env.fail(fmt.Errorf("bench %s: %w", f.mode, err))
		}
	case "load":
		value := make([]byte, f.valueSize)
		for i := range value {
			value[i] = byte('a' + i%26)
		}
		if f.valueSize == 0 {
			cl, err := f.cluster(1)
			if err != nil {
				fmt.Fprintf(env.Stderr, "pacemakerctl: bench: %v\n", err)
				return ExitUsage
			}
			value = cl.Payload(0, time.Now(), time.Minute)
		}
		res, err = bench.RunLoad(ctx, bench.LoadOptions{Common: common, Conns: f.conns, Rate: f.rate, Keys: f.keys, Value: value, ZooKeeperSessions: f.zkSessions})
		if err != nil {
			return env.fail(fmt.Errorf("bench load: %w", err))
		}
	case "fill":
		tw := max(f.topologyWorkers, 1)
		cl, err := f.cluster(0)
		if err != nil {
			fmt.Fprintf(env.Stderr, "pacemakerctl: bench: %v\n", err)
			return ExitUsage
		}
		// --keys workers, grouped --topology-workers per topology.
		cl.Supervisors = (max(f.keys, tw) + cl.WorkersPerSupervisor - 1) / cl.WorkersPerSupervisor
		res, err = bench.RunFill(ctx, bench.FillOptions{Common: common, Cluster: cl, Conns: f.fillConns, ListQueries: f.listQueries, Settle: f.settle, Idle: f.idle})
		if err != nil {
			return env.fail(fmt.Errorf("bench fill: %w", err))
		}
	default:
		fmt.Fprintf(env.Stderr, "pacemakerctl: bench: unknown --mode %q (want storm, load, fill or max)\n", f.mode)
		return ExitUsage
	}

	data, err := json.MarshalIndent(res, "", "  ")
	if err != nil {
		return env.fail(fmt.Errorf("encode result: %w", err))
	}
	data = append(data, '\n')
	if f.out != "" {
		if err := os.WriteFile(f.out, data, 0o644); err != nil {
			return env.fail(fmt.Errorf("write result: %w", err))
		}
	}
	if f.asJSON {
		_, err = env.Stdout.Write(data)
	} else {
		_, err = fmt.Fprint(env.Stdout, res.Summary())
	}
	if err != nil {
		return env.fail(fmt.Errorf("write result: %w", err))
	}
	return ExitOK
}
