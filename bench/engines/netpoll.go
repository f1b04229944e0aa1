package main

import (
	"context"
	"encoding/binary"

	"github.com/cloudwego/netpoll"

	"github.com/storm-pacemaker/pacemaker/internal/store"
)

func serveNetpoll(addr string, loops int, st *store.Store) (func(), error) {
	_ = netpoll.Configure(netpoll.Config{PollerNum: loops})
	ln, err := netpoll.CreateListener("tcp", addr)
	if err != nil {
		return nil, err
	}
	onRequest := func(_ context.Context, c netpoll.Connection) error {
		r := c.Reader()
		bp := outPool.Get().(*[]byte)
		out := (*bp)[:0]
		for r.Len() >= 4 {
			hdr, _ := r.Peek(4)
			n := int(binary.BigEndian.Uint32(hdr))
			if r.Len() < 4+n {
				break
			}
			frame, _ := r.Next(4 + n)
			var err error
			if _, out, err = serveFrames(st, frame, out); err != nil {
				c.Close()
				return err
			}
		}
		_ = r.Release()
		if len(out) > 0 {
			// Malloc and copy: WriteBinary would keep a reference to out.
			w := c.Writer()
			if b, err := w.Malloc(len(out)); err == nil {
				copy(b, out)
				_ = w.Flush()
			}
		}
		*bp = out
		outPool.Put(bp)
		return nil
	}
	loop, err := netpoll.NewEventLoop(onRequest)
	if err != nil {
		return nil, err
	}
	go func() { _ = loop.Serve(ln) }()
	return func() { _ = loop.Shutdown(context.Background()) }, nil
}
