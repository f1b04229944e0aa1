package wire

import (
	"encoding/binary"
	"errors"
	"fmt"
	"unsafe"

	"github.com/storm-pacemaker/pacemaker/internal/thriftbin"
)

// Thrift binary-protocol type codes.
const (
	tStop   = 0
	tBool   = 2
	tByte   = 3
	tDouble = 4
	tI16    = 6
	tI32    = 8
	tI64    = 10
	tString = 11
	tStruct = 12
	tMap    = 13
	tSet    = 14
	tList   = 15
)

// ErrMalformed wraps every decoding failure.
var ErrMalformed = errors.New("malformed HBMessage")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

// AppendFrame appends m as one frame (4-byte big-endian length, then the
// HBMessage body) to dst.
func AppendFrame(dst []byte, m *Message) []byte {
	start := len(dst)
	dst = append(dst, 0, 0, 0, 0)
	dst = AppendMessage(dst, m)
	binary.BigEndian.PutUint32(dst[start:], uint32(len(dst)-start-4))
	return dst
}

// AppendFrameSplit appends a frame of m, whose data is a pulse, without the
// pulse's details: the frame's length and the details' length prefix count
// them, and their bytes belong at offset at of the result. The caller sends
// out[:at], the details, then out[at:], so a large stored value is written
// to the socket from where it is stored instead of copied per answer.
func AppendFrameSplit(dst []byte, m *Message) (out []byte, at int) {
	if m.Field != FieldPulse || m.Pulse.Details == nil {
		panic("wire: AppendFrameSplit of a message without pulse details")
	}
	details := m.Pulse.Details
	hollow := *m
	hollow.Pulse.Details = []byte{}
	start := len(dst)
	out = AppendFrame(dst, &hollow)
	// type (7 bytes), data header (3), pulse header (3), id (7+len), details header (3) and length (4).
	at = start + 4 + 7 + 3 + 3 + 7 + len(m.Pulse.ID) + 3 + 4
	binary.BigEndian.PutUint32(out[at-4:], uint32(len(details)))
	binary.BigEndian.PutUint32(out[start:], uint32(len(out)-start-4+len(details)))
	return out, at
}

// FrameSize returns the length of m's frame, length prefix included,
// without encoding it: the server checks an answer against the frame
// maximum and its memory budget before it builds it.
func FrameSize(m *Message) int {
	n := 4 + 7 + 1 // length prefix, type field, final stop
	if m.HasID {
		n += 7
	}
	if m.Field == NoData {
		return n
	}
	n += 3 + 1 // data header, union stop
	pulse := func(p *Pulse) int {
		k := 3 + 4 + len(p.ID) + 1
		if p.Details != nil {
			k += 3 + 4 + len(p.Details)
		}
		return k
	}
	switch m.Field {
	case FieldPath:
		n += 3 + 4 + len(m.Path)
	case FieldPulse:
		n += 3 + pulse(&m.Pulse)
	case FieldBool:
		n += 3 + 1
	case FieldRecord:
		n += 3 + 3 + 5 + 1
		for i := range m.Records {
			n += pulse(&m.Records[i])
		}
	case FieldNodes:
		n += 3 + 3 + 5 + 1
		for _, s := range m.Nodes {
			n += 4 + len(s)
		}
	case FieldBlob:
		n += 3 + 4 + len(m.Blob)
	}
	return n
}

// AppendMessage appends the Thrift binary encoding of m to dst, writing the
// fields in id order as Thrift's Java library does.
func AppendMessage(dst []byte, m *Message) []byte {
	dst = appendFieldHeader(dst, tI32, 1)
	dst = binary.BigEndian.AppendUint32(dst, uint32(m.Type))
	if m.Field != NoData {
		dst = appendFieldHeader(dst, tStruct, 2)
		dst = appendData(dst, m) // ends with the union's stop byte
	}
	if m.HasID {
		dst = appendFieldHeader(dst, tI32, 3)
		dst = binary.BigEndian.AppendUint32(dst, uint32(m.ID))
	}
	return append(dst, tStop)
}

func appendData(dst []byte, m *Message) []byte {
	switch m.Field {
	case FieldPath:
		dst = appendFieldHeader(dst, tString, 1)
		dst = appendString(dst, m.Path)
	case FieldPulse:
		dst = appendFieldHeader(dst, tStruct, 2)
		dst = appendPulse(dst, &m.Pulse)
	case FieldBool:
		dst = appendFieldHeader(dst, tBool, 3)
		if m.Bool {
			dst = append(dst, 1)
		} else {
			dst = append(dst, 0)
		}
	case FieldRecord:
		dst = appendFieldHeader(dst, tStruct, 4)
		dst = appendFieldHeader(dst, tList, 1)
		dst = append(dst, tStruct)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Records)))
		for i := range m.Records {
			dst = appendPulse(dst, &m.Records[i])
		}
		dst = append(dst, tStop)
	case FieldNodes:
		dst = appendFieldHeader(dst, tStruct, 5)
		dst = appendFieldHeader(dst, tList, 1)
		dst = append(dst, tString)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Nodes)))
		for _, n := range m.Nodes {
			dst = appendString(dst, n)
		}
		dst = append(dst, tStop)
	case FieldBlob:
		dst = appendFieldHeader(dst, tString, 7)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(m.Blob)))
		dst = append(dst, m.Blob...)
	}
	return append(dst, tStop)
}

func appendPulse(dst []byte, p *Pulse) []byte {
	dst = appendFieldHeader(dst, tString, 1)
	dst = appendString(dst, p.ID)
	if p.Details != nil {
		dst = appendFieldHeader(dst, tString, 2)
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(p.Details)))
		dst = append(dst, p.Details...)
	}
	return append(dst, tStop)
}

func appendFieldHeader(dst []byte, typ byte, id int16) []byte {
	return append(dst, typ, byte(uint16(id)>>8), byte(id))
}

func appendString(dst []byte, s string) []byte {
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(s)))
	return append(dst, s...)
}

// Decode parses one HBMessage body (no length prefix) into m. Every string
// and byte slice in m is a copy: m stays valid after b is reused.
func Decode(b []byte, m *Message) error {
	d := decoder{buf: b}
	return d.message(m)
}

// DecodeView is Decode without copies: strings and byte slices in m alias b
// and are valid only until b is modified. Anything kept beyond the request
// (a new key, stored details) must be copied by whoever keeps it.
func DecodeView(b []byte, m *Message) error {
	d := decoder{buf: b, view: true}
	return d.message(m)
}

// DecodeRequest is DecodeView for what a client may send a server: the
// answer-only members of the data union (a list of pulses, a list of node
// names) are refused before one element is decoded, so a frame cannot make
// the server build lists many times its own size; nothing it decodes
// allocates. Every other member is aliased as by DecodeView.
func DecodeRequest(b []byte, m *Message) error {
	d := decoder{buf: b, view: true, request: true}
	return d.message(m)
}

type decoder struct {
	buf     []byte
	pos     int
	view    bool
	request bool // refuse answer-only union members (DecodeRequest)
}

func (d *decoder) need(n int) error {
	if n < 0 || len(d.buf)-d.pos < n {
		return malformed("truncated at byte %d: need %d more, have %d", d.pos, n, len(d.buf)-d.pos)
	}
	return nil
}

func (d *decoder) byte1() (byte, error) {
	if err := d.need(1); err != nil {
		return 0, err
	}
	b := d.buf[d.pos]
	d.pos++
	return b, nil
}

func (d *decoder) i16() (int16, error) {
	if err := d.need(2); err != nil {
		return 0, err
	}
	v := int16(binary.BigEndian.Uint16(d.buf[d.pos:]))
	d.pos += 2
	return v, nil
}

func (d *decoder) i32() (int32, error) {
	if err := d.need(4); err != nil {
		return 0, err
	}
	v := int32(binary.BigEndian.Uint32(d.buf[d.pos:]))
	d.pos += 4
	return v, nil
}

// fieldHeader reads a field's type and id; typ == tStop ends the struct.
func (d *decoder) fieldHeader() (typ byte, id int16, err error) {
	if typ, err = d.byte1(); err != nil || typ == tStop {
		return typ, 0, err
	}
	id, err = d.i16()
	return typ, id, err
}

func (d *decoder) rawBytes() ([]byte, error) {
	n, err := d.i32()
	if err != nil {
		return nil, err
	}
	if n < 0 {
		return nil, malformed("negative length %d at byte %d", n, d.pos-4)
	}
	if err := d.need(int(n)); err != nil {
		return nil, err
	}
	b := d.buf[d.pos : d.pos+int(n) : d.pos+int(n)]
	d.pos += int(n)
	return b, nil
}

func (d *decoder) binary() ([]byte, error) {
	b, err := d.rawBytes()
	if err != nil || d.view {
		return b, err
	}
	return append(make([]byte, 0, len(b)), b...), nil
}

func (d *decoder) string() (string, error) {
	b, err := d.rawBytes()
	if err != nil || len(b) == 0 {
		return "", err
	}
	if d.view {
		return unsafe.String(&b[0], len(b)), nil
	}
	return string(b), nil
}

func (d *decoder) message(m *Message) error {
	m.Reset()
	typed := false
	for {
		typ, id, err := d.fieldHeader()
		if err != nil {
			return err
		}
		if typ == tStop {
			break
		}
		switch {
		case id == 1 && typ == tI32:
			v, err := d.i32()
			if err != nil {
				return err
			}
			m.Type, typed = MessageType(v), true
		case id == 2 && typ == tStruct:
			if err := d.data(m); err != nil {
				return err
			}
		case id == 3 && typ == tI32:
			v, err := d.i32()
			if err != nil {
				return err
			}
			m.ID, m.HasID = v, true
		default:
			// Thrift skips unknown fields and known ids of the wrong type.
			if err := d.skip(typ); err != nil {
				return err
			}
		}
	}
	if d.pos != len(d.buf) {
		return malformed("%d bytes after the end of the message", len(d.buf)-d.pos)
	}
	if !typed {
		// Type 0 is CREATE_PATH: a message without one must not become one.
		return malformed("no message type (field 1)")
	}
	return nil
}

// data reads the HBMessageData union: at most one known member.
func (d *decoder) data(m *Message) error {
	m.Field = NoData
	for {
		typ, id, err := d.fieldHeader()
		if err != nil {
			return err
		}
		if typ == tStop {
			return nil
		}
		f := Field(id)
		known := (f == FieldPath && typ == tString) || (f == FieldPulse && typ == tStruct) ||
			(f == FieldBool && typ == tBool) || (f == FieldRecord && typ == tStruct) ||
			(f == FieldNodes && typ == tStruct) || (f == FieldBlob && typ == tString)
		if !known {
			if err := d.skip(typ); err != nil {
				return err
			}
			continue
		}
		if m.Field != NoData {
			return malformed("HBMessageData union sets both field %d and field %d", m.Field, f)
		}
		if d.request && (f == FieldRecord || f == FieldNodes) {
			return malformed("HBMessageData field %d (an answer's list) in a request", f)
		}
		m.Field = f
		switch f {
		case FieldPath:
			m.Path, err = d.string()
		case FieldPulse:
			err = d.pulse(&m.Pulse)
		case FieldBool:
			var b byte
			b, err = d.byte1()
			m.Bool = b == 1 // Thrift's readBool: only 1 is true
		case FieldRecord:
			m.Records, err = d.records(m.Records[:0])
		case FieldNodes:
			m.Nodes, err = d.nodes(m.Nodes[:0])
		case FieldBlob:
			m.Blob, err = d.binary()
			if err == nil && m.Blob == nil {
				m.Blob = []byte{}
			}
		}
		if err != nil {
			return err
		}
	}
}

func (d *decoder) pulse(p *Pulse) error {
	*p = Pulse{}
	haveID := false
	for {
		typ, id, err := d.fieldHeader()
		if err != nil {
			return err
		}
		if typ == tStop {
			break
		}
		switch {
		case id == 1 && typ == tString:
			p.ID, err = d.string()
			haveID = true
		case id == 2 && typ == tString:
			p.Details, err = d.binary()
		default:
			err = d.skip(typ)
		}
		if err != nil {
			return err
		}
	}
	if !haveID {
		return malformed("HBPulse without its required field id")
	}
	return nil
}

// listHeader reads a list header and checks that size elements of at least
// minSize bytes each can fit in what is left, so no length prefix can make
// the decoder allocate more than the frame holds. A non-empty list whose
// declared element type is not the schema's is malformed: Thrift sizes a
// list by its declared type and rejects such lists too.
func (d *decoder) listHeader(want byte, minSize int) (int, error) {
	et, err := d.byte1()
	if err != nil {
		return 0, err
	}
	size, err := d.i32()
	if err != nil {
		return 0, err
	}
	if size < 0 {
		return 0, malformed("negative list size %d", size)
	}
	if et != want && size > 0 {
		return 0, malformed("list of element type %d where the schema has %d", et, want)
	}
	if int64(size)*int64(minSize) > int64(len(d.buf)-d.pos) {
		return 0, malformed("list of %d elements cannot fit in %d bytes", size, len(d.buf)-d.pos)
	}
	return int(size), nil
}

func (d *decoder) records(out []Pulse) ([]Pulse, error) {
	for {
		typ, id, err := d.fieldHeader()
		if err != nil {
			return out, err
		}
		if typ == tStop {
			return out, nil
		}
		if id != 1 || typ != tList {
			if err := d.skip(typ); err != nil {
				return out, err
			}
			continue
		}
		n, err := d.listHeader(tStruct, 1)
		if err != nil {
			return out, err
		}
		out = out[:0]
		for range n {
			var p Pulse
			if err := d.pulse(&p); err != nil {
				return out, err
			}
			out = append(out, p)
		}
		if out == nil {
			out = []Pulse{}
		}
	}
}

func (d *decoder) nodes(out []string) ([]string, error) {
	for {
		typ, id, err := d.fieldHeader()
		if err != nil {
			return out, err
		}
		if typ == tStop {
			return out, nil
		}
		if id != 1 || typ != tList {
			if err := d.skip(typ); err != nil {
				return out, err
			}
			continue
		}
		n, err := d.listHeader(tString, 4)
		if err != nil {
			return out, err
		}
		out = out[:0]
		for range n {
			s, err := d.string()
			if err != nil {
				return out, err
			}
			out = append(out, s)
		}
		if out == nil {
			out = []string{}
		}
	}
}

// skip passes over one value of type typ, as Thrift's TProtocolUtil.skip.
func (d *decoder) skip(typ byte) error {
	pos, err := thriftbin.Skip(d.buf, d.pos, typ)
	if err != nil {
		return malformed("%v", err)
	}
	d.pos = pos
	return nil
}
