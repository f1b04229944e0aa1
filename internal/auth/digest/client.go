package digest

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"strings"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
)

// ClientMechanism is the client side, as Storm's PacemakerClient speaks it.
type ClientMechanism struct {
	password string
	username string
}

var _ auth.ClientMechanism = (*ClientMechanism)(nil)

// NewClientMechanism authenticates with the secret SecretFromJAAS derived.
// name is what Storm's client would send as its topology name; like Storm,
// the SASL username is its base64.
func NewClientMechanism(secret, name string) *ClientMechanism {
	return &ClientMechanism{password: saslPassword(secret), username: base64.StdEncoding.EncodeToString([]byte(name))}
}

// Name implements auth.ClientMechanism.
func (m *ClientMechanism) Name() string { return "DIGEST-MD5" }

// NewClientExchange implements auth.ClientMechanism; DIGEST ignores the host.
func (m *ClientMechanism) NewClientExchange(string) (auth.ClientExchange, error) {
	return &clientExchange{m: m}, nil
}

type clientExchange struct {
	m       *ClientMechanism
	rspauth string // expected server proof, once the response is sent
	done    bool
}

// Start returns nil: DIGEST opens with the CONTROL -202 request.
func (e *clientExchange) Start() ([]byte, error) { return nil, nil }

// Step answers the challenge, then checks the server's rspauth.
func (e *clientExchange) Step(token []byte) ([]byte, error) {
	switch {
	case e.done:
		return nil, errors.New("DIGEST-MD5 server sent a token after rspauth")
	case e.rspauth != "":
		got, ok := strings.CutPrefix(string(token), "rspauth=")
		if !ok || subtle.ConstantTimeCompare([]byte(got), []byte(e.rspauth)) != 1 {
			return nil, errors.New("DIGEST-MD5 server's rspauth does not prove it knows the secret")
		}
		e.done = true
		return nil, nil
	}
	ds, err := parseDirectives(string(token))
	if err != nil {
		return nil, fmt.Errorf("malformed DIGEST-MD5 challenge: %w", err)
	}
	v := map[string]string{}
	for _, d := range ds {
		v[d.name] = d.value
	}
	nonce := v["nonce"]
	if nonce == "" {
		return nil, errors.New("DIGEST-MD5 challenge without a nonce")
	}
	if a := v["algorithm"]; a != "md5-sess" {
		return nil, fmt.Errorf("DIGEST-MD5 challenge algorithm %q, want md5-sess", a)
	}
	if q, ok := v["qop"]; ok && !containsToken(q, "auth") {
		return nil, fmt.Errorf("DIGEST-MD5 server offers qop %q, not auth", q)
	}
	realm := v["realm"]
	var raw [nonceBytes]byte
	if _, err := rand.Read(raw[:]); err != nil {
		return nil, fmt.Errorf("make cnonce: %w", err)
	}
	cnonce := base64.StdEncoding.EncodeToString(raw[:])
	const nc = "00000001"
	resp := responseValue(e.m.username, realm, e.m.password, nonce, cnonce, "", nc, DigestURI, "AUTHENTICATE")
	e.rspauth = responseValue(e.m.username, realm, e.m.password, nonce, cnonce, "", nc, DigestURI, "")
	// The directives in the order the JDK's client sends them.
	out := "charset=utf-8,username=" + quote(e.m.username) + ",realm=" + quote(realm) +
		",nonce=" + quote(nonce) + ",nc=" + nc + ",cnonce=" + quote(cnonce) +
		",digest-uri=" + quote(DigestURI) + ",maxbuf=65536,response=" + resp + ",qop=auth"
	return []byte(out), nil
}

func containsToken(list, tok string) bool {
	for _, t := range strings.Split(list, ",") {
		if strings.TrimSpace(t) == tok {
			return true
		}
	}
	return false
}
