package handoff

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/store"
)

// The snapshot: the heartbeats (with their write times), the connections'
// metadata by their socket's position in the carrier, then the sections,
// in a sealed memfd with a CRC-32 at the end. Its format is read by the
// previous and the next release alike: a restart may go either way.

const magic = "PMHANDOFF1\n"

const (
	tagEnd  = 0
	tagKey  = 1
	tagConn = 2
)

// writeSnapshot snapshots st, conns and the sections into a new sealed memfd.
func writeSnapshot(st *store.Store, conns []Conn, sections []Section) (*os.File, error) {
	fd, err := unix.MemfdCreate(stateName, unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create: %w", err)
	}
	f := os.NewFile(uintptr(fd), stateName)
	if err := encode(f, st, conns, sections); err != nil {
		f.Close()
		return nil, err
	}
	// Sealed, the successor can trust the contents did not change under it.
	if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, unix.F_SEAL_SHRINK|unix.F_SEAL_GROW|unix.F_SEAL_WRITE|unix.F_SEAL_SEAL); err != nil {
		f.Close()
		return nil, fmt.Errorf("seal state memfd: %w", err)
	}
	return f, nil
}

func encode(w io.Writer, st *store.Store, conns []Conn, sections []Section) error {
	h := crc32.NewIEEE()
	bw := bufio.NewWriterSize(io.MultiWriter(w, h), 1<<16)
	bw.WriteString(magic)
	var num [8]byte
	putBytes := func(b []byte) {
		binary.BigEndian.PutUint32(num[:4], uint32(len(b)))
		bw.Write(num[:4])
		bw.Write(b)
	}
	err := st.Snapshot(func(key string, value []byte, written time.Time) error {
		bw.WriteByte(tagKey)
		putBytes([]byte(key))
		putBytes(value)
		binary.BigEndian.PutUint64(num[:], uint64(written.UnixNano()))
		_, err := bw.Write(num[:])
		return err
	})
	if err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	for i, c := range conns {
		bw.WriteByte(tagConn)
		binary.BigEndian.PutUint32(num[:4], uint32(i))
		bw.Write(num[:4])
		putBytes([]byte(c.Peer))
		auth := byte(0)
		if c.Authenticated {
			auth = 1
		}
		bw.WriteByte(auth)
		id := c.Identity
		if c.Method != "" {
			id = string(c.Method) + "\x00" + c.Credentials + "\x00" + id
		}
		putBytes([]byte(id))
		putBytes(c.Pending)
	}
	bw.WriteByte(tagEnd)
	for _, sec := range sections {
		putBytes([]byte(sec.Name))
		putBytes(sec.Data)
	}
	if err := bw.Flush(); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	binary.BigEndian.PutUint32(num[:4], h.Sum32())
	if _, err := w.Write(num[:4]); err != nil {
		return fmt.Errorf("write state: %w", err)
	}
	return nil
}

// readSnapshot restores the heartbeats in f into st and returns the
// connections' metadata (without their sockets) and the sections. A damaged
// snapshot restores nothing and returns an error.
func readSnapshot(f *os.File, st *store.Store) ([]Conn, []Section, error) {
	b, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<62))
	if err != nil {
		return nil, nil, fmt.Errorf("read state: %w", err)
	}
	if len(b) < len(magic)+5 || string(b[:len(magic)]) != magic {
		return nil, nil, errors.New("read state: not a pacemaker hand-over snapshot")
	}
	body, sum := b[:len(b)-4], binary.BigEndian.Uint32(b[len(b)-4:])
	if crc32.ChecksumIEEE(body) != sum {
		return nil, nil, errors.New("read state: checksum mismatch")
	}
	type kv struct {
		key, value []byte
		written    int64
	}
	var keys []kv
	var conns []Conn
	r := &reader{b: body[len(magic):]}
	for {
		switch tag := r.byte1(); tag {
		case tagEnd:
			var sections []Section
			for r.err == nil && len(r.b) > 0 {
				sections = append(sections, Section{Name: string(r.bytes()), Data: r.bytes()})
			}
			if r.err != nil {
				return nil, nil, fmt.Errorf("read state: %w", r.err)
			}
			for _, e := range keys {
				st.Restore(string(e.key), e.value, time.Unix(0, e.written))
			}
			return conns, sections, nil
		case tagKey:
			keys = append(keys, kv{r.bytes(), r.bytes(), int64(r.u64())})
		case tagConn:
			c := Conn{index: int(r.u32()), Peer: string(r.bytes()), Authenticated: r.byte1() == 1}
			c.Identity = string(r.bytes())
			if parts := strings.SplitN(c.Identity, "\x00", 3); len(parts) == 3 {
				c.Method, c.Credentials, c.Identity = auth.Method(parts[0]), parts[1], parts[2]
			}
			c.Pending = r.bytes()
			conns = append(conns, c)
		default:
			return nil, nil, fmt.Errorf("read state: unknown record %d", tag)
		}
		if r.err != nil {
			return nil, nil, fmt.Errorf("read state: %w", r.err)
		}
	}
}

type reader struct {
	b   []byte
	err error
}

func (r *reader) take(n int) []byte {
	if r.err != nil || n < 0 || n > len(r.b) {
		r.err = io.ErrUnexpectedEOF
		return nil
	}
	out := r.b[:n:n]
	r.b = r.b[n:]
	return out
}

func (r *reader) byte1() byte {
	if b := r.take(1); b != nil {
		return b[0]
	}
	return 0xff
}

func (r *reader) u32() uint32 {
	if b := r.take(4); b != nil {
		return binary.BigEndian.Uint32(b)
	}
	return 0
}

func (r *reader) u64() uint64 {
	if b := r.take(8); b != nil {
		return binary.BigEndian.Uint64(b)
	}
	return 0
}

func (r *reader) bytes() []byte { return r.take(int(r.u32())) }
