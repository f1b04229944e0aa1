package ctl

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strings"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

func init() {
	register("send", command{args: "PATH [FILE|-]", help: "store FILE (or stdin) as the heartbeat at PATH, on one server (the next one if it fails)", setup: noFlags(runSend)})
	register("get", command{args: "PATH", help: "print the heartbeat at PATH: the newest copy across the servers", setup: noFlags(runGet)})
	register("ls", command{args: "PATH", help: "list the names directly below PATH, merged across the servers", setup: noFlags(runLs)})
	register("exists", command{args: "PATH", help: "exit 0 if PATH is a stored key on any server, 1 if not", setup: noFlags(runExists)})
	register("delete", command{args: "PATH", help: "delete exactly the key PATH on every server (DELETE_PULSE_ID); says what it deleted, and that PATH is a directory if it is one", setup: noFlags(runDelete)})
	register("delete-path", command{args: "PATH", help: "delete the key PATH and every key below it on every server (DELETE_PATH, as Storm's delete_worker_hb)", setup: noFlags(runDeletePath)})
}

func noFlags(run runFunc) func(*flag.FlagSet) runFunc {
	return func(*flag.FlagSet) runFunc { return run }
}

// withPool runs fn with an open pool; a pool that cannot be built (the
// JAAS file, a keytab) is bad local input.
func withPool(env *Env, fn func(p *client.Pool) int) int {
	p, err := env.Pool()
	if err != nil {
		return env.credentialErr(err)
	}
	defer p.Close()
	return fn(p)
}

func runSend(ctx context.Context, env *Env, args []string) int {
	if len(args) < 1 || len(args) > 2 {
		return env.usageErr("send")
	}
	var data []byte
	var err error
	if len(args) == 1 || args[1] == "-" {
		data, err = io.ReadAll(io.LimitReader(env.Stdin, int64(env.Global.MaxFrame)+1))
	} else {
		data, err = readFileMax(args[1], env.Global.MaxFrame)
	}
	if err != nil {
		return env.localErr(fmt.Errorf("read heartbeat: %w", err))
	}
	// The server drops a connection whose frame is over its maximum; say
	// so here rather than report the reset.
	msg := &wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: args[0], Details: data}}
	if n := len(wire.AppendMessage(nil, msg)); n > env.Global.MaxFrame {
		size := fmt.Sprintf("a %d-byte frame", n)
		if len(data) > env.Global.MaxFrame {
			size = fmt.Sprintf("more than %d bytes", env.Global.MaxFrame) // not read further
		}
		return env.localErr(fmt.Errorf("heartbeat too large: %s is over the %d-byte maximum of pacemaker.thrift.message.size.max (Storm's default; a --storm-config that sets it raises it)",
			size, env.Global.MaxFrame))
	}
	return withPool(env, func(p *client.Pool) int {
		// One server taking the heartbeat is a whole write (as for Storm's
		// workers); the servers it moved past are named all the same.
		var skipped []string
		p.WriteFailed = func(addr string, err error) {
			skipped = append(skipped, fmt.Sprintf("pacemakerctl: server %s failed: %v; tried the next", addr, err))
		}
		if err := p.SendPulse(ctx, args[0], data); err != nil {
			return env.fail(err) // names every server and its error
		}
		for _, line := range skipped {
			fmt.Fprintln(env.Stderr, line)
		}
		return ExitOK
	})
}

// readFileMax reads path, but never more than max+1 bytes: enough to know
// it is too large.
func readFileMax(path string, max int) ([]byte, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	return io.ReadAll(io.LimitReader(f, int64(max)+1))
}

func runGet(ctx context.Context, env *Env, args []string) int {
	if len(args) != 1 {
		return env.usageErr("get")
	}
	type pulse struct {
		b     []byte
		found bool
	}
	return withPool(env, func(p *client.Pool) int {
		res := client.All(ctx, p, func(c *client.Conn) (pulse, error) {
			b, ok, err := c.GetPulse(ctx, args[0])
			return pulse{b, ok}, err
		})
		code := serverErrors(env, res)
		if code == ExitFailure {
			return code
		}
		var newest []byte
		found := false
		for _, r := range res {
			if r.Err == nil && r.Value.found && (!found || NewerHeartbeat(r.Value.b, newest)) {
				newest, found = r.Value.b, true
			}
		}
		if !found {
			fmt.Fprintf(env.Stderr, "pacemakerctl: %s: no such key on the servers that answered\n", args[0])
			return max(code, ExitFalse)
		}
		_, _ = env.Stdout.Write(newest)
		return max(code, ExitOK)
	})
}

func runLs(ctx context.Context, env *Env, args []string) int {
	if len(args) != 1 {
		return env.usageErr("ls")
	}
	return withPool(env, func(p *client.Pool) int {
		res := client.All(ctx, p, func(c *client.Conn) ([]string, error) { return c.Children(ctx, args[0]) })
		code := serverErrors(env, res)
		if code == ExitFailure {
			return code
		}
		var names []string
		for _, r := range res {
			names = append(names, r.Value...)
		}
		slices.Sort(names)
		for _, n := range slices.Compact(names) {
			fmt.Fprintln(env.Stdout, n)
		}
		return max(code, ExitOK)
	})
}

func runExists(ctx context.Context, env *Env, args []string) int {
	if len(args) != 1 {
		return env.usageErr("exists")
	}
	return withPool(env, func(p *client.Pool) int {
		res := client.All(ctx, p, func(c *client.Conn) (bool, error) { return c.Exists(ctx, args[0]) })
		for _, r := range res {
			if r.Err == nil && r.Value {
				fmt.Fprintln(env.Stdout, "true")
				return ExitOK // one copy is enough, whatever the others say
			}
		}
		if code := serverErrors(env, res); code != -1 {
			return code // false where it answered, unknown elsewhere
		}
		fmt.Fprintln(env.Stdout, "false")
		return ExitFalse
	})
}

// runDelete deletes exactly the key PATH, as Storm's DELETE_PULSE_ID does.
// That deletes nothing below PATH, so when PATH is only a directory it
// says so (and names delete-path) instead of exiting 0 having done
// nothing.
func runDelete(ctx context.Context, env *Env, args []string) int {
	if len(args) != 1 {
		return env.usageErr("delete")
	}
	path := args[0]
	type outcome struct {
		existed bool
		below   int
	}
	return withPool(env, func(p *client.Pool) int {
		res := client.All(ctx, p, func(c *client.Conn) (outcome, error) {
			existed, err := c.Exists(ctx, path)
			if err != nil {
				return outcome{}, err
			}
			if !existed {
				names, err := c.Children(ctx, path)
				return outcome{below: len(names)}, err
			}
			return outcome{existed: true}, c.DeletePulseID(ctx, path)
		})
		code := serverErrors(env, res)
		if code == ExitFailure {
			return code
		}
		var on []string
		below := 0
		for _, r := range res {
			if r.Err == nil {
				if r.Value.existed {
					on = append(on, r.Addr)
				}
				below = max(below, r.Value.below)
			}
		}
		switch {
		case len(on) > 0:
			fmt.Fprintf(env.Stdout, "deleted key %s on %s\n", path, joinAddrs(on))
			return max(code, ExitOK)
		case below > 0:
			fmt.Fprintf(env.Stderr, "pacemakerctl: %s is not a key but a directory (%d names below it); nothing deleted. "+
				"`pacemakerctl delete-path %s` deletes it and every key below it.\n", path, below, path)
		default:
			fmt.Fprintf(env.Stderr, "pacemakerctl: %s: no such key; nothing deleted\n", path)
		}
		return max(code, ExitFalse)
	})
}

func runDeletePath(ctx context.Context, env *Env, args []string) int {
	if len(args) != 1 {
		return env.usageErr("delete-path")
	}
	path := args[0]
	return withPool(env, func(p *client.Pool) int {
		res := client.All(ctx, p, func(c *client.Conn) (struct{}, error) { return struct{}{}, c.DeletePath(ctx, path) })
		code := serverErrors(env, res)
		if code == ExitFailure {
			return code
		}
		var on []string
		for _, r := range res {
			if r.Err == nil {
				on = append(on, r.Addr)
			}
		}
		fmt.Fprintf(env.Stdout, "deleted %s and every key below it on %s\n", path, joinAddrs(on))
		return max(code, ExitOK)
	})
}

func joinAddrs(addrs []string) string {
	slices.Sort(addrs)
	return strings.Join(addrs, ", ")
}
