package fault

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"math"
	"math/rand/v2"
	"os"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// be32 is a 4-byte big-endian length prefix or i32.
func be32(n int32) []byte { return binary.BigEndian.AppendUint32(nil, uint32(n)) }

// withLength frames body with its true length.
func withLength(body []byte) []byte { return append(be32(int32(len(body))), body...) }

// Thrift binary type codes, for hand-made bodies.
const (
	tStop   = 0
	tI32    = 8
	tString = 11
	tStruct = 12
	tList   = 15
)

func fieldHeader(typ byte, id int16) []byte {
	return binary.BigEndian.AppendUint16([]byte{typ}, uint16(id))
}

// hostileCase is one way a client can misbehave, and what the daemon must do.
type hostileCase struct {
	name string
	send []byte
	// halfClose closes the client's sending side after send, so a
	// truncated frame is truncated for good.
	halfClose bool
	// answer is the answer expected before the connection stays open;
	// -1 means the daemon must close the connection without answering.
	answer wire.MessageType
	// reason is the pacemaker_rejected_total reason that must count it
	// ("" when the daemon may classify it either way).
	reason string
}

func hostileCases() []hostileCase {
	pulse := frame(&wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse, ID: 1, HasID: true,
		Pulse: wire.Pulse{ID: "/workerbeats/t/w-6700", Details: bytes.Repeat([]byte{0xab}, 100)}})
	typed := func(t int32) []byte {
		return frame(&wire.Message{Type: wire.MessageType(t), Field: wire.FieldPath, Path: "/workerbeats", ID: 1, HasID: true})
	}
	// A message whose first field nests unknown structs 100 deep.
	var deep []byte
	for range 100 {
		deep = append(deep, fieldHeader(tStruct, 9)...)
	}
	deep = append(deep, bytes.Repeat([]byte{tStop}, 101)...)
	// GET_ALL_NODES_FOR_PATH_RESPONSE-shaped data whose list claims 2^31-1
	// strings: a decoder that trusts it allocates gigabytes.
	hugeList := append(fieldHeader(tI32, 1), be32(int32(wire.GetAllNodesForPathResponse))...)
	hugeList = append(hugeList, fieldHeader(tStruct, 2)...)
	hugeList = append(hugeList, fieldHeader(tStruct, 5)...)
	hugeList = append(hugeList, fieldHeader(tList, 1)...)
	hugeList = append(hugeList, tString)
	hugeList = append(hugeList, be32(math.MaxInt32)...)
	hugeList = append(hugeList, tStop, tStop, tStop)
	// A path string whose length runs past the end of the frame.
	longString := append(fieldHeader(tI32, 1), be32(int32(wire.Exists))...)
	longString = append(longString, fieldHeader(tStruct, 2)...)
	longString = append(longString, fieldHeader(tString, 1)...)
	longString = append(longString, be32(1<<30)...)
	longString = append(longString, 'x', tStop, tStop)
	trailing := frame(&wire.Message{Type: wire.Exists, Field: wire.FieldPath, Path: "/a", ID: 1, HasID: true})[4:]
	trailing = append(trailing, 0xee)

	return []hostileCase{
		{name: "truncated frame", send: pulse[:len(pulse)/2], halfClose: true, answer: -1, reason: "truncated frame"},
		{name: "truncated length prefix", send: pulse[:2], halfClose: true, answer: -1, reason: "truncated frame"},
		{name: "huge length prefix", send: be32(math.MaxInt32), answer: -1, reason: "frame too large"},
		{name: "length one past the max", send: be32(wire.DefaultMaxFrame + 1), answer: -1, reason: "frame too large"},
		{name: "negative length -1", send: be32(-1), answer: -1, reason: "frame too large"},
		{name: "negative length MinInt32", send: be32(math.MinInt32), answer: -1, reason: "frame too large"},
		{name: "zero-length frame", send: be32(0), answer: -1, reason: "malformed frame"},
		{name: "body cut inside an i32", send: withLength([]byte{tI32, 0, 1, 0, 0}), answer: -1, reason: "malformed frame"},
		{name: "string longer than the frame", send: withLength(longString), answer: -1, reason: "malformed frame"},
		{name: "list claiming 2^31 elements", send: withLength(hugeList), answer: -1, reason: "malformed frame"},
		{name: "structs nested 100 deep", send: withLength(deep), answer: -1, reason: "malformed frame"},
		{name: "bytes after the message", send: withLength(trailing), answer: -1, reason: "malformed frame"},
		{name: "unknown enum value 19", send: typed(19), answer: -1, reason: "protocol error"},
		{name: "unknown enum value 99", send: typed(99), answer: -1, reason: "protocol error"},
		{name: "negative enum value", send: typed(-7), answer: -1, reason: "protocol error"},
		{name: "SEND_PULSE without details", send: frame(&wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse,
			Pulse: wire.Pulse{ID: "/x"}, ID: 1, HasID: true}), answer: -1, reason: "protocol error"},
		{name: "GET_PULSE without a path", send: frame(&wire.Message{Type: wire.GetPulse, ID: 1, HasID: true}), answer: -1, reason: "protocol error"},
		{name: "SASL control request on a NONE server", send: frame(wire.NewControl(wire.ControlSaslRequest)), answer: -1, reason: "protocol error"},
		{name: "SASL token on a NONE server", send: frame(wire.NewSaslToken([]byte("realm=x"))), answer: -1, reason: "protocol error"},
		{name: "an answer type sent as a request", send: typed(int32(wire.SendPulseResponse)), answer: wire.NotAuthorized, reason: "unexpected type"},
	}
}

// TestHostileFrames sends every kind of broken frame, each on its own
// connection, then hammers the daemon with all of them and with random
// garbage from many connections at once — while a well-behaved client
// writes and reads without a single error.
func TestHostileFrames(t *testing.T) {
	p := start(t, "pacemaker.frame.timeout.secs: 2\n", nil)
	baseline(t, p.Addr(), nil)
	s := startSteady(t, p.Addr(), nil)

	cases := hostileCases()
	t.Run("one by one", func(t *testing.T) {
		for _, tc := range cases {
			t.Run(tc.name, func(t *testing.T) {
				before := p.scrape(t).rejected(tc.reason)
				r := dialRaw(t, "", p.Addr())
				r.send(t, tc.send)
				if tc.halfClose {
					_ = r.nc.CloseWrite()
				}
				if tc.answer < 0 {
					d := r.closedByPeer(t)
					t.Logf("closed after %v", d.Round(time.Microsecond))
				} else {
					if m := r.next(t); m.Type != tc.answer || m.MessageID() != 1 {
						t.Fatalf("answer %s, want %s with message_id 1", m, tc.answer)
					}
					// The connection still serves.
					r.send(t, frame(&wire.Message{Type: wire.Exists, Field: wire.FieldPath, Path: "/a", ID: 2, HasID: true}))
					if m := r.next(t); m.Type != wire.ExistsResponse || m.MessageID() != 2 {
						t.Fatalf("after the bad request: answer %s, want EXISTS_RESPONSE id 2", m)
					}
				}
				if tc.reason != "" {
					p.waitMetric(t, `rejected_total{reason="`+tc.reason+`"} to grow`, func(m metricSet) bool {
						return m.rejected(tc.reason) >= before+1
					})
				}
			})
		}
	})

	t.Run("hammer", func(t *testing.T) {
		const workers = 32
		const runFor = 2 * time.Second
		// At most this many connections: each leaves a socket in TIME_WAIT
		// for a minute, and a fast daemon would take the whole ephemeral
		// port range of the tests that follow.
		const maxConns = 6000
		var conns, hung, unexpected atomic.Int64
		var firstErr sync.Once
		var wg sync.WaitGroup
		deadline := time.Now().Add(runFor)
		for w := range workers {
			wg.Go(func() {
				rng := rand.New(rand.NewPCG(uint64(w), 42))
				garbage := make([]byte, 4096)
				for time.Now().Before(deadline) && conns.Load() < maxConns {
					var b []byte
					if i := rng.IntN(len(cases) + 1); i < len(cases) {
						b = cases[i].send
					} else {
						for j := range garbage {
							garbage[j] = byte(rng.Uint32())
						}
						b = garbage[:1+rng.IntN(len(garbage))]
					}
					nc, err := dialFrom("", p.Addr())
					if err != nil {
						unexpected.Add(1)
						firstErr.Do(func() { t.Errorf("hammer: connect: %v", err) })
						return
					}
					conns.Add(1)
					r := &raw{nc: nc, br: bufio.NewReader(nc)}
					_ = nc.SetWriteDeadline(time.Now().Add(hangBound))
					_, err = nc.Write(b)
					if err == nil {
						_ = nc.CloseWrite()
					}
					// A write may fail when the daemon already closed on
					// the first bytes; either way it must close.
					if _, _, err := r.waitClose(hangBound); err != nil {
						if errors.Is(err, os.ErrDeadlineExceeded) {
							hung.Add(1)
						} else {
							unexpected.Add(1)
							firstErr.Do(func() { t.Errorf("hammer: %v", err) })
						}
					}
					nc.Close()
				}
			})
		}
		wg.Wait()
		t.Logf("hammer: %d hostile connections from %d goroutines in %v", conns.Load(), workers, runFor)
		if n := hung.Load(); n > 0 {
			t.Errorf("hammer: the daemon kept %d hostile connections open past %v", n, hangBound)
		}
		m := p.scrape(t)
		t.Logf("hammer: rejections counted: %v", m.matching("pacemaker_rejected_total"))
	})

	s.Finish(t, "hostile frames")
	if p.Exited() {
		t.Fatal("the daemon exited")
	}
	p.waitMetric(t, "every connection to be closed", func(m metricSet) bool { return m["pacemaker_open_connections"] == 0 })
}
