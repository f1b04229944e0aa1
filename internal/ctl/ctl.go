// Package ctl is pacemakerctl: an operator's command line over the client
// package. Each subcommand registers itself in commands; cmd/pacemakerctl
// only calls Main.
package ctl

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/version"
)

// Exit codes, as a shell user expects them.
const (
	ExitOK       = 0
	ExitFalse    = 1 // not found, does not exist
	ExitUsage    = 2
	ExitFailure  = 3 // unreachable, refused, not authorized
	defaultAddrs = "localhost:6699"
)

// Env is what a command runs with.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Global         *Global
}

// Global holds the flags every command shares.
type Global struct {
	Servers     []string
	Auth        auth.Method
	JAAS        string
	StormConfig string
	Timeout     time.Duration
}

// command is one subcommand.
type command struct {
	usage string // "send PATH [FILE|-]"
	help  string
	run   func(ctx context.Context, env *Env, args []string) int
}

var commands = map[string]command{}

func register(name string, c command) { commands[name] = c }

// Main runs pacemakerctl and returns its exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := &Global{}
	fs := flag.NewFlagSet("pacemakerctl", flag.ContinueOnError)
	fs.SetOutput(stderr)
	servers := fs.String("servers", "", "comma-separated host:port list (default $PACEMAKER_SERVERS, the storm.yaml's pacemaker.servers, or "+defaultAddrs+")")
	method := fs.String("auth", "", "NONE, DIGEST or KERBEROS (default NONE, or the storm.yaml's pacemaker.auth.method)")
	fs.StringVar(&g.JAAS, "jaas", "", "JAAS file with PacemakerDigest (DIGEST) or PacemakerClient (KERBEROS) (default: the storm.yaml's java.security.auth.login.config)")
	fs.StringVar(&g.StormConfig, "storm-config", "", "read pacemaker.servers, pacemaker.port, pacemaker.auth.method and the JAAS path from this storm.yaml")
	fs.DurationVar(&g.Timeout, "timeout", 10*time.Second, "per-command timeout")
	showVersion := fs.Bool("version", false, "print the version and exit")
	fs.Usage = func() { usage(fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return ExitOK
		}
		return ExitUsage
	}
	if *showVersion {
		fmt.Fprintf(stdout, "pacemakerctl %s\n", version.String())
		return ExitOK
	}
	if fs.NArg() == 0 {
		usage(fs)
		return ExitUsage
	}
	name := fs.Arg(0)
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "pacemakerctl: unknown command %q (try --help)\n", name)
		return ExitUsage
	}
	if err := g.resolve(*servers, *method); err != nil {
		fmt.Fprintf(stderr, "pacemakerctl: %v\n", err)
		return ExitUsage
	}
	ctx, cancel := context.WithTimeout(context.Background(), g.Timeout)
	defer cancel()
	return cmd.run(ctx, &Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Global: g}, fs.Args()[1:])
}

func usage(fs *flag.FlagSet) {
	w := fs.Output()
	fmt.Fprintf(w, "Usage: pacemakerctl [flags] COMMAND [ARGS]\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	sort.Strings(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %-28s %s\n", commands[n].usage, commands[n].help)
	}
	fmt.Fprintf(w, "\nFlags:\n")
	fs.PrintDefaults()
	fmt.Fprintf(w, "\nExit status: 0 done, 1 not found / false, 2 usage error, 3 server unreachable or refused.\n")
}

// resolve fills the global settings from flags, then storm.yaml, then the environment.
func (g *Global) resolve(servers, method string) error {
	var storm *stormConfig
	if g.StormConfig != "" {
		var err error
		if storm, err = loadStormConfig(g.StormConfig); err != nil {
			return err
		}
	}
	switch {
	case servers != "":
		g.Servers = splitList(servers)
	case os.Getenv("PACEMAKER_SERVERS") != "":
		g.Servers = splitList(os.Getenv("PACEMAKER_SERVERS"))
	case storm != nil && len(storm.Servers) > 0:
		g.Servers = storm.Servers
	default:
		g.Servers = []string{defaultAddrs}
	}
	if len(g.Servers) == 0 {
		return errors.New("--servers lists no server")
	}
	if method == "" && storm != nil {
		method = storm.AuthMethod
	}
	if method == "" {
		method = string(auth.None)
	}
	m, err := auth.ParseMethod(method)
	if err != nil {
		return err
	}
	g.Auth = m
	if g.JAAS == "" && storm != nil {
		g.JAAS = storm.JAAS
	}
	return nil
}

func splitList(s string) []string {
	var out []string
	for _, p := range strings.Split(s, ",") {
		if p = strings.TrimSpace(p); p != "" {
			out = append(out, p)
		}
	}
	return out
}

// Pool opens a pool over the configured servers with the configured auth.
func (e *Env) Pool() (*client.Pool, error) {
	mech, err := clientMechanism(e.Global)
	if err != nil {
		return nil, err
	}
	return client.NewPool(e.Global.Servers, client.Options{Auth: mech, DialTimeout: e.Global.Timeout}), nil
}

// fail prints err and returns the failure exit code.
func (e *Env) fail(err error) int {
	fmt.Fprintf(e.Stderr, "pacemakerctl: %v\n", err)
	if errors.Is(err, client.ErrNotAuthorized) && e.Global.Auth == auth.None {
		fmt.Fprintf(e.Stderr, "pacemakerctl: reads need authentication on this server: pass --auth DIGEST or KERBEROS with --jaas\n")
	}
	return ExitFailure
}

func (e *Env) usageErr(c string) int {
	fmt.Fprintf(e.Stderr, "pacemakerctl: usage: pacemakerctl %s\n", commands[c].usage)
	return ExitUsage
}
