package metrics

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/stormhb"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
)

// TestDaemonServesMetrics checks the daemon's pacemaker.metrics.listen
// endpoint: health, readiness and counters that follow real traffic.
func TestDaemonServesMetrics(t *testing.T) {
	port := daemon.FreePort(t, "127.0.0.1")
	p := daemon.Start(t, daemon.Options{LogLevel: "info",
		Config: fmt.Sprintf("pacemaker.metrics.listen: \"127.0.0.1:%d\"\n", port)})
	base := fmt.Sprintf("http://127.0.0.1:%d", port)
	hc := &http.Client{Timeout: 5 * time.Second}
	get := func(path string) (int, string, error) {
		resp, err := hc.Get(base + path)
		if err != nil {
			return 0, "", err
		}
		defer resp.Body.Close()
		b, err := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b), err
	}

	// The metrics listener may open a moment after the Pacemaker port.
	deadline := time.Now().Add(2 * time.Second)
	for {
		_, _, err := get("/healthz")
		if err == nil {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("metrics endpoint on pacemaker.metrics.listen: %v", err)
		}
		time.Sleep(20 * time.Millisecond)
	}
	if code, body, err := get("/healthz"); err != nil || code != 200 || body != "ok" {
		t.Fatalf("/healthz = %d %q %v", code, body, err)
	}
	if code, body, err := get("/readyz"); err != nil || code != 200 || body != "ready" {
		t.Fatalf("/readyz = %d %q %v", code, body, err)
	}

	ctx := context.Background()
	c, err := client.Dial(ctx, p.Addr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var sent int
	var cost int64 // what the store counts: keys, values, per-key cost
	for i := range 5 {
		hb := stormhb.Encode(stormhb.Heartbeat{StormID: "t-1-1", TimeSecs: time.Now().Unix(), UptimeSecs: 1}, 4+i)
		sent += len(hb)
		key := fmt.Sprintf("/workerbeats/t-1-1/sup-%d-6700", i)
		cost += store.Cost(key, hb)
		if err := c.SendPulse(ctx, key, hb); err != nil {
			t.Fatal(err)
		}
	}
	if _, _, err := c.GetPulse(ctx, "/workerbeats/t-1-1/sup-0-6700"); err != nil {
		t.Fatal(err)
	}

	code, body, err := get("/metrics")
	if err != nil || code != 200 {
		t.Fatalf("/metrics = %d %v", code, err)
	}
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(body))
	if err != nil {
		t.Fatalf("parse /metrics: %v", err)
	}
	value := func(name string) float64 {
		f := fams[name]
		if f == nil || len(f.GetMetric()) == 0 {
			t.Errorf("/metrics lacks %s", name)
			return -1
		}
		m := f.GetMetric()[0]
		switch {
		case m.Counter != nil:
			return m.Counter.GetValue()
		case m.Gauge != nil:
			return m.Gauge.GetValue()
		case m.Histogram != nil:
			return float64(m.Histogram.GetSampleCount())
		}
		return -1
	}
	for name, want := range map[string]float64{
		"pacemaker_send_pulse_total":               5,
		"pacemaker_get_pulse_total":                1,
		"pacemaker_keys":                           5,
		"pacemaker_stored_bytes":                   float64(cost),
		"pacemaker_heartbeat_received_bytes_total": float64(sent),
		"pacemaker_heartbeat_size_bytes":           5,
		"pacemaker_build_info":                     1,
	} {
		if got := value(name); got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if value("pacemaker_open_connections") < 1 || value("process_resident_memory_bytes") <= 0 {
		t.Errorf("open connections or process metrics missing")
	}
}
