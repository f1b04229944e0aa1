package bench

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// pacemakerTarget writes SEND_PULSE over plain connections and reads with
// the project's client, authenticated as Nimbus is.
type pacemakerTarget struct{ opts TargetOptions }

func (t *pacemakerTarget) Name() string { return "pacemaker" }
func (t *pacemakerTarget) Close() error { return nil }

// Prepare does nothing: Pacemaker keys need no parents (CREATE_PATH is a
// no-op in Storm).
func (t *pacemakerTarget) Prepare(context.Context, string, []string, func(int) []byte) error {
	return nil
}

func (t *pacemakerTarget) Dial(ctx context.Context, _ int, addr string, local net.Addr) (Writer, error) {
	nc, err := dialTCP(ctx, addr, local, t.opts.dialTimeout())
	if err != nil {
		return nil, err
	}
	return &pacemakerWriter{nc: nc, fr: wire.NewFrameReader(bufio.NewReaderSize(nc, 512), wire.DefaultMaxFrame)}, nil
}

// pacemakerWriter is a worker's connection: one SEND_PULSE at a time,
// message ids cycling through Storm's 0..99.
type pacemakerWriter struct {
	nc   net.Conn
	fr   *wire.FrameReader
	id   int32
	resp wire.Message
}

func (w *pacemakerWriter) Write(key string, value []byte) error {
	w.id = (w.id + 1) % 100
	req := wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse, Pulse: wire.Pulse{ID: key, Details: value}, ID: w.id, HasID: true}
	buf := getBuf()
	*buf = wire.AppendFrame(*buf, &req)
	_ = w.nc.SetDeadline(time.Now().Add(requestTimeout))
	_, err := w.nc.Write(*buf)
	putBuf(buf)
	if err != nil {
		return fmt.Errorf("send pulse: %w", err)
	}
	body, err := w.fr.Next()
	if err != nil {
		return fmt.Errorf("read SEND_PULSE answer: %w", err)
	}
	if err := wire.DecodeView(body, &w.resp); err != nil {
		return fmt.Errorf("decode SEND_PULSE answer: %w", err)
	}
	switch {
	case w.resp.Type == wire.NotAuthorized:
		return fmt.Errorf("SEND_PULSE: %w", client.ErrNotAuthorized)
	case w.resp.Type != wire.SendPulseResponse:
		return fmt.Errorf("SEND_PULSE answered with %s", w.resp.Type)
	case w.resp.MessageID() != w.id:
		return fmt.Errorf("SEND_PULSE %d answered with message_id %d", w.id, w.resp.MessageID())
	}
	return nil
}

func (w *pacemakerWriter) Close() error { return w.nc.Close() }

func (t *pacemakerTarget) DialReader(ctx context.Context, addr string) (Reader, error) {
	c, err := client.Dial(ctx, addr, client.Options{Auth: t.opts.ReaderAuth, DialTimeout: t.opts.dialTimeout()})
	if err != nil {
		return nil, err
	}
	return &pacemakerReader{c: c}, nil
}

// pacemakerReader is Nimbus's pipelined connection to one server.
type pacemakerReader struct{ c *client.Conn }

func (r *pacemakerReader) Children(ctx context.Context, path string) ([]string, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return r.c.Children(ctx, path)
}

func (r *pacemakerReader) Get(ctx context.Context, path string) ([]byte, bool, error) {
	ctx, cancel := context.WithTimeout(ctx, requestTimeout)
	defer cancel()
	return r.c.GetPulse(ctx, path)
}

func (r *pacemakerReader) Close() error { return r.c.Close() }

// isNotAuthorized reports a server's refusal, which a benchmark should
// name clearly: it usually means the reader needs --auth.
func isNotAuthorized(err error) bool { return errors.Is(err, client.ErrNotAuthorized) }
