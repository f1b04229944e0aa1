//go:build !pacemaker_testhooks

package daemon

import "flag"

// TestHooks reports whether this build has the test hooks (testhooks.go);
// a shipped daemon has none.
const TestHooks = false

func addTestHookFlags(*flag.FlagSet, *options) {}

func (d *daemon) testHookSIGUSR2() {}
