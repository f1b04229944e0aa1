// Command pacemaker-bench generates Storm-shaped heartbeat load against
// pacemaker, redis or ZooKeeper and measures it. A developer's tool: the
// packages ship pacemaker and pacemakerctl only. See internal/benchcmd.
package main

import (
	"os"

	"github.com/storm-pacemaker/pacemaker/internal/benchcmd"
)

func main() { os.Exit(benchcmd.Main(os.Args[1:], os.Stdout, os.Stderr)) }
