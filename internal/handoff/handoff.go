// Package handoff is the hand-over: a restart under systemd loses no
// heartbeat and closes no client connection. The stopping process hands
// over (Give): it snapshots the heartbeats, the connections' metadata and
// named sections (such as the Kerberos replay cache) into a sealed memfd,
// packs the connections' sockets into one carrier, and stores both in
// systemd's file-descriptor store (FileDescriptorStoreMax= in
// pacemaker.service). systemd passes them to the next process with the
// listening socket ($LISTEN_FDS), which takes over (Take, then Restore)
// before it accepts anything new.
package handoff

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"slices"
	"time"

	"golang.org/x/sys/unix"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/store"
)

// The hand-over's names in systemd's fd store.
const (
	stateName = "pacemaker-state" // the snapshot
	connsName = "pacemaker-conns" // the carrier of the connections' sockets
)

// barrierTimeout bounds the wait for systemd to take the stored
// descriptors before the stopping process exits.
const barrierTimeout = 5 * time.Second

// Conn is one client connection handed over, so that a restart closes
// nothing a Storm client could notice. Its socket travels in the carrier;
// the snapshot keeps the rest, with the socket's position in the carrier.
type Conn struct {
	File          *os.File // the socket
	Peer          string
	Authenticated bool
	Identity      string
	// Method is the auth method the identity was proven under, and
	// Credentials the fingerprint of the secret or keys it was checked
	// against. They travel in the identity field as
	// "METHOD\x00CREDENTIALS\x00identity", which a process that predates
	// them reads as an identity no mechanism knows (so it may not read); an
	// identity without them is from such a process.
	Method      auth.Method
	Credentials string
	// Pending holds bytes already read from the socket but not yet
	// handled: the start of a frame that was arriving at the hand-over.
	Pending []byte

	index int // the socket's position in the carrier, in what the snapshot holds
}

// Section is named state beside the heartbeats, such as the Kerberos
// replay cache. Sections follow the end record, where a reader from before
// they existed stops reading: a downgrade across a restart still restores
// the heartbeats and connections.
type Section struct {
	Name string
	Data []byte
}

// Give hands st, conns and sections over to the next process through
// systemd's fd store, and returns once systemd has them. It closes the
// connections' sockets (systemd holds its own copies); connections that
// did not make it into the store see a close. It returns how many
// connections went with the heartbeats, and an error when the heartbeats
// did not reach the store (the next process then starts empty); partial
// failures are logged.
func Give(log *slog.Logger, st *store.Store, conns []Conn, sections ...Section) (handed int, err error) {
	files := make([]*os.File, len(conns))
	for i, c := range conns {
		files[i] = c.File
	}
	defer closeAll(files)

	carrier, err := pack(files)
	if err != nil {
		log.Error("cannot pack the connections for the next process; they will be closed", "connections", len(conns), "err", err)
		conns = nil
	} else {
		defer carrier.Close()
	}
	state, err := writeSnapshot(st, conns, sections)
	if err != nil {
		return 0, err
	}
	defer state.Close()
	if carrier != nil {
		if err := storeFD(connsName, carrier, false); err != nil {
			log.Error("cannot store the connections in systemd's fd store; they will be closed", "connections", len(conns), "err", err)
			conns = nil
		}
	}
	if err := storeFD(stateName, state, true); err != nil {
		return 0, fmt.Errorf("store the snapshot in systemd's fd store: %w", err)
	}
	// Exit only once systemd has taken them: it attributes messages to the
	// sending process, which must still exist.
	if err := barrier(barrierTimeout); err != nil {
		log.Warn("systemd did not confirm the hand-over", "err", err)
	}
	return len(conns), nil
}

// Taken is what a previous process handed over, taken from the
// descriptors systemd passed.
type Taken struct {
	log   *slog.Logger
	state *os.File // stateName
	conns *os.File // connsName; nil when it did not arrive
	// stored names every fd-store descriptor we were given, so that they
	// are removed from the store once taken over.
	stored []string
}

// Take picks the hand-over out of the descriptors systemd passed
// (activation.Files) and returns the rest, the listening sockets, to the
// caller. It returns a nil *Taken when no previous process handed over.
// A descriptor that is neither is closed and removed from the fd store:
// left by another version of pacemaker, it would pin its resource forever.
func Take(log *slog.Logger, files []*os.File) (*Taken, []*os.File) {
	t := &Taken{log: log}
	var rest []*os.File
	for _, f := range files {
		name := f.Name()
		switch {
		case name == stateName && t.state == nil:
			t.state = f
			t.stored = append(t.stored, name)
		case name == connsName && t.conns == nil:
			t.conns = f
			t.stored = append(t.stored, name)
		case isListening(f):
			rest = append(rest, f)
		default:
			log.Warn("closing an unknown descriptor systemd passed", "name", name)
			f.Close()
			t.stored = append(t.stored, name)
		}
	}
	if t.state == nil {
		if t.conns != nil {
			log.Warn("connections handed over without their state; closing them")
			t.conns.Close()
		}
		t.release()
		return nil, rest
	}
	return t, rest
}

// isListening reports whether f is a socket in the listening state.
func isListening(f *os.File) bool {
	v, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	return err == nil && v == 1
}

// Restore puts the handed heartbeats into st and returns the connections,
// each with its socket, the sections, and how many connections lost their
// socket on the way. It closes every socket without metadata (nothing says
// where its stream stands) and removes the hand-over from systemd's fd
// store, so that a later restart does not get it a second time. An
// unusable snapshot restores nothing, closes every socket and returns an
// error.
func (t *Taken) Restore(st *store.Store) (conns []Conn, sections []Section, lost int, err error) {
	defer t.release()
	var sockets []*os.File
	if t.conns != nil {
		var err error
		if sockets, err = unpack(t.conns); err != nil {
			t.log.Warn("some connections of the previous process were lost", "err", err)
		}
	}
	defer closeAll(sockets)
	meta, sections, err := readSnapshot(t.state, st)
	t.state.Close()
	if err != nil {
		return nil, nil, 0, err
	}
	for _, c := range meta {
		if c.index < 0 || c.index >= len(sockets) || sockets[c.index] == nil {
			lost++ // its socket did not come out of the carrier
			continue
		}
		c.File, sockets[c.index] = sockets[c.index], nil
		conns = append(conns, c)
	}
	return conns, sections, lost, nil
}

// release closes systemd's copies of what we were given from its fd
// store: ours are open, and a socket systemd still holds would never
// close when we close it.
func (t *Taken) release() {
	slices.Sort(t.stored)
	for _, name := range slices.Compact(t.stored) {
		if err := removeFD(name); err != nil && !errors.Is(err, errNoSocket) {
			t.log.Warn("cannot remove a descriptor from systemd's fd store", "name", name, "err", err)
		}
	}
}

func closeAll(files []*os.File) {
	for _, f := range files {
		if f != nil {
			f.Close()
		}
	}
}
