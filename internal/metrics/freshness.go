package metrics

import (
	"strings"
	"sync/atomic"
	"time"
	"unicode/utf8"

	"github.com/prometheus/client_golang/prometheus"

	"github.com/storm-pacemaker/pacemaker/internal/store"
)

// workerbeatsDir is where Storm's workers write their heartbeats:
// /workerbeats/<topology-id>/<supervisor-id>-<port>.
const workerbeatsDir = "/workerbeats"

// Freshness defaults: Storm 2.x workers write every
// task.heartbeat.frequency.secs (3 s); 100 topologies is more than most
// clusters run, and few enough series for any Prometheus.
const (
	DefaultHeartbeatPeriod = 3 * time.Second
	DefaultMaxTopologies   = 100
)

// OtherTopology is the topology label of the topologies beyond the cap, so
// a stale worker is counted even when its topology has no series of its
// own. Storm's topology ids ("name-N-timestamp") never equal it.
const OtherTopology = "other"

// stalePeriods are the ages, in heartbeat periods, past which a worker key
// counts as not rewritten: 1 = late (one write missed, or jitter), 3 = stale.
var stalePeriods = [...]struct {
	n     int64
	label string
}{{1, "1"}, {3, "3"}}

// freshnessCollector reports, per topology, how many worker keys the store
// holds and how many were not rewritten in time. It reads the write times
// the store keeps for the TTL, at scrape time: no decoding, nothing on the
// request path, one shard lock held at a time.
type freshnessCollector struct {
	store *store.Store

	period        atomic.Int64 // nanoseconds
	maxTopologies atomic.Int64

	periodDesc, topologies, workers, stale, oldest *prometheus.Desc
}

func newFreshnessCollector(st *store.Store) *freshnessCollector {
	d := func(name, help string, labels ...string) *prometheus.Desc {
		return prometheus.NewDesc(namespace+"_"+name, help, labels, nil)
	}
	c := &freshnessCollector{
		store:      st,
		periodDesc: d("heartbeat_period_seconds", "How often a worker is expected to rewrite its heartbeat (task.heartbeat.frequency.secs)."),
		topologies: d("topologies", "Topologies with keys under /workerbeats, including those folded into topology=\"other\"."),
		workers:    d("topology_workers", "Worker heartbeat keys under /workerbeats/<topology>.", "topology"),
		stale: d("topology_workers_stale", "Worker heartbeat keys not rewritten within the given number of heartbeat periods.",
			"topology", "periods"),
		oldest: d("topology_oldest_heartbeat_age_seconds", "Time since the least recently written worker key of the topology was written.", "topology"),
	}
	c.set(DefaultHeartbeatPeriod, DefaultMaxTopologies)
	return c
}

// maxTopologyLabel bounds a topology label's length: any writer may name a
// topology, and Storm's ids ("name-N-timestamp") are far shorter.
const maxTopologyLabel = 256

// labelValue reports whether a topology name may become a label value
// (Prometheus refuses invalid UTF-8); others are counted as "other", and so
// is a topology named "other", which would otherwise make two series alike.
func labelValue(name string) bool {
	return len(name) <= maxTopologyLabel && utf8.ValidString(name) && name != OtherTopology
}

func (c *freshnessCollector) set(period time.Duration, maxTopologies int) {
	c.period.Store(int64(period))
	c.maxTopologies.Store(int64(maxTopologies))
}

// Describe implements prometheus.Collector.
func (c *freshnessCollector) Describe(ch chan<- *prometheus.Desc) {
	for _, d := range []*prometheus.Desc{c.periodDesc, c.topologies, c.workers, c.stale, c.oldest} {
		ch <- d
	}
}

// topologyAges is one topology's tally.
type topologyAges struct {
	keys   int
	stale  [len(stalePeriods)]int
	oldest int64 // write time, unix nanoseconds
}

// Collect implements prometheus.Collector.
func (c *freshnessCollector) Collect(ch chan<- prometheus.Metric) {
	period := c.period.Load()
	ch <- prometheus.MustNewConstMetric(c.periodDesc, prometheus.GaugeValue, time.Duration(period).Seconds())

	// The labelled topologies are the first by name: the same ones from
	// scrape to scrape, so series do not come and go while the set is
	// unchanged. The listing is the index's cached one (no copy, no walk).
	names := c.store.Children(workerbeatsDir)
	ch <- prometheus.MustNewConstMetric(c.topologies, prometheus.GaugeValue, float64(len(names)))
	limit := int(max(c.maxTopologies.Load(), 0))
	labelled := make([]string, 0, min(len(names), limit))
	for _, name := range names {
		if len(labelled) == limit {
			break
		}
		if labelValue(name) {
			labelled = append(labelled, name)
		}
	}
	slot := make(map[string]int, len(labelled))
	for i, name := range labelled {
		slot[name] = i
	}
	tally := make([]topologyAges, len(labelled)+1) // the last is "other"

	now := time.Now().UnixNano()
	var cutoffs [len(stalePeriods)]int64
	for i, p := range stalePeriods {
		cutoffs[i] = now - p.n*period
	}
	c.store.WriteTimes(workerbeatsDir+"/", func(key string, written int64) {
		topology, _, worker := strings.Cut(key[len(workerbeatsDir)+1:], "/")
		if !worker {
			return // a key naming a topology itself: not a worker's heartbeat
		}
		i, ok := slot[topology]
		if !ok {
			i = len(labelled)
		}
		t := &tally[i]
		if t.keys == 0 || written < t.oldest {
			t.oldest = written
		}
		t.keys++
		for j, cut := range cutoffs {
			if written < cut {
				t.stale[j]++
			}
		}
	})

	emit := func(topology string, t *topologyAges) {
		ch <- prometheus.MustNewConstMetric(c.workers, prometheus.GaugeValue, float64(t.keys), topology)
		for j, p := range stalePeriods {
			ch <- prometheus.MustNewConstMetric(c.stale, prometheus.GaugeValue, float64(t.stale[j]), topology, p.label)
		}
		age := 0.0
		if t.keys > 0 {
			age = max(time.Duration(now-t.oldest).Seconds(), 0)
		}
		ch <- prometheus.MustNewConstMetric(c.oldest, prometheus.GaugeValue, age, topology)
	}
	for i, name := range labelled {
		emit(name, &tally[i])
	}
	if other := &tally[len(labelled)]; other.keys > 0 {
		emit(OtherTopology, other)
	}
}
