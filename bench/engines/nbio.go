package main

import (
	"github.com/lesismal/nbio"

	"github.com/storm-pacemaker/pacemaker/internal/store"
)

func serveNbio(addr string, loops int, st *store.Store) (func(), error) {
	e := nbio.NewEngine(nbio.Config{Network: "tcp", Addrs: []string{addr}, NPoller: loops})
	e.OnData(func(c *nbio.Conn, data []byte) {
		// Unconsumed input (a partial frame) lives in the session.
		var in []byte
		if kept, _ := c.Session().([]byte); len(kept) > 0 {
			in = append(kept, data...)
		} else {
			in = data
		}
		bp := outPool.Get().(*[]byte)
		n, out, err := serveFrames(st, in, (*bp)[:0])
		if len(out) > 0 {
			_, _ = c.Write(out)
		}
		*bp = out
		outPool.Put(bp)
		if err != nil {
			c.Close()
			return
		}
		if rest := in[n:]; len(rest) > 0 {
			c.SetSession(append([]byte(nil), rest...))
		} else if c.Session() != nil {
			c.SetSession(nil)
		}
	})
	if err := e.Start(); err != nil {
		return nil, err
	}
	return e.Stop, nil
}
