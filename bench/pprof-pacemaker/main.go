// Command pprof-pacemaker is bin/pacemaker with profiling, for bench/run.sh:
// it runs the same daemon code and, when PACEMAKER_CPUPROFILE and
// PACEMAKER_ALLOCPROFILE name files, writes a CPU profile of its whole
// life and an allocation profile when it stops. It is never shipped:
// profiling costs a few percent, so benchmark numbers come from
// bin/pacemaker and only the profiles from this one.
package main

import (
	"fmt"
	"os"
	"runtime/pprof"

	"github.com/storm-pacemaker/pacemaker/internal/daemon"
)

func main() { os.Exit(run()) }

func run() int {
	if path := os.Getenv("PACEMAKER_CPUPROFILE"); path != "" {
		f, err := os.Create(path)
		if err != nil {
			fmt.Fprintf(os.Stderr, "pprof-pacemaker: %v\n", err)
			return 1
		}
		defer f.Close()
		if err := pprof.StartCPUProfile(f); err != nil {
			fmt.Fprintf(os.Stderr, "pprof-pacemaker: start CPU profile: %v\n", err)
			return 1
		}
		defer pprof.StopCPUProfile()
	}
	code := daemon.Run(os.Args[1:], os.Stdout, os.Stderr)
	if path := os.Getenv("PACEMAKER_ALLOCPROFILE"); path != "" {
		if err := writeAllocs(path); err != nil {
			fmt.Fprintf(os.Stderr, "pprof-pacemaker: %v\n", err)
		}
	}
	return code
}

func writeAllocs(path string) error {
	f, err := os.Create(path)
	if err != nil {
		return err
	}
	if err := pprof.Lookup("allocs").WriteTo(f, 0); err != nil {
		f.Close()
		return fmt.Errorf("write allocation profile %s: %w", path, err)
	}
	return f.Close()
}
