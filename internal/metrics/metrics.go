// Package metrics exposes a pacemaker daemon to Prometheus and to health
// checkers: /metrics, /healthz and /readyz.
//
// Two kinds of data feed it. Counters the server already keeps (atomics in
// server.Stats, the store's key and byte totals, the connection table) are
// read only when Prometheus scrapes, by a custom collector. Distributions
// that need every event (request latency, heartbeat size) come through the
// server.Observer hooks, which touch only pre-resolved histograms: no map
// lookup, lock or allocation on the request path.
package metrics

import (
	"net/http"
	"runtime"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"

	"github.com/storm-pacemaker/pacemaker/internal/server"
	"github.com/storm-pacemaker/pacemaker/internal/version"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// namespace prefixes every pacemaker metric.
const namespace = "pacemaker"

// observedTypes are the request types that get a latency histogram: what a
// client sends. Answer types sent to the server are refused and counted in
// pacemaker_rejected_total{reason="unexpected type"} instead.
var observedTypes = []wire.MessageType{
	wire.CreatePath, wire.Exists, wire.SendPulse, wire.GetAllPulseForPath,
	wire.GetAllNodesForPath, wire.GetPulse, wire.DeletePath, wire.DeletePulseID,
	wire.ControlMessage, wire.SaslMessageToken,
}

// Request latencies are microseconds when all is well; the buckets reach a
// quarter second to show a daemon starved of CPU.
var latencyBuckets = prometheus.ExponentialBuckets(1e-6, 4, 10) // 1µs … 262ms

// Heartbeats run from a few hundred bytes (one executor, compressed) to
// megabytes (large workers, uncompressed); Storm's default frame limit is 10 MiB.
var sizeBuckets = prometheus.ExponentialBuckets(256, 4, 9) // 256 B … 16 MiB

// Metrics serves one server's metrics. It implements server.Observer.
type Metrics struct {
	srv   *server.Server
	ready func() bool
	reg   *prometheus.Registry

	latency   [wire.NotAuthorized + 1]prometheus.Observer // nil for types not observed
	pulseSize prometheus.Observer
	fresh     *freshnessCollector
	selfCheck selfCheckCollector
}

var _ server.Observer = (*Metrics)(nil)

// New builds the metrics for srv. ready reports whether the daemon should
// receive traffic (/readyz); nil means "until srv begins shutting down",
// and a shutting-down server is never ready whatever ready says.
//
// Wire it before serving:
//
//	m := metrics.New(srv, ready)
//	srv.SetObserver(m)
//	go http.Serve(ln, m.Handler())
func New(srv *server.Server, ready func() bool) *Metrics {
	m := &Metrics{srv: srv, ready: ready, reg: prometheus.NewRegistry()}

	latency := prometheus.NewHistogramVec(prometheus.HistogramOpts{
		Namespace: namespace,
		Name:      "request_duration_seconds",
		Help:      "Time from a decoded request to its answer being queued, by Storm's request type (network time excluded).",
		Buckets:   latencyBuckets,
	}, []string{"type"})
	for _, t := range observedTypes {
		m.latency[t] = latency.WithLabelValues(t.String())
	}
	pulseSize := prometheus.NewHistogram(prometheus.HistogramOpts{
		Namespace: namespace,
		Name:      "heartbeat_size_bytes",
		Help:      "Size of the heartbeats received with SEND_PULSE (Storm's pacemaker:heartbeat-size).",
		Buckets:   sizeBuckets,
	})
	m.pulseSize = pulseSize
	m.fresh = newFreshnessCollector(srv.Store())
	m.selfCheck.init()

	m.reg.MustRegister(
		latency,
		pulseSize,
		newStatsCollector(srv),
		m.fresh,
		&m.selfCheck,
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace: namespace,
			Name:      "ready",
			Help:      "1 while the daemon serves (what /readyz answers 200 to), 0 before and from the moment shutdown begins.",
		}, func() float64 {
			if m.Ready() {
				return 1
			}
			return 0
		}),
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
		prometheus.NewGaugeFunc(prometheus.GaugeOpts{
			Namespace:   namespace,
			Name:        "build_info",
			Help:        "Always 1; the labels name the running build.",
			ConstLabels: prometheus.Labels{"version": version.String(), "goversion": runtime.Version()},
		}, func() float64 { return 1 }),
	)
	return m
}

// Request implements server.Observer.
func (m *Metrics) Request(t wire.MessageType, d time.Duration) {
	if t < 0 || int(t) >= len(m.latency) {
		return
	}
	if o := m.latency[t]; o != nil {
		o.Observe(d.Seconds())
	}
}

// PulseSize implements server.Observer.
func (m *Metrics) PulseSize(n int) { m.pulseSize.Observe(float64(n)) }

// SetFreshness sets what the per-topology freshness metrics count as late:
// a worker key not rewritten within period (task.heartbeat.frequency.secs)
// or 3 × period; and how many topologies get a label of their own (the rest
// are summed under topology="other").
func (m *Metrics) SetFreshness(period time.Duration, maxTopologies int) {
	m.fresh.set(period, maxTopologies)
}

// SelfCheck records the result of one self-check (server.Health: a request
// through each listener and the whole request path), as the watchdog runs it.
func (m *Metrics) SelfCheck(err error) { m.selfCheck.record(err) }

// Registry is where the metrics are registered, for a caller that wants to
// add its own.
func (m *Metrics) Registry() *prometheus.Registry { return m.reg }

// Ready reports what /readyz answers.
func (m *Metrics) Ready() bool {
	if m.srv.Closing() {
		return false
	}
	return m.ready == nil || m.ready()
}

// Handler serves GET /metrics (Prometheus text or protobuf exposition),
// /healthz (200 "ok" while the process runs) and /readyz (200 "ready" while
// Ready, else 503 "not ready").
func (m *Metrics) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /metrics", promhttp.HandlerFor(m.reg, promhttp.HandlerOpts{
		// A failing collector must not hide every other metric.
		ErrorHandling:     promhttp.ContinueOnError,
		Registry:          m.reg,
		EnableOpenMetrics: true,
	}))
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, _ *http.Request) {
		plain(w, http.StatusOK, "ok")
	})
	mux.HandleFunc("GET /readyz", func(w http.ResponseWriter, _ *http.Request) {
		if m.Ready() {
			plain(w, http.StatusOK, "ready")
			return
		}
		plain(w, http.StatusServiceUnavailable, "not ready")
	})
	return mux
}

func plain(w http.ResponseWriter, code int, body string) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(code)
	_, _ = w.Write([]byte(body))
}
