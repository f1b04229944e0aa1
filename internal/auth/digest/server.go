package digest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
)

// Mechanism is the server side: one shared secret, any username.
type Mechanism struct {
	password string // base64 of the secret, the DIGEST-MD5 password
}

var _ auth.Mechanism = (*Mechanism)(nil)

// NewMechanism serves DIGEST-MD5 with the secret SecretFromJAAS derived.
func NewMechanism(secret string) *Mechanism {
	return &Mechanism{password: saslPassword(secret)}
}

// Name implements auth.Mechanism.
func (m *Mechanism) Name() string { return "DIGEST-MD5" }

// MayRead implements auth.Mechanism: as in Storm, whoever knows the shared
// secret may read.
func (m *Mechanism) MayRead(string) (bool, string) { return true, "" }

// IdentityName implements auth.IdentityNamer: Storm's clients send the
// base64 of their name (a topology's, or "pacemakerctl") as the SASL
// username; the log shows the name. A username that is not base64 of
// printable UTF-8 is shown as it came.
func (m *Mechanism) IdentityName(user string) string {
	b, err := base64.StdEncoding.DecodeString(user)
	if err != nil || len(b) == 0 || !utf8.Valid(b) {
		return user
	}
	for _, r := range string(b) {
		if !unicode.IsPrint(r) {
			return user
		}
	}
	return string(b)
}

// NewExchange implements auth.Mechanism.
func (m *Mechanism) NewExchange(string) auth.Exchange { return &serverExchange{password: m.password} }

type serverExchange struct {
	password string
	nonce    string // "" until the challenge is sent
	done     bool
	user     string
}

// nonceBytes gives a 40-character base64 nonce, the shape Storm's JDK
// server sends.
const nonceBytes = 30

// Start sends the challenge, directive for directive what Storm's server
// sends (qop is left out: it defaults to auth).
func (e *serverExchange) Start() ([]byte, error) {
	if e.nonce != "" {
		return nil, auth.Failf(auth.ReasonProtocol, "client asked to start DIGEST-MD5 twice")
	}
	var raw [nonceBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, auth.Failf(auth.ReasonInternal, "make nonce: %w", err)
	}
	e.nonce = base64.StdEncoding.EncodeToString(raw[:])
	return []byte(`realm="` + Realm + `",nonce="` + e.nonce + `",charset=utf-8,algorithm=md5-sess`), nil
}

// The directives a response may carry at most once (RFC 2831 §2.1.2).
var singleValued = map[string]bool{
	"username": true, "realm": true, "nonce": true, "cnonce": true, "nc": true, "qop": true,
	"digest-uri": true, "response": true, "maxbuf": true, "charset": true, "cipher": true, "authzid": true,
}

// Step checks the client's response and answers rspauth.
func (e *serverExchange) Step(token []byte) ([]byte, bool, error) {
	switch {
	case e.done:
		return nil, false, auth.Failf(auth.ReasonProtocol, "DIGEST-MD5 token after the exchange completed")
	case e.nonce == "":
		return nil, false, auth.Failf(auth.ReasonProtocol, "DIGEST-MD5 response before the client asked for a challenge (CONTROL -202)")
	}
	ds, err := parseDirectives(string(token))
	if err != nil {
		return nil, false, auth.Failf(auth.ReasonMalformed, "malformed DIGEST-MD5 response: %w", err)
	}
	v := make(map[string]string, len(ds))
	for _, d := range ds {
		if _, dup := v[d.name]; dup && singleValued[d.name] {
			return nil, false, auth.Failf(auth.ReasonMalformed, "malformed DIGEST-MD5 response: directive %s given twice", d.name)
		}
		v[d.name] = d.value
	}
	for _, name := range []string{"username", "nonce", "cnonce", "nc", "digest-uri", "response"} {
		if _, ok := v[name]; !ok {
			return nil, false, auth.Failf(auth.ReasonMalformed, "malformed DIGEST-MD5 response: no %s", name)
		}
	}
	if c, ok := v["charset"]; ok && !strings.EqualFold(c, "utf-8") {
		return nil, false, auth.Failf(auth.ReasonProtocol, "DIGEST-MD5 charset %q, want utf-8", c)
	}
	if q, ok := v["qop"]; ok && q != "auth" {
		return nil, false, auth.Failf(auth.ReasonProtocol, "DIGEST-MD5 qop %q not offered (only auth)", q)
	}
	if r, ok := v["realm"]; ok && r != Realm {
		return nil, false, auth.Failf(auth.ReasonWrongService, "DIGEST-MD5 realm %q not offered (only %q)", r, Realm)
	}
	if subtle.ConstantTimeCompare([]byte(v["nonce"]), []byte(e.nonce)) != 1 {
		return nil, false, auth.Failf(auth.ReasonReplay, "DIGEST-MD5 response names a nonce this server did not issue")
	}
	if v["nc"] != "00000001" {
		return nil, false, auth.Failf(auth.ReasonReplay, "DIGEST-MD5 nonce-count %q, want 00000001", v["nc"])
	}
	if !strings.EqualFold(v["digest-uri"], DigestURI) {
		return nil, false, auth.Failf(auth.ReasonWrongService, "DIGEST-MD5 digest-uri %q, want %q", v["digest-uri"], DigestURI)
	}
	if az, ok := v["authzid"]; ok && az != v["username"] {
		// Storm's server authorizes only a client acting as itself.
		return nil, false, auth.Failf(auth.ReasonNameMismatch, "DIGEST-MD5 authorization id %q differs from username %q", az, v["username"])
	}
	user, realm, cnonce, authzid, nc, uri := v["username"], v["realm"], v["cnonce"], v["authzid"], v["nc"], v["digest-uri"]
	want := responseValue(user, realm, e.password, e.nonce, cnonce, authzid, nc, uri, "AUTHENTICATE")
	if subtle.ConstantTimeCompare([]byte(strings.ToLower(v["response"])), []byte(want)) != 1 {
		return nil, false, auth.Failf(auth.ReasonBadCredentials, "DIGEST-MD5 response does not match: wrong password (PacemakerDigest username/password differ)")
	}
	e.done, e.user = true, user
	return []byte("rspauth=" + responseValue(user, realm, e.password, e.nonce, cnonce, authzid, nc, uri, "")), true, nil
}

// Identity is the SASL username the client proved the secret with.
func (e *serverExchange) Identity() string { return e.user }
