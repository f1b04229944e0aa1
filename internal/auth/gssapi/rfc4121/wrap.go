package rfc4121

import (
	"crypto/hmac"
	"encoding/binary"
	"errors"
	"fmt"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/types"
)

// Wrap token flags (RFC 4121 §4.2.2).
const (
	FlagSentByAcceptor byte = 0x01
	FlagSealed         byte = 0x02
	FlagAcceptorSubkey byte = 0x04
)

const wrapHeaderLen = 16

// tokIDWrap is the TOK_ID of an RFC 4121 Wrap token.
var tokIDWrap = [2]byte{0x05, 0x04}

// SupportsKey reports whether key's encryption type uses the RFC 4121
// token format: the AES types of RFC 3962 and RFC 8009. Older types
// (DES3, RC4) have RFC 1964 / 4757 tokens, which this package does not
// implement.
func SupportsKey(key types.EncryptionKey) bool {
	switch key.KeyType {
	case etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96,
		etypeID.AES128_CTS_HMAC_SHA256_128, etypeID.AES256_CTS_HMAC_SHA384_192:
		return true
	}
	return false
}

// WrapToken is a parsed, verified Wrap token.
type WrapToken struct {
	Flags   byte
	Seq     uint64
	Payload []byte
}

// Wrap makes an integrity-only Wrap token carrying payload. flags may hold
// FlagSentByAcceptor and FlagAcceptorSubkey; the key usage follows the
// sender's side. The token is not rotated (RRC 0).
func Wrap(key types.EncryptionKey, flags byte, seq uint64, payload []byte) ([]byte, error) {
	if flags&FlagSealed != 0 {
		return nil, errors.New("wrap: confidentiality is not supported")
	}
	sum, err := wrapChecksum(key, flags, seq, payload)
	if err != nil {
		return nil, err
	}
	out := make([]byte, wrapHeaderLen, wrapHeaderLen+len(payload)+len(sum))
	copy(out, tokIDWrap[:])
	out[2] = flags
	out[3] = 0xff
	binary.BigEndian.PutUint16(out[4:6], uint16(len(sum))) // EC = checksum length
	binary.BigEndian.PutUint64(out[8:16], seq)
	out = append(out, payload...)
	return append(out, sum...), nil
}

// Unwrap verifies an integrity-only Wrap token sent by the other side
// (fromAcceptor says which side that is) and returns its content. A
// rotated token (RRC ≠ 0, as Windows sends) is rotated back first. The
// returned Payload aliases token only when RRC is 0.
func Unwrap(key types.EncryptionKey, token []byte, fromAcceptor bool) (WrapToken, error) {
	var wt WrapToken
	if len(token) < wrapHeaderLen {
		return wt, fmt.Errorf("wrap token is %d bytes, shorter than its header", len(token))
	}
	if token[0] != tokIDWrap[0] || token[1] != tokIDWrap[1] {
		return wt, fmt.Errorf("not an RFC 4121 wrap token (TOK_ID %02x%02x, want 0504)", token[0], token[1])
	}
	flags := token[2]
	if got := flags&FlagSentByAcceptor != 0; got != fromAcceptor {
		if fromAcceptor {
			return wt, errors.New("wrap token was not sent by the acceptor (reflected?)")
		}
		return wt, errors.New("wrap token claims to come from the acceptor (reflected?)")
	}
	if flags&FlagSealed != 0 {
		return wt, errors.New("wrap token is sealed (confidentiality); the SASL negotiation uses integrity only")
	}
	if token[3] != 0xff {
		return wt, fmt.Errorf("wrap token filler byte 0x%02x, want 0xff", token[3])
	}
	ec := int(binary.BigEndian.Uint16(token[4:6]))
	rrc := int(binary.BigEndian.Uint16(token[6:8]))
	seq := binary.BigEndian.Uint64(token[8:16])
	body := token[wrapHeaderLen:]
	if rrc != 0 && len(body) > 0 {
		r := rrc % len(body)
		rotated := make([]byte, 0, len(body))
		rotated = append(rotated, body[r:]...)
		body = append(rotated, body[:r]...)
	}
	want, err := checksumLen(key)
	if err != nil {
		return wt, err
	}
	if ec != want || len(body) < ec {
		return wt, fmt.Errorf("wrap token checksum length %d (body %d bytes), want %d for %s", ec, len(body), want, etypeName(key.KeyType))
	}
	payload, sum := body[:len(body)-ec], body[len(body)-ec:]
	calc, err := wrapChecksum(key, flags, seq, payload)
	if err != nil {
		return wt, err
	}
	if !hmac.Equal(calc, sum) {
		return wt, errors.New("wrap token checksum does not verify (wrong key or tampered token)")
	}
	return WrapToken{Flags: flags, Seq: seq, Payload: payload}, nil
}

// wrapChecksum is the checksum over payload | header, the header taken
// with EC and RRC zero (RFC 4121 §4.2.4), in the sender's seal key usage.
func wrapChecksum(key types.EncryptionKey, flags byte, seq uint64, payload []byte) ([]byte, error) {
	if !SupportsKey(key) {
		return nil, fmt.Errorf("encryption type %s has no RFC 4121 tokens (want an AES type)", etypeName(key.KeyType))
	}
	usage := uint32(keyusage.GSSAPI_INITIATOR_SEAL)
	if flags&FlagSentByAcceptor != 0 {
		usage = keyusage.GSSAPI_ACCEPTOR_SEAL
	}
	msg := make([]byte, len(payload)+wrapHeaderLen)
	copy(msg, payload)
	h := msg[len(payload):]
	copy(h, tokIDWrap[:])
	h[2] = flags
	h[3] = 0xff
	binary.BigEndian.PutUint64(h[8:16], seq)
	return keyedChecksum(key, usage, msg)
}

// keyedChecksum is the RFC 3961 get_mic of the key's simplified profile:
// HMAC with the usage's Kc, truncated (HMAC-SHA1-96 for RFC 3962 types,
// HMAC-SHA256-128 / HMAC-SHA384-192 for RFC 8009 types).
func keyedChecksum(key types.EncryptionKey, usage uint32, msg []byte) ([]byte, error) {
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return nil, err
	}
	return et.GetChecksumHash(key.KeyValue, msg, usage)
}

func checksumLen(key types.EncryptionKey) (int, error) {
	if !SupportsKey(key) {
		return 0, fmt.Errorf("encryption type %s has no RFC 4121 tokens (want an AES type)", etypeName(key.KeyType))
	}
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return 0, err
	}
	return et.GetHMACBitLength() / 8, nil
}

func etypeName(id int32) string {
	for name, v := range etypeID.ETypesByName {
		if v == id {
			return name
		}
	}
	return fmt.Sprintf("enctype %d", id)
}
