package ctl

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/term"

	"github.com/storm-pacemaker/pacemaker/internal/status"
)

func init() {
	register("status", command{
		help: "every server's state and content, and the workers whose heartbeats went stale " +
			"(exit 1 stale, 3 no server read, 4 some servers not read). It lists and reads every key; " +
			"the --max-* flags bound that walk against a broken or hostile server.",
		setup: statusCommand, walk: true,
	})
}

// statusNow is the clock status measures ages against; tests fix it.
var statusNow = time.Now

func statusCommand(fs *flag.FlagSet) runFunc {
	stale := fs.Duration("stale", 30*time.Second, "a worker whose newest heartbeat is older than this `duration` is stale (Nimbus: nimbus.task.timeout.secs)")
	asJSON := fs.Bool("json", false, "print JSON instead of tables")
	all := fs.Bool("all", false, "list every worker with the servers holding its heartbeat, not only stale ones")
	colorMode := fs.String("color", "auto", "`when`: auto (on a terminal, unless NO_COLOR is set), always or never")
	var lim status.Limits
	fs.IntVar(&lim.MaxDepth, "max-depth", status.DefaultMaxDepth, "stop at keys deeper than this many path `levels` (Storm writes 3)")
	fs.IntVar(&lim.MaxNames, "max-names", status.DefaultMaxNames, "stop after listing this many `names` on one server")
	fs.Int64Var(&lim.MaxNameBytes, "max-name-bytes", status.DefaultMaxNameBytes, "stop when the key paths found on one server exceed this many `bytes`")
	maxTime := fs.Duration("max-time", 10*time.Minute, "stop the walk after this `duration`")
	return func(ctx context.Context, env *Env, args []string) int {
		if len(args) > 0 || *stale <= 0 || *maxTime <= 0 || lim.MaxDepth <= 0 || lim.MaxNames <= 0 || lim.MaxNameBytes <= 0 {
			return env.usageErr("status")
		}
		color, err := useColor(*colorMode, env.Stdout)
		if err != nil {
			return env.localErr(fmt.Errorf("status: %w", err))
		}
		lim.RequestTimeout = env.Global.Timeout
		return runStatus(ctx, env, *maxTime, status.Options{Stale: *stale, Now: statusNow(), Limits: lim},
			status.TableOptions{Color: color, All: *all}, *asJSON)
	}
}

// runStatus exits ExitFailure (3) when no server could be read (down,
// refusing reads, broken mid-scan, or past a walk limit), ExitPartial (4)
// when some could not, else ExitFalse (1) when a worker's newest heartbeat
// is stale or undecodable, else ExitOK.
func runStatus(ctx context.Context, env *Env, maxTime time.Duration, opts status.Options, table status.TableOptions, asJSON bool) int {
	p, err := env.Pool()
	if err != nil {
		return env.credentialErr(err)
	}
	defer p.Close()
	ctx, cancel := context.WithTimeout(ctx, maxTime)
	defer cancel()

	r := status.Gather(ctx, p, env.Global.Servers, opts)
	if asJSON {
		err = r.WriteJSON(env.Stdout)
	} else {
		err = r.WriteTable(env.Stdout, table)
	}
	if err != nil {
		return env.fail(fmt.Errorf("write status: %w", err))
	}
	for _, s := range r.Servers {
		if !s.OK() {
			fmt.Fprintf(env.Stderr, "pacemakerctl: server %s failed: %s\n", s.Addr, s.Error)
		}
	}
	switch {
	case r.Summary.Failed == r.Summary.Servers:
		return ExitFailure
	case r.Summary.Failed > 0:
		return ExitPartial
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
