//go:build pacemaker_testhooks

package daemon

import "flag"

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

// testHookSIGUSR2 wedges the daemon when --test-wedge-on-sigusr2 is set.
func (d *daemon) testHookSIGUSR2() {
	if d.opts.testWedge {
		d.log.Warn("test switch: wedging the accept loop and request path on purpose")
		d.srv.Wedge()
	}
}
