package server

import (
	"bufio"
	"context"
	"fmt"
	"net"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// healthPath is what the self-check asks about; nobody stores it.
const healthPath = "/pacemaker/health-check"

// loopbackReserve lets loopback peers (the health check, an operator's
// pacemakerctl) connect a little past the connection limits, so a daemon
// full of workers is not killed by its own watchdog.
const loopbackReserve = 16

// LoopbackReserve is loopbackReserve, for the daemon's descriptor budget.
const LoopbackReserve = loopbackReserve

// selfRequest connects to addr and sends one EXISTS through the whole
// request path. On an authenticating server the answer is NOT_AUTHORIZED,
// which proves the path just as well.
func selfRequest(ctx context.Context, addr net.Addr) error {
	targets := []string{addr.String()}
	if ta, ok := addr.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		port := fmt.Sprint(ta.Port)
		targets = []string{net.JoinHostPort("127.0.0.1", port)}
		if ta.IP.To4() == nil {
			// [::] may be IPv6-only, or on a host without ::1: try both.
			targets = []string{net.JoinHostPort("::1", port), targets[0]}
		}
	}
	deadline, ok := ctx.Deadline()
	if !ok {
		deadline = time.Now().Add(5 * time.Second)
	}
	var (
		d      net.Dialer
		nc     net.Conn
		err    error
		target string
	)
	for _, target = range targets {
		if nc, err = d.DialContext(ctx, addr.Network(), target); err == nil {
			break
		}
	}
	if err != nil {
		return fmt.Errorf("health: connect %s: %w", target, err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(deadline)
	req := wire.Message{Type: wire.Exists, Field: wire.FieldPath, Path: healthPath, ID: 1, HasID: true}
	if _, err := nc.Write(wire.AppendFrame(nil, &req)); err != nil {
		return fmt.Errorf("health: send to %s: %w", target, err)
	}
	fr := wire.NewFrameReader(bufio.NewReader(nc), 1<<16)
	body, err := fr.Next()
	if err != nil {
		return fmt.Errorf("health: no answer from %s: %w", target, err)
	}
	var resp wire.Message
	if err := wire.Decode(body, &resp); err != nil {
		return fmt.Errorf("health: answer from %s: %w", target, err)
	}
	if resp.ID != 1 || (resp.Type != wire.ExistsResponse && resp.Type != wire.NotAuthorized) {
		return fmt.Errorf("health: unexpected answer %s from %s", resp.String(), target)
	}
	return nil
}

func isLoopback(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback()
}
