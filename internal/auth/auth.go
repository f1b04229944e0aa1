// Package auth defines how a connection authenticates: the server and client
// sides of one SASL exchange, implemented by the digest (DIGEST-MD5) and
// gssapi (Kerberos) packages below it, and carried in SASL_MESSAGE_TOKEN and
// CONTROL_MESSAGE frames by the server and client packages.
package auth

import (
	"errors"
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

// IdentityNamer is a Mechanism whose identities read better decoded in a
// log line (DIGEST: the SASL username is the base64 of the client's name).
type IdentityNamer interface {
	IdentityName(identity string) string
}

// IdentityName is identity as m would have it logged.
func IdentityName(m Mechanism, identity string) string {
	if n, ok := m.(IdentityNamer); ok {
		return n.IdentityName(identity)
	}
	return identity
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

// Reason is why a handshake failed, as the metric label
// pacemaker_auth_failures_total{reason} shows it. The label must come from
// this fixed set and never from an error's text: that text carries what
// the client sent (names, realms), and every distinct value would be a new
// time series an unauthenticated peer could mint. The detail stays in the
// error, for the log line.
type Reason string

// The reasons. Each mechanism maps its failures onto these.
const (
	ReasonMalformed       Reason = "malformed token"      // does not parse, wrong framing, wrong stage
	ReasonTooLarge        Reason = "token too large"      // refused before parsing
	ReasonProtocol        Reason = "protocol violation"   // parses, but breaks the SASL/GSS rules (layer, seq, reflected token)
	ReasonWrongService    Reason = "wrong service"        // ticket for another principal, or digest-uri/realm of another server
	ReasonBadCredentials  Reason = "bad credentials"      // wrong password, wrong key, tampered or forged token
	ReasonExpired         Reason = "ticket not valid now" // ticket expired or not yet valid
	ReasonClockSkew       Reason = "clock skew"
	ReasonReplay          Reason = "replay"
	ReasonBeforeStart     Reason = "authenticator before start" // older than this daemon's replay memory
	ReasonReplayCacheFull Reason = "replay cache full"
	ReasonRateLimited     Reason = "rate limited"
	ReasonWeakCrypto      Reason = "weak or unsupported enctype"
	ReasonRealm           Reason = "realm not trusted"
	ReasonNameMismatch    Reason = "name mismatch" // authenticator or authorization id differs from the ticket
	ReasonTimeout         Reason = "handshake timeout"
	ReasonInternal        Reason = "internal error"
	ReasonOther           Reason = "other" // an error no mechanism classified
)

// Error is a failed handshake with its Reason; Error() is the detail.
type Error struct {
	Reason Reason
	Err    error
}

func (e *Error) Error() string { return e.Err.Error() }
func (e *Error) Unwrap() error { return e.Err }

// Fail classifies err; a nil err stays nil.
func Fail(reason Reason, err error) error {
	if err == nil {
		return nil
	}
	return &Error{Reason: reason, Err: err}
}

// Failf is Fail with fmt.Errorf.
func Failf(reason Reason, format string, args ...any) error {
	return &Error{Reason: reason, Err: fmt.Errorf(format, args...)}
}

// ReasonOf is the reason err was classified with (the outermost), else
// ReasonOther.
func ReasonOf(err error) Reason {
	var e *Error
	if errors.As(err, &e) {
		return e.Reason
	}
	return ReasonOther
}
