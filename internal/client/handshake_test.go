package client

import (
	"context"
	"errors"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// panickyClientMechanism stands for mechanism code that a hostile
// server's token drives into a panic (gokrb5 v8.4.4 did so on a short
// AP-REP).
type panickyClientMechanism struct{}

func (panickyClientMechanism) Name() string { return "GSSAPI" }
func (panickyClientMechanism) NewClientExchange(string) (auth.ClientExchange, error) {
	return panickyClientExchange{}, nil
}

type panickyClientExchange struct{}

func (panickyClientExchange) Start() ([]byte, error) { return []byte{0x60, 0}, nil }
func (panickyClientExchange) Step(b []byte) ([]byte, error) {
	return b[:len(b)-7], nil // slice bounds out of range, as gokrb5 did
}

// TestHostileServerTokenIsAnError: a server that answers the handshake
// with a token the mechanism chokes on makes Dial fail with ErrHandshake;
// the caller (pacemakerctl) does not crash.
func TestHostileServerTokenIsAnError(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		nc, err := ln.Accept()
		if err != nil {
			return
		}
		defer nc.Close()
		_, _ = nc.Write(wire.AppendFrame(nil, wire.NewSaslToken([]byte{2})))
		time.Sleep(2 * time.Second)
	}()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_, err = Dial(ctx, ln.Addr().String(), Options{Auth: panickyClientMechanism{}})
	if !errors.Is(err, ErrHandshake) || !strings.Contains(err.Error(), "panic") {
		t.Fatalf("Dial = %v; want ErrHandshake naming the panic", err)
	}
}
