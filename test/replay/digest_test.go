package replay

import (
	"crypto/md5"
	"crypto/rand"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/stormwire"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// The credentials the recordings were made with (internal/testutil/stormwire/testdata/README.md).
const (
	jaasUser     = "pmuser"
	jaasPassword = "pmsecret"
)

// digestConfig runs the daemon with auth DIGEST and the recordings' JAAS file.
var digestConfig = daemon.Options{
	Config: "pacemaker.auth.method: DIGEST\njava.security.auth.login.config: " + daemon.DirPlaceholder + "/jaas.conf\n",
	Files: map[string]string{"jaas.conf": `PacemakerDigest {
    username="` + jaasUser + `"
    password="` + jaasPassword + `";
};
`},
	NoWait: true,
}

// startDigest starts a DIGEST daemon with the recordings' credentials.
func startDigest(t *testing.T) *daemon.Proc {
	t.Helper()
	p := daemon.Start(t, digestConfig)
	if err := p.WaitReady(15 * time.Second); err != nil {
		t.Fatalf("DIGEST daemon did not start: %v\n%s", err, p.Log())
	}
	return p
}

// saslSecret is what Storm's peers use as the DIGEST-MD5 password:
// base64(lowercase hex(SHA-512("user:password"))).
func saslSecret(user, password string) string {
	sum := sha512.Sum512([]byte(user + ":" + password))
	return base64.StdEncoding.EncodeToString([]byte(hex.EncodeToString(sum[:])))
}

// directives parses a DIGEST-MD5 challenge or response (RFC 2831 §2.1):
// comma-separated name=value pairs, values optionally quoted. The order is
// kept so a rewritten response has the recorded client's layout.
type directives struct {
	names  []string
	values map[string]string
	quoted map[string]bool
}

func parseDirectives(t *testing.T, s string) *directives {
	t.Helper()
	d := &directives{values: map[string]string{}, quoted: map[string]bool{}}
	for len(s) > 0 {
		name, rest, ok := strings.Cut(s, "=")
		if !ok {
			t.Fatalf("directive without '=' in %q", s)
		}
		name = strings.TrimSpace(name)
		var val string
		if strings.HasPrefix(rest, `"`) {
			end := 1
			for ; end < len(rest) && rest[end] != '"'; end++ {
				if rest[end] == '\\' {
					end++
				}
			}
			if end >= len(rest) {
				t.Fatalf("unterminated quote in %q", s)
			}
			val, rest = strings.ReplaceAll(rest[1:end], `\`, ""), rest[end+1:]
			d.quoted[name] = true
		} else {
			val, rest, _ = strings.Cut(rest, ",")
			rest = "," + rest
		}
		d.names = append(d.names, name)
		d.values[name] = val
		s = strings.TrimPrefix(strings.TrimLeft(rest, " "), ",")
	}
	return d
}

func (d *directives) String() string {
	var b strings.Builder
	for i, n := range d.names {
		if i > 0 {
			b.WriteByte(',')
		}
		if d.quoted[n] {
			fmt.Fprintf(&b, "%s=%q", n, d.values[n])
		} else {
			fmt.Fprintf(&b, "%s=%s", n, d.values[n])
		}
	}
	return b.String()
}

// digestResponse computes RFC 2831's response value for qop=auth and
// algorithm=md5-sess; with an empty method it is the server's rspauth.
func digestResponse(user, realm, secret, nonce, cnonce, nc, uri, method string) string {
	h := func(s []byte) string { v := md5.Sum(s); return hex.EncodeToString(v[:]) }
	inner := md5.Sum([]byte(user + ":" + realm + ":" + secret))
	a1 := append(inner[:], ":"+nonce+":"+cnonce...)
	a2 := method + ":" + uri
	return h([]byte(h(a1) + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + h([]byte(a2))))
}

func saslToken(t *testing.T, f frame) string {
	t.Helper()
	tok, err := wire.ParseSaslToken(decode(t, f))
	if err != nil {
		t.Fatalf("recording line %d: %v", f.Line, err)
	}
	return string(tok)
}

// TestDigestVectors checks the test's own DIGEST-MD5 arithmetic against
// every handshake Storm's Java client and server recorded, so the live
// tests below rest on a verified client.
func TestDigestVectors(t *testing.T) {
	secret := saslSecret(jaasUser, jaasPassword)
	checked := 0
	for _, name := range []string{"digest-all-ops.txt", "digest-unmodified-client-a.txt", "digest-unmodified-client-b.txt", "digest-wrong-password.txt"} {
		frames := stormwire.Load(t, name)
		var resp *directives
		for _, f := range frames {
			m := decode(t, f)
			if m.Type != wire.SaslMessageToken {
				continue
			}
			tok := saslToken(t, f)
			switch {
			case f.FromClient:
				resp = parseDirectives(t, tok)
				if got := resp.String(); got != tok {
					t.Fatalf("%s: directives do not round-trip:\n got %s\nwant %s", name, got, tok)
				}
				v := resp.values
				want := digestResponse(v["username"], v["realm"], secret, v["nonce"], v["cnonce"], v["nc"], v["digest-uri"], "AUTHENTICATE")
				if name == "digest-wrong-password.txt" {
					if want == v["response"] {
						t.Errorf("%s: the wrong password's response matches the right one", name)
					}
				} else if want != v["response"] {
					t.Errorf("%s: response = %s, computed %s", name, v["response"], want)
				}
				checked++
			case strings.HasPrefix(tok, "rspauth="):
				v := resp.values
				want := digestResponse(v["username"], v["realm"], secret, v["nonce"], v["cnonce"], v["nc"], v["digest-uri"], "")
				if tok != "rspauth="+want {
					t.Errorf("%s: %s, computed rspauth=%s", name, tok, want)
				}
				checked++
			}
		}
	}
	t.Logf("%d recorded DIGEST-MD5 values recomputed", checked)
}

// handshake replays a DIGEST handshake against a live server: the server's
// challenge is checked by structure against the recorded one (the nonce is
// fresh), the client's response is recomputed for the live nonce with
// secret, and the server's rspauth is verified.
type handshake struct {
	t         *testing.T
	secret    string
	challenge *directives
	response  *directives
	rspauths  int
}

func (h *handshake) rewrite(f frame) []byte {
	m := decode(h.t, f)
	if m.Type != wire.SaslMessageToken {
		return f.Raw
	}
	if h.challenge == nil {
		h.t.Fatalf("recording line %d: client token before the server's challenge", f.Line)
	}
	r := parseDirectives(h.t, saslToken(h.t, f))
	cn := make([]byte, 30)
	rand.Read(cn)
	r.values["nonce"] = h.challenge.values["nonce"]
	r.values["cnonce"] = base64.StdEncoding.EncodeToString(cn)
	v := r.values
	r.values["response"] = digestResponse(v["username"], v["realm"], h.secret, v["nonce"], v["cnonce"], v["nc"], v["digest-uri"], "AUTHENTICATE")
	h.response = r
	return wire.AppendFrame(nil, wire.NewSaslToken([]byte(r.String())))
}

func (h *handshake) check(f frame, got []byte) bool {
	want := decode(h.t, f)
	if want.Type != wire.SaslMessageToken {
		return false // byte for byte
	}
	var gm wire.Message
	if err := wire.Decode(got[4:], &gm); err != nil || gm.Type != wire.SaslMessageToken || gm.HasID {
		h.t.Fatalf("recording line %d: want a SASL token without message_id, got % x (%v)", f.Line, got, err)
	}
	tok, err := wire.ParseSaslToken(&gm)
	if err != nil {
		h.t.Fatalf("recording line %d: %v", f.Line, err)
	}
	rec := saslToken(h.t, f)
	if strings.HasPrefix(rec, "rspauth=") {
		v := h.response.values
		wantAuth := "rspauth=" + digestResponse(v["username"], v["realm"], h.secret, v["nonce"], v["cnonce"], v["nc"], v["digest-uri"], "")
		if string(tok) != wantAuth {
			h.t.Errorf("recording line %d: server sent %q, want %q", f.Line, tok, wantAuth)
		}
		h.rspauths++
		return true
	}
	// The challenge: the same directives, in the same order and quoting,
	// as Storm's server, with a fresh nonce of the same shape.
	live, recorded := parseDirectives(h.t, string(tok)), parseDirectives(h.t, rec)
	if strings.Join(live.names, ",") != strings.Join(recorded.names, ",") {
		h.t.Errorf("challenge directives %v, Storm sends %v", live.names, recorded.names)
	}
	for _, n := range recorded.names {
		if n == "nonce" {
			if len(live.values[n]) < 16 || live.values[n] == recorded.values[n] {
				h.t.Errorf("challenge nonce %q: want a fresh random nonce", live.values[n])
			}
			continue
		}
		if live.values[n] != recorded.values[n] || live.quoted[n] != recorded.quoted[n] {
			h.t.Errorf("challenge %s=%q (quoted %v), Storm sends %q (quoted %v)", n, live.values[n], live.quoted[n], recorded.values[n], recorded.quoted[n])
		}
	}
	h.challenge = live
	return true
}

// TestReplayDigestAllOps: the DIGEST-MD5 handshake (challenge by
// structure, live response, rspauth verified, SASL_COMPLETE byte for byte),
// then every operation's answer byte for byte.
func TestReplayDigestAllOps(t *testing.T) {
	frames := stormwire.Load(t, "digest-all-ops.txt")
	p := startDigest(t)
	h := &handshake{t: t, secret: saslSecret(jaasUser, jaasPassword)}
	n := replay(t, dial(t, p.Addr()), frames, h.rewrite, h.check)
	if h.challenge == nil || h.response == nil || h.rspauths != 1 {
		t.Fatalf("handshake incomplete: challenge %v, response %v, rspauth %d", h.challenge, h.response, h.rspauths)
	}
	t.Logf("%d answers match Storm's server", n)
}

// TestReplayNoneClientVsDigestServer: a client that never authenticates
// may write and delete; every read is NOT_AUTHORIZED. Byte for byte.
func TestReplayNoneClientVsDigestServer(t *testing.T) {
	frames := stormwire.Load(t, "none-client-vs-digest-server.txt")
	p := startDigest(t)
	n := replay(t, dial(t, p.Addr()), frames, nil, nil)
	t.Logf("%d answers match Storm's server", n)
}

// TestReplayDigestWrongPassword: a response made with the wrong password
// makes the server close the connection without an error frame.
func TestReplayDigestWrongPassword(t *testing.T) {
	frames := stormwire.Load(t, "digest-wrong-password.txt")
	p := startDigest(t)
	s := dial(t, p.Addr())
	h := &handshake{t: t, secret: saslSecret(jaasUser, "not-"+jaasPassword)}
	replay(t, s, frames, h.rewrite, h.check)
	s.expectClosed("after a wrong DIGEST response")

	// The server keeps serving others.
	ok := stormwire.Load(t, "none-client-vs-digest-server.txt")
	replay(t, dial(t, p.Addr()), ok[:2], nil, nil)
}
