package fault

import (
	"context"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// frameTimeout is pacemaker.frame.timeout.secs and
// pacemaker.auth.handshake.timeout.secs in TestDeadlines.
const frameTimeout = 1 * time.Second

// idleFor outlasts both timeouts comfortably.
const idleFor = 2*frameTimeout + frameTimeout/2

// TestDeadlines: a frame that started and stalled is closed after
// pacemaker.frame.timeout.secs however slowly it trickles, and so is a peer
// that does not read its answers; a stalled SASL handshake after
// pacemaker.auth.handshake.timeout.secs; but a connection
// idle between frames — before its first, between two, authenticated or
// not — is never closed, because Storm's client would stall ~11 s on it.
func TestDeadlines(t *testing.T) {
	cfg := "pacemaker.frame.timeout.secs: 1\npacemaker.auth.handshake.timeout.secs: 1\n"
	none := start(t, cfg, nil)
	dig := digestDaemon(t, cfg)
	exists := func(id int32) []byte {
		return frame(&wire.Message{Type: wire.Exists, Field: wire.FieldPath, Path: "/a", ID: id, HasID: true})
	}
	big := frame(&wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse, ID: 1, HasID: true,
		Pulse: wire.Pulse{ID: "/workerbeats/t/w", Details: make([]byte, 100<<10)}})

	closed := []struct {
		name   string
		p      *proc
		run    func(t *testing.T, r *raw)
		reason string // pacemaker_rejected_total reason, or "" for an auth failure
	}{
		{"half a length prefix", none, func(t *testing.T, r *raw) { r.send(t, []byte{0, 0}) }, "frame timeout"},
		{"length prefix only", none, func(t *testing.T, r *raw) { r.send(t, exists(1)[:4]) }, "frame timeout"},
		{"half a small frame", none, func(t *testing.T, r *raw) { e := exists(1); r.send(t, e[:len(e)-3]) }, "frame timeout"},
		{"half a 100 KiB frame", none, func(t *testing.T, r *raw) { r.send(t, big[:len(big)/2]) }, "frame timeout"},
		{"a frame trickling a byte every 100 ms", none, func(t *testing.T, r *raw) {
			go func() { // stops when the daemon closes
				for _, b := range big {
					if _, err := r.nc.Write([]byte{b}); err != nil {
						return
					}
					time.Sleep(100 * time.Millisecond)
				}
			}()
		}, "frame timeout"},
		{"a frame stalled after a complete one", none, func(t *testing.T, r *raw) {
			r.send(t, exists(1))
			r.next(t)
			r.send(t, exists(2)[:6])
		}, "frame timeout"},
		{"handshake stalled after the challenge", dig, func(t *testing.T, r *raw) { r.challenge(t) }, ""},
		{"handshake stalled inside a token frame", dig, func(t *testing.T, r *raw) {
			r.challenge(t)
			r.send(t, token("username=")[:8])
		}, ""},
	}
	// Each of these sets up a connection and returns the check to run on
	// it after idleFor: idle connections are kept; one whose answers are
	// never read is not.
	waited := []struct {
		name  string
		p     *proc
		setup func(t *testing.T, addr string) (check func(t *testing.T))
	}{
		{"idle before the first frame", none, func(t *testing.T, addr string) func(*testing.T) {
			r := dialRaw(t, "", addr)
			return func(t *testing.T) {
				r.send(t, exists(1))
				if m := r.next(t); m.Type != wire.ExistsResponse {
					t.Fatalf("after %v idle: %s", idleFor, m)
				}
			}
		}},
		{"idle between frames", none, func(t *testing.T, addr string) func(*testing.T) {
			c, err := client.Dial(context.Background(), addr, client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			if err := c.SendPulse(context.Background(), "/workerbeats/t/idle", []byte("1")); err != nil {
				t.Fatal(err)
			}
			return func(t *testing.T) {
				if err := c.SendPulse(context.Background(), "/workerbeats/t/idle", []byte("2")); err != nil {
					t.Fatalf("after %v idle: %v", idleFor, err)
				}
			}
		}},
		{"unauthenticated worker idle on a DIGEST server", dig, func(t *testing.T, addr string) func(*testing.T) {
			r := dialRaw(t, "", addr)
			return func(t *testing.T) {
				r.send(t, frame(&wire.Message{Type: wire.SendPulse, Field: wire.FieldPulse, ID: 1, HasID: true,
					Pulse: wire.Pulse{ID: "/workerbeats/t/w", Details: []byte("x")}}))
				if m := r.next(t); m.Type != wire.SendPulseResponse {
					t.Fatalf("after %v idle: %s", idleFor, m)
				}
			}
		}},
		{"authenticated reader idle past the handshake timeout", dig, func(t *testing.T, addr string) func(*testing.T) {
			c, err := client.Dial(context.Background(), addr, client.Options{Auth: digestClient(digestPassword)})
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { c.Close() })
			return func(t *testing.T) {
				if _, _, err := c.GetPulse(context.Background(), "/workerbeats/t/w"); err != nil {
					t.Fatalf("after %v idle: %v", idleFor, err)
				}
			}
		}},
		{"a peer that sends requests but never reads is closed", none, func(t *testing.T, addr string) func(*testing.T) {
			const answers, size = 50, 1 << 20
			c, err := client.Dial(context.Background(), addr, client.Options{})
			if err != nil {
				t.Fatal(err)
			}
			defer c.Close()
			if err := c.SendPulse(context.Background(), "/workerbeats/t/big", make([]byte, size)); err != nil {
				t.Fatal(err)
			}
			r := dialRaw(t, "", addr)
			var reqs []byte
			for i := range answers {
				reqs = append(reqs, frame(&wire.Message{Type: wire.GetPulse, Field: wire.FieldPath, Path: "/workerbeats/t/big", ID: int32(i), HasID: true})...)
			}
			r.send(t, reqs)
			return func(t *testing.T) {
				// The daemon gave up writing: what arrives ends early.
				_, got, err := r.waitClose(hangBound)
				if err != nil || got >= answers*size {
					t.Fatalf("after %v without reading: %d of %d answer bytes, %v; want the connection closed early", idleFor, got, answers*size, err)
				}
				t.Logf("closed after delivering %s of %s of answers", mib(int64(got)), mib(answers*size))
				if !none.WaitLog("write failed; closing connection", hangBound) {
					t.Error("the stuck write is not logged")
				}
			}
		}},
	}

	// Set every case up at once and wait once: the timeouts run in parallel.
	beforeNone, beforeDig := none.scrape(t), dig.scrape(t)
	type closeResult struct {
		d   time.Duration
		got int
		err error
	}
	results := make([]chan closeResult, len(closed))
	for i, tt := range closed {
		r := dialRaw(t, "", tt.p.Addr())
		tt.run(t, r)
		results[i] = make(chan closeResult, 1)
		go func() {
			d, got, err := r.waitClose(hangBound)
			results[i] <- closeResult{d, got, err}
		}()
	}
	checks := make([]func(*testing.T), len(waited))
	for i, tt := range waited {
		checks[i] = tt.setup(t, tt.p.Addr())
	}
	time.Sleep(idleFor)
	for i, tt := range waited {
		t.Run("after the wait/"+tt.name, checks[i])
	}
	for i, tt := range closed {
		t.Run("closed/"+tt.name, func(t *testing.T) {
			res := <-results[i]
			if res.err != nil || res.got > 0 {
				t.Fatalf("after %v: %d bytes from the daemon, %v; want it to close the connection", res.d, res.got, res.err)
			}
			t.Logf("closed %v after the stall began (timeout %v)", res.d.Round(time.Millisecond), frameTimeout)
		})
	}

	var wantFrame, wantAuth float64
	for _, tt := range closed {
		if tt.reason == "" {
			wantAuth++
		} else {
			wantFrame++
		}
	}
	if got := none.scrape(t).rejected("frame timeout") - beforeNone.rejected("frame timeout"); got != wantFrame {
		t.Errorf("rejected_total{reason=\"frame timeout\"} grew by %v, want %v", got, wantFrame)
	}
	if got := dig.scrape(t).authFailures("handshake timeout") - beforeDig.authFailures("handshake timeout"); got != wantAuth {
		t.Errorf("auth_failures_total{reason=\"handshake timeout\"} grew by %v, want %v", got, wantAuth)
	}
}
