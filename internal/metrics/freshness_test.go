package metrics

import (
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/storm-pacemaker/pacemaker/internal/store"
)

// TestTopologyFreshness stores keys with known write times (Restore keeps
// the time it is given) and checks the per-topology tallies.
func TestTopologyFreshness(t *testing.T) {
	f := start(t, store.Limits{})
	st := f.srv.Store()
	now := time.Now()
	put := func(key string, age time.Duration) { st.Restore(key, []byte("hb"), now.Add(-age)) }
	// period 10 s: late after 10 s, stale after 30 s.
	f.m.SetFreshness(10*time.Second, 3)
	put("/workerbeats/a-1-1/w1", 0)
	put("/workerbeats/a-1-1/w2", 15*time.Second)
	put("/workerbeats/a-1-1/w3", 45*time.Second)
	put("/workerbeats/b-2-2/w1", 1*time.Second)
	put("/workerbeats/b-2-2/w2", 2*time.Second)
	put("/workerbeats/c-3-3/w1", time.Hour)
	put("/workerbeats/d-4-4/w1", 31*time.Second) // beyond the cap of 3: "other"
	put("/workerbeats/e-5-5/w1", 5*time.Second)  // "other" too
	put("/workerbeats/\xff\xfe/w1", 0)           // not UTF-8: never a label, "other"
	put("/workerbeats/"+strings.Repeat("x", 300)+"/w1", 0)
	put("/workerbeats/other/w1", 0)      // a topology named like the bucket: in the bucket
	put("/workerbeats/f-6-6", time.Hour) // names a topology, is no worker: not counted
	put("/other/dir/w1", time.Hour)      // outside /workerbeats: not counted
	put("/workerbeats/a-1-1/w4/x", 0)    // deeper: still topology a's

	s := f.scrape(t)
	type row struct {
		workers, late, stale float64
		oldestMin, oldestMax float64
	}
	want := map[string]row{
		"a-1-1":       {4, 2, 1, 45, 50},
		"b-2-2":       {2, 0, 0, 2, 7},
		"c-3-3":       {1, 1, 1, 3600, 3605},
		OtherTopology: {5, 1, 1, 31, 36},
	}
	for topo, w := range want {
		l := "topology=" + topo
		got := row{
			workers: s.value("pacemaker_topology_workers", l),
			late:    s.value("pacemaker_topology_workers_stale", l, "periods=1"),
			stale:   s.value("pacemaker_topology_workers_stale", l, "periods=3"),
		}
		age := s.value("pacemaker_topology_oldest_heartbeat_age_seconds", l)
		if got.workers != w.workers || got.late != w.late || got.stale != w.stale || age < w.oldestMin || age > w.oldestMax {
			t.Errorf("%s: workers %v, late %v, stale %v, oldest %.1fs; want %v, %v, %v, %v..%vs",
				topo, got.workers, got.late, got.stale, age, w.workers, w.late, w.stale, w.oldestMin, w.oldestMax)
		}
	}
	if n := len(s["pacemaker_topology_workers"].GetMetric()); n != len(want) {
		t.Errorf("%d topology series, want %d (3 named and other)", n, len(want))
	}
	if got := s.value("pacemaker_topologies"); got != 9 {
		t.Errorf("pacemaker_topologies = %v, want 9 (every child of /workerbeats)", got)
	}
	if got := s.value("pacemaker_heartbeat_period_seconds"); got != 10 {
		t.Errorf("pacemaker_heartbeat_period_seconds = %v, want 10", got)
	}

	// Without topologies beyond the cap there is no "other" series; with a
	// cap of 0 everything is "other".
	f.m.SetFreshness(10*time.Second, 100)
	if s := f.scrape(t); s.metric("pacemaker_topology_workers", "topology="+OtherTopology) == nil {
		t.Error(`the non-UTF-8 and overlong topologies should still be in "other"`)
	}
	f.m.SetFreshness(10*time.Second, 0)
	s = f.scrape(t)
	if n := len(s["pacemaker_topology_workers"].GetMetric()); n != 1 || s.value("pacemaker_topology_workers", "topology=other") != 12 {
		t.Errorf("cap 0: %d series, other = %v; want only other = 12", n, s.value("pacemaker_topology_workers", "topology=other"))
	}
}

func TestNoTopologiesNoSeries(t *testing.T) {
	f := start(t, store.Limits{})
	s := f.scrape(t)
	if s["pacemaker_topology_workers"] != nil || s.value("pacemaker_topologies") != 0 {
		t.Errorf("an empty store exports topology series: %v", s["pacemaker_topology_workers"])
	}
	if got := s.value("pacemaker_heartbeat_period_seconds"); got != DefaultHeartbeatPeriod.Seconds() {
		t.Errorf("default period %v, want %v", got, DefaultHeartbeatPeriod.Seconds())
	}
}

func TestLimitsReadinessAndSelfCheck(t *testing.T) {
	f := start(t, store.Limits{MaxKeys: 1234, MaxBytes: 5678})
	s := f.scrape(t)
	for name, want := range map[string]float64{
		"pacemaker_max_keys": 1234, "pacemaker_max_stored_bytes": 5678,
		"pacemaker_max_connections": float64(settings().MaxConns), "pacemaker_ready": 0,
	} {
		if got := s.value(name); s.metric(name) == nil || got != want {
			t.Errorf("%s = %v, want %v", name, got, want)
		}
	}
	if s["pacemaker_self_check_success"] != nil || s["pacemaker_self_checks_total"] != nil {
		t.Error("self-check metrics before any check ran")
	}

	f.ready.Store(true)
	f.srv.Store().SetLimits(store.Limits{MaxKeys: 10}) // a reload: unlimited bytes
	f.m.SelfCheck(nil)
	s = f.scrape(t)
	if s.value("pacemaker_ready") != 1 || s.value("pacemaker_max_keys") != 10 || s.metric("pacemaker_max_stored_bytes") != nil {
		t.Errorf("after reload: ready %v, max keys %v, max stored bytes %v (want 1, 10, absent)",
			s.value("pacemaker_ready"), s.value("pacemaker_max_keys"), s.metric("pacemaker_max_stored_bytes"))
	}
	if s.value("pacemaker_self_check_success") != 1 || s.value("pacemaker_self_checks_total") != 1 ||
		s.value("pacemaker_self_check_failures_total") != 0 {
		t.Errorf("after a passed check: success %v, checks %v, failures %v", s.value("pacemaker_self_check_success"),
			s.value("pacemaker_self_checks_total"), s.value("pacemaker_self_check_failures_total"))
	}
	f.m.SelfCheck(errors.New("health: no answer"))
	s = f.scrape(t)
	if s.metric("pacemaker_self_check_success").GetGauge().GetValue() != 0 || s.value("pacemaker_self_checks_total") != 2 ||
		s.value("pacemaker_self_check_failures_total") != 1 {
		t.Errorf("after a failed check: success %v, checks %v, failures %v", s.value("pacemaker_self_check_success"),
			s.value("pacemaker_self_checks_total"), s.value("pacemaker_self_check_failures_total"))
	}
	lint(t, f.m)
}

// BenchmarkFreshnessCollect is the freshness part of one scrape at 100k
// worker keys (100 topologies × 1,000 workers).
func BenchmarkFreshnessCollect(b *testing.B) {
	st := store.New(store.Limits{})
	now := time.Now()
	for i := range 100_000 {
		st.Restore(fmt.Sprintf("/workerbeats/topo-%d-1-1700000000/%08x-%d", i/1000, i, 6700+i%4),
			make([]byte, 1382), now.Add(-time.Duration(i%10)*time.Second))
	}
	c := newFreshnessCollector(st)
	ch := make(chan prometheus.Metric, 1024)
	done := make(chan int)
	go func() {
		n := 0
		for range ch {
			n++
		}
		done <- n
	}()
	b.ReportAllocs()
	for b.Loop() {
		c.Collect(ch)
	}
	close(ch)
	if n := <-done; n == 0 {
		b.Fatal("nothing collected")
	}
}
