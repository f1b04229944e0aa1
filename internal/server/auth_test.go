package server

import (
	"fmt"
	"strings"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/auth/digest"
	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// panickyMechanism stands for any mechanism code that a hostile token
// drives into a panic (gokrb5 v8.4.4 did so on short ciphertexts): its
// exchanges panic on their first token.
type panickyMechanism struct{}

func (panickyMechanism) Name() string                  { return "GSSAPI" }
func (panickyMechanism) MayRead(string) (bool, string) { return true, "" }
func (panickyMechanism) NewExchange(string) auth.Exchange {
	return panickyExchange{}
}

type panickyExchange struct{}

func (panickyExchange) Start() ([]byte, error) { return nil, nil }
func (panickyExchange) Identity() string       { return "" }
func (panickyExchange) Step([]byte) ([]byte, bool, error) {
	var b []byte
	return b[:len(b)-7], false, nil // what gokrb5 did: slice bounds out of range [:-7]
}

// TestPanicClosesOnlyThatConnection: finding 1 at the connection
// boundary. A panic while serving one connection closes that connection,
// is counted (rejected, reason "panic") and logged with the peer and the
// stack; the process and every other connection are served on.
func TestPanicClosesOnlyThatConnection(t *testing.T) {
	func() {
		s := defaultSettings()
		s.Method, s.Mechanism = auth.Kerberos, panickyMechanism{}
		ts := startServer(t, s, store.Limits{})
		good := ts.dial(t)
		for i := 0; i < 3; i++ {
			bad := ts.dial(t)
			bad.send(wire.NewSaslToken([]byte{0x60, 0x05}))
			bad.expectClosed()
		}
		good.send(pulse("/still-serving", "x", 1))
		if m := good.recv(); m.Type != wire.SendPulseResponse {
			t.Fatalf("good connection got %s", m)
		}
		waitLog(t, ts, "panic while serving a connection")
		l := ts.log.String()
		if !strings.Contains(l, "peer=127.0.0.1:") || !strings.Contains(l, "slice bounds out of range") || !strings.Contains(l, "stack=") {
			t.Fatalf("panic log line lacks the peer, the panic or the stack:\n%s", l)
		}
		var panics uint64
		ts.srv.stats.Rejects(func(reason string, n uint64) {
			if reason == "panic" {
				panics = n
			}
		})
		if panics != 3 {
			t.Fatalf("rejected{reason=panic} = %d, want 3", panics)
		}
	}()
}

// TestAuthFailureReasonsAreFixed: finding 6. The metric label of a failed
// handshake is one of the fixed auth.Reason values whatever the client
// sent; before, it was the error's text, which named the client's
// digest-uri (or Kerberos service name), one new series per value. The
// log line keeps the detail.
func TestAuthFailureReasonsAreFixed(t *testing.T) {
	s := defaultSettings()
	s.Method, s.Mechanism = auth.Digest, digest.NewMechanism("secret")
	ts := startServer(t, s, store.Limits{})
	const attempts = 20
	for i := 0; i < attempts; i++ {
		c := ts.dial(t)
		c.send(wire.NewControl(wire.ControlSaslRequest))
		challenge, err := wire.ParseSaslToken(c.recv())
		if err != nil {
			t.Fatal(err)
		}
		nonce := strings.Split(strings.Split(string(challenge), `nonce="`)[1], `"`)[0]
		c.send(wire.NewSaslToken(fmt.Appendf(nil, `username="x",nonce="%s",cnonce="c",nc=00000001,digest-uri="attacker/%d",response="00"`, nonce, i)))
		c.expectClosed()
	}
	c := ts.dial(t)
	c.send(wire.NewControl(wire.ControlSaslRequest))
	c.recv()
	c.send(wire.NewSaslToken([]byte("garbage without directives=")))
	c.expectClosed()

	// The log keeps the detail of the first few (the warning limiter lets
	// 5 lines per peer and kind through per window).
	waitLog(t, ts, `attacker/0`)
	got := map[string]uint64{}
	ts.srv.stats.AuthFailures(func(method, reason string, n uint64) { got[method+"/"+reason] = n })
	want := map[string]uint64{"DIGEST-MD5/" + string(auth.ReasonWrongService): attempts, "DIGEST-MD5/" + string(auth.ReasonMalformed): 1}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Fatalf("auth failures by label = %v, want %v", got, want)
	}
}
