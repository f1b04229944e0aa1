package stormhb

import (
	"encoding/binary"
	"errors"
	"fmt"
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
	tUUID   byte = 16
)

// maxDepth bounds nesting while skipping, as Thrift's own libraries do (64),
// so a hostile payload cannot exhaust the stack.
const maxDepth = 64

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

// containerSize reads a container's element count and checks it against
// the bytes left: every element takes at least one byte on the wire.
func (r *reader) containerSize(perElem int) (int, error) {
	n, err := r.i32()
	if err != nil {
		return 0, err
	}
	if n < 0 || int64(n)*int64(perElem) > int64(len(r.b)-r.off) {
		return 0, malformed("container of %d elements at offset %d, only %d bytes left", n, r.off, len(r.b)-r.off)
	}
	return int(n), nil
}

// minSize is the fewest bytes a value of type t takes.
func minSize(t byte) int {
	switch t {
	case tBool, tByte, tStruct:
		return 1
	case tI16:
		return 2
	case tI32, tString:
		return 4
	case tDouble, tI64:
		return 8
	case tMap:
		return 6
	case tSet, tList:
		return 5
	case tUUID:
		return 16
	}
	return 1
}

// skip moves past one value of type t without keeping it.
func (r *reader) skip(t byte, depth int) error {
	if depth > maxDepth {
		return malformed("nested deeper than %d", maxDepth)
	}
	switch t {
	case tBool, tByte:
		_, err := r.take(1)
		return err
	case tI16:
		_, err := r.take(2)
		return err
	case tI32:
		_, err := r.take(4)
		return err
	case tDouble, tI64:
		_, err := r.take(8)
		return err
	case tUUID:
		_, err := r.take(16)
		return err
	case tString:
		n, err := r.i32()
		if err != nil {
			return err
		}
		_, err = r.take(int(n))
		return err
	case tStruct:
		for {
			ft, _, err := r.fieldHeader()
			if err != nil {
				return err
			}
			if ft == tStop {
				return nil
			}
			if err := r.skip(ft, depth+1); err != nil {
				return err
			}
		}
	case tMap:
		kt, err := r.u8()
		if err != nil {
			return err
		}
		vt, err := r.u8()
		if err != nil {
			return err
		}
		n, err := r.containerSize(minSize(kt) + minSize(vt))
		if err != nil {
			return err
		}
		return r.skipElems(n, depth, kt, vt)
	case tSet, tList:
		et, err := r.u8()
		if err != nil {
			return err
		}
		n, err := r.containerSize(minSize(et))
		if err != nil {
			return err
		}
		return r.skipElems(n, depth, et)
	}
	return malformed("unknown Thrift type %d at offset %d", t, r.off)
}

// skipElems skips n container elements, each made of one value per type in
// types (key and value for a map).
func (r *reader) skipElems(n, depth int, types ...byte) error {
	for range n {
		for _, t := range types {
			if err := r.skip(t, depth+1); err != nil {
				return err
			}
		}
	}
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
			if err := r.skip(t, 1); err != nil {
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
	kt, err := r.u8()
	if err != nil {
		return 0, err
	}
	vt, err := r.u8()
	if err != nil {
		return 0, err
	}
	n, err := r.containerSize(minSize(kt) + minSize(vt))
	if err != nil {
		return 0, err
	}
	return n, r.skipElems(n, 1, kt, vt)
}
