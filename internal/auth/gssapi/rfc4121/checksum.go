package rfc4121

import (
	"encoding/binary"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/types"
)

// ChecksumType is the authenticator checksum type of RFC 4121 §4.1.1.
const ChecksumType = 0x8003

// Context flags carried in the authenticator checksum (RFC 2744 values).
const (
	FlagDeleg    uint32 = 1
	FlagMutual   uint32 = 2
	FlagReplay   uint32 = 4
	FlagSequence uint32 = 8
	FlagConf     uint32 = 16
	FlagInteg    uint32 = 32
)

// AuthenticatorChecksum is the GSS checksum an initiator puts in its
// authenticator: no channel bindings, the given context flags, no
// delegation.
func AuthenticatorChecksum(flags uint32) types.Checksum {
	b := make([]byte, 24)
	binary.LittleEndian.PutUint32(b[0:4], 16) // length of the bindings hash
	binary.LittleEndian.PutUint32(b[20:24], flags&^FlagDeleg)
	return types.Checksum{CksumType: ChecksumType, Checksum: b}
}

// ParseAuthenticatorChecksum returns the context flags of a GSS checksum.
// Channel bindings are not checked: this acceptor uses none, and RFC 4121
// lets such an acceptor ignore what the initiator sent.
func ParseAuthenticatorChecksum(c types.Checksum) (flags uint32, err error) {
	if c.CksumType != ChecksumType {
		return 0, fmt.Errorf("authenticator checksum type %d is not the GSS-API checksum 0x8003", c.CksumType)
	}
	if len(c.Checksum) < 24 {
		return 0, fmt.Errorf("GSS-API authenticator checksum is %d bytes, want at least 24", len(c.Checksum))
	}
	if l := binary.LittleEndian.Uint32(c.Checksum[0:4]); l != 16 {
		return 0, fmt.Errorf("GSS-API authenticator checksum: bindings length %d, want 16", l)
	}
	return binary.LittleEndian.Uint32(c.Checksum[20:24]), nil
}
