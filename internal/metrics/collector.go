package metrics

import (
	"github.com/prometheus/client_golang/prometheus"

	"github.com/storm-pacemaker/pacemaker/internal/server"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// statsCollector turns the server's own counters into metrics at scrape
// time, so counting costs the request path nothing beyond the atomic add
// the server does anyway.
type statsCollector struct {
	srv *server.Server

	// Storm's own Pacemaker metrics, under Prometheus names.
	sendPulses    *prometheus.Desc
	getPulses     *prometheus.Desc
	pulseBytesIn  *prometheus.Desc
	pulseBytesOut *prometheus.Desc
	keys          *prometheus.Desc

	storedBytes  *prometheus.Desc
	requests     *prometheus.Desc
	rejected     *prometheus.Desc
	bytesIn      *prometheus.Desc
	bytesOut     *prometheus.Desc
	openConns    *prometheus.Desc
	connsByState *prometheus.Desc
	connsOpened  *prometheus.Desc
	connsClosed  *prometheus.Desc
	authOK       *prometheus.Desc
	authFailed   *prometheus.Desc
	buffered     *prometheus.Desc
	maxBuffered  *prometheus.Desc

	// The configured budgets, so alerts and dashboards compare usage with
	// them without copying the config (absent when unlimited).
	maxStoredBytes *prometheus.Desc
	maxKeys        *prometheus.Desc
	maxConns       *prometheus.Desc
}

// alwaysCounted are the request types whose counters exist from the start,
// so rate() works before the first request; other types appear when seen.
var alwaysCounted = [...]wire.MessageType{
	wire.CreatePath, wire.Exists, wire.SendPulse, wire.GetAllPulseForPath,
	wire.GetAllNodesForPath, wire.GetPulse, wire.DeletePath, wire.DeletePulseID,
}

func newStatsCollector(srv *server.Server) *statsCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
	}
	return &statsCollector{
		srv:           srv,
		sendPulses:    d("send_pulse_total", "SEND_PULSE requests received (Storm's pacemaker:send-pulse-count)."),
		getPulses:     d("get_pulse_total", "GET_PULSE requests received (Storm's pacemaker:get-pulse-count)."),
		pulseBytesIn:  d("heartbeat_received_bytes_total", "Heartbeat bytes received with SEND_PULSE (Storm's pacemaker:total-receive-size)."),
		pulseBytesOut: d("heartbeat_sent_bytes_total", "Heartbeat bytes sent in GET_PULSE answers (Storm's pacemaker:total-sent-size)."),
		keys:          d("keys", "Heartbeats stored (Storm's pacemaker:size-total-keys)."),
		storedBytes:   d("stored_bytes", "What the stored heartbeats count against pacemaker.max.stored.bytes: paths, values and a fixed cost per key."),
		requests:      d("requests_total", "Data requests received, by Storm's request type (SASL handshake frames are not counted here).", "type"),
		rejected:      d("rejected_total", "Connections, frames and requests refused, by reason.", "reason"),
		bytesIn:       d("received_bytes_total", "Bytes of frames received, length prefixes included."),
		bytesOut:      d("sent_bytes_total", "Bytes of frames sent."),
		openConns:     d("open_connections", "Client connections open now."),
		connsByState:  d("connections", "Client connections open now, by authentication state.", "state"),
		connsOpened:   d("connections_opened_total", "Client connections accepted."),
		connsClosed:   d("connections_closed_total", "Client connections closed."),
		authOK:        d("auth_successes_total", "SASL handshakes that succeeded."),
		authFailed:    d("auth_failures_total", "SASL handshakes that failed, by mechanism and reason.", "method", "reason"),
		buffered:      d("buffered_bytes", "Bytes reserved for I/O across all connections: large frames arriving, answers not yet written (pacemaker.max.buffered.bytes bounds it)."),
		maxBuffered:   d("max_buffered_bytes", "pacemaker.max.buffered.bytes in force."),

		maxStoredBytes: d("max_stored_bytes", "Most heartbeat bytes the store may hold (pacemaker.max.stored.bytes)."),
		maxKeys:        d("max_keys", "Most heartbeats the store may hold (pacemaker.max.keys)."),
		maxConns:       d("max_connections", "Most client connections open at once (pacemaker.max.connections)."),
	}
}

// Describe implements prometheus.Collector.
func (c *statsCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.sendPulses, c.getPulses, c.pulseBytesIn, c.pulseBytesOut, c.keys,
		c.storedBytes, c.requests, c.rejected, c.bytesIn, c.bytesOut, c.openConns, c.connsByState,
		c.connsOpened, c.connsClosed, c.authOK, c.authFailed, c.buffered, c.maxBuffered,
		c.maxStoredBytes, c.maxKeys, c.maxConns} {
		ch <- d
	}
}

// Collect implements prometheus.Collector.
func (c *statsCollector) Collect(ch chan<- prometheus.Metric) {
	st := c.srv.Stats()
	counter := func(d *prometheus.Desc, v uint64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.CounterValue, float64(v), labels...)
	}
	gauge := func(d *prometheus.Desc, v float64, labels ...string) {
		ch <- prometheus.MustNewConstMetric(d, prometheus.GaugeValue, v, labels...)
	}

	counter(c.sendPulses, st.Requests[wire.SendPulse].Load())
	counter(c.getPulses, st.Requests[wire.GetPulse].Load())
	counter(c.pulseBytesIn, st.PulseBytes.Load())
	counter(c.pulseBytesOut, st.PulseBytesOut.Load())
	gauge(c.keys, float64(c.srv.Store().Keys()))
	gauge(c.storedBytes, float64(c.srv.Store().Bytes()))

	var always [len(st.Requests)]bool
	for _, t := range alwaysCounted {
		always[t] = true
	}
	for t := range st.Requests {
		if n := st.Requests[t].Load(); n > 0 || always[t] {
			counter(c.requests, n, wire.MessageType(t).String())
		}
	}
	st.Rejects(func(reason string, n uint64) { counter(c.rejected, n, reason) })
	counter(c.bytesIn, st.BytesIn.Load())
	counter(c.bytesOut, st.BytesOut.Load())

	unauth, handshaking, authed := c.srv.ConnCounts()
	gauge(c.openConns, float64(unauth+handshaking+authed))
	gauge(c.connsByState, float64(unauth), "unauthenticated")
	gauge(c.connsByState, float64(handshaking), "handshaking")
	gauge(c.connsByState, float64(authed), "authenticated")
	counter(c.connsOpened, st.ConnsOpened.Load())
	counter(c.connsClosed, st.ConnsClosed.Load())
	counter(c.authOK, st.AuthSuccesses.Load())
	st.AuthFailures(func(method, reason string, n uint64) { counter(c.authFailed, n, method, reason) })
	used, maxBuffered := c.srv.Buffered()
	gauge(c.buffered, float64(used))
	gauge(c.maxBuffered, float64(maxBuffered))

	limit := func(d *prometheus.Desc, v int64) {
		if v > 0 { // 0 is unlimited: no ratio to watch
			gauge(d, float64(v))
		}
	}
	l := c.srv.Store().Limits()
	limit(c.maxStoredBytes, l.MaxBytes)
	limit(c.maxKeys, l.MaxKeys)
	limit(c.maxConns, int64(c.srv.Settings().MaxConns))
}
