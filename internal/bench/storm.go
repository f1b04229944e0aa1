package bench

import (
	"fmt"
	"math/rand/v2"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/stormhb"
)

// Cluster is a simulated Storm cluster: Supervisors × WorkersPerSupervisor
// workers, grouped into topologies of TopologyWorkers workers each, every
// worker writing a ClusterWorkerHeartbeat with Executors executors.
type Cluster struct {
	Supervisors          int
	WorkersPerSupervisor int // Storm's default supervisor.slots.ports has 4
	TopologyWorkers      int // workers per topology
	Executors            int // executors per worker
	Streams              int // user streams per executor
	Compression          stormhb.Compression
	// Name is the topologies' name (default "bench-topology") and Epoch
	// their launch time, both part of their ids.
	Name  string
	Epoch int64
}

// Workers is the number of simulated workers.
func (c Cluster) Workers() int { return c.Supervisors * c.WorkersPerSupervisor }

// Topologies is how many topologies the workers form.
func (c Cluster) Topologies() int {
	tw := max(c.TopologyWorkers, 1)
	return (c.Workers() + tw - 1) / tw
}

// TopologyID names topology t the way Storm does: name-counter-launchtime.
func (c Cluster) TopologyID(t int) string {
	name := c.Name
	if name == "" {
		name = "bench-topology"
	}
	return fmt.Sprintf("%s-%d-%d", name, t+1, c.Epoch)
}

// SupervisorID is a UUID-shaped id, like the ones Storm supervisors generate,
// but derived from the index so runs are repeatable.
func SupervisorID(s int) string {
	r := rand.New(rand.NewPCG(uint64(s), 0x5eed))
	return fmt.Sprintf("%08x-%04x-4%03x-%04x-%012x",
		r.Uint32(), r.Uint32()&0xffff, r.Uint32()&0xfff, 0x8000|r.Uint32()&0x3fff, r.Uint64()&0xffffffffffff)
}

// Worker is one simulated worker process.
type Worker struct {
	Index      int // 0..Workers()-1
	Supervisor int
	Port       int // 6700, 6701, ...
	Topology   int
}

// Worker returns worker i (supervisor-major: a supervisor's slots are
// consecutive).
func (c Cluster) Worker(i int) Worker {
	wps := max(c.WorkersPerSupervisor, 1)
	return Worker{
		Index:      i,
		Supervisor: i / wps,
		Port:       6700 + i%wps,
		Topology:   i / max(c.TopologyWorkers, 1),
	}
}

// WorkerbeatsRoot is where Storm keeps worker heartbeats.
const WorkerbeatsRoot = "/workerbeats"

// TopologyPath is /workerbeats/<topology-id>.
func (c Cluster) TopologyPath(t int) string { return WorkerbeatsRoot + "/" + c.TopologyID(t) }

// Key is the worker's heartbeat path,
// /workerbeats/<topology-id>/<supervisor-id>-<port>.
func (c Cluster) Key(w Worker) string {
	return fmt.Sprintf("%s/%s-%d", c.TopologyPath(w.Topology), SupervisorID(w.Supervisor), w.Port)
}

// Payload encodes the heartbeat a worker of topology t writes at time now,
// up for uptime: a real Thrift ClusterWorkerHeartbeat, compressed as Storm's
// serialization delegate does, whose size grows with the executor count.
func (c Cluster) Payload(t int, now time.Time, uptime time.Duration) []byte {
	opts := []stormhb.Option{stormhb.WithCompression(c.Compression), stormhb.WithStreams(max(c.Streams, 1))}
	hb := stormhb.Heartbeat{StormID: c.TopologyID(t), TimeSecs: now.Unix(), UptimeSecs: int32(uptime / time.Second)}
	return stormhb.Encode(hb, max(c.Executors, 1), opts...)
}

// Payloads encodes one heartbeat per topology, shared by its workers:
// compressing a fresh heartbeat for every send would cost the load
// generator more CPU than the server spends storing it.
func (c Cluster) Payloads(now time.Time) [][]byte {
	out := make([][]byte, c.Topologies())
	for t := range out {
		out[t] = c.Payload(t, now, time.Duration(t%600)*time.Second)
	}
	return out
}
