package main

import (
	"context"
	"sync"
	"time"

	"github.com/panjf2000/gnet/v2"

	"github.com/storm-pacemaker/pacemaker/internal/store"
)

type gnetHandler struct {
	gnet.BuiltinEventEngine
	st  *store.Store
	eng gnet.Engine
}

var outPool = sync.Pool{New: func() any { b := make([]byte, 0, 4096); return &b }}

func (h *gnetHandler) OnBoot(e gnet.Engine) gnet.Action { h.eng = e; return gnet.None }

func (h *gnetHandler) OnTraffic(c gnet.Conn) gnet.Action {
	in, _ := c.Peek(-1)
	bp := outPool.Get().(*[]byte)
	n, out, err := serveFrames(h.st, in, (*bp)[:0])
	if len(out) > 0 {
		_, _ = c.Write(out)
	}
	*bp = out
	outPool.Put(bp)
	_, _ = c.Discard(n)
	if err != nil {
		return gnet.Close
	}
	return gnet.None
}

func serveGnet(addr string, loops int, et bool, st *store.Store) (func(), error) {
	h := &gnetHandler{st: st}
	errc := make(chan error, 1)
	go func() {
		errc <- gnet.Run(h, "tcp://"+addr, gnet.WithNumEventLoop(loops), gnet.WithTCPNoDelay(gnet.TCPNoDelay),
			gnet.WithEdgeTriggeredIO(et))
	}()
	for h.eng.Validate() != nil {
		select {
		case err := <-errc:
			return nil, err
		default:
		}
		time.Sleep(10 * time.Millisecond)
	}
	return func() { _ = h.eng.Stop(context.Background()) }, nil
}
