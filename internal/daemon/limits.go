package daemon

import (
	"fmt"
	"log/slog"
	"net"

	"golang.org/x/sys/unix"

	"github.com/storm-pacemaker/pacemaker/internal/config"
	"github.com/storm-pacemaker/pacemaker/internal/metrics"
	"github.com/storm-pacemaker/pacemaker/internal/server"
)

// addrError is a listen address that does not resolve: a mistake in the
// config (exit 2), not a failure to bind (exit 1).
type addrError struct {
	key, addr string
	err       error
}

func (e *addrError) Error() string {
	return fmt.Sprintf("%s: cannot resolve %q: %v", e.key, e.addr, e.err)
}

func (e *addrError) Unwrap() error { return e.err }

// resolveListen checks that addr, the value of config key key, resolves
// to an address to bind.
func resolveListen(key, addr string) error {
	if _, err := net.ResolveTCPAddr("tcp", addr); err != nil {
		return &addrError{key: key, addr: addr, err: err}
	}
	return nil
}

// fileMargin is the descriptors the daemon needs besides its connections:
// listeners, the netpoller, standard streams, the journal, a hand-over's
// memfd and carrier, the watchdog's self-check, pacemakerctl.
const fileMargin = 64

// fileBudget is the descriptors the daemon may need at once: every client
// connection pacemaker.max.connections allows (plus the loopback reserve),
// every connection the metrics port holds, and fileMargin.
func fileBudget(cfg *config.Config) (total, metricsConns int) {
	if cfg.MetricsListen != "" {
		metricsConns = metrics.MaxConns
	}
	return cfg.MaxConns + server.LoopbackReserve + metricsConns + fileMargin, metricsConns
}

// warnFileLimit says at start-up (and reload) when RLIMIT_NOFILE cannot
// hold the descriptor budget: connections past it would fail to be
// accepted (EMFILE) well before pacemaker.max.connections refuses them.
func warnFileLimit(cfg *config.Config, log *slog.Logger) {
	var lim unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &lim); err != nil {
		return
	}
	need, metricsConns := fileBudget(cfg)
	if lim.Cur >= uint64(need) {
		return
	}
	log.Warn("the open-file limit (RLIMIT_NOFILE) cannot hold pacemaker.max.connections: accepts would fail with EMFILE first; raise LimitNOFILE= or lower pacemaker.max.connections",
		"limit", lim.Cur, "needed", need, "max_connections", cfg.MaxConns, "metrics_connections", metricsConns)
}
