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
// while the daemon proves healthy. The self-checks also feed the metrics,
// and run for them alone when there is no watchdog.
func (d *daemon) startSystemd(ctx context.Context) {
	if os.Getenv("NOTIFY_SOCKET") == "" {
		d.startSelfChecks(ctx, 0)
		return
	}
	d.sd.fdStore = fdStoreEnabled()
	d.notifyReady()
	go d.statusLoop(ctx)
	timeout, err := sd.SdWatchdogEnabled(false)
	switch {
	case err != nil:
		d.log.Warn("ignoring the watchdog settings systemd passed", "err", err)
		timeout = 0
	case timeout > 0:
		d.log.Info("watchdog enabled", "timeout", timeout.String(), "ping_every", (timeout / 2).String())
	}
	d.startSelfChecks(ctx, timeout)
}

// selfCheckEvery is how often the self-check runs for the metrics alone
// (no watchdog): often enough for an alert within a minute.
const selfCheckEvery = 15 * time.Second

// startSelfChecks runs the self-check loop: at half the watchdog's timeout,
// pinging it, or every selfCheckEvery when metrics are served and no
// watchdog is set.
func (d *daemon) startSelfChecks(ctx context.Context, watchdog time.Duration) {
	switch {
	case watchdog > 0:
		go d.selfCheckLoop(ctx, watchdog/2, true)
	case d.config().MetricsListen != "":
		go d.selfCheckLoop(ctx, selfCheckEvery, false)
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

// selfCheckLoop runs a health check every period and records it in the
// metrics: a request sent through each listener and answered through the
// whole request path. With ping, it pings systemd's watchdog, but only
// after a check succeeded: a wedged daemon stops pinging and systemd kills
// and restarts it.
func (d *daemon) selfCheckLoop(ctx context.Context, every time.Duration, ping bool) {
	// The accept loops start in their own goroutines: the first check
	// waits for their listeners (instead of failing with "no listener", or
	// waiting a whole period), so the first ping follows the start at once.
	d.waitListening(ctx, every/2)
	t := time.NewTicker(every)
	defer t.Stop()
	healthy := true
	for first := true; ; first = false {
		if !first {
			select {
			case <-ctx.Done():
				return
			case <-t.C:
			}
		}
		if d.sd.stopping.Load() {
			return
		}
		// A check gets half the period (a quarter of the watchdog's
		// timeout), so a ping that follows it still comes well within the
		// timeout.
		hctx, cancel := context.WithTimeout(ctx, every/2)
		err := d.srv.Health(hctx)
		cancel()
		if ctx.Err() == nil && !d.sd.stopping.Load() {
			d.metrics.SelfCheck(err)
		}
		switch {
		case err == nil:
			if !healthy {
				d.log.Info("health check passes again")
			}
			healthy = true
			if ping {
				d.notify(sd.SdNotifyWatchdog)
			}
		case healthy && !d.sd.stopping.Load():
			healthy = false
			if ping {
				d.log.Error("health check failed; not pinging the watchdog, so systemd restarts the daemon if this lasts",
					"err", err, "watchdog", (2 * every).String())
			} else {
				d.log.Error("health check failed", "err", err)
			}
		}
	}
}

// waitListening waits up to limit for every listener the daemon opened to
// be served.
func (d *daemon) waitListening(ctx context.Context, limit time.Duration) {
	deadline := time.Now().Add(limit)
	for d.srv.Listening() < d.listeners && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(time.Millisecond)
	}
}
