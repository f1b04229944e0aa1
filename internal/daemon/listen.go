package daemon

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/coreos/go-systemd/v22/activation"
	"golang.org/x/sys/unix"

	"github.com/storm-pacemaker/pacemaker/internal/config"
	"github.com/storm-pacemaker/pacemaker/internal/handoff"
)

// openListeners returns the sockets systemd passed (pacemaker.socket) and,
// only when it passed none, binds pacemaker.listen / pacemaker.port itself.
// An empty listen address binds every address, IPv4 and IPv6, on one
// dual-stack socket. What a previous process handed over through the
// file-descriptor store (heartbeats, connections) is taken up here too,
// before anything is served.
func (d *daemon) openListeners(cfg *config.Config) ([]net.Listener, error) {
	lns, prev := passedFiles(d.log)
	d.resume(prev)
	if len(lns) > 0 {
		addrs := make([]string, len(lns))
		for i, ln := range lns {
			addrs[i] = ln.Addr().String()
		}
		d.log.Info("serving on the sockets systemd passed", "sockets", addrs)
		warnPassedAddr(cfg, lns, d.log)
		return lns, nil
	}
	addr := listenAddr(cfg)
	if err := resolveListen("pacemaker.listen", addr); err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	d.log.Debug("bound own listener", "addr", ln.Addr().String())
	return []net.Listener{ln}, nil
}

// inherited is what the previous process left in systemd's
// file-descriptor store; see handoff.go.
type inherited struct {
	state *os.File // handoff.StateName: the heartbeats and connection metadata
	conns *os.File // connsName: carrier of the connection sockets
	// stored names every fd-store descriptor we were given, so that they
	// are removed from the store once taken up (or found useless).
	stored []string
}

// passedFiles sorts the descriptors in $LISTEN_FDS (read once: the call
// clears the variables) into listening sockets and a hand-over. Anything
// else is closed and, should it sit in the fd store, removed from it.
func passedFiles(log *slog.Logger) ([]net.Listener, inherited) {
	var lns []net.Listener
	var prev inherited
	for _, f := range activation.Files(true) {
		name := f.Name()
		switch {
		case name == handoff.StateName && prev.state == nil:
			prev.state = f
			prev.stored = append(prev.stored, name)
		case name == connsName && prev.conns == nil:
			prev.conns = f
			prev.stored = append(prev.stored, name)
		case isListening(f):
			ln, err := net.FileListener(f)
			f.Close()
			if err != nil {
				log.Warn("ignoring a socket systemd passed", "name", name, "err", err)
				continue
			}
			lns = append(lns, ln)
		default:
			// E.g. left by another version of pacemaker: close it both
			// here and in the store, or it would pin its resource forever.
			log.Warn("closing an unknown descriptor systemd passed", "name", name)
			f.Close()
			prev.stored = append(prev.stored, name)
		}
	}
	return lns, prev
}

// isListening reports whether f is a socket in the listening state.
func isListening(f *os.File) bool {
	v, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_ACCEPTCONN)
	return err == nil && v == 1
}

// warnPassedAddr says when the config asks for another address than the
// one systemd passed: the socket unit decides, and nobody should believe
// that pacemaker.port took effect.
func warnPassedAddr(cfg *config.Config, lns []net.Listener, log *slog.Logger) {
	host, portStr, err := net.SplitHostPort(listenAddr(cfg))
	if err != nil {
		return // config validation already said what is wrong
	}
	wantPort, _ := strconv.Atoi(portStr)
	wantIP := net.ParseIP(host) // nil: every address
	ipMatched := wantIP == nil
	for _, ln := range lns {
		ta, ok := ln.Addr().(*net.TCPAddr)
		if !ok {
			continue
		}
		if ta.Port != wantPort {
			log.Warn("pacemaker.port differs from the socket systemd passed; serving on the passed socket (change ListenStream= in pacemaker.socket instead)",
				"key", "pacemaker.port", "port", wantPort, "socket", ta.String())
		}
		if wantIP != nil && wantIP.Equal(ta.IP) {
			ipMatched = true
		}
	}
	if !ipMatched {
		log.Warn("pacemaker.listen differs from the sockets systemd passed; serving on the passed sockets (change ListenStream= in pacemaker.socket instead)",
			"key", "pacemaker.listen", "listen", cfg.Listen)
	}
}

// listenAddr combines pacemaker.listen (host, or host:port) with pacemaker.port.
func listenAddr(cfg *config.Config) string {
	if cfg.Listen == "" {
		return ":" + strconv.Itoa(cfg.Port)
	}
	if _, _, err := net.SplitHostPort(cfg.Listen); err == nil {
		return cfg.Listen
	}
	return net.JoinHostPort(trimBrackets(cfg.Listen), strconv.Itoa(cfg.Port))
}

func trimBrackets(h string) string {
	if len(h) > 1 && h[0] == '[' && h[len(h)-1] == ']' {
		return h[1 : len(h)-1]
	}
	return h
}
