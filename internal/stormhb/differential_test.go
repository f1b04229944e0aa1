package stormhb

// Differential tests against Apache Thrift's Go library and the types its
// compiler generated from internal/thriftref/cwh.thrift: what we write,
// Thrift reads; what Thrift writes, we read.

import (
	"context"
	"fmt"
	"math/rand/v2"
	"testing"

	"github.com/apache/thrift/lib/go/thrift"

	"github.com/storm-pacemaker/pacemaker/internal/stormhb/internal/thriftref"
)

func TestThriftReadsWhatWeWrite(t *testing.T) {
	hb := Heartbeat{StormID: "topo-7-1700000000", TimeSecs: 1_700_000_777, UptimeSecs: 99}
	for _, executors := range []int{0, 1, 5, 33} {
		for _, streams := range []int{1, 3} {
			t.Run(fmt.Sprintf("executors=%d/streams=%d", executors, streams), func(t *testing.T) {
				raw := Encode(hb, executors, WithCompression(Raw), WithWideTime(), WithStreams(streams))
				ref := thriftref.NewClusterWorkerHeartbeat()
				if err := thrift.NewTDeserializer().Read(context.Background(), ref, raw); err != nil {
					t.Fatalf("Thrift cannot read our heartbeat: %v", err)
				}
				if ref.StormID != hb.StormID || ref.TimeSecs != hb.TimeSecs || ref.UptimeSecs != hb.UptimeSecs || len(ref.ExecutorStats) != executors {
					t.Fatalf("Thrift read %s/%d/%d/%d executors", ref.StormID, ref.TimeSecs, ref.UptimeSecs, len(ref.ExecutorStats))
				}
				for info, st := range ref.ExecutorStats {
					if info.TaskStart != info.TaskEnd || info.TaskStart < 1 || int(info.TaskStart) > executors {
						t.Fatalf("executor %+v", info)
					}
					spout := (info.TaskStart-1)%4 == 0
					if spout != st.Specific.IsSetSpout() || spout == st.Specific.IsSetBolt() {
						t.Fatalf("executor %d: spout=%v but stats %v", info.TaskStart, spout, st.Specific)
					}
					for _, win := range statWindows {
						if len(st.Emitted[win]) != streams+2 {
							t.Fatalf("executor %d window %q: %d emitted streams, want %d", info.TaskStart, win, len(st.Emitted[win]), streams+2)
						}
					}
				}
				// And the Storm 2.x layout, i32 time_secs.
				narrow := Encode(hb, executors, WithCompression(Raw), WithStreams(streams))
				ref2 := thriftref.NewClusterWorkerHeartbeatV2()
				if err := thrift.NewTDeserializer().Read(context.Background(), ref2, narrow); err != nil {
					t.Fatalf("Thrift cannot read our Storm 2.x heartbeat: %v", err)
				}
				if int64(ref2.TimeSecs) != hb.TimeSecs || len(ref2.ExecutorStats) != executors {
					t.Fatalf("Thrift read time %d, %d executors", ref2.TimeSecs, len(ref2.ExecutorStats))
				}
			})
		}
	}
}

// randomStats builds an ExecutorStats with random shapes, including empty
// maps, so our skipper meets what Thrift writes for any content.
func randomStats(rng *rand.Rand) *thriftref.ExecutorStats {
	str := func() string { return fmt.Sprintf("s%d", rng.IntN(1000)) }
	counts := func() map[string]map[string]int64 {
		m := map[string]map[string]int64{}
		for range rng.IntN(4) {
			inner := map[string]int64{}
			for range rng.IntN(4) {
				inner[str()] = rng.Int64()
			}
			m[str()] = inner
		}
		return m
	}
	st := &thriftref.ExecutorStats{Emitted: counts(), Transferred: counts(), Rate: rng.Float64(),
		Specific: &thriftref.ExecutorSpecificStats{}}
	if rng.IntN(2) == 0 {
		st.Specific.Spout = &thriftref.SpoutStats{Acked: counts(), Failed: counts(), CompleteMsAvg: map[string]map[string]float64{"600": {"x": 1.5}}}
	} else {
		gsid := func() map[string]map[*thriftref.GlobalStreamId]int64 {
			return map[string]map[*thriftref.GlobalStreamId]int64{":all-time": {{ComponentId: str(), StreamId: str()}: rng.Int64()}}
		}
		avg := map[string]map[*thriftref.GlobalStreamId]float64{"600": {{ComponentId: "c", StreamId: "d"}: 2.5}}
		st.Specific.Bolt = &thriftref.BoltStats{Acked: gsid(), Failed: gsid(), ProcessMsAvg: avg, Executed: gsid(), ExecuteMsAvg: avg}
	}
	return st
}

func TestWeReadWhatThriftWrites(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	for i := range 200 {
		n := rng.IntN(12)
		stats := map[*thriftref.ExecutorInfo]*thriftref.ExecutorStats{}
		for j := range n {
			stats[&thriftref.ExecutorInfo{TaskStart: int32(j), TaskEnd: int32(j + rng.IntN(3))}] = randomStats(rng)
		}
		want := Heartbeat{StormID: fmt.Sprintf("topo-%d", i), TimeSecs: rng.Int64N(1 << 40), UptimeSecs: rng.Int32(), Executors: n}
		var raw []byte
		var err error
		ser := thrift.NewTSerializer()
		if i%2 == 0 {
			raw, err = ser.Write(context.Background(), &thriftref.ClusterWorkerHeartbeat{StormID: want.StormID,
				ExecutorStats: stats, TimeSecs: want.TimeSecs, UptimeSecs: want.UptimeSecs})
		} else {
			want.TimeSecs = int64(int32(want.TimeSecs))
			raw, err = ser.Write(context.Background(), &thriftref.ClusterWorkerHeartbeatV2{StormID: want.StormID,
				ExecutorStats: stats, TimeSecs: int32(want.TimeSecs), UptimeSecs: want.UptimeSecs})
		}
		if err != nil {
			t.Fatal(err)
		}
		payload, err := compress(raw, Compression(i%3))
		if err != nil {
			t.Fatal(err)
		}
		got, err := Decode(payload)
		if err != nil {
			t.Fatalf("heartbeat %d (%s): %v", i, Compression(i%3), err)
		}
		if got != want {
			t.Fatalf("heartbeat %d: got %+v, want %+v", i, got, want)
		}
	}
}

func FuzzDecode(f *testing.F) {
	hb := Heartbeat{StormID: "t-1-1", TimeSecs: 9, UptimeSecs: 3}
	for _, c := range []Compression{Raw, Gzip, Zstd} {
		f.Add(Encode(hb, 2, WithCompression(c)))
		f.Add(Encode(hb, 1, WithCompression(c), WithWideTime()))
	}
	f.Add([]byte{0})
	f.Add([]byte{tMap, 0, 2, tStruct, tStruct, 0x7f, 0xff, 0xff, 0xff})
	f.Fuzz(func(t *testing.T, b []byte) {
		got, err := Decode(b)
		if err != nil {
			return
		}
		raw, err := Unwrap(b)
		if err != nil {
			t.Fatalf("Decode succeeded but Unwrap failed: %v", err)
		}
		// Every executor entry takes at least two bytes (two empty structs).
		if got.Executors < 0 || 2*got.Executors > len(raw) {
			t.Fatalf("%d executors from %d bytes", got.Executors, len(raw))
		}
		// Whatever we decode, Thrift decodes the same way.
		if Sniff(b) == Raw {
			checkAgainstThrift(t, raw, got)
		}
	})
}

// checkAgainstThrift compares our decoding with Thrift's when Thrift can
// read raw with either layout.
func checkAgainstThrift(t *testing.T, raw []byte, got Heartbeat) {
	wide := thriftref.NewClusterWorkerHeartbeat()
	if thrift.NewTDeserializer().Read(context.Background(), wide, raw) == nil {
		// time_secs may legitimately differ: we also take Storm 2.x's i32,
		// which this (3.x) layout skips.
		if wide.StormID != got.StormID || wide.UptimeSecs != got.UptimeSecs || len(wide.ExecutorStats) != got.Executors {
			t.Fatalf("Thrift read %q/%d/%d executors, we read %+v", wide.StormID, wide.UptimeSecs, len(wide.ExecutorStats), got)
		}
	}
}
