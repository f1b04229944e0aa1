package ctl

import (
	"context"
	"fmt"
	"io"
	"os"

	"github.com/storm-pacemaker/pacemaker/internal/client"
)

func init() {
	register("send", command{"send PATH [FILE|-]", "store FILE (or stdin) as the heartbeat at PATH, on one server", runSend})
	register("get", command{"get PATH", "print the heartbeat at PATH (newest across servers)", runGet})
	register("ls", command{"ls PATH", "list the names directly below PATH, merged across servers", runLs})
	register("exists", command{"exists PATH", "exit 0 if PATH is a stored key on any server, 1 if not", runExists})
	register("delete", command{"delete PATH", "delete exactly the key PATH on every server", runDelete})
	register("delete-path", command{"delete-path PATH", "delete PATH and everything below it on every server", runDeletePath})
}

// withPool runs fn with an open pool and turns its error into an exit code.
func withPool(env *Env, fn func(p *client.Pool) int) int {
	p, err := env.Pool()
	if err != nil {
		return env.fail(err)
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
		data, err = io.ReadAll(env.Stdin)
	} else {
		data, err = os.ReadFile(args[1])
	}
	if err != nil {
		return env.fail(fmt.Errorf("read heartbeat: %w", err))
	}
	return withPool(env, func(p *client.Pool) int {
		if err := p.SendPulse(ctx, args[0], data); err != nil {
			return env.fail(err)
		}
		return ExitOK
	})
}

func runGet(ctx context.Context, env *Env, args []string) int {
	if len(args) != 1 {
		return env.usageErr("get")
	}
	return withPool(env, func(p *client.Pool) int {
		b, found, err := p.GetPulse(ctx, args[0], NewerHeartbeat)
		if err != nil {
			return env.fail(err)
		}
		if !found {
			fmt.Fprintf(env.Stderr, "pacemakerctl: %s: no such key\n", args[0])
			return ExitFalse
		}
		_, _ = env.Stdout.Write(b)
		return ExitOK
	})
}

func runLs(ctx context.Context, env *Env, args []string) int {
	if len(args) != 1 {
		return env.usageErr("ls")
	}
	return withPool(env, func(p *client.Pool) int {
		names, err := p.Children(ctx, args[0])
		if err != nil {
			return env.fail(err)
		}
		for _, n := range names {
			fmt.Fprintln(env.Stdout, n)
		}
		return ExitOK
	})
}

func runExists(ctx context.Context, env *Env, args []string) int {
	if len(args) != 1 {
		return env.usageErr("exists")
	}
	return withPool(env, func(p *client.Pool) int {
		res := client.All(ctx, p, func(c *client.Conn) (bool, error) { return c.Exists(ctx, args[0]) })
		var lastErr error
		answered := false
		for _, r := range res {
			if r.Err != nil {
				lastErr = r.Err
				continue
			}
			answered = true
			if r.Value {
				fmt.Fprintln(env.Stdout, "true")
				return ExitOK
			}
		}
		if !answered {
			return env.fail(lastErr)
		}
		fmt.Fprintln(env.Stdout, "false")
		return ExitFalse
	})
}

func runDelete(ctx context.Context, env *Env, args []string) int {
	if len(args) != 1 {
		return env.usageErr("delete")
	}
	return withPool(env, func(p *client.Pool) int {
		for _, r := range client.All(ctx, p, func(c *client.Conn) (struct{}, error) {
			return struct{}{}, c.DeletePulseID(ctx, args[0])
		}) {
			if r.Err != nil {
				return env.fail(r.Err)
			}
		}
		return ExitOK
	})
}

func runDeletePath(ctx context.Context, env *Env, args []string) int {
	if len(args) != 1 {
		return env.usageErr("delete-path")
	}
	return withPool(env, func(p *client.Pool) int {
		if err := p.DeletePath(ctx, args[0]); err != nil {
			return env.fail(err)
		}
		return ExitOK
	})
}
