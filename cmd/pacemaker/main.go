// Command pacemaker is a wire-compatible replacement for Apache Storm's
// Pacemaker heartbeat server. See internal/daemon.
package main

import (
	"os"

	"github.com/storm-pacemaker/pacemaker/internal/daemon"
)

func main() { os.Exit(daemon.Run(os.Args[1:], os.Stdout, os.Stderr)) }
