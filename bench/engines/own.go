package main

import (
	"net"

	"github.com/storm-pacemaker/pacemaker/internal/engine"
	"github.com/storm-pacemaker/pacemaker/internal/store"
)

// ownWait is engine.Config.Wait.
var ownWait engine.WaitMode

type ownHandler struct{ st *store.Store }

func (h ownHandler) OnOpen(c *engine.Conn) error { return nil }

func (h ownHandler) OnData(c *engine.Conn, in []byte) (int, error) {
	n, out, err := serveFrames(h.st, in, c.Out())
	c.SetOut(out)
	return n, err
}

func (h ownHandler) OnWritten(*engine.Conn)      {}
func (h ownHandler) OnClose(*engine.Conn, error) {}

func serveOwn(addr string, loops int, st *store.Store) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	f, err := ln.(*net.TCPListener).File()
	if err != nil {
		return nil, err
	}
	e, err := engine.New(engine.Config{Handler: ownHandler{st}, Loops: loops, Wait: ownWait})
	if err != nil {
		return nil, err
	}
	if err := e.Listen(int(f.Fd())); err != nil {
		return nil, err
	}
	return func() { e.Close(); f.Close(); ln.Close() }, nil
}
