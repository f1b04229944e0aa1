package bench

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"net"
	"strconv"
	"time"
)

// redisTarget writes with RESP SET, for the side-by-side with redis-server:
// the same key, the same value bytes, one request in flight per connection.
type redisTarget struct{ opts TargetOptions }

func (t *redisTarget) Name() string { return "redis" }
func (t *redisTarget) Close() error { return nil }
func (t *redisTarget) Prepare(context.Context, string, []string, func(int) []byte) error {
	return nil
}

// DialReader: redis has no directory hierarchy for Nimbus to list.
func (t *redisTarget) DialReader(context.Context, string) (Reader, error) {
	return nil, fmt.Errorf("redis reader: %w", errUnsupported)
}

func (t *redisTarget) Dial(ctx context.Context, _ int, addr string, local net.Addr) (Writer, error) {
	nc, err := dialTCP(ctx, addr, local, t.opts.dialTimeout())
	if err != nil {
		return nil, err
	}
	return &redisWriter{nc: nc, br: bufio.NewReaderSize(nc, 512)}, nil
}

type redisWriter struct {
	nc net.Conn
	br *bufio.Reader
}

var respOK = []byte("+OK\r\n")

// appendSet appends SET key value as a RESP array of bulk strings.
func appendSet(b []byte, key string, value []byte) []byte {
	b = append(b, "*3\r\n$3\r\nSET\r\n$"...)
	b = strconv.AppendInt(b, int64(len(key)), 10)
	b = append(b, "\r\n"...)
	b = append(b, key...)
	b = append(b, "\r\n$"...)
	b = strconv.AppendInt(b, int64(len(value)), 10)
	b = append(b, "\r\n"...)
	b = append(b, value...)
	return append(b, "\r\n"...)
}

func (w *redisWriter) Write(key string, value []byte) error {
	buf := getBuf()
	*buf = appendSet(*buf, key, value)
	_ = w.nc.SetDeadline(time.Now().Add(requestTimeout))
	_, err := w.nc.Write(*buf)
	putBuf(buf)
	if err != nil {
		return fmt.Errorf("redis SET: %w", err)
	}
	line, err := w.br.ReadSlice('\n')
	if errors.Is(err, bufio.ErrBufferFull) {
		// A long error, e.g. protected mode's DENIED for a source address
		// other than 127.0.0.1: run redis-server with --protected-mode no.
		return fmt.Errorf("redis SET answered %q…", line[:min(len(line), 160)])
	}
	if err != nil {
		return fmt.Errorf("read redis SET answer: %w", err)
	}
	if !bytes.Equal(line, respOK) {
		return fmt.Errorf("redis SET answered %q", bytes.TrimSpace(line))
	}
	return nil
}

func (w *redisWriter) Close() error { return w.nc.Close() }
