package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/storm-pacemaker/pacemaker/internal/status"
)

func init() {
	register("status", command{"status [--stale D] [--json]",
		"every server's state and content; workers whose heartbeats went stale (exit 1 stale, 3 server down)", runStatus})
}

// statusNow is the clock status measures ages against; tests fix it.
var statusNow = time.Now

// runStatus exits ExitFailure (3) when a server is unreachable, refuses
// reads or breaks mid-scan (its heartbeats are then unknown), else
// ExitFalse (1) when a worker's newest heartbeat is stale or undecodable,
// else ExitOK.
func runStatus(ctx context.Context, env *Env, args []string) int {
	fs := flag.NewFlagSet("status", flag.ContinueOnError)
	fs.SetOutput(env.Stderr)
	stale := fs.Duration("stale", 30*time.Second, "a worker whose newest heartbeat is older than this is stale (Nimbus: nimbus.task.timeout.secs)")
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	all := fs.Bool("all", false, "list every worker with the servers holding its heartbeat, not only stale ones")
	colorMode := fs.String("color", "auto", "auto (on a terminal, unless NO_COLOR is set), always or never")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return env.usageErr("status")
	}
	if fs.NArg() > 0 || *stale <= 0 {
		return env.usageErr("status")
	}
	color, err := useColor(*colorMode, env.Stdout)
	if err != nil {
		fmt.Fprintf(env.Stderr, "pacemakerctl: status: %v\n", err)
		return ExitUsage
	}
	p, err := env.Pool()
	if err != nil {
		return env.fail(err)
	}
	defer p.Close()

	r := status.Gather(ctx, p, env.Global.Servers, status.Options{Stale: *stale, Now: statusNow()})
	if *asJSON {
		err = r.WriteJSON(env.Stdout)
	} else {
		err = r.WriteTable(env.Stdout, status.TableOptions{Color: color, All: *all})
	}
	if err != nil {
		return env.fail(fmt.Errorf("write status: %w", err))
	}
	switch {
	case r.Summary.Failed > 0:
		return ExitFailure
	case r.Summary.Stale > 0:
		return ExitFalse
	}
	return ExitOK
}

func useColor(mode string, w io.Writer) (bool, error) {
	switch mode {
	case "always":
		return true, nil
	case "never":
		return false, nil
	case "auto":
		f, ok := w.(*os.File)
		return ok && os.Getenv("NO_COLOR") == "" && term.IsTerminal(int(f.Fd())), nil
	}
	return false, fmt.Errorf("--color %q: want auto, always or never", mode)
}
