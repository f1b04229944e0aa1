package bench

import (
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/stormhb"
)

func TestPayloadGrowsWithExecutors(t *testing.T) {
	now := time.Unix(1700000123, 0)
	for _, comp := range []stormhb.Compression{stormhb.Gzip, stormhb.Zstd, stormhb.Raw} {
		t.Run(comp.String(), func(t *testing.T) {
			prev := 0
			for _, e := range []int{1, 2, 4, 8, 16, 32, 64} {
				c := Cluster{Supervisors: 1, WorkersPerSupervisor: 1, TopologyWorkers: 1, Executors: e, Compression: comp, Epoch: 1700000000}
				p := c.Payload(0, now, time.Minute)
				if len(p) <= prev {
					t.Fatalf("%d executors: %d bytes, not more than %d for fewer", e, len(p), prev)
				}
				hb, err := stormhb.Decode(p)
				if err != nil {
					t.Fatalf("%d executors: payload does not decode: %v", e, err)
				}
				if hb.Executors != e || hb.StormID != c.TopologyID(0) || hb.TimeSecs != now.Unix() || hb.UptimeSecs != 60 {
					t.Fatalf("%d executors: decoded %+v", e, hb)
				}
				if stormhb.Sniff(p) != comp {
					t.Fatalf("payload wrapped as %v, want %v", stormhb.Sniff(p), comp)
				}
				prev = len(p)
			}
		})
	}
}

// The default heartbeat is about the size the anchors were measured with.
func TestDefaultPayloadNear4KiB(t *testing.T) {
	c := Cluster{Supervisors: 1, WorkersPerSupervisor: 1, TopologyWorkers: 1, Executors: 16, Compression: stormhb.Gzip, Epoch: 1}
	if n := len(c.Payload(0, time.Unix(1700000000, 0), time.Minute)); n < 3500 || n > 6000 {
		t.Fatalf("16 executors, gzip: %d bytes, want about 4.5 KiB", n)
	}
}

var keyPattern = regexp.MustCompile(`^/workerbeats/bench-(?:topology|load)-\d+-\d+/[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}-67\d\d$`)

func TestClusterLayout(t *testing.T) {
	c := Cluster{Supervisors: 270, WorkersPerSupervisor: 4, TopologyWorkers: 100, Executors: 4, Epoch: 1700000000}
	if c.Workers() != 1080 || c.Topologies() != 11 {
		t.Fatalf("workers %d topologies %d, want 1080 and 11", c.Workers(), c.Topologies())
	}
	seen := map[string]bool{}
	for i := range c.Workers() {
		w := c.Worker(i)
		key := c.Key(w)
		if !keyPattern.MatchString(key) {
			t.Fatalf("worker %d key %q is not /workerbeats/<topology-id>/<supervisor-id>-<port>", i, key)
		}
		if seen[key] {
			t.Fatalf("key %q twice", key)
		}
		seen[key] = true
		if !strings.HasPrefix(key, c.TopologyPath(w.Topology)+"/") {
			t.Fatalf("key %q not under its topology %q", key, c.TopologyPath(w.Topology))
		}
	}
	tests := []struct {
		i                    int
		supervisor, port, tp int
	}{
		{0, 0, 6700, 0}, {3, 0, 6703, 0}, {4, 1, 6700, 0}, {99, 24, 6703, 0}, {100, 25, 6700, 1}, {1079, 269, 6703, 10},
	}
	for _, tt := range tests {
		w := c.Worker(tt.i)
		if w.Supervisor != tt.supervisor || w.Port != tt.port || w.Topology != tt.tp {
			t.Errorf("Worker(%d) = %+v, want supervisor %d port %d topology %d", tt.i, w, tt.supervisor, tt.port, tt.tp)
		}
	}
	if SupervisorID(7) != SupervisorID(7) || SupervisorID(7) == SupervisorID(8) {
		t.Error("supervisor ids are not stable and distinct")
	}
}

func TestLoadKeysDistinct(t *testing.T) {
	keys := LoadKeys(4000)
	seen := map[string]bool{}
	tops := map[string]bool{}
	for _, k := range keys {
		if seen[k] || !keyPattern.MatchString(k) {
			t.Fatalf("bad or repeated key %q", k)
		}
		seen[k] = true
		tops[k[:strings.LastIndexByte(k, '/')]] = true
	}
	if len(tops) != 40 {
		t.Fatalf("%d topologies, want 40", len(tops))
	}
}

func TestSources(t *testing.T) {
	tests := []struct {
		name  string
		addrs []string
		i     int
		want  string // "" = no spreading
	}{
		{"loopback first host", []string{"127.0.0.1:6699"}, 0, "127.1.0.1"},
		{"loopback fifth host", []string{"127.0.0.1:6699"}, 4 * 4, "127.1.0.5"},
		{"loopback wraps octet", []string{"127.0.0.1:6699"}, 250 * 4, "127.1.1.1"},
		{"remote server", []string{"10.0.0.5:6699"}, 3, ""},
		{"hostname", []string{"localhost:6699"}, 3, ""},
		{"mixed", []string{"127.0.0.1:6699", "10.0.0.5:6699"}, 3, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			a := SourcesFor(tt.addrs, 4).Addr(tt.i)
			if tt.want == "" {
				if a != nil {
					t.Fatalf("Addr = %v, want none", a)
				}
				return
			}
			if a == nil || strings.TrimSuffix(a.String(), ":0") != tt.want {
				t.Fatalf("Addr(%d) = %v, want %s", tt.i, a, tt.want)
			}
		})
	}
}

func TestJudge(t *testing.T) {
	tests := []struct {
		name string
		t    Trial
		ok   bool
	}{
		{"fits", Trial{Offered: 1000, Achieved: 990, CPUPercent: 40}, true},
		{"cpu over", Trial{Offered: 1000, Achieved: 1000, CPUPercent: 101}, false},
		{"fell behind", Trial{Offered: 1000, Achieved: 900, CPUPercent: 40}, false},
		{"errors", Trial{Offered: 1000, Achieved: 1000, CPUPercent: 40, Errors: 1}, false},
		{"nimbus too slow", Trial{Offered: 1000, Achieved: 1000, CPUPercent: 40, NimbusCycle: 12000}, false},
		{"heartbeats late", Trial{Offered: 1000, Achieved: 1000, CPUPercent: 40, P99: 3500}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tr := tt.t
			judge(&tr, 100, 3000, 10000)
			if tr.OK != tt.ok || (tr.OK == (tr.Why != "")) {
				t.Fatalf("judge: ok %v why %q, want ok %v", tr.OK, tr.Why, tt.ok)
			}
		})
	}
}
