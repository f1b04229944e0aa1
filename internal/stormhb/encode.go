package stormhb

import (
	"bytes"
	"compress/gzip"
	"encoding/binary"
	"fmt"
	"math"
	"math/rand/v2"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Option changes how Encode writes a heartbeat.
type Option func(*encodeOptions)

type encodeOptions struct {
	compression Compression
	wideTime    bool
	streams     int
}

// WithCompression wraps the Thrift bytes as a Storm delegate would. The
// default is Gzip, Storm 2.x's.
func WithCompression(c Compression) Option { return func(o *encodeOptions) { o.compression = c } }

// WithWideTime writes time_secs as an i64, as Storm 3.x does; the default
// is Storm 2.x's i32.
func WithWideTime() Option { return func(o *encodeOptions) { o.wideTime = true } }

// WithStreams sets how many user streams each executor emits on (default 1,
// "default"); Storm's system streams (__ack_*, __metrics) come on top.
func WithStreams(n int) Option { return func(o *encodeOptions) { o.streams = max(n, 1) } }

// statWindows are the time windows Storm keys every statistic by.
var statWindows = [...]string{":all-time", "600", "10800", "86400"}

// Encode writes a ClusterWorkerHeartbeat for hb with executor_stats for
// executors executors (hb.Executors is ignored), shaped like a real
// worker's: a spout for every fourth executor and bolts otherwise, each with
// emitted/transferred counts and spout or bolt statistics per time window
// and stream, so the size grows with executors as in Storm. The counts are
// pseudo-random but fixed by hb, so equal inputs give equal bytes.
func Encode(hb Heartbeat, executors int, opts ...Option) []byte {
	o := encodeOptions{compression: Gzip, streams: 1}
	for _, opt := range opts {
		opt(&o)
	}
	raw := encodeThrift(hb, executors, &o)
	out, err := compress(raw, o.compression)
	if err != nil {
		// Compressing into memory fails only on a programming error.
		panic(fmt.Sprintf("stormhb: compress heartbeat: %v", err))
	}
	return out
}

func compress(raw []byte, c Compression) ([]byte, error) {
	switch c {
	case Raw:
		return raw, nil
	case Gzip:
		var buf bytes.Buffer
		zw := gzip.NewWriter(&buf)
		if _, err := zw.Write(raw); err != nil {
			return nil, err
		}
		if err := zw.Close(); err != nil {
			return nil, err
		}
		return buf.Bytes(), nil
	case Zstd:
		enc, err := zstdEncoder()
		if err != nil {
			return nil, err
		}
		return enc.EncodeAll(raw, nil), nil
	}
	return nil, fmt.Errorf("unknown compression %v", c)
}

// zstdEncoder is shared: EncodeAll is safe for concurrent use. Level 3 is
// Storm's default storm.compression.zstd.level.
var zstdEncoder = sync.OnceValues(func() (*zstd.Encoder, error) {
	return zstd.NewWriter(nil, zstd.WithEncoderLevel(zstd.EncoderLevelFromZstd(3)), zstd.WithEncoderConcurrency(1))
})

// writer appends Thrift binary protocol values.
type writer struct{ b []byte }

func (w *writer) field(t byte, id int16) {
	w.b = append(w.b, t)
	w.b = binary.BigEndian.AppendUint16(w.b, uint16(id))
}
func (w *writer) stop()            { w.b = append(w.b, tStop) }
func (w *writer) i32(v int32)      { w.b = binary.BigEndian.AppendUint32(w.b, uint32(v)) }
func (w *writer) i64(v int64)      { w.b = binary.BigEndian.AppendUint64(w.b, uint64(v)) }
func (w *writer) double(v float64) { w.i64(int64(math.Float64bits(v))) }
func (w *writer) str(s string) {
	w.i32(int32(len(s)))
	w.b = append(w.b, s...)
}
func (w *writer) mapHeader(kt, vt byte, n int) {
	w.b = append(w.b, kt, vt)
	w.i32(int32(n))
}

func encodeThrift(hb Heartbeat, executors int, o *encodeOptions) []byte {
	seed := uint64(hb.TimeSecs)<<32 ^ uint64(hb.UptimeSecs)
	for _, c := range []byte(hb.StormID) {
		seed = seed*31 + uint64(c)
	}
	rng := rand.New(rand.NewPCG(seed, uint64(executors)))
	w := &writer{b: make([]byte, 0, 64+executors*1200*o.streams)}
	w.field(tString, fieldStormID)
	w.str(hb.StormID)
	w.field(tMap, fieldExecutors)
	w.mapHeader(tStruct, tStruct, executors)
	for i := range executors {
		// ExecutorInfo: one task per executor, task ids from 1.
		w.field(tI32, 1)
		w.i32(int32(i + 1))
		w.field(tI32, 2)
		w.i32(int32(i + 1))
		w.stop()
		writeExecutorStats(w, rng, i%4 == 0, o.streams)
	}
	if o.wideTime {
		w.field(tI64, fieldTimeSecs)
		w.i64(hb.TimeSecs)
	} else {
		w.field(tI32, fieldTimeSecs)
		w.i32(int32(hb.TimeSecs))
	}
	w.field(tI32, fieldUptimeSecs)
	w.i32(hb.UptimeSecs)
	w.stop()
	return w.b
}

// streamNames are the streams an executor emits on: user streams and the
// system streams every Storm executor has.
func streamNames(spout bool, user int) []string {
	names := make([]string, 0, user+2)
	names = append(names, "default")
	for i := 1; i < user; i++ {
		names = append(names, fmt.Sprintf("stream-%d", i))
	}
	if spout {
		names = append(names, "__ack_init")
	} else {
		names = append(names, "__ack_ack")
	}
	return append(names, "__metrics")
}

// writeExecutorStats writes one ExecutorStats struct.
func writeExecutorStats(w *writer, rng *rand.Rand, spout bool, streams int) {
	out := streamNames(spout, streams)
	// 1: emitted, 2: transferred — map<window, map<stream, i64>>
	for id := int16(1); id <= 2; id++ {
		w.field(tMap, id)
		windowed(w, func() {
			w.mapHeader(tString, tI64, len(out))
			for _, s := range out {
				w.str(s)
				w.i64(rng.Int64N(1 << 24))
			}
		})
	}
	// 3: specific — union ExecutorSpecificStats {1: BoltStats, 2: SpoutStats}
	w.field(tStruct, 3)
	in := streamNames(spout, streams)[:streams] // user streams only
	if spout {
		w.field(tStruct, 2)
		// SpoutStats: acked, failed (i64), complete_ms_avg (double); map<window, map<stream, _>>
		for id := int16(1); id <= 3; id++ {
			w.field(tMap, id)
			windowed(w, func() {
				vt := tI64
				if id == 3 {
					vt = tDouble
				}
				w.mapHeader(tString, vt, len(in))
				for _, s := range in {
					w.str(s)
					writeNumber(w, rng, vt)
				}
			})
		}
	} else {
		w.field(tStruct, 1)
		// BoltStats: acked, failed (i64), process_ms_avg (double), executed (i64),
		// execute_ms_avg (double); map<window, map<GlobalStreamId, _>>
		for id := int16(1); id <= 5; id++ {
			w.field(tMap, id)
			windowed(w, func() {
				vt := tI64
				if id == 3 || id == 5 {
					vt = tDouble
				}
				w.mapHeader(tStruct, vt, len(in))
				for _, s := range in {
					// GlobalStreamId {1: componentId, 2: streamId}
					w.field(tString, 1)
					w.str("spout")
					w.field(tString, 2)
					w.str(s)
					w.stop()
					writeNumber(w, rng, vt)
				}
			})
		}
	}
	w.stop() // BoltStats / SpoutStats
	w.stop() // ExecutorSpecificStats
	// 4: rate
	w.field(tDouble, 4)
	w.double(rng.Float64() * 1000)
	w.stop()
}

// windowed writes map<string, V> with one entry per statistics window,
// value written by value.
func windowed(w *writer, value func()) {
	w.mapHeader(tString, tMap, len(statWindows))
	for _, win := range statWindows {
		w.str(win)
		value()
	}
}

func writeNumber(w *writer, rng *rand.Rand, t byte) {
	if t == tDouble {
		w.double(rng.Float64() * 50)
		return
	}
	w.i64(rng.Int64N(1 << 24))
}
