// Package version carries the build's version, set by the linker from git
// describe (see the Makefile).
package version

import "runtime/debug"

// Version is overwritten with -ldflags "-X .../internal/version.Version=...".
var Version = "dev"

// String returns Version, or the module version when built with go install.
func String() string {
	if Version != "dev" {
		return Version
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
		return bi.Main.Version
	}
	return Version
}
