package metrics

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus/testutil"
	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/server"
	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// fixture is a real server on loopback with its metrics served over HTTP.
type fixture struct {
	srv   *server.Server
	m     *Metrics
	addr  string // pacemaker listener
	url   string // metrics HTTP server
	ready atomic.Bool
}

func settings() server.Settings {
	return server.Settings{Method: auth.None, MaxFrame: wire.DefaultMaxFrame, FrameTimeout: 30 * time.Second,
		HandshakeTimeout: 30 * time.Second, MaxConns: 1000, MaxConnsPerPeer: 1000}
}

func start(t testing.TB, limits store.Limits) *fixture {
	t.Helper()
	f := &fixture{}
	f.srv = server.New(store.New(limits), slog.New(slog.DiscardHandler), settings())
	f.m = New(f.srv, f.ready.Load)
	f.srv.SetObserver(f.m)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	f.addr = ln.Addr().String()
	go f.srv.Serve(ln)
	hs := httptest.NewServer(f.m.Handler())
	f.url = hs.URL
	t.Cleanup(func() {
		hs.Close()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		_ = f.srv.Shutdown(ctx)
	})
	return f
}

// scrape is one parsed /metrics answer.
type scrape map[string]*dto.MetricFamily

func (f *fixture) scrape(t testing.TB) scrape {
	t.Helper()
	resp, err := http.Get(f.url + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("/metrics: %s", resp.Status)
	}
	p := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := p.TextToMetricFamilies(resp.Body)
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	return fams
}

// metric finds the sample of family name whose labels include want
// ("k=v" pairs); nil when there is none.
func (s scrape) metric(name string, want ...string) *dto.Metric {
	fam := s[name]
	if fam == nil {
		return nil
	}
next:
	for _, m := range fam.GetMetric() {
		for _, kv := range want {
			k, v, _ := strings.Cut(kv, "=")
			found := false
			for _, lp := range m.GetLabel() {
				if lp.GetName() == k && lp.GetValue() == v {
					found = true
				}
			}
			if !found {
				continue next
			}
		}
		return m
	}
	return nil
}

// value is a counter's or gauge's value, or a histogram's count; 0 when absent.
func (s scrape) value(name string, labels ...string) float64 {
	m := s.metric(name, labels...)
	switch {
	case m == nil:
		return 0
	case m.Counter != nil:
		return m.Counter.GetValue()
	case m.Gauge != nil:
		return m.Gauge.GetValue()
	case m.Histogram != nil:
		return float64(m.Histogram.GetSampleCount())
	}
	return 0
}

// frameLen is the size on the wire of m as a frame with a message_id.
func frameLen(m wire.Message) int {
	m.HasID = true
	return len(wire.AppendFrame(nil, &m))
}

// waitFor polls until cond holds on a fresh scrape (counters the server
// bumps after the peer already saw the answer, e.g. bytes sent).
func (f *fixture) waitFor(t *testing.T, what string, cond func(s scrape) bool) scrape {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for {
		s := f.scrape(t)
		if cond(s) {
			return s
		}
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(5 * time.Millisecond)
	}
}

func TestCountersMoveByExactlyTheRequestsMade(t *testing.T) {
	f := start(t, store.Limits{})
	ctx := context.Background()
	before := f.scrape(t)

	c, err := client.Dial(ctx, f.addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	pulse := func(n int) []byte { return []byte(strings.Repeat("h", n)) }
	var in, out int // expected frame bytes each way
	send := func(key string, n int) {
		t.Helper()
		if err := c.SendPulse(ctx, key, pulse(n)); err != nil {
			t.Fatal(err)
		}
		in += frameLen(wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: key, Details: pulse(n)}})
		out += frameLen(wire.Message{Type: wire.SendPulseResponse})
	}
	send("/workerbeats/t1/n-1", 100)
	send("/workerbeats/t1/n-2", 300)
	send("/workerbeats/t2/n-1", 5000)
	send("/workerbeats/t1/n-1", 150) // a rewrite: no new key

	got, found, err := c.GetPulse(ctx, "/workerbeats/t1/n-2")
	if err != nil || !found || len(got) != 300 {
		t.Fatalf("GetPulse: %d bytes, found %v, err %v", len(got), found, err)
	}
	in += frameLen(wire.Message{Type: wire.GetPulse, Field: wire.FieldPath, Path: "/workerbeats/t1/n-2"})
	out += frameLen(wire.Message{Type: wire.GetPulseResponse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: "/workerbeats/t1/n-2", Details: pulse(300)}})
	if _, found, err := c.GetPulse(ctx, "/workerbeats/none/x"); err != nil || found {
		t.Fatalf("GetPulse of a missing key: found %v, err %v", found, err)
	}
	in += frameLen(wire.Message{Type: wire.GetPulse, Field: wire.FieldPath, Path: "/workerbeats/none/x"})
	out += frameLen(wire.Message{Type: wire.GetPulseResponse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: "/workerbeats/none/x"}})

	nodes, err := c.Children(ctx, "/workerbeats")
	if err != nil || len(nodes) != 2 {
		t.Fatalf("Children: %v, %v", nodes, err)
	}
	in += frameLen(wire.Message{Type: wire.GetAllNodesForPath, Field: wire.FieldPath, Path: "/workerbeats"})
	out += frameLen(wire.Message{Type: wire.GetAllNodesForPathResponse, Field: wire.FieldNodes, Nodes: nodes})

	if ok, err := c.Exists(ctx, "/workerbeats/t1/n-1"); err != nil || !ok {
		t.Fatalf("Exists: %v, %v", ok, err)
	}
	in += frameLen(wire.Message{Type: wire.Exists, Field: wire.FieldPath, Path: "/workerbeats/t1/n-1"})
	out += frameLen(wire.Message{Type: wire.ExistsResponse, Field: wire.FieldBool, Bool: true})

	if err := c.DeletePulseID(ctx, "/workerbeats/t2/n-1"); err != nil {
		t.Fatal(err)
	}
	in += frameLen(wire.Message{Type: wire.DeletePulseID, Field: wire.FieldPath, Path: "/workerbeats/t2/n-1"})
	out += frameLen(wire.Message{Type: wire.DeletePulseIDResponse})

	if err := c.CreatePath(ctx, "/workerbeats/t3"); err != nil {
		t.Fatal(err)
	}
	in += frameLen(wire.Message{Type: wire.CreatePath, Field: wire.FieldPath, Path: "/workerbeats/t3"})
	out += frameLen(wire.Message{Type: wire.CreatePathResponse})

	base := func(name string, labels ...string) float64 { return before.value(name, labels...) }
	after := f.waitFor(t, "bytes sent to reach the answers' size", func(s scrape) bool {
		return s.value("pacemaker_sent_bytes_total")-base("pacemaker_sent_bytes_total") >= float64(out)
	})
	delta := func(name string, labels ...string) float64 {
		return after.value(name, labels...) - base(name, labels...)
	}

	checks := []struct {
		name   string
		labels []string
		want   float64
	}{
		{"pacemaker_send_pulse_total", nil, 4},
		{"pacemaker_get_pulse_total", nil, 2},
		{"pacemaker_heartbeat_received_bytes_total", nil, 100 + 300 + 5000 + 150},
		{"pacemaker_heartbeat_sent_bytes_total", nil, 300},
		{"pacemaker_heartbeat_size_bytes", nil, 4}, // observations
		{"pacemaker_keys", nil, 2},
		{"pacemaker_stored_bytes", nil, float64(store.Cost("/workerbeats/t1/n-1", pulse(150)) + store.Cost("/workerbeats/t1/n-2", pulse(300)))},
		{"pacemaker_requests_total", []string{"type=SEND_PULSE"}, 4},
		{"pacemaker_requests_total", []string{"type=GET_PULSE"}, 2},
		{"pacemaker_requests_total", []string{"type=GET_ALL_NODES_FOR_PATH"}, 1},
		{"pacemaker_requests_total", []string{"type=EXISTS"}, 1},
		{"pacemaker_requests_total", []string{"type=DELETE_PULSE_ID"}, 1},
		{"pacemaker_requests_total", []string{"type=CREATE_PATH"}, 1},
		{"pacemaker_requests_total", []string{"type=DELETE_PATH"}, 0},
		{"pacemaker_request_duration_seconds", []string{"type=SEND_PULSE"}, 4},
		{"pacemaker_request_duration_seconds", []string{"type=GET_PULSE"}, 2},
		{"pacemaker_request_duration_seconds", []string{"type=GET_ALL_NODES_FOR_PATH"}, 1},
		{"pacemaker_request_duration_seconds", []string{"type=EXISTS"}, 1},
		{"pacemaker_request_duration_seconds", []string{"type=DELETE_PULSE_ID"}, 1},
		{"pacemaker_request_duration_seconds", []string{"type=CREATE_PATH"}, 1},
		{"pacemaker_received_bytes_total", nil, float64(in)},
		{"pacemaker_sent_bytes_total", nil, float64(out)},
		{"pacemaker_connections_opened_total", nil, 1},
		{"pacemaker_connections_closed_total", nil, 0},
		{"pacemaker_open_connections", nil, 1},
		{"pacemaker_connections", []string{"state=unauthenticated"}, 1},
		{"pacemaker_connections", []string{"state=handshaking"}, 0},
		{"pacemaker_connections", []string{"state=authenticated"}, 0},
		{"pacemaker_auth_successes_total", nil, 0},
	}
	for _, ck := range checks {
		if got := delta(ck.name, ck.labels...); got != ck.want {
			t.Errorf("%s%v moved by %v, want %v", ck.name, ck.labels, got, ck.want)
		}
	}
	if h := after.metric("pacemaker_heartbeat_size_bytes").GetHistogram(); h.GetSampleSum() != 5550 {
		t.Errorf("heartbeat size sum = %v, want 5550", h.GetSampleSum())
	}
	if fam := after["pacemaker_rejected_total"]; fam != nil {
		t.Errorf("rejections without a bad request: %v", fam)
	}

	c.Close()
	closed := f.waitFor(t, "the connection to be counted closed", func(s scrape) bool {
		return s.value("pacemaker_connections_closed_total")-base("pacemaker_connections_closed_total") == 1
	})
	if n := closed.value("pacemaker_open_connections"); n != 0 {
		t.Errorf("open connections after close = %v, want 0", n)
	}
}

func TestRejectionsByReason(t *testing.T) {
	f := start(t, store.Limits{MaxKeys: 1})
	ctx := context.Background()
	c, err := client.Dial(ctx, f.addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if err := c.SendPulse(ctx, "/workerbeats/t/a", []byte("x")); err != nil {
		t.Fatal(err)
	}
	if err := c.SendPulse(ctx, "/workerbeats/t/b", []byte("y")); !errors.Is(err, client.ErrNotAuthorized) {
		t.Fatalf("second key past max keys: %v, want NOT_AUTHORIZED", err)
	}
	// An answer type sent as a request is refused with NOT_AUTHORIZED.
	if resp, err := c.Do(ctx, &wire.Message{Type: wire.SendPulseResponse}); err != nil || resp.Type != wire.NotAuthorized {
		t.Fatalf("answer type as request: %v, %v", resp, err)
	}
	// A frame that is not Thrift costs its connection.
	nc, err := net.Dial("tcp", f.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	if _, err := nc.Write([]byte{0, 0, 0, 3, 0xff, 0xff, 0xff}); err != nil {
		t.Fatal(err)
	}
	if _, err := bufio.NewReader(nc).ReadByte(); err != io.EOF {
		t.Fatalf("malformed frame: read %v, want EOF", err)
	}

	s := f.waitFor(t, "the malformed frame to be counted", func(s scrape) bool {
		return s.value("pacemaker_rejected_total", "reason=malformed frame") == 1
	})
	for _, ck := range []struct {
		reason string
		want   float64
	}{{"max keys", 1}, {"unexpected type", 1}, {"malformed frame", 1}} {
		if got := s.value("pacemaker_rejected_total", "reason="+ck.reason); got != ck.want {
			t.Errorf("pacemaker_rejected_total{reason=%q} = %v, want %v", ck.reason, got, ck.want)
		}
	}
	if got := s.value("pacemaker_requests_total", "type=SEND_PULSE_RESPONSE"); got != 1 {
		t.Errorf("requests_total{type=SEND_PULSE_RESPONSE} = %v, want 1", got)
	}
	if got := s.value("pacemaker_keys"); got != 1 {
		t.Errorf("keys = %v, want 1", got)
	}
}

func TestHealthAndReadiness(t *testing.T) {
	f := start(t, store.Limits{})
	get := func(path string) (int, string) {
		t.Helper()
		resp, err := http.Get(f.url + path)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	tests := []struct {
		step string
		act  func()
		path string
		code int
		body string
	}{
		{"alive", func() {}, "/healthz", 200, "ok"},
		{"not ready yet", func() {}, "/readyz", 503, "not ready"},
		{"ready", func() { f.ready.Store(true) }, "/readyz", 200, "ready"},
		{"ready again false", func() { f.ready.Store(false) }, "/readyz", 503, "not ready"},
		{"ready once more", func() { f.ready.Store(true) }, "/readyz", 200, "ready"},
		{"shutting down is never ready", func() {
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			defer cancel()
			_ = f.srv.Shutdown(ctx)
		}, "/readyz", 503, "not ready"},
		{"still alive while stopping", func() {}, "/healthz", 200, "ok"},
	}
	for _, tc := range tests {
		tc.act()
		if code, body := get(tc.path); code != tc.code || body != tc.body {
			t.Errorf("%s: GET %s = %d %q, want %d %q", tc.step, tc.path, code, body, tc.code, tc.body)
		}
	}
	resp, err := http.Post(f.url+"/metrics", "text/plain", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusMethodNotAllowed {
		t.Errorf("POST /metrics = %s, want 405", resp.Status)
	}
}

func TestNilReadyFollowsShutdown(t *testing.T) {
	srv := server.New(store.New(store.Limits{}), slog.New(slog.DiscardHandler), settings())
	m := New(srv, nil)
	if !m.Ready() {
		t.Fatal("not ready before shutdown")
	}
	_ = srv.Shutdown(context.Background())
	if m.Ready() {
		t.Fatal("ready after shutdown")
	}
}

func TestExpositionIsComplete(t *testing.T) {
	f := start(t, store.Limits{})
	s := f.scrape(t)
	for _, name := range []string{
		"pacemaker_build_info", "pacemaker_send_pulse_total", "pacemaker_get_pulse_total",
		"pacemaker_heartbeat_received_bytes_total", "pacemaker_heartbeat_sent_bytes_total",
		"pacemaker_heartbeat_size_bytes", "pacemaker_keys", "pacemaker_stored_bytes",
		"pacemaker_requests_total", "pacemaker_request_duration_seconds", "pacemaker_received_bytes_total",
		"pacemaker_sent_bytes_total", "pacemaker_open_connections", "pacemaker_connections",
		"pacemaker_connections_opened_total", "pacemaker_connections_closed_total",
		"pacemaker_auth_successes_total",
		"go_goroutines", "go_memstats_alloc_bytes", "process_cpu_seconds_total", "process_resident_memory_bytes",
	} {
		if s[name] == nil {
			t.Errorf("/metrics lacks %s", name)
		}
	}
	if bi := s.metric("pacemaker_build_info"); bi.GetGauge().GetValue() != 1 || len(bi.GetLabel()) != 2 {
		t.Errorf("build info = %v", bi)
	}
	lint(t, f.m)
}

// lint applies promlint: the naming and help conventions Prometheus documents.
func lint(t *testing.T, m *Metrics) {
	t.Helper()
	problems, err := testutil.GatherAndLint(m.Registry())
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range problems {
		t.Errorf("lint: %s: %s", p.Metric, p.Text)
	}
}

// TestObserverAllocatesNothing is the guard behind the benchmark below: the
// hooks run on every request of every connection.
func TestObserverAllocatesNothing(t *testing.T) {
	m := New(server.New(store.New(store.Limits{}), slog.New(slog.DiscardHandler), settings()), nil)
	allocs := testing.AllocsPerRun(1000, func() {
		m.Request(wire.SendPulse, 3*time.Microsecond)
		m.Request(wire.GetPulse, time.Microsecond)
		m.Request(wire.SendPulseResponse, time.Microsecond) // not observed
		m.Request(wire.MessageType(99), time.Microsecond)   // out of range
		m.PulseSize(2048)
	})
	if allocs != 0 {
		t.Fatalf("observer allocates %v times per call set", allocs)
	}
}

func BenchmarkObserver(b *testing.B) {
	m := New(server.New(store.New(store.Limits{}), slog.New(slog.DiscardHandler), settings()), nil)
	b.Run("serial", func(b *testing.B) {
		b.ReportAllocs()
		for b.Loop() {
			m.Request(wire.SendPulse, 3*time.Microsecond)
			m.PulseSize(2048)
		}
	})
	b.Run("parallel", func(b *testing.B) {
		b.ReportAllocs()
		b.RunParallel(func(pb *testing.PB) {
			for pb.Next() {
				m.Request(wire.SendPulse, 3*time.Microsecond)
				m.PulseSize(2048)
			}
		})
	})
}

// BenchmarkSendPulseObserved pipelines SEND_PULSE over loopback to a real
// server with and without the observer: allocs/op must stay equal (0).
func BenchmarkSendPulseObserved(b *testing.B) {
	for _, observed := range []bool{false, true} {
		b.Run(fmt.Sprintf("observer=%v", observed), func(b *testing.B) {
			srv := server.New(store.New(store.Limits{}), slog.New(slog.DiscardHandler), settings())
			if observed {
				srv.SetObserver(New(srv, nil))
			}
			ln, err := net.Listen("tcp", "127.0.0.1:0")
			if err != nil {
				b.Fatal(err)
			}
			go srv.Serve(ln)
			defer srv.Shutdown(context.Background())
			nc, err := net.Dial("tcp", ln.Addr().String())
			if err != nil {
				b.Fatal(err)
			}
			defer nc.Close()
			fr := wire.NewFrameReader(bufio.NewReaderSize(nc, 1<<20), wire.DefaultMaxFrame)
			details := make([]byte, 2048)
			keys := make([]string, 1000)
			for i := range keys {
				keys[i] = fmt.Sprintf("/workerbeats/topo-%d/sup-%d-6700", i%20, i)
			}
			req := &wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse, HasID: true}
			const batch = 64
			var out []byte
			b.SetBytes(int64(len(details)))
			b.ReportAllocs()
			b.ResetTimer()
			for done := 0; done < b.N; {
				n := min(batch, b.N-done)
				out = out[:0]
				for i := range n {
					req.Pulse = wire.Pulse{ID: keys[(done+i)%len(keys)], Details: details}
					req.ID = int32(i)
					out = wire.AppendFrame(out, req)
				}
				if _, err := nc.Write(out); err != nil {
					b.Fatal(err)
				}
				for range n {
					if _, err := fr.Next(); err != nil {
						b.Fatal(err)
					}
				}
				done += n
			}
		})
	}
}
