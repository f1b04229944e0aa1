package daemon

import (
	"context"
	"os"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth/gssapi"
	"github.com/storm-pacemaker/pacemaker/internal/handoff"
)

// A restart under systemd closes nothing a client could notice: the
// stopping process answers every request it has read and hands over the
// heartbeats and the connections (internal/handoff); the next process takes
// them over before it accepts anything new.

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
	conns, err := d.srv.HandOver(ctx)
	d.handOver(conns, kind)
	return err
}

// handOver gives the heartbeats, the Kerberos replay cache and conns to
// systemd for the next process. kind is systemd's job (stopKind): "" when
// it could not be told.
func (d *daemon) handOver(conns []handoff.Conn, kind string) {
	handed, err := handoff.Give(d.log, d.store, conns, replaySection(d))
	if err != nil {
		d.log.Error("cannot hand the heartbeats over; the next process starts empty and the connections are closed", "err", err)
		return
	}
	if kind != "" {
		d.log.Info("handed heartbeats and connections to systemd for the next process", "job", kind,
			"keys", d.store.Keys(), "bytes", d.store.Bytes(), "connections", handed)
		return
	}
	// systemd's job could not be asked (no system bus): a SIGTERM looks the
	// same for a restart and a stop, so say what happens in each case; the
	// next process, if any, logs "took over from the previous process".
	d.log.Info("stored heartbeats and connections in systemd's fd store: a restart hands them to the next process, a stop discards them",
		"keys", d.store.Keys(), "bytes", d.store.Bytes(), "connections", handed)
}

// takeOver takes over what a previous process handed over, found among
// the descriptors systemd passed (files): it restores the heartbeats and
// the Kerberos replay cache and serves the connections at once. It returns
// the other descriptors, the listening sockets.
func (d *daemon) takeOver(files []*os.File) []*os.File {
	prev, rest := handoff.Take(d.log, files)
	if prev == nil {
		return rest
	}
	conns, sections, lost, err := prev.Restore(d.store)
	if err != nil {
		d.log.Error("the previous process's snapshot is unusable; starting empty and closing its connections", "err", err)
		return rest
	}
	restoreReplays(d, sections)
	taken := 0
	for _, c := range conns {
		if err := d.srv.TakeOver(c); err != nil {
			d.log.Warn("cannot take over a connection of the previous process", "peer", c.Peer, "err", err)
			continue
		}
		taken++
	}
	d.log.Info("took over from the previous process", "keys", d.store.Keys(), "bytes", d.store.Bytes(),
		"connections", taken, "connections_lost", lost)
	return rest
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
