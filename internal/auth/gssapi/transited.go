package gssapi

import (
	"errors"
	"fmt"
	"strings"

	"github.com/jcmturner/gokrb5/v8/messages"
)

// trDomainX500Compress is the only transited encoding RFC 4120 defines
// (§3.3.3.2), the one MIT and Active Directory KDCs write.
const trDomainX500Compress = 1

// maxTransited bounds the realm list read from a ticket: a real path has a
// handful of realms.
const maxTransited = 32

// transitedRealms lists the realms a ticket passed through between the
// client's realm and ours, from its transited field. It decodes the
// domain-style compression of RFC 4120 §3.3.3.2 — a name ending in "." is
// completed by the realm before it (the client's realm for the first) —
// and refuses the forms it does not resolve (X.500 names, escapes, empty
// fields that stand for implied realms, leading spaces): an acceptor that
// cannot tell which realms vouched for a client must not accept it.
func transitedRealms(t messages.TransitedEncoding, clientRealm string) ([]string, error) {
	if len(t.Contents) == 0 {
		return nil, nil
	}
	if t.TRType != trDomainX500Compress {
		return nil, fmt.Errorf("transited encoding type %d is not DOMAIN-X500-COMPRESS (1)", t.TRType)
	}
	s := string(t.Contents)
	if strings.ContainsAny(s, "\\/ \x00") {
		return nil, errors.New("transited realms use X.500 names, escapes or spaces, which this acceptor does not resolve")
	}
	fields := strings.Split(s, ",")
	if len(fields) > maxTransited {
		return nil, fmt.Errorf("ticket transited %d realms, more than %d", len(fields), maxTransited)
	}
	out := make([]string, 0, len(fields))
	prev := clientRealm
	for _, f := range fields {
		if f == "" || f == "." {
			return nil, errors.New("transited realms have an empty field (implied realms), which this acceptor does not resolve")
		}
		if strings.HasSuffix(f, ".") {
			f += prev
		}
		out = append(out, f)
		prev = f
	}
	return out, nil
}
