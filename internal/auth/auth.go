// Package auth defines how a connection authenticates: the server and client
// sides of one SASL exchange, implemented by the digest (DIGEST-MD5) and
// gssapi (Kerberos) packages below it, and carried in SASL_MESSAGE_TOKEN and
// CONTROL_MESSAGE frames by the server and client packages.
package auth

import (
	"fmt"
	"strings"
)

// Method is pacemaker.auth.method.
type Method string

// The methods Storm defines.
const (
	None     Method = "NONE"
	Digest   Method = "DIGEST"
	Kerberos Method = "KERBEROS"
)

// ParseMethod accepts Storm's names, case-insensitively.
func ParseMethod(s string) (Method, error) {
	switch m := Method(strings.ToUpper(strings.TrimSpace(s))); m {
	case None, Digest, Kerberos:
		return m, nil
	}
	return "", fmt.Errorf("unknown auth method %q (want NONE, DIGEST or KERBEROS)", s)
}

// Exchange is the server side of one connection's SASL authentication.
type Exchange interface {
	// Start answers the client's "start SASL" control request (-202) with the
	// first challenge. A mechanism whose client speaks first (GSSAPI) returns
	// nil, nil and waits for Step.
	Start() (challenge []byte, err error)
	// Step consumes one client token and returns the token to send back
	// (nil: send none) and whether the client is now authenticated. An error
	// fails the exchange: the server logs it with the peer and closes the
	// connection, as Storm's server does.
	Step(token []byte) (reply []byte, done bool, err error)
	// Identity names the authenticated client once Step has reported done
	// (DIGEST: the SASL username; KERBEROS: the full principal name).
	Identity() string
}

// Mechanism makes one Exchange per connection. The daemon builds one from
// the config and replaces it on reload; connections keep the one they began with.
type Mechanism interface {
	// Name is the SASL mechanism name, e.g. "DIGEST-MD5" or "GSSAPI".
	Name() string
	NewExchange(peer string) Exchange
	// MayRead reports whether an authenticated identity may read (EXISTS and
	// GET_*), and if not, why, for the log.
	MayRead(identity string) (ok bool, reason string)
}

// ClientExchange is the client side of one SASL authentication.
type ClientExchange interface {
	// Start returns the first token to send. nil means the client opens with
	// the CONTROL -202 request and waits for a challenge (DIGEST); a token is
	// sent as the first SASL_MESSAGE_TOKEN instead (GSSAPI).
	Start() (first []byte, err error)
	// Step consumes a server token and returns the answer to send (nil:
	// none). The exchange is over when the server sends CONTROL -203.
	Step(challenge []byte) (response []byte, err error)
}

// ClientMechanism makes one ClientExchange per connection.
type ClientMechanism interface {
	Name() string
	// NewClientExchange starts authenticating to the server at host, the
	// host part of the address as the operator wrote it (Kerberos builds the
	// service principal service/host from it).
	NewClientExchange(host string) (ClientExchange, error)
}
