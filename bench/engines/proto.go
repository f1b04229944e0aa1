// Command engines serves SEND_PULSE on one of several connection engines,
// for the engine comparison in bench/analysis.md (issue 16): the real
// codec (internal/wire) and store (internal/store), nothing else of the
// daemon, so the engines are compared and not the daemon around them. It
// also opens many idle connections, to measure what each costs.
//
//	engines serve -engine own|gnet|nbio|netpoll|goroutine -addr 127.0.0.1:7000
//	engines idle -addr 127.0.0.1:7000 -conns 19900 -pid PID
package main

import (
	"encoding/binary"
	"errors"

	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

const maxFrame = wire.DefaultMaxFrame

var errFrameTooLarge = errors.New("frame too large for this benchmark server")

// serveFrames answers every whole frame in in, appending to out; it
// returns the bytes consumed. Frames larger than the engine's buffer are
// not needed for the benchmark and end the connection.
func serveFrames(st *store.Store, in, out []byte) (consumed int, answers []byte, err error) {
	var m wire.Message
	for len(in)-consumed >= 4 {
		n := int(binary.BigEndian.Uint32(in[consumed:]))
		if n > 64<<10 {
			return consumed, out, errFrameTooLarge
		}
		if len(in)-consumed-4 < n {
			break
		}
		body := in[consumed+4 : consumed+4+n]
		consumed += 4 + n
		if err := wire.DecodeRequest(body, &m); err != nil {
			return consumed, out, err
		}
		answer := wire.Message{Type: wire.NotAuthorized, ID: m.MessageID(), HasID: true}
		if m.Type == wire.SendPulse && m.Field == wire.FieldPulse {
			if err := st.Put(m.Pulse.ID, m.Pulse.Details); err == nil {
				answer.Type = wire.SendPulseResponse
			}
		}
		out = wire.AppendFrame(out, &answer)
	}
	return consumed, out, nil
}
