// Package stormhb reads the heartbeats Storm workers store in Pacemaker: a
// ClusterWorkerHeartbeat (storm.thrift) in Thrift's binary protocol, as
// written by Storm's configured serialization delegate (storm.yaml's
// storm.meta.serialization.delegate):
//
//   - Storm 2.x (GzipThriftSerializationDelegate): gzip, time_secs an i32.
//   - Storm 3.x (ZstdBridgeThriftSerializationDelegate): zstd, time_secs an
//     i64 (promoted for the 2038 rollover).
//   - ThriftSerializationDelegate: the bare Thrift bytes.
//
// Decode accepts all of them, sniffing the compression by its magic number
// as Storm's bridge delegates do. Only what an operator needs is decoded
// (topology id, time, uptime, executor count); executor statistics are
// skipped without being materialised. Encode writes realistic heartbeats
// for tests and benchmarks.
package stormhb

import (
	"bytes"
	"compress/gzip"
	"errors"
	"fmt"
	"io"
	"sync"

	"github.com/klauspost/compress/zstd"
)

// Heartbeat is the part of a ClusterWorkerHeartbeat that tools look at.
type Heartbeat struct {
	StormID    string // topology id, e.g. "wordcount-1-1700000000"
	TimeSecs   int64  // when the worker wrote it (unix seconds)
	UptimeSecs int32  // the worker's uptime then
	Executors  int    // entries in executor_stats
}

// Compression is how a heartbeat's Thrift bytes are wrapped.
type Compression int

// The wrappings Storm's serialization delegates produce.
const (
	Raw  Compression = iota // ThriftSerializationDelegate
	Gzip                    // GzipThriftSerializationDelegate (Storm 2.x default)
	Zstd                    // ZstdThriftSerializationDelegate (Storm 3.x default)
)

func (c Compression) String() string {
	switch c {
	case Raw:
		return "raw"
	case Gzip:
		return "gzip"
	case Zstd:
		return "zstd"
	}
	return fmt.Sprintf("Compression(%d)", int(c))
}

// MaxDecompressed bounds a decompressed heartbeat, as Storm's
// storm.compression.*.max.decompressed.bytes does (same 100 MiB default).
const MaxDecompressed = 100 << 20

var (
	zstdMagic = []byte{0x28, 0xb5, 0x2f, 0xfd}
	gzipMagic = []byte{0x1f, 0x8b}
)

// Sniff tells how payload is wrapped, by the magic numbers Storm's bridge
// delegates test: zstd first, then gzip, else bare Thrift.
func Sniff(payload []byte) Compression {
	switch {
	case bytes.HasPrefix(payload, zstdMagic):
		return Zstd
	case bytes.HasPrefix(payload, gzipMagic):
		return Gzip
	}
	return Raw
}

// ErrTooLarge is returned for a payload that decompresses past MaxDecompressed.
var ErrTooLarge = errors.New("heartbeat decompresses past the size limit")

// zstdDecoder is shared: DecodeAll is safe for concurrent use.
var zstdDecoder = sync.OnceValues(func() (*zstd.Decoder, error) {
	return zstd.NewReader(nil, zstd.WithDecoderConcurrency(1), zstd.WithDecoderMaxMemory(MaxDecompressed))
})

// Unwrap returns the Thrift bytes inside payload, decompressing when needed.
// Raw payloads are returned as they are, without a copy.
func Unwrap(payload []byte) ([]byte, error) {
	switch Sniff(payload) {
	case Zstd:
		d, err := zstdDecoder()
		if err != nil {
			return nil, fmt.Errorf("zstd decoder: %w", err)
		}
		out, err := d.DecodeAll(payload, nil)
		if errors.Is(err, zstd.ErrDecoderSizeExceeded) || errors.Is(err, zstd.ErrWindowSizeExceeded) {
			return nil, ErrTooLarge
		}
		if err != nil {
			return nil, fmt.Errorf("zstd: %w", err)
		}
		if len(out) > MaxDecompressed {
			return nil, ErrTooLarge
		}
		return out, nil
	case Gzip:
		var out bytes.Buffer
		if err := gunzip(&out, payload); err != nil {
			return nil, err
		}
		return out.Bytes(), nil
	}
	return payload, nil
}

// gzipReaders and gunzipped are reused across Decode calls: a reader holds
// a 32 KiB window, and a scan of a large store decodes a million heartbeats.
var (
	gzipReaders sync.Pool // *gzip.Reader
	gunzipped   sync.Pool // *bytes.Buffer
)

// gunzip appends payload's gzip content to out, at most MaxDecompressed.
func gunzip(out *bytes.Buffer, payload []byte) error {
	zr, _ := gzipReaders.Get().(*gzip.Reader)
	var err error
	if zr == nil {
		zr, err = gzip.NewReader(bytes.NewReader(payload))
	} else {
		err = zr.Reset(bytes.NewReader(payload))
	}
	if err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	defer gzipReaders.Put(zr)
	if _, err := out.ReadFrom(io.LimitReader(zr, MaxDecompressed+1)); err != nil {
		return fmt.Errorf("gzip: %w", err)
	}
	if out.Len() > MaxDecompressed {
		return ErrTooLarge
	}
	return nil
}

// Decode reads a heartbeat as Storm stored it (any compression).
func Decode(payload []byte) (Heartbeat, error) {
	var raw []byte
	var err error
	if Sniff(payload) == Gzip {
		// The Thrift bytes are not kept (DecodeThrift copies what it
		// returns), so they go into a reused buffer.
		buf, _ := gunzipped.Get().(*bytes.Buffer)
		if buf == nil {
			buf = new(bytes.Buffer)
		}
		buf.Reset()
		defer func() {
			if buf.Cap() <= 1<<20 { // not a rare giant
				gunzipped.Put(buf)
			}
		}()
		err = gunzip(buf, payload)
		raw = buf.Bytes()
	} else {
		raw, err = Unwrap(payload)
	}
	if err != nil {
		return Heartbeat{}, fmt.Errorf("decode heartbeat: %w", err)
	}
	hb, err := DecodeThrift(raw)
	if err != nil {
		return Heartbeat{}, fmt.Errorf("decode heartbeat (%s): %w", Sniff(payload), err)
	}
	return hb, nil
}

// Newer reports whether heartbeat a is newer than b, the way Nimbus picks
// among the copies on several Pacemaker servers: by time_secs, with ties
// going to the copy seen first (b). A copy that does not decode never wins
// over one that does; when neither decodes, b (the first) wins.
func Newer(a, b []byte) bool {
	ha, err := Decode(a)
	if err != nil {
		return false
	}
	hb, err := Decode(b)
	if err != nil {
		return true
	}
	return ha.TimeSecs > hb.TimeSecs
}
