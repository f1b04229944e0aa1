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

// startMetrics serves /metrics, /healthz and /readyz when
// pacemaker.metrics.listen is set, and counts every request either way
// (the observer is lock-free). ready reports whether the daemon serves.
func (d *daemon) startMetrics(cfg *config.Config, ready func() bool) (stop func(), err error) {
	m := metrics.New(d.srv, ready)
	m.SetFreshness(cfg.HeartbeatPeriod, cfg.MaxTopologies)
	d.srv.SetObserver(m)
	d.metrics = m
	if cfg.MetricsListen == "" {
		return func() {}, nil
	}
	ln, err := net.Listen("tcp", cfg.MetricsListen)
	if err != nil {
		return nil, fmt.Errorf("metrics listener on %s (pacemaker.metrics.listen): %w", cfg.MetricsListen, err)
	}
	hs := &http.Server{Handler: m.Handler(), ReadHeaderTimeout: 10 * time.Second}
	go func() {
		if err := hs.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			d.log.Error("metrics listener failed", "addr", cfg.MetricsListen, "err", err)
		}
	}()
	d.log.Info("serving metrics", "addr", ln.Addr().String(), "paths", "/metrics /healthz /readyz")
	return func() {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		defer cancel()
		_ = hs.Shutdown(ctx)
	}, nil
}
