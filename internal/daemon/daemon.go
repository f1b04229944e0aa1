// Package daemon is the pacemaker process: flags and config in, listeners,
// store and server up, then signals (SIGTERM/SIGINT stop, SIGHUP reload)
// until it stops. cmd/pacemaker only calls Run.
package daemon

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"math"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/debug"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/coreos/go-systemd/v22/activation"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/cliflag"
	"github.com/storm-pacemaker/pacemaker/internal/config"
	"github.com/storm-pacemaker/pacemaker/internal/logging"
	"github.com/storm-pacemaker/pacemaker/internal/metrics"
	"github.com/storm-pacemaker/pacemaker/internal/server"
	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/units"
	"github.com/storm-pacemaker/pacemaker/internal/version"
)

// Exit codes.
const (
	exitOK     = 0
	exitFail   = 1 // runtime failure: cannot bind, ...
	exitConfig = 2 // bad flags or config: nothing was started
)

// shutdownGrace bounds how long a stop waits for connections to finish the
// requests they already sent.
const shutdownGrace = 10 * time.Second

type options struct {
	configPath  string
	overrides   config.Overrides
	printConfig bool
	version     bool
	testWedge   bool // --test-wedge-on-sigusr2, only with the test hooks (testhooks.go)
}

func parseFlags(args []string, stdout io.Writer) (*options, error) {
	o := &options{overrides: config.Overrides{}}
	fs := cliflag.New("pacemaker")
	fs.StringVar(&o.configPath, "config", "", "config `file` (default "+config.DefaultPath+" if present)")
	port := fs.String("port", "", "TCP `port` (pacemaker.port)")
	listen := fs.String("listen", "", "`address` to bind (pacemaker.listen)")
	level := fs.String("log-level", "", "log `level`: debug, info, warn or error (pacemaker.log.level)")
	fs.BoolVar(&o.printConfig, "print-config", false, "print the effective config and exit")
	fs.BoolVar(&o.version, "version", false, "print the version and exit")
	addTestHookFlags(fs, o)
	help := func(w io.Writer) {
		fmt.Fprintf(w, "Usage: pacemaker [flags]\n\nA wire-compatible Apache Storm Pacemaker heartbeat server.\n\nFlags:\n")
		cliflag.PrintFlags(w, fs)
		fmt.Fprintf(w, "\nExit status: 0 stopped cleanly; 1 runtime failure (cannot bind, a listener failed);\n2 bad flags or config (nothing was started).\n")
	}
	if err := cliflag.Parse(fs, args, stdout, help); err != nil {
		return nil, err
	}
	if fs.NArg() > 0 {
		return nil, fmt.Errorf("unexpected argument %q", fs.Arg(0))
	}
	fs.Visit(func(f *flag.Flag) {
		switch f.Name {
		case "port":
			o.overrides["pacemaker.port"] = *port
		case "listen":
			o.overrides["pacemaker.listen"] = *listen
		case "log-level":
			o.overrides["pacemaker.log.level"] = *level
		}
	})
	return o, nil
}

// Run is the whole daemon; it returns the process exit code.
func Run(args []string, stdout, stderr io.Writer) int {
	o, err := parseFlags(args, stdout)
	if errors.Is(err, cliflag.ErrHelp) {
		return exitOK
	}
	if err != nil {
		fmt.Fprintf(stderr, "pacemaker: %v (try --help)\n", err)
		return exitConfig
	}
	if o.version {
		fmt.Fprintf(stdout, "pacemaker %s (%s)\n", version.String(), runtime.Version())
		return exitOK
	}
	cfg, err := config.Load(o.configPath, os.Environ(), o.overrides)
	if err != nil {
		fmt.Fprintf(stderr, "pacemaker: config: %v\n", err)
		return exitConfig
	}
	if o.printConfig {
		fmt.Fprint(stdout, cfg.Print())
		return exitOK
	}

	level := new(slog.LevelVar)
	level.Set(cfg.LogLevel)
	log := logging.New(stderr, level)
	logNotes(log, cfg)

	mech, err := buildMechanism(cfg)
	if err != nil {
		log.Error("cannot start: authentication setup failed", "method", string(cfg.AuthMethod), "err", err)
		fmt.Fprintf(stderr, "pacemaker: %v\n", err)
		return exitConfig
	}
	logMechanism(log, cfg, mech)

	d := &daemon{log: log, level: level, opts: o, cfg: cfg}
	d.store = store.New(storeLimits(cfg))
	d.store.SetTTL(cfg.HeartbeatTTL)
	d.srv = server.New(d.store, log, serverSettings(cfg, mech))
	// Before takeOver: it serves a predecessor's connections at once. The
	// observer counts requests either way.
	m := metrics.New(d.srv, d.ready.Load)
	m.SetFreshness(cfg.HeartbeatPeriod, cfg.MaxTopologies)
	d.srv.SetObserver(m)
	d.metrics = m
	applyMaxThreads(cfg)
	applyMemoryLimit(cfg, log)
	warnFileLimit(cfg, log)
	if cfg.MetricsListen != "" {
		// Before anything is bound or taken over: a typo must not cost the
		// connections a predecessor handed over.
		if err := resolveListen("pacemaker.metrics.listen", cfg.MetricsListen); err != nil {
			log.Error("cannot start", "err", err)
			fmt.Fprintf(stderr, "pacemaker: config: %v\n", err)
			return exitConfig
		}
	}

	// systemd passes the listening sockets and, after a restart, what the
	// previous process handed over: that is taken over first, so its
	// connections are served before anything new is accepted.
	passed := d.takeOver(activation.Files(true))
	lns, err := d.openListeners(cfg, passed)
	if err != nil {
		log.Error("cannot start: no listener", "err", err)
		if errors.As(err, new(*addrError)) {
			fmt.Fprintf(stderr, "pacemaker: config: %v\n", err)
			return exitConfig
		}
		return exitFail
	}
	stopMetrics, err := d.serveMetrics(cfg, m)
	if err != nil {
		log.Error("cannot start", "err", err)
		return exitFail
	}
	defer stopMetrics()
	return d.run(lns)
}

type daemon struct {
	log   *slog.Logger
	level *slog.LevelVar
	opts  *options
	store *store.Store
	srv   *server.Server
	// metrics records self-checks and takes reloaded freshness settings.
	metrics *metrics.Metrics

	mu  sync.Mutex
	cfg *config.Config

	ready     atomic.Bool // serving: listeners up, not stopping (/readyz)
	listeners int         // how many run serves

	sd systemdState // talking to systemd: systemd.go
}

func (d *daemon) run(lns []net.Listener) int {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()

	// Before the first connection is served: a client (or systemctl
	// reload) may act as soon as it is, and SIGHUP's default action would
	// end the process.
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT, syscall.SIGHUP, syscall.SIGUSR2)
	defer signal.Stop(sigs)

	d.listeners = len(lns)
	serveErr := make(chan error, len(lns))
	for _, ln := range lns {
		go func() { serveErr <- d.srv.Serve(ln) }()
	}
	addrs := make([]string, len(lns))
	for i, ln := range lns {
		addrs[i] = ln.Addr().String()
	}
	cfg := d.config()
	// gomaxprocs: the OS threads running Go code at once (the CPUs, the
	// cgroup's CPU limit, or pacemaker.max.threads when lower).
	d.log.Info("pacemaker serving", "version", version.String(), "listen", addrs, "auth", string(cfg.AuthMethod),
		"gomaxprocs", runtime.GOMAXPROCS(0), "ttl", cfg.HeartbeatTTL.String())

	d.ready.Store(true)
	go d.sweepLoop(ctx)
	go d.summaryLoop(ctx)
	go d.trimLoop(ctx)
	d.startSystemd(ctx)

	code := exitOK
loop:
	for {
		select {
		case sig := <-sigs:
			switch sig {
			case syscall.SIGHUP:
				d.reload()
			case syscall.SIGUSR2:
				// Ignored, as ever; a test build may wedge (testhooks.go).
				d.testHookSIGUSR2()
			default:
				d.log.Info("stopping", "signal", sig.String())
				break loop
			}
		case err := <-serveErr:
			if err != nil && !errors.Is(err, server.ErrServerClosed) {
				d.log.Error("listener failed", "err", err)
				code = exitFail
				break loop
			}
		}
	}
	d.ready.Store(false)
	d.notifyStopping()
	sctx, scancel := context.WithTimeout(context.Background(), shutdownGrace)
	defer scancel()
	if err := d.shutdown(sctx); err != nil {
		d.log.Warn("connections still open after the grace period were closed", "grace", shutdownGrace.String())
	}
	d.log.Info("stopped", "keys", d.store.Keys())
	return code
}

func (d *daemon) config() *config.Config {
	d.mu.Lock()
	defer d.mu.Unlock()
	return d.cfg
}

// reload re-reads the config, JAAS file and keytab. Anything invalid is
// rejected with the reason and the running config keeps serving; stored
// heartbeats and open connections are untouched either way.
func (d *daemon) reload() {
	d.notifyReloading()
	defer d.notifyReady()
	old := d.config()
	cfg, err := config.Load(d.opts.configPath, os.Environ(), d.opts.overrides)
	if err != nil {
		d.log.Error("reload rejected; keeping the running config", "err", err)
		return
	}
	mech, err := buildMechanism(cfg)
	if err != nil {
		d.log.Error("reload rejected; keeping the running config", "method", string(cfg.AuthMethod), "err", err)
		return
	}
	logNotes(d.log, cfg)
	logMechanism(d.log, cfg, mech)
	if cfg.Port != old.Port || cfg.Listen != old.Listen {
		d.log.Warn("listen address changes need a restart; still serving the old one",
			"port", cfg.Port, "listen", cfg.Listen)
	}
	if cfg.MetricsListen != old.MetricsListen {
		d.log.Warn("pacemaker.metrics.listen changes need a restart", "metrics_listen", cfg.MetricsListen)
	}
	d.level.Set(cfg.LogLevel)
	d.store.SetLimits(storeLimits(cfg))
	d.store.SetTTL(cfg.HeartbeatTTL)
	d.srv.SetSettings(serverSettings(cfg, mech))
	d.metrics.SetFreshness(cfg.HeartbeatPeriod, cfg.MaxTopologies)
	applyMaxThreads(cfg)
	applyMemoryLimit(cfg, d.log)
	warnFileLimit(cfg, d.log)
	d.mu.Lock()
	d.cfg = cfg
	d.mu.Unlock()
	d.log.Info("config reloaded", "file", cfg.File, "auth", string(cfg.AuthMethod))
}

// sweepLoop expires stale heartbeats when a TTL is set, a shard at a time.
func (d *daemon) sweepLoop(ctx context.Context) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	var last time.Time
	for {
		select {
		case <-ctx.Done():
			return
		case now := <-t.C:
			ttl := d.store.TTL()
			// Half a tick of slack: ticks jitter, and a sweep due "now" must not wait a tick.
			if ttl <= 0 || now.Sub(last) < min(max(ttl/10, time.Second), time.Minute)-time.Second/2 {
				continue
			}
			last = now
			if n := d.store.Sweep(); n > 0 {
				d.log.Info("expired stale heartbeats", "dropped", n, "ttl", ttl.String())
			}
		}
	}
}

// summaryLoop logs one line a minute an operator can read at a glance.
func (d *daemon) summaryLoop(ctx context.Context) {
	const every = time.Minute
	t := time.NewTicker(every)
	defer t.Stop()
	var lastReq uint64
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			req := d.totalRequests()
			d.log.Info("summary", "keys", d.store.Keys(), "bytes", d.store.Bytes(),
				"connections", d.srv.OpenConns(), "requests_per_sec", roundRate(float64(req-lastReq)/every.Seconds()))
			lastReq = req
		}
	}
}

// roundRate keeps a rate's meaningful digits for a log line: 0.12, 7.5,
// 1234 (not 0.11666666666666667).
func roundRate(r float64) float64 {
	switch {
	case r >= 100:
		return math.Round(r)
	case r >= 1:
		return math.Round(r*10) / 10
	}
	return math.Round(r*100) / 100
}

func (d *daemon) totalRequests() uint64 {
	var n uint64
	st := d.srv.Stats()
	for i := range st.Requests {
		n += st.Requests[i].Load()
	}
	return n
}

// statusLine is what `systemctl status` shows.
func (d *daemon) statusLine() string {
	return fmt.Sprintf("serving %d keys (%s), %d connections, auth %s",
		d.store.Keys(), units.Bytes(d.store.Bytes()), d.srv.OpenConns(), d.config().AuthMethod)
}

func logNotes(log *slog.Logger, cfg *config.Config) {
	for _, n := range cfg.Notes {
		log.Log(context.Background(), n.Level, n.Msg, "key", n.Key)
	}
}

func storeLimits(cfg *config.Config) store.Limits {
	return store.Limits{MaxKeys: cfg.MaxKeys, MaxBytes: cfg.MaxStoredBytes, MaxValueBytes: cfg.MaxFrame, MaxKeyBytes: cfg.MaxKeyBytes}
}

func serverSettings(cfg *config.Config, mech auth.Mechanism) server.Settings {
	return server.Settings{
		Method:           cfg.AuthMethod,
		Mechanism:        mech,
		Credentials:      credentialsFingerprint(cfg),
		AuthWrites:       cfg.AuthWrites,
		MaxFrame:         cfg.MaxFrame,
		FrameTimeout:     cfg.FrameTimeout,
		HandshakeTimeout: cfg.HandshakeTimeout,
		MaxConns:         cfg.MaxConns,
		MaxConnsPerPeer:  cfg.MaxConnsPerPeer,
		MaxBuffered:      cfg.MaxBufferedBytes,
	}
}

// applyMaxThreads honours pacemaker.max.threads: in Storm it sizes the
// Netty worker pool that runs request handlers; here it caps the OS threads
// running Go code at once. Above the runtime's own choice (CPUs, or the
// cgroup's CPU limit) it leaves that choice, and its automatic updates, alone.
func applyMaxThreads(cfg *config.Config) {
	runtime.SetDefaultGOMAXPROCS()
	if cfg.MaxThreads < runtime.GOMAXPROCS(0) {
		runtime.GOMAXPROCS(cfg.MaxThreads)
	}
}

// The runtime's soft memory limit is what the budgets allow: the stored
// heartbeats (pacemaker.max.stored.bytes, which counts keys and per-key
// costs), the buffered I/O (pacemaker.max.buffered.bytes), each allowed
// connection's fixed buffers, and headroom for the runtime and the garbage
// the collector has not yet taken. Near it the collector works harder
// instead of letting the heap double (the Go default).
const (
	memoryHeadroom = 128 << 20
	// perConnFixed is a connection's memory outside the budgets at worst:
	// the engine keeps up to 16 KiB of a frame that is arriving (the
	// read buffer's size) and up to the 4 KiB write credit of answers a
	// full socket refused, plus the connection's bookkeeping (~1 KiB). An
	// idle connection holds none of the buffers.
	perConnFixed = 24 << 10
)

// memoryLimit returns the soft memory limit the budgets imply.
func memoryLimit(cfg *config.Config) int64 {
	return cfg.MaxStoredBytes + cfg.MaxStoredBytes/8 + cfg.MaxBufferedBytes + int64(cfg.MaxConns)*perConnFixed + memoryHeadroom
}

// applyMemoryLimit sets the runtime's soft memory limit from the budgets
// (memoryLimit). An operator's own GOMEMLIMIT wins.
func applyMemoryLimit(cfg *config.Config, log *slog.Logger) {
	if os.Getenv("GOMEMLIMIT") != "" || cfg.MaxStoredBytes <= 0 {
		return
	}
	limit := memoryLimit(cfg)
	debug.SetMemoryLimit(limit)
	log.Debug("soft memory limit set", "limit_bytes", limit)
}
