package rfc4121

import (
	"fmt"

	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/types"
)

// KeyLength is the size in bytes of a key of encryption type et. gokrb5's
// GetKeyByteSize says 24 for aes256-cts-hmac-sha384-192, whose keys are
// 32 bytes (RFC 8009 §3), and its own encryption wants 32.
func KeyLength(et int32) int {
	switch et {
	case etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA256_128:
		return 16
	case etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA384_192:
		return 32
	}
	if e, err := crypto.GetEtype(et); err == nil {
		return e.GetKeyByteSize()
	}
	return 32
}

// CheckKey refuses a key this package cannot use: a type without RFC 4121
// tokens, or a value of the wrong length for its type. A peer chooses
// subkeys; AES would quietly take a 32-byte key for an aes128 type, and the
// RFC 8009 key derivation takes any length at all.
func CheckKey(key types.EncryptionKey) error {
	if !SupportsKey(key) {
		return fmt.Errorf("key of encryption type %s has no RFC 4121 tokens (want an AES type)", etypeName(key.KeyType))
	}
	if want := KeyLength(key.KeyType); len(key.KeyValue) != want {
		return fmt.Errorf("%s key is %d bytes, want %d", etypeName(key.KeyType), len(key.KeyValue), want)
	}
	return nil
}

// MaxCiphertext bounds the encrypted parts this package lets gokrb5
// decrypt. Context tokens are refused far below it (see the acceptor); it
// guards direct callers.
const MaxCiphertext = 1 << 20

// CheckCiphertext is the check gokrb5 v8.4.4 lacks before it decrypts ed
// with key: it slices ciphertext[:len-checksum] unchecked and panics on a
// shorter part (and AES-CTS needs at least one block, the confounder).
// It refuses an encrypted part whose type is not key's, or that is shorter
// than the type's confounder plus checksum, or longer than MaxCiphertext.
// Call it before every crypto.DecryptEncPart / DecryptMessage on data a
// peer sent.
func CheckCiphertext(ed types.EncryptedData, key types.EncryptionKey) error {
	if ed.EType != key.KeyType {
		return fmt.Errorf("encrypted with %s, but the key is %s", etypeName(ed.EType), etypeName(key.KeyType))
	}
	if err := CheckKey(key); err != nil {
		return err
	}
	et, err := crypto.GetEtype(key.KeyType)
	if err != nil {
		return err
	}
	min := et.GetConfounderByteSize() + et.GetHMACBitLength()/8
	if n := len(ed.Cipher); n < min || n > MaxCiphertext {
		return fmt.Errorf("%s ciphertext is %d bytes; want %d to %d (confounder and checksum at least)", etypeName(key.KeyType), n, min, MaxCiphertext)
	}
	return nil
}
