// Package thriftbin is what the two hand-written readers of Thrift's binary
// protocol share — internal/wire's HBMessage codec and internal/stormhb's
// ClusterWorkerHeartbeat decoder: the type codes and passing over a value
// neither keeps (an unknown field, or a known id of the wrong type).
package thriftbin

import (
	"encoding/binary"
	"fmt"
)

// Type codes of the binary protocol. Thrift 0.17's UUID (16) is not one:
// Storm's libthrift 0.16, which writes everything these readers read,
// neither writes nor skips it, so Skip refuses it like any unknown code.
const (
	Stop   byte = 0
	Bool   byte = 2
	Byte   byte = 3
	Double byte = 4
	I16    byte = 6
	I32    byte = 8
	I64    byte = 10
	String byte = 11
	Struct byte = 12
	Map    byte = 13
	Set    byte = 14
	List   byte = 15
)

// MaxDepth bounds nesting while skipping, as Thrift's own libraries do, so a
// hostile payload cannot exhaust the stack: the skipped value is depth 0,
// and a value at depth MaxDepth is refused.
const MaxDepth = 64

// MinSize is the fewest bytes a value of type t takes on the wire; 1 for a
// code Skip refuses.
func MinSize(t byte) int {
	switch t {
	case I16:
		return 2
	case I32, String:
		return 4
	case I64, Double:
		return 8
	case Set, List:
		return 5 // element type, count
	case Map:
		return 6 // key and value types, count
	}
	return 1 // bool, byte, a struct's stop byte
}

// Skip returns the offset just past the value of type t that starts at
// b[off:], passing over it as Thrift's TProtocolUtil.skip does. It
// allocates nothing, and every length and count is checked against the
// bytes left before it is used. Errors name the offset; callers wrap them
// in their own malformed-input error.
func Skip(b []byte, off int, t byte) (int, error) {
	return skip(b, off, t, 0)
}

func skip(b []byte, off int, t byte, depth int) (int, error) {
	if depth >= MaxDepth {
		return off, fmt.Errorf("nested deeper than %d at offset %d", MaxDepth, off)
	}
	switch t {
	case Bool, Byte, I16, I32, I64, Double:
		return take(b, off, MinSize(t))
	case String:
		next, err := take(b, off, 4)
		if err != nil {
			return off, err
		}
		return take(b, next, int(int32(binary.BigEndian.Uint32(b[off:]))))
	case Struct:
		for {
			end, err := take(b, off, 1)
			if err != nil {
				return off, err
			}
			ft := b[off]
			if ft == Stop {
				return end, nil
			}
			if off, err = take(b, end, 2); err != nil { // the field id
				return off, err
			}
			if off, err = skip(b, off, ft, depth+1); err != nil {
				return off, err
			}
		}
	case Map, Set, List:
		types := 1
		if t == Map {
			types = 2
		}
		end, err := take(b, off, types)
		if err != nil {
			return off, err
		}
		elem := b[off:end]
		perElem := 0
		for _, et := range elem {
			perElem += MinSize(et)
		}
		n, off, err := count(b, end, perElem)
		if err != nil {
			return off, err
		}
		for range n {
			for _, et := range elem {
				if off, err = skip(b, off, et, depth+1); err != nil {
					return off, err
				}
			}
		}
		return off, nil
	}
	return off, fmt.Errorf("unknown Thrift type %d at offset %d", t, off)
}

// take returns the offset n bytes on, if there are n bytes.
func take(b []byte, off, n int) (int, error) {
	if n < 0 || n > len(b)-off {
		return off, fmt.Errorf("need %d bytes at offset %d, have %d", n, off, len(b)-off)
	}
	return off + n, nil
}

// count reads a container's element count and checks that that many
// elements of at least perElem bytes each fit in what is left.
func count(b []byte, off, perElem int) (n int, next int, err error) {
	next, err = take(b, off, 4)
	if err != nil {
		return 0, off, err
	}
	c := int32(binary.BigEndian.Uint32(b[off:]))
	if c < 0 || int64(c)*int64(perElem) > int64(len(b)-next) {
		return 0, off, fmt.Errorf("container of %d elements at offset %d, only %d bytes left", c, next, len(b)-next)
	}
	return int(c), next, nil
}
