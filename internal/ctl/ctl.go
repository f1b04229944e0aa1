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
	"io/fs"
	"net"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/cliflag"
	"github.com/storm-pacemaker/pacemaker/internal/version"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// Exit codes, as a shell user expects them (README, pacemakerctl(1) and
// --help say the same).
const (
	ExitOK      = 0
	ExitFalse   = 1 // not found, does not exist, a stale worker
	ExitUsage   = 2 // bad flags or arguments, or local input: a missing file, JAAS file or keytab, a malformed --servers
	ExitFailure = 3 // no server answered: unreachable, or refused the request or the authentication
	ExitPartial = 4 // some servers answered and some failed (each failed one is named on stderr)
)

const exitHelp = "Exit status: 0 done; 1 not found, false or stale; 2 usage error or bad local input\n" +
	"(a missing file, JAAS file or keytab, a malformed --servers); 3 no server answered (unreachable,\n" +
	"or refused the request or the authentication); 4 some servers failed (named on stderr).\n"

// DefaultPort is Storm's pacemaker.port, for servers given without one.
const DefaultPort = 6699

// Env is what a command runs with.
type Env struct {
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Global         *Global
}

// Global holds the flags every command shares. pacemaker-bench takes the
// same ones (AddFlags, Resolve).
type Global struct {
	Servers     []string
	Auth        auth.Method
	JAAS        string
	StormConfig string
	Timeout     time.Duration
	// MaxFrame is the largest frame a server takes (the storm.yaml's
	// pacemaker.thrift.message.size.max, else Storm's 10 MiB).
	MaxFrame int

	servers, method string // as given, resolved by Resolve
}

// AddFlags registers the shared flags on fs. Registering them on a
// subcommand's set too lets them follow the command; the current values
// are the defaults, so a second registration does not reset the first.
func (g *Global) AddFlags(fs *flag.FlagSet) {
	fs.StringVar(&g.servers, "servers", g.servers, "comma-separated `host:port` list (default $PACEMAKER_SERVERS, the storm.yaml's pacemaker.servers, or localhost:6699)")
	fs.StringVar(&g.method, "auth", g.method, "authentication `method`: NONE, DIGEST or KERBEROS (default NONE, or the storm.yaml's pacemaker.auth.method)")
	fs.StringVar(&g.JAAS, "jaas", g.JAAS, "JAAS `file` with PacemakerDigest (DIGEST) or PacemakerClient (KERBEROS) (default the storm.yaml's java.security.auth.login.config, else "+defaultJAAS+")")
	fs.StringVar(&g.StormConfig, "storm-config", g.StormConfig, "read pacemaker.servers, pacemaker.port, pacemaker.auth.method, pacemaker.thrift.message.size.max and the JAAS path from this storm.yaml `file`")
	fs.DurationVar(&g.Timeout, "timeout", g.Timeout, "connecting, and each command as a whole (status: each request)")
}

// NewGlobal returns the shared settings with their defaults.
func NewGlobal() *Global { return &Global{Timeout: 10 * time.Second} }

// command is one subcommand: args names its arguments for the help, and
// setup declares its flags on fs and returns what runs it.
type command struct {
	args  string // "PATH [FILE|-]"
	help  string
	setup func(fs *flag.FlagSet) runFunc
	// walk: --timeout bounds each request, not the command (status's walk
	// has its own limits, --max-time among them).
	walk bool
}

type runFunc func(ctx context.Context, env *Env, args []string) int

var commands = map[string]command{}

func register(name string, c command) { commands[name] = c }

// Main runs pacemakerctl and returns its exit code.
func Main(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	g := NewGlobal()
	fs := cliflag.New("pacemakerctl")
	g.AddFlags(fs)
	showVersion := fs.Bool("version", false, "print the version and exit")
	if err := cliflag.Parse(fs, args, stdout, func(w io.Writer) { usage(w, fs) }); err != nil {
		return parseExit(err, stderr, "pacemakerctl")
	}
	if *showVersion {
		fmt.Fprintf(stdout, "pacemakerctl %s\n", version.String())
		return ExitOK
	}
	if fs.NArg() == 0 {
		fmt.Fprintf(stderr, "pacemakerctl: no command given (try --help)\n")
		return ExitUsage
	}
	name := fs.Arg(0)
	cmd, ok := commands[name]
	if !ok {
		fmt.Fprintf(stderr, "pacemakerctl: unknown command %q (try --help)\n", name)
		return ExitUsage
	}
	cfs := cliflag.New("pacemakerctl " + name)
	run := cmd.setup(cfs)
	g.AddFlags(cfs)
	help := func(w io.Writer) { commandUsage(w, name, cmd) }
	if err := cliflag.Parse(cfs, fs.Args()[1:], stdout, help); err != nil {
		return parseExit(err, stderr, "pacemakerctl "+name)
	}
	if err := g.Resolve(); err != nil {
		fmt.Fprintf(stderr, "pacemakerctl: %v\n", err)
		return ExitUsage
	}
	ctx, cancel := context.Background(), context.CancelFunc(func() {})
	if !cmd.walk {
		ctx, cancel = context.WithTimeout(ctx, g.Timeout)
	}
	defer cancel()
	return run(ctx, &Env{Stdin: stdin, Stdout: stdout, Stderr: stderr, Global: g}, cfs.Args())
}

// parseExit turns a cliflag.Parse error into an exit code, printing a
// parse error once.
func parseExit(err error, stderr io.Writer, prog string) int {
	if errors.Is(err, cliflag.ErrHelp) {
		return ExitOK
	}
	fmt.Fprintf(stderr, "%s: %v (try --help)\n", prog, err)
	return ExitUsage
}

// synopsis is a command's line in the main help: its flags and arguments.
func synopsis(name string, c command) string {
	fs := cliflag.New(name)
	c.setup(fs)
	return strings.Join(slices.DeleteFunc([]string{name, cliflag.Synopsis(fs), c.args}, func(s string) bool { return s == "" }), " ")
}

func usage(w io.Writer, fs *flag.FlagSet) {
	fmt.Fprintf(w, "Usage: pacemakerctl [flags] COMMAND [command flags] [ARGS]\n\n"+
		"Reads, writes and inspects heartbeats on Storm Pacemaker servers: a write goes to one\n"+
		"server, a read asks every server and merges the answers.\n\nCommands:\n")
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		fmt.Fprintf(w, "  %s\n      %s\n", cliflag.Wrap(synopsis(n, commands[n]), 96, "      "), cliflag.Wrap(commands[n].help, 96, "      "))
	}
	fmt.Fprintf(w, "\nFlags (before or after COMMAND):\n")
	cliflag.PrintFlags(w, fs)
	fmt.Fprintf(w, "\n`pacemakerctl COMMAND --help` describes one command.\n\n%s", exitHelp)
}

// commandUsage is one command's help: its own flags, then a pointer to
// the shared ones.
func commandUsage(w io.Writer, name string, c command) {
	fmt.Fprintf(w, "Usage: pacemakerctl [flags] %s\n\n%s\n", cliflag.Wrap(synopsis(name, c), 96, "    "), cliflag.Wrap(c.help, 96, ""))
	own := cliflag.New(name)
	c.setup(own)
	if cliflag.Synopsis(own) != "" {
		fmt.Fprintf(w, "\nFlags:\n")
		cliflag.PrintFlags(w, own)
	}
	fmt.Fprintf(w, "\nShared flags (see pacemakerctl --help): --servers --auth --jaas --storm-config --timeout\n\n%s", exitHelp)
}

// Resolve fills the settings from the flags, then the storm.yaml, then the
// environment. Every error is the operator's input: exit 2.
func (g *Global) Resolve() error {
	var storm *stormConfig
	if g.StormConfig != "" {
		var err error
		if storm, err = loadStormConfig(g.StormConfig); err != nil {
			return err
		}
	}
	var list, from string
	switch {
	case g.servers != "":
		list, from = g.servers, "--servers"
	case os.Getenv("PACEMAKER_SERVERS") != "":
		list, from = os.Getenv("PACEMAKER_SERVERS"), "$PACEMAKER_SERVERS"
	case storm != nil && len(storm.Servers) > 0:
		list, from = strings.Join(storm.Servers, ","), g.StormConfig
	default:
		list, from = "localhost:"+strconv.Itoa(DefaultPort), "the default"
	}
	servers, err := parseServers(list)
	if err != nil {
		return fmt.Errorf("%s: %w", from, err)
	}
	g.Servers = servers
	method := g.method
	if method == "" && storm != nil {
		method = storm.AuthMethod
	}
	if method == "" {
		method = string(auth.None)
	}
	m, err := auth.ParseMethod(method)
	if err != nil {
		return fmt.Errorf("--auth: %w", err)
	}
	g.Auth = m
	if g.JAAS == "" && storm != nil {
		g.JAAS = storm.JAAS
	}
	g.MaxFrame = wire.DefaultMaxFrame
	if storm != nil && storm.MaxFrame > 0 {
		g.MaxFrame = storm.MaxFrame
	}
	if g.Timeout <= 0 {
		return fmt.Errorf("--timeout %s: want a positive duration", g.Timeout)
	}
	return nil
}

// parseServers checks a comma-separated server list: host:port, or a host
// alone for Storm's default port.
func parseServers(s string) ([]string, error) {
	var out []string
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		host, port, err := net.SplitHostPort(p)
		if err != nil {
			if bare := strings.Trim(p, "[]"); !strings.Contains(p, ":") || net.ParseIP(bare) != nil {
				host, port = bare, strconv.Itoa(DefaultPort) // a host alone
			} else {
				return nil, fmt.Errorf("server %q: want host:port", p)
			}
		}
		if n, err := strconv.Atoi(port); err != nil || n < 1 || n > 65535 {
			return nil, fmt.Errorf("server %q: port %q is not a number from 1 to 65535", p, port)
		}
		if host == "" || strings.ContainsAny(host, " /\t") {
			return nil, fmt.Errorf("server %q: want host:port", p)
		}
		out = append(out, net.JoinHostPort(host, port))
	}
	if len(out) == 0 {
		return nil, errors.New("lists no server")
	}
	return out, nil
}

// Pool opens a pool over the configured servers with the configured auth.
// Its error is local (the JAAS file, a keytab): exit 2.
func (e *Env) Pool() (*client.Pool, error) {
	mech, err := ClientMechanism(e.Global)
	if err != nil {
		return nil, err
	}
	return client.NewPool(e.Global.Servers, client.Options{Auth: mech, DialTimeout: e.Global.Timeout, MaxFrame: e.Global.MaxFrame}), nil
}

// fail prints err (no server answered) and returns ExitFailure.
func (e *Env) fail(err error) int {
	fmt.Fprintf(e.Stderr, "pacemakerctl: %v\n", err)
	e.authHint(err)
	return ExitFailure
}

// credentialErr is for an error building the client's credentials: bad
// local input (exit 2), unless a Kerberos login reached the KDC and was
// refused (exit 3).
func (e *Env) credentialErr(err error) int {
	var le *LoginError
	if errors.As(err, &le) && !errors.Is(err, fs.ErrNotExist) {
		return e.fail(err)
	}
	return e.localErr(err)
}

// localErr prints err (bad local input) and returns ExitUsage.
func (e *Env) localErr(err error) int {
	fmt.Fprintf(e.Stderr, "pacemakerctl: %v\n", err)
	return ExitUsage
}

func (e *Env) authHint(err error) {
	if errors.Is(err, client.ErrNotAuthorized) && e.Global.Auth == auth.None {
		fmt.Fprintf(e.Stderr, "pacemakerctl: reads need authentication on this server: pass --auth DIGEST or KERBEROS with --jaas\n")
	}
}

// serverErrors names every server that failed on stderr and returns the
// exit code the failures call for, or -1 when every server answered.
func serverErrors[T any](e *Env, res []client.Result[T]) int {
	failed := 0
	for _, r := range res {
		if r.Err != nil {
			failed++
			fmt.Fprintf(e.Stderr, "pacemakerctl: server %s failed: %v\n", r.Addr, r.Err)
			e.authHint(r.Err)
		}
	}
	switch {
	case failed == 0:
		return -1
	case failed == len(res):
		return ExitFailure
	}
	return ExitPartial
}

func (e *Env) usageErr(c string) int {
	fmt.Fprintf(e.Stderr, "pacemakerctl: usage: pacemakerctl %s (try pacemakerctl %s --help)\n", synopsis(c, commands[c]), c)
	return ExitUsage
}
