package main

import (
	"flag"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/storm-pacemaker/pacemaker/internal/store"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: engines serve|idle [flags]")
		os.Exit(2)
	}
	switch os.Args[1] {
	case "serve":
		fs := flag.NewFlagSet("serve", flag.ExitOnError)
		eng := fs.String("engine", "own", "own, gnet, nbio, netpoll or goroutine")
		addr := fs.String("addr", "127.0.0.1:7000", "listen address")
		loops := fs.Int("loops", 0, "event loops (0: the engine's default; GOMAXPROCS for the libraries)")
		et := fs.Bool("et", false, "gnet: edge-triggered")
		wait := fs.String("wait", "auto", "own: how idle loops wait (auto, block or park)")
		_ = fs.Parse(os.Args[2:])
		if *loops == 0 && *eng != "own" {
			*loops = runtime.GOMAXPROCS(0)
		}
		st := store.New(store.Limits{})
		switch *wait {
		case "block":
			ownWait = engine.WaitBlock
		case "park":
			ownWait = engine.WaitPark
		}
		stop, err := serve(*eng, *addr, *loops, *et, st)
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		fmt.Println("ready")
		sig := make(chan os.Signal, 1)
		signal.Notify(sig, syscall.SIGTERM, os.Interrupt)
		<-sig
		stop()
	case "idle":
		os.Exit(idle(os.Args[2:]))
	default:
		fmt.Fprintln(os.Stderr, "usage: engines serve|idle [flags]")
		os.Exit(2)
	}
}

func serve(eng, addr string, loops int, et bool, st *store.Store) (func(), error) {
	switch eng {
	case "own":
		return serveOwn(addr, loops, st)
	case "gnet":
		return serveGnet(addr, loops, et, st)
	case "nbio":
		return serveNbio(addr, loops, st)
	case "netpoll":
		return serveNetpoll(addr, loops, st)
	case "goroutine":
		return serveGoroutine(addr, st)
	}
	return nil, fmt.Errorf("unknown engine %q", eng)
}
