package stormhb

import (
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/storm-pacemaker/pacemaker/internal/thriftbin"
)

// Thrift binary protocol type ids.
const (
	tStop   byte = 0
	tBool   byte = 2
	tByte   byte = 3
	tDouble byte = 4
	tI16    byte = 6
	tI32    byte = 8
	tI64    byte = 10
	tString byte = 11
	tStruct byte = 12
	tMap    byte = 13
	tSet    byte = 14
	tList   byte = 15
)

// ErrMalformed is wrapped by every decoding error about the Thrift bytes.
var ErrMalformed = errors.New("malformed ClusterWorkerHeartbeat")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// reader walks Thrift binary bytes. Every length is checked against what is
// left before it is used, so decoding never allocates from a claimed size.
type reader struct {
	b   []byte
	off int
}

func (r *reader) take(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.off {
		return nil, malformed("need %d bytes at offset %d, have %d", n, r.off, len(r.b)-r.off)
	}
	p := r.b[r.off : r.off+n]
	r.off += n
	return p, nil
}

func (r *reader) u8() (byte, error) {
	p, err := r.take(1)
	if err != nil {
		return 0, err
	}
	return p[0], nil
}

func (r *reader) i16() (int16, error) {
	p, err := r.take(2)
	if err != nil {
		return 0, err
	}
	return int16(binary.BigEndian.Uint16(p)), nil
}

func (r *reader) i32() (int32, error) {
	p, err := r.take(4)
	if err != nil {
		return 0, err
	}
	return int32(binary.BigEndian.Uint32(p)), nil
}

func (r *reader) i64() (int64, error) {
	p, err := r.take(8)
	if err != nil {
		return 0, err
	}
	return int64(binary.BigEndian.Uint64(p)), nil
}

func (r *reader) str() (string, error) {
	n, err := r.i32()
	if err != nil {
		return "", err
	}
	p, err := r.take(int(n))
	if err != nil {
		return "", err
	}
	return string(p), nil
}

// fieldHeader reads a field's type and id; id is meaningless after tStop.
func (r *reader) fieldHeader() (t byte, id int16, err error) {
	if t, err = r.u8(); err != nil || t == tStop {
		return t, 0, err
	}
	id, err = r.i16()
	return t, id, err
}

// skip passes over one value of type t, as Thrift's generated readers do.
func (r *reader) skip(t byte) error {
	off, err := thriftbin.Skip(r.b, r.off, t)
	if err != nil {
		return malformed("%v", err)
	}
	r.off = off
	return nil
}

// ClusterWorkerHeartbeat's field ids.
const (
	fieldStormID    int16 = 1
	fieldExecutors  int16 = 2
	fieldTimeSecs   int16 = 3
	fieldUptimeSecs int16 = 4
)

// requiredFields names ClusterWorkerHeartbeat's fields by id (all required).
var requiredFields = [...]string{fieldStormID: "storm_id", fieldExecutors: "executor_stats",
	fieldTimeSecs: "time_secs", fieldUptimeSecs: "uptime_secs"}

// DecodeThrift reads an uncompressed ClusterWorkerHeartbeat. Like Thrift's
// generated readers it skips fields it does not know or whose type does not
// match, then insists on the four required fields. time_secs is accepted
// both as Storm 2.x's i32 and as Storm 3.x's i64.
func DecodeThrift(b []byte) (Heartbeat, error) {
	var hb Heartbeat
	var seen [5]bool
	r := &reader{b: b}
	for {
		t, id, err := r.fieldHeader()
		if err != nil {
			return Heartbeat{}, err
		}
		if t == tStop {
			break
		}
		switch {
		case id == fieldStormID && t == tString:
			if hb.StormID, err = r.str(); err != nil {
				return Heartbeat{}, err
			}
		case id == fieldExecutors && t == tMap:
			if hb.Executors, err = r.countMap(); err != nil {
				return Heartbeat{}, err
			}
		case id == fieldTimeSecs && t == tI64:
			if hb.TimeSecs, err = r.i64(); err != nil {
				return Heartbeat{}, err
			}
		case id == fieldTimeSecs && t == tI32:
			v, err := r.i32()
			if err != nil {
				return Heartbeat{}, err
			}
			hb.TimeSecs = int64(v)
		case id == fieldUptimeSecs && t == tI32:
			if hb.UptimeSecs, err = r.i32(); err != nil {
				return Heartbeat{}, err
			}
		default:
			if err := r.skip(t); err != nil {
				return Heartbeat{}, err
			}
			continue
		}
		seen[id] = true
	}
	for id, name := range requiredFields {
		if name != "" && !seen[id] {
			return Heartbeat{}, malformed("required field %s (%d) missing", name, id)
		}
	}
	return hb, nil
}

// countMap skips a map and returns its number of entries.
func (r *reader) countMap() (int, error) {
	start := r.off
	if err := r.skip(tMap); err != nil {
		return 0, err
	}
	// Skip checked the header: key type, value type, a count >= 0.
	return int(binary.BigEndian.Uint32(r.b[start+2:])), nil
}
