//go:build pacemaker_testhooks

package daemon

import (
	"flag"
	"os"
	"syscall"
)

// Test hooks, compiled only with `-tags pacemaker_testhooks` (the
// black-box tests build the daemon so: internal/testutil/daemon); the
// shipped daemon has none.

// TestHooks reports whether this build has the test hooks.
const TestHooks = true

// addTestHookFlags: --test-wedge-on-sigusr2 makes SIGUSR2 wedge the accept
// loop and request path, so a test can prove the watchdog restarts a
// stuck daemon.
func addTestHookFlags(fs *flag.FlagSet, o *options) {
	fs.BoolVar(&o.testWedge, "test-wedge-on-sigusr2", false, "")
}

// testHookSignals are the signals the hooks act on.
func (d *daemon) testHookSignals() []os.Signal {
	if d.opts.testWedge {
		return []os.Signal{syscall.SIGUSR2}
	}
	return nil
}

// testHookSignal acts on sig; false when it is not a hook's.
func (d *daemon) testHookSignal(sig os.Signal) bool {
	if sig != syscall.SIGUSR2 || !d.opts.testWedge {
		return false
	}
	d.log.Warn("test switch: wedging the accept loop and request path on purpose")
	d.srv.Wedge()
	return true
}
