package daemon

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/config"
	"github.com/storm-pacemaker/pacemaker/internal/metrics"
)

// serveMetrics serves /metrics, /healthz and /readyz on
// pacemaker.metrics.listen when it is set. The metrics were installed as
// the server's observer before anything was served (see Run): connections
// taken over from a predecessor are counted from the start.
func (d *daemon) serveMetrics(cfg *config.Config, m *metrics.Metrics) (stop func(), err error) {
	if cfg.MetricsListen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("metrics listener on %s (pacemaker.metrics.listen): %w", cfg.MetricsListen, err)
	}
	lim := metrics.NewLimiter(metrics.MaxConns)
	hs := m.NewServer(lim)
	go func() {
		if err := hs.Serve(lim.Listener(ln)); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics listener failed", "addr", cfg.MetricsListen, "err", err)
		}
	}()
	d.log.Info("serving metrics", "addr", ln.Addr().String(), "paths", "/metrics /healthz /readyz", "max_connections", metrics.MaxConns)
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}, nil
}
