package fault

import (
	"regexp"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/auth/digest"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// The DIGEST credentials of every DIGEST daemon in these tests.
const (
	digestUser     = "pmuser"
	digestPassword = "pmsecret"
)

// digestDaemon starts a DIGEST daemon with extra config lines.
func digestDaemon(t *testing.T, extra string) *proc {
	t.Helper()
	return start(t, "pacemaker.auth.method: DIGEST\n"+
		"java.security.auth.login.config: {{dir}}/jaas.conf\n"+extra,
		map[string]string{"jaas.conf": "PacemakerDigest {\n  username=\"" + digestUser + "\"\n  password=\"" + digestPassword + "\";\n};\n"})
}

// digestClient is Storm's DIGEST client side with the given password.
func digestClient(password string) auth.ClientMechanism {
	return digest.NewClientMechanism(digest.SecretFromCredentials(digestUser, password), "fault-test")
}

func control(code int16) []byte { return frame(wire.NewControl(code)) }
func token(b string) []byte     { return frame(wire.NewSaslToken([]byte(b))) }

// challenge asks for a DIGEST challenge and returns it.
func (r *raw) challenge(t *testing.T) string {
	t.Helper()
	r.send(t, control(wire.ControlSaslRequest))
	m := r.next(t)
	tok, err := wire.ParseSaslToken(m)
	if err != nil {
		t.Fatalf("answer to CONTROL -202: %s: %v", m, err)
	}
	return string(tok)
}

// finish answers challenge with ex and reads the server's rspauth and
// SASL_COMPLETE; it returns the response it sent.
func (r *raw) finish(t *testing.T, ex auth.ClientExchange, challenge string) string {
	t.Helper()
	resp, err := ex.Step([]byte(challenge))
	if err != nil {
		t.Fatalf("client step: %v", err)
	}
	r.send(t, token(string(resp)))
	for {
		m := r.next(t)
		switch m.Type {
		case wire.SaslMessageToken:
			tok, err := wire.ParseSaslToken(m)
			if err != nil {
				t.Fatal(err)
			}
			if _, err := ex.Step(tok); err != nil {
				t.Fatalf("client step on %q: %v", tok, err)
			}
		case wire.ControlMessage:
			if code, _ := wire.ParseControl(m); code != wire.ControlSaslComplete {
				t.Fatalf("control %d during the handshake", code)
			}
			return string(resp)
		default:
			t.Fatalf("%s during the handshake", m)
		}
	}
}

func newExchange(t *testing.T, password string) auth.ClientExchange {
	t.Helper()
	ex, err := digestClient(password).NewClientExchange("127.0.0.1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := ex.Start(); err != nil {
		t.Fatal(err)
	}
	return ex
}

var nonceRE = regexp.MustCompile(`nonce="[^"]*"`)

// TestSaslOutOfOrder drives DIGEST handshakes in every wrong order and
// with every wrong token: each costs only its own connection, counted as a
// protocol error or an authentication failure, while an authenticated
// reader keeps reading.
func TestSaslOutOfOrder(t *testing.T) {
	p := digestDaemon(t, "pacemaker.auth.handshake.timeout.secs: 2\n")
	baseline(t, p.Addr(), digestClient(digestPassword))
	s := startSteady(t, p.Addr(), digestClient(digestPassword))

	// A response that once succeeded, to replay on another connection.
	r0 := dialRaw(t, "", p.Addr())
	replay := r0.finish(t, newExchange(t, digestPassword), r0.challenge(t))

	tests := []struct {
		name string
		run  func(t *testing.T, r *raw)
		// authFailure: counted in pacemaker_auth_failures_total; else in
		// pacemaker_rejected_total{reason="protocol error"}.
		authFailure bool
	}{
		{"token before the control request", func(t *testing.T, r *raw) { r.send(t, token(replay)) }, true},
		{"client sends SASL_COMPLETE", func(t *testing.T, r *raw) { r.send(t, control(wire.ControlSaslComplete)) }, false},
		{"unknown control code", func(t *testing.T, r *raw) { r.send(t, control(7)) }, false},
		{"control without its 2-byte code", func(t *testing.T, r *raw) {
			r.send(t, frame(&wire.Message{Type: wire.ControlMessage, Field: wire.FieldBlob, Blob: []byte{0xff}}))
		}, false},
		{"token with the wrong identifier", func(t *testing.T, r *raw) {
			r.send(t, frame(&wire.Message{Type: wire.SaslMessageToken, Field: wire.FieldBlob, Blob: []byte{0, 1, 0, 0, 0, 0}}))
		}, false},
		{"token length disagreeing with its blob", func(t *testing.T, r *raw) {
			r.send(t, frame(&wire.Message{Type: wire.SaslMessageToken, Field: wire.FieldBlob, Blob: []byte{0xfe, 0x0c, 0, 0, 0, 9, 'x'}}))
		}, false},
		{"token without a blob", func(t *testing.T, r *raw) {
			r.send(t, frame(&wire.Message{Type: wire.SaslMessageToken, Field: wire.FieldPath, Path: "x"}))
		}, false},
		{"garbage response", func(t *testing.T, r *raw) {
			r.challenge(t)
			r.send(t, token("\x00\xff,,=\"unterminated"))
		}, true},
		{"response with a nonce the server never issued", func(t *testing.T, r *raw) {
			ch := r.challenge(t)
			forged := nonceRE.ReplaceAllString(ch, `nonce="AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"`)
			resp, err := newExchange(t, digestPassword).Step([]byte(forged))
			if err != nil {
				t.Fatal(err)
			}
			r.send(t, token(string(resp)))
		}, true},
		{"wrong password", func(t *testing.T, r *raw) {
			resp, err := newExchange(t, "guess").Step([]byte(r.challenge(t)))
			if err != nil {
				t.Fatal(err)
			}
			r.send(t, token(string(resp)))
		}, true},
		{"response replayed from another connection", func(t *testing.T, r *raw) {
			r.challenge(t)
			r.send(t, token(replay))
		}, true},
		{"token after the handshake completed", func(t *testing.T, r *raw) {
			r.finish(t, newExchange(t, digestPassword), r.challenge(t))
			r.send(t, token(replay))
		}, true},
		{"two responses in a row", func(t *testing.T, r *raw) {
			resp, err := newExchange(t, digestPassword).Step([]byte(r.challenge(t)))
			if err != nil {
				t.Fatal(err)
			}
			r.send(t, append(token(string(resp)), token(string(resp))...))
			// The first succeeds: rspauth, SASL_COMPLETE; the second fails.
			r.next(t)
			r.next(t)
		}, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := p.scrape(t)
			r := dialRaw(t, "", p.Addr())
			tt.run(t, r)
			d := r.closedByPeer(t)
			t.Logf("closed after %v", d.Round(time.Microsecond))
			if tt.authFailure {
				p.waitMetric(t, "an authentication failure to be counted", func(m metricSet) bool {
					return m.authFailures("") >= before.authFailures("")+1
				})
			} else {
				p.waitMetric(t, "a protocol error to be counted", func(m metricSet) bool {
					return m.rejected("protocol error") >= before.rejected("protocol error")+1
				})
			}
		})
	}

	// A second CONTROL -202 in the middle of a handshake must not restart
	// it: every restart would push the handshake deadline back, so a
	// client repeating -202 would hold a handshake open forever.
	t.Run("control request twice", func(t *testing.T) {
		r := dialRaw(t, "", p.Addr())
		r.challenge(t)
		r.send(t, control(wire.ControlSaslRequest))
		_ = r.nc.SetReadDeadline(time.Now().Add(hangBound))
		if body, err := r.fr.Next(); err == nil {
			var m wire.Message
			_ = wire.Decode(body, &m)
			t.Fatalf("a second CONTROL -202 mid-handshake restarts the handshake (the daemon answered %s) instead of "+
				"failing it; each restart re-arms pacemaker.auth.handshake.timeout.secs, so the handshake never times out", m.String())
		}
		d := r.closedByPeer(t)
		t.Logf("closed after %v", d.Round(time.Microsecond))
	})

	// Requests interleaved with a handshake are answered as for an
	// unauthenticated connection, and the handshake still completes.
	t.Run("requests in the middle of a handshake", func(t *testing.T) {
		r := dialRaw(t, "", p.Addr())
		ch := r.challenge(t)
		r.send(t, frame(&wire.Message{Type: wire.GetPulse, Field: wire.FieldPath, Path: "/x", ID: 5, HasID: true}))
		if m := r.next(t); m.Type != wire.NotAuthorized || m.MessageID() != 5 {
			t.Fatalf("read mid-handshake: %s, want NOT_AUTHORIZED id 5", m)
		}
		r.finish(t, newExchange(t, digestPassword), ch)
		r.send(t, frame(&wire.Message{Type: wire.GetPulse, Field: wire.FieldPath, Path: "/x", ID: 6, HasID: true}))
		if m := r.next(t); m.Type != wire.GetPulseResponse || m.MessageID() != 6 {
			t.Fatalf("read after the handshake: %s, want GET_PULSE_RESPONSE id 6", m)
		}
	})

	s.Finish(t, "SASL out of order")
	m := p.scrape(t)
	t.Logf("auth failures: %v; rejections: %v", m.matching("pacemaker_auth_failures_total"), m.matching("pacemaker_rejected_total"))
}
