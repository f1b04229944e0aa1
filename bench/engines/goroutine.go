package main

import (
	"bufio"
	"net"

	"github.com/storm-pacemaker/pacemaker/internal/store"
)

// serveGoroutine is today's design: a goroutine and a 16 KiB bufio.Reader
// per connection, Go's netpoller underneath.
func serveGoroutine(addr string, st *store.Store) (func(), error) {
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			nc, err := ln.Accept()
			if err != nil {
				return
			}
			go func() {
				defer nc.Close()
				br := bufio.NewReaderSize(nc, 16<<10)
				var out []byte
				for {
					if _, err := br.Peek(1); err != nil {
						return
					}
					in, _ := br.Peek(br.Buffered())
					n, o, err := serveFrames(st, in, out[:0])
					out = o
					if err != nil {
						return
					}
					if n == 0 {
						// A partial frame: wait for more.
						if _, err := br.Peek(len(in) + 1); err != nil {
							return
						}
						continue
					}
					_, _ = br.Discard(n)
					if _, err := nc.Write(out); err != nil {
						return
					}
					if cap(out) > 16<<10 {
						out = nil
					}
				}
			}()
		}
	}()
	return func() { ln.Close() }, nil
}
