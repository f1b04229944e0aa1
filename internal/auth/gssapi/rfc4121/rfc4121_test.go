package rfc4121

import (
	"bytes"
	"encoding/hex"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/types"
)

func unhex(t testing.TB, s string) []byte {
	t.Helper()
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		t.Fatal(err)
	}
	return b
}

// TestChecksumRFC8009Vectors: the keyed checksum under Wrap tokens gives
// RFC 8009 Appendix A's checksum vectors (key usage 2).
func TestChecksumRFC8009Vectors(t *testing.T) {
	tests := []struct {
		etype int32
		key   string
		sum   string
	}{
		{etypeID.AES128_CTS_HMAC_SHA256_128, "3705D96080C17728A0E800EAB6E0D23C", "D78367186643D67B411CBA9139FC1DEE"},
		{etypeID.AES256_CTS_HMAC_SHA384_192, "6D404D37FAF79F9DF0D33568D320669800EB4836472EA8A026D16B7182460C52",
			"45EE791567EEFCA37F4AC1E0222DE80D43C3BFA06699672A"},
	}
	msg := unhex(t, "000102030405060708090A0B0C0D0E0F1011121314")
	for _, tc := range tests {
		got, err := keyedChecksum(types.EncryptionKey{KeyType: tc.etype, KeyValue: unhex(t, tc.key)}, 2, msg)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, unhex(t, tc.sum)) {
			t.Errorf("enctype %d: checksum %x, want %s", tc.etype, got, tc.sum)
		}
	}
}

func TestContextTokenFraming(t *testing.T) {
	for _, n := range []int{0, 1, 100, 116, 117, 200, 255, 300, 70000} {
		msg := bytes.Repeat([]byte{0xab}, n)
		tok := FrameContextToken(TokIDAPReq, msg)
		id, got, err := ParseContextToken(tok)
		if err != nil || id != TokIDAPReq || !bytes.Equal(got, msg) {
			t.Fatalf("len %d: id %x err %v equal %v", n, id, err, bytes.Equal(got, msg))
		}
	}
	// RFC 2743 §3.1 header: 60 <len> 06 09 <krb5 OID> <TOK_ID>.
	if got := hex.EncodeToString(FrameContextToken(TokIDAPRep, []byte{0xff})); got != "600e06092a864886f71201020202"+"00ff" {
		t.Errorf("framing = %s", got)
	}
	ms := append([]byte{0x60, 0x0e}, append(append([]byte{}, oidKrb5MS...), 0x01, 0x00, 0x42)...)
	if id, msg, err := ParseContextToken(ms); err != nil || id != TokIDAPReq || !bytes.Equal(msg, []byte{0x42}) {
		t.Errorf("Microsoft's krb5 OID: %x %x %v", id, msg, err)
	}
	bad := map[string][]byte{
		"empty":           {},
		"not application": {0x30, 0x00},
		"length too long": {0x60, 0x20, 0x06},
		"length short":    append([]byte{0x60, 0x02}, oidKrb5...),
		"other mech":      {0x60, 0x0d, 0x06, 0x09, 0x2b, 0x06, 0x01, 0x05, 0x05, 0x02, 0x00, 0x00, 0x00, 0x01, 0x00},
		"no tok id":       append([]byte{0x60, 0x0c}, append(append([]byte{}, oidKrb5...), 0x01)...),
		"huge length":     {0x60, 0x85, 1, 1, 1, 1, 1},
	}
	for name, b := range bad {
		if _, _, err := ParseContextToken(b); err == nil {
			t.Errorf("%s: no error for %x", name, b)
		}
	}
}

func TestAuthenticatorChecksum(t *testing.T) {
	c := AuthenticatorChecksum(FlagMutual | FlagInteg | FlagDeleg)
	if c.CksumType != 0x8003 || hex.EncodeToString(c.Checksum) != "10000000"+strings.Repeat("00", 16)+"22000000" {
		t.Fatalf("checksum %d %x", c.CksumType, c.Checksum)
	}
	if f, err := ParseAuthenticatorChecksum(c); err != nil || f != FlagMutual|FlagInteg {
		t.Fatalf("parse: %x %v", f, err)
	}
	for _, bad := range []types.Checksum{
		{CksumType: 16, Checksum: c.Checksum},
		{CksumType: 0x8003, Checksum: c.Checksum[:20]},
		{CksumType: 0x8003, Checksum: append([]byte{8, 0, 0, 0}, c.Checksum[4:]...)},
	} {
		if _, err := ParseAuthenticatorChecksum(bad); err == nil {
			t.Errorf("no error for %v", bad)
		}
	}
}

func testKey(et int32) types.EncryptionKey {
	n := 16
	if et == etypeID.AES256_CTS_HMAC_SHA1_96 || et == etypeID.AES256_CTS_HMAC_SHA384_192 {
		n = 32
	}
	k := make([]byte, n)
	for i := range k {
		k[i] = byte(i*7 + int(et))
	}
	return types.EncryptionKey{KeyType: et, KeyValue: k}
}

func TestWrapRoundTrip(t *testing.T) {
	for _, et := range []int32{etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA256_128, etypeID.AES256_CTS_HMAC_SHA384_192} {
		key := testKey(et)
		payload := []byte("\x01\x00\x00\x00nimbus@EXAMPLE.COM")
		tok, err := Wrap(key, 0, 0x1234, payload)
		if err != nil {
			t.Fatal(err)
		}
		want := map[int32]int{17: 12, 18: 12, 19: 16, 20: 24}[et]
		if len(tok) != 16+len(payload)+want || tok[4] != 0 || int(tok[5]) != want {
			t.Fatalf("enctype %d: token %x: want EC %d", et, tok, want)
		}
		wt, err := Unwrap(key, tok, false)
		if err != nil || wt.Seq != 0x1234 || !bytes.Equal(wt.Payload, payload) || wt.Flags != 0 {
			t.Fatalf("enctype %d: %+v %v", et, wt, err)
		}
		// Right rotation by RRC (RFC 4121 §4.2.5) is undone.
		for _, rrc := range []int{1, 12, 28, 1000} {
			rot := rotate(tok, rrc)
			if wt, err := Unwrap(key, rot, false); err != nil || !bytes.Equal(wt.Payload, payload) {
				t.Errorf("enctype %d RRC %d: %v", et, rrc, err)
			}
		}
		if _, err := Unwrap(key, tok, true); err == nil || !strings.Contains(err.Error(), "not sent by the acceptor") {
			t.Errorf("reflected initiator token accepted: %v", err)
		}
		acc, _ := Wrap(key, FlagSentByAcceptor, 1, payload)
		if _, err := Unwrap(key, acc, false); err == nil {
			t.Error("reflected acceptor token accepted")
		}
		// An acceptor token does not verify as an initiator token even
		// with the flag forced: the key usage differs.
		forged := append([]byte(nil), acc...)
		forged[2] = 0
		if _, err := Unwrap(key, forged, false); err == nil {
			t.Error("acceptor checksum verified under the initiator's key usage")
		}
		for i := range tok {
			if i == 6 || i == 7 { // RRC: rotating does not necessarily break it
				continue
			}
			bad := append([]byte(nil), tok...)
			bad[i] ^= 0x10
			if _, err := Unwrap(key, bad, false); err == nil {
				t.Errorf("enctype %d: byte %d flipped, token still verifies", et, i)
			}
		}
		other := testKey(et)
		other.KeyValue[0] ^= 1
		if _, err := Unwrap(other, tok, false); err == nil {
			t.Errorf("enctype %d: verifies under another key", et)
		}
	}
	if _, err := Wrap(types.EncryptionKey{KeyType: etypeID.RC4_HMAC, KeyValue: make([]byte, 16)}, 0, 0, nil); err == nil {
		t.Error("RC4 key accepted for an RFC 4121 token")
	}
	if _, err := Unwrap(testKey(17), []byte{5, 4, 2, 0xff, 0, 12, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}, false); err == nil || !strings.Contains(err.Error(), "sealed") {
		t.Errorf("sealed token: %v", err)
	}
}

// rotate applies RFC 4121 §4.2.5 right rotation of the data after the header.
func rotate(tok []byte, rrc int) []byte {
	out := append([]byte(nil), tok...)
	out[6], out[7] = byte(rrc>>8), byte(rrc)
	body := out[16:]
	r := rrc % len(body)
	rotated := append(append([]byte(nil), body[len(body)-r:]...), body[:len(body)-r]...)
	copy(body, rotated)
	return out
}

func TestAPRepRoundTrip(t *testing.T) {
	for _, et := range []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA384_192} {
		key := testKey(et)
		a := types.Authenticator{CTime: time.Date(2025, 5, 6, 7, 8, 9, 0, time.UTC), Cusec: 123456}
		tok, err := NewAPRepToken(key, a, 0x2468ace)
		if err != nil {
			t.Fatal(err)
		}
		id, msg, err := ParseContextToken(tok)
		if err != nil || id != TokIDAPRep {
			t.Fatalf("%x %v", id, err)
		}
		seq, sub, err := VerifyAPRep(msg, key, a)
		if err != nil || seq != 0x2468ace || sub.KeyType != 0 {
			t.Fatalf("enctype %d: seq %x subkey %v err %v", et, seq, sub, err)
		}
		b := a
		b.Cusec++
		if _, _, err := VerifyAPRep(msg, key, b); err == nil {
			t.Error("AP-REP for another authenticator verifies")
		}
		other := testKey(et)
		other.KeyValue[3] ^= 1
		if _, _, err := VerifyAPRep(msg, other, a); err == nil {
			t.Error("AP-REP decrypts under another key")
		}
	}
}
