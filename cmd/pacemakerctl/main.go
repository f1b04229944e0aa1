// Command pacemakerctl reads and writes Pacemaker servers from the shell.
// See internal/ctl.
package main

import (
	"os"

	"github.com/storm-pacemaker/pacemaker/internal/ctl"
)

func main() { os.Exit(ctl.Main(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)) }
