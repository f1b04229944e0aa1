package daemon

import (
	"context"
	"os"
	"strconv"
	"sync/atomic"
	"time"

	sd "github.com/coreos/go-systemd/v22/daemon"
)

// statusEvery is how often the STATUS= line of `systemctl status` is
// refreshed.
const statusEvery = 10 * time.Second

// systemdState is the daemon's side of its conversation with systemd
// (Type=notify). Outside systemd ($NOTIFY_SOCKET unset) every
// notification is a no-op.
type systemdState struct {
	// fdStore: stopping hands heartbeats and connections over through
	// systemd's file-descriptor store (see handoff.go).
	fdStore  bool
	stopping atomic.Bool
}

// startSystemd tells systemd the daemon is ready (config, credentials and
// listeners are up by now), keeps STATUS= fresh, and pings the watchdog
// while the daemon proves healthy.
func (d *daemon) startSystemd(ctx context.Context) {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		return
	}
	d.sd.fdStore = fdStoreEnabled()
	d.notifyReady()
	go d.statusLoop(ctx)
	timeout, err := sd.SdWatchdogEnabled(false)
	switch {
	case err != nil:
		d.log.Warn("ignoring the watchdog settings systemd passed", "err", err)
	case timeout > 0:
		d.log.Info("watchdog enabled", "timeout", timeout.String(), "ping_every", (timeout / 2).String())
		go d.watchdogLoop(ctx, timeout)
	}
}

// fdStoreEnabled: systemd 254 and later say in $FDSTORE how many
// descriptors the service may store; older ones (Debian 12 has 252) say
// nothing, and then we just try — an unwanted hand-over closes the same
// connections a plain shutdown would.
func fdStoreEnabled() bool {
	v, ok := os.LookupEnv("FDSTORE")
	if !ok {
		return true
	}
	n, err := strconv.Atoi(v)
	return err == nil && n > 0
}

func (d *daemon) notify(state string) {
	if _, err := sd.SdNotify(false, state); err != nil {
		d.log.Warn("cannot notify systemd", "err", err)
	}
}

func (d *daemon) notifyReady() {
	d.notify(sd.SdNotifyReady + "\nSTATUS=" + d.statusLine())
}

func (d *daemon) notifyStopping() {
	d.sd.stopping.Store(true)
	d.notify(sd.SdNotifyStopping + "\nSTATUS=stopping: answering what clients sent")
}

// notifyReloading precedes a reload; notifyReady follows it. The
// timestamp lets systemd tell this reload from an earlier one.
func (d *daemon) notifyReloading() {
	d.notify(sd.SdNotifyReloading + "\n" + sd.SdNotifyMonotonicUsec() + "STATUS=reloading the config")
}

func (d *daemon) statusLoop(ctx context.Context) {
	t := time.NewTicker(statusEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			if d.sd.stopping.Load() {
				return
			}
			d.notify("STATUS=" + d.statusLine())
		}
	}
}

// watchdogLoop pings systemd's watchdog at half its timeout, but only after
// a health check succeeded: a request sent through each listener was
// accepted and answered through the whole request path. A wedged daemon
// stops pinging and systemd kills and restarts it.
func (d *daemon) watchdogLoop(ctx context.Context, timeout time.Duration) {
	t := time.NewTicker(timeout / 2)
	defer t.Stop()
	healthy := true
	for {
		if d.sd.stopping.Load() {
			return
		}
		// A check gets a quarter of the timeout, so a ping that follows
		// it still comes well within the timeout.
		hctx, cancel := context.WithTimeout(ctx, timeout/4)
		err := d.srv.Health(hctx)
		cancel()
		switch {
		case err == nil:
			if !healthy {
				d.log.Info("health check passes again; pinging the watchdog")
			}
			healthy = true
			d.notify(sd.SdNotifyWatchdog)
		case healthy && !d.sd.stopping.Load():
			healthy = false
			d.log.Error("health check failed; not pinging the watchdog, so systemd restarts the daemon if this lasts",
				"err", err, "watchdog", timeout.String())
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
	}
}
