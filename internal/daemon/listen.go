package daemon

import (
	"fmt"
	"log/slog"
	"net"
	"os"
	"strconv"

	"github.com/storm-pacemaker/pacemaker/internal/config"
)

// openListeners serves on the listening sockets systemd passed
// (pacemaker.socket) and, only when it passed none, binds pacemaker.listen /
// pacemaker.port itself. An empty listen address binds every address, IPv4
// and IPv6, on one dual-stack socket. passed holds what systemd passed
// besides the hand-over (takeOver has taken that out).
func (d *daemon) openListeners(cfg *config.Config, passed []*os.File) ([]net.Listener, error) {
	var lns []net.Listener
	for _, f := range passed {
		ln, err := net.FileListener(f)
		f.Close()
		if err != nil {
			d.log.Warn("ignoring a socket systemd passed", "name", f.Name(), "err", err)
			continue
		}
		lns = append(lns, ln)
	}
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
