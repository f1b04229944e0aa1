// Package rfc4121 holds the pieces of the Kerberos V5 GSS-API mechanism
// that gokrb5 lacks on the acceptor side: the context-token framing of RFC
// 2743 §3.1 / RFC 4121 §4.1, the GSS checksum in the authenticator, the
// AP-REP response token, and RFC 4121 §4.2.6.2 Wrap tokens in both
// directions (integrity only, which is all the SASL GSSAPI negotiation of
// RFC 4752 uses).
package rfc4121

import (
	"bytes"
	"errors"
	"fmt"
)

// Token identifiers of the inner context tokens (RFC 4121 §4.1).
var (
	TokIDAPReq = [2]byte{0x01, 0x00}
	TokIDAPRep = [2]byte{0x02, 0x00}
	TokIDError = [2]byte{0x03, 0x00}
)

// DER encodings (tag, length, value) of the Kerberos V5 mechanism OID
// 1.2.840.113554.1.2.2 and of the one Microsoft's SSPI once sent by
// mistake, 1.2.840.48018.1.2.2, which acceptors accept too.
var (
	oidKrb5   = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x86, 0xf7, 0x12, 0x01, 0x02, 0x02}
	oidKrb5MS = []byte{0x06, 0x09, 0x2a, 0x86, 0x48, 0x82, 0xf7, 0x12, 0x01, 0x02, 0x02}
)

// FrameContextToken wraps a Kerberos message as a context token:
// [APPLICATION 0] { mech OID, TOK_ID, message }.
func FrameContextToken(tokID [2]byte, msg []byte) []byte {
	n := len(oidKrb5) + 2 + len(msg)
	out := make([]byte, 0, 6+n)
	out = append(out, 0x60)
	out = appendDERLength(out, n)
	out = append(out, oidKrb5...)
	out = append(out, tokID[:]...)
	return append(out, msg...)
}

// ParseContextToken undoes FrameContextToken, accepting either Kerberos
// mechanism OID; msg aliases b.
func ParseContextToken(b []byte) (tokID [2]byte, msg []byte, err error) {
	if len(b) < 2 || b[0] != 0x60 {
		return tokID, nil, errors.New("not a GSS-API context token (no [APPLICATION 0] header)")
	}
	n, hdr, err := parseDERLength(b[1:])
	if err != nil {
		return tokID, nil, fmt.Errorf("GSS-API context token: %w", err)
	}
	body := b[1+hdr:]
	if n != len(body) {
		return tokID, nil, fmt.Errorf("GSS-API context token: header says %d bytes, %d follow", n, len(body))
	}
	switch {
	case bytes.HasPrefix(body, oidKrb5):
		body = body[len(oidKrb5):]
	case bytes.HasPrefix(body, oidKrb5MS):
		body = body[len(oidKrb5MS):]
	default:
		return tokID, nil, errors.New("GSS-API context token is not for the Kerberos V5 mechanism (OID 1.2.840.113554.1.2.2)")
	}
	if len(body) < 2 {
		return tokID, nil, errors.New("GSS-API context token has no TOK_ID")
	}
	copy(tokID[:], body)
	return tokID, body[2:], nil
}

func appendDERLength(b []byte, n int) []byte {
	switch {
	case n < 0x80:
		return append(b, byte(n))
	case n <= 0xff:
		return append(b, 0x81, byte(n))
	case n <= 0xffff:
		return append(b, 0x82, byte(n>>8), byte(n))
	case n <= 0xffffff:
		return append(b, 0x83, byte(n>>16), byte(n>>8), byte(n))
	}
	return append(b, 0x84, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
}

// parseDERLength reads a definite DER length; hdr is how many bytes it took.
func parseDERLength(b []byte) (n, hdr int, err error) {
	if len(b) == 0 {
		return 0, 0, errors.New("truncated length")
	}
	if b[0] < 0x80 {
		return int(b[0]), 1, nil
	}
	k := int(b[0] & 0x7f)
	if k == 0 || k > 4 {
		return 0, 0, fmt.Errorf("unsupported length form 0x%02x", b[0])
	}
	if len(b) < 1+k {
		return 0, 0, errors.New("truncated length")
	}
	for _, c := range b[1 : 1+k] {
		n = n<<8 | int(c)
	}
	if n < 0 {
		return 0, 0, errors.New("length overflows")
	}
	return n, 1 + k, nil
}
