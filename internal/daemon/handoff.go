package daemon

import (
	"context"
	"errors"
	"os"
	"slices"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth/gssapi"
	"github.com/storm-pacemaker/pacemaker/internal/fdcarrier"
	"github.com/storm-pacemaker/pacemaker/internal/handoff"
	"github.com/storm-pacemaker/pacemaker/internal/sdnotify"
)

// A restart under systemd closes nothing a client could notice: the
// stopping process answers every request it has read, snapshots the
// heartbeats into a sealed memfd (handoff.StateName) and packs the client
// sockets into one carrier (connsName), stores both in systemd's
// file-descriptor store (FileDescriptorStoreMax= in pacemaker.service) and
// exits; systemd passes them to the next process with the listening
// socket, which restores the heartbeats and serves the same connections
// before it accepts anything new.

// connsName is the fd-store name of the carrier of handed-over connection
// sockets (internal/fdcarrier). Their metadata, by index, is in the state
// snapshot.
const connsName = "pacemaker-conns"

// barrierTimeout bounds the wait for systemd to take the stored
// descriptors before the process exits.
const barrierTimeout = 5 * time.Second

// shutdown stops serving: through a hand-over to the next process when
// systemd's fd store can take it, else by closing every connection once
// it has been answered.
func (d *daemon) shutdown(ctx context.Context) error {
	if !d.sd.fdStore {
		return d.srv.Shutdown(ctx)
	}
	kind := stopKind()
	if kind == "stop" {
		// No next process: systemd would drop what we stored. Answer what
		// arrived and close, as without an fd store.
		d.log.Info("stopping, not restarting (systemd stop job): answering what arrived, then closing; the heartbeats are not kept",
			"keys", d.store.Keys(), "connections", d.srv.OpenConns())
		return d.srv.Shutdown(ctx)
	}
	handed, err := d.srv.HandOver(ctx)
	d.handOver(handed, kind)
	return err
}

// handOver stores the heartbeats and the handed connections in systemd's
// fd store. Whatever fails, the process's own copies are closed on return;
// connections that did not make it into the store see a close. kind is
// systemd's job (stopKind): "" when it could not be told.
func (d *daemon) handOver(handed []handoff.Conn, kind string) {
	files := make([]*os.File, len(handed))
	for i, hc := range handed {
		files[i] = hc.File
	}
	defer func() {
		for _, f := range files {
			f.Close()
		}
	}()

	carrier, err := fdcarrier.Pack(files)
	if err != nil {
		d.log.Error("cannot pack the connections for the next process; they will be closed", "connections", len(files), "err", err)
		handed = nil
	}
	state, err := handoff.Write(d.store, handed, replaySection(d))
	if err != nil {
		d.log.Error("cannot snapshot the heartbeats for the next process; it starts empty", "err", err)
		if carrier != nil {
			carrier.Close()
		}
		return
	}
	defer state.Close()
	if carrier != nil {
		defer carrier.Close()
		if err := sdnotify.Store(connsName, carrier, false); err != nil {
			d.log.Error("cannot store the connections in systemd's fd store; they will be closed", "connections", len(handed), "err", err)
			handed = nil
		}
	}
	if err := sdnotify.Store(handoff.StateName, state, true); err != nil {
		d.log.Error("cannot store the heartbeats in systemd's fd store; the next process starts empty", "err", err)
		return
	}
	// Exit only once systemd has taken them: it attributes messages to the
	// sending process, which must still exist.
	if err := sdnotify.Barrier(barrierTimeout); err != nil {
		d.log.Warn("systemd did not confirm the hand-over", "err", err)
	}
	if kind != "" {
		d.log.Info("handed heartbeats and connections to systemd for the next process", "job", kind,
			"keys", d.store.Keys(), "bytes", d.store.Bytes(), "connections", len(handed))
		return
	}
	// systemd's job could not be asked (no system bus): a SIGTERM looks the
	// same for a restart and a stop, so say what happens in each case; the
	// next process, if any, logs "resumed from the previous process".
	d.log.Info("stored heartbeats and connections in systemd's fd store: a restart hands them to the next process, a stop discards them",
		"keys", d.store.Keys(), "bytes", d.store.Bytes(), "connections", len(handed))
}

// resume takes up what a previous process handed over: it restores the
// heartbeats and adopts the connections, then removes them from systemd's
// fd store, so that a later restart does not get them a second time.
func (d *daemon) resume(prev inherited) {
	defer removeStored(prev.stored, d)
	var conns []*os.File
	if prev.conns != nil {
		var err error
		conns, err = fdcarrier.Unpack(prev.conns)
		if err != nil {
			d.log.Warn("some connections of the previous process were lost", "err", err)
		}
	}
	closeAll := func() {
		for _, f := range conns {
			if f != nil {
				f.Close()
			}
		}
	}
	if prev.state == nil {
		if len(conns) > 0 {
			d.log.Warn("connections handed over without their state; closing them", "connections", len(conns))
		}
		closeAll()
		return
	}
	meta, sections, err := handoff.Read(prev.state, d.store)
	prev.state.Close()
	if err != nil {
		d.log.Error("the previous process's snapshot is unusable; starting empty and closing its connections", "err", err)
		closeAll()
		return
	}
	restoreReplays(d, sections)
	adopted, missing := 0, 0
	for _, m := range meta {
		if m.Index < 0 || m.Index >= len(conns) || conns[m.Index] == nil {
			missing++ // gone while stored (systemd drops hung-up sockets)
			continue
		}
		f := conns[m.Index]
		conns[m.Index] = nil
		m.File = f
		err := d.srv.TakeOver(m)
		if err != nil {
			d.log.Warn("cannot adopt a connection of the previous process", "peer", m.Peer, "err", err)
			continue
		}
		adopted++
	}
	closeAll() // sockets without metadata: nothing says where their stream stands
	d.log.Info("resumed from the previous process", "keys", d.store.Keys(), "bytes", d.store.Bytes(),
		"connections", adopted, "connections_lost", missing)
}

// removeStored closes systemd's copies of what we were given from its fd
// store: ours are open, and a socket systemd still holds would never
// close when we close it.
func removeStored(names []string, d *daemon) {
	slices.Sort(names)
	for _, name := range slices.Compact(names) {
		if err := sdnotify.Remove(name); err != nil && !errors.Is(err, sdnotify.ErrNoSocket) {
			d.log.Warn("cannot remove a descriptor from systemd's fd store", "name", name, "err", err)
		}
	}
}

// replaySectionName names the Kerberos replay cache in the hand-over.
const replaySectionName = "kerberos-replay-cache"

// replaySection snapshots the Kerberos replay cache for the successor, so
// that an authenticator accepted here is refused there too.
func replaySection(d *daemon) handoff.Section {
	b, err := gssapi.ProcessReplayCache().MarshalBinary()
	if err != nil {
		d.log.Warn("cannot snapshot the Kerberos replay cache; the next process refuses authenticators made before it starts", "err", err)
	}
	return handoff.Section{Name: replaySectionName, Data: b}
}

// restoreReplays takes over the predecessor's Kerberos replay cache. Without
// one (a predecessor too old to send it), the cache keeps this process's
// start as the time before which authenticators are refused.
func restoreReplays(d *daemon, sections []handoff.Section) {
	for _, sec := range sections {
		if sec.Name != replaySectionName {
			continue
		}
		c := gssapi.ProcessReplayCache()
		if err := c.Restore(sec.Data, time.Now()); err != nil {
			d.log.Warn("the previous process's Kerberos replay cache is unusable; refusing authenticators made before this process started", "err", err)
			return
		}
		d.log.Info("took over the Kerberos replay cache", "entries", c.Len(), "not_before", c.NotBefore().UTC().Format(time.RFC3339Nano))
	}
}
