// Command cachedroot prints the directory of the cached Debian root the
// booted tests boot (nspawn.HostPackages), making it with debootstrap on
// first use; the Vagrant box build (vagrant/box/build.sh) starts from it.
// PACEMAKER_NSPAWN_CACHE says where the cache is, as for the tests.
package main

import (
	"errors"
	"fmt"
	"os"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/nspawn"
)

func main() {
	logf := func(format string, args ...any) { fmt.Fprintf(os.Stderr, "cachedroot: "+format+"\n", args...) }
	root, err := nspawn.MakeRoot(nspawn.HostPackages, logf)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cachedroot: %v\n", err)
		if errors.Is(err, nspawn.ErrNoDebootstrap) {
			os.Exit(3)
		}
		os.Exit(1)
	}
	fmt.Println(root)
}
