package daemon

import (
	"fmt"
	"log/slog"
	"net"
	"strconv"

	"github.com/storm-pacemaker/pacemaker/internal/config"
)

// openListeners binds pacemaker.listen / pacemaker.port. An empty listen
// address binds every address, IPv4 and IPv6, on one dual-stack socket.
func openListeners(cfg *config.Config, log *slog.Logger) ([]net.Listener, error) {
	addr := listenAddr(cfg)
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, fmt.Errorf("listen on %s: %w", addr, err)
	}
	log.Debug("bound own listener", "addr", ln.Addr().String())
	return []net.Listener{ln}, nil
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
