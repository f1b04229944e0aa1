package gssapi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/types"
)

// strongEnctypes are the encryption types this acceptor uses keys of:
// AES with SHA-1 (RFC 3962) and with SHA-2 (RFC 8009). DES, DES3 and RC4
// are weak (RFC 6649, RFC 8429) and their GSS tokens use older formats.
var strongEnctypes = []int32{
	etypeID.AES256_CTS_HMAC_SHA1_96,
	etypeID.AES128_CTS_HMAC_SHA1_96,
	etypeID.AES256_CTS_HMAC_SHA384_192,
	etypeID.AES128_CTS_HMAC_SHA256_128,
}

func isStrong(et int32) bool { return slices.Contains(strongEnctypes, et) }

// enctypeNames are MIT's names of the types one meets in keytabs.
var enctypeNames = map[int32]string{
	etypeID.DES_CBC_CRC:                "des-cbc-crc",
	etypeID.DES_CBC_MD5:                "des-cbc-md5",
	etypeID.DES3_CBC_SHA1_KD:           "des3-cbc-sha1",
	etypeID.AES128_CTS_HMAC_SHA1_96:    "aes128-cts-hmac-sha1-96",
	etypeID.AES256_CTS_HMAC_SHA1_96:    "aes256-cts-hmac-sha1-96",
	etypeID.AES128_CTS_HMAC_SHA256_128: "aes128-cts-hmac-sha256-128",
	etypeID.AES256_CTS_HMAC_SHA384_192: "aes256-cts-hmac-sha384-192",
	etypeID.RC4_HMAC:                   "arcfour-hmac",
	etypeID.CAMELLIA128_CTS_CMAC:       "camellia128-cts-cmac",
	etypeID.CAMELLIA256_CTS_CMAC:       "camellia256-cts-cmac",
}

// EnctypeName is the Kerberos name of an encryption type number.
func EnctypeName(et int32) string {
	if n, ok := enctypeNames[et]; ok {
		return n
	}
	return fmt.Sprintf("enctype-%d", et)
}

// loadKeytab reads a keytab and keeps only the strong keys of principal,
// with errors that say what is wrong and what to do.
func loadKeytab(path string, pn types.PrincipalName, realm string) (*keytab.Keytab, error) {
	princ := principalString(pn, realm)
	data, err := os.ReadFile(path)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, fmt.Errorf("keytab %s does not exist (export the key of %s with kadmin: ktadd -k %s %s)", path, princ, path, princ)
	case errors.Is(err, fs.ErrPermission):
		return nil, fmt.Errorf("keytab %s is not readable by this user (uid %d): %w", path, os.Getuid(), err)
	case err != nil:
		return nil, fmt.Errorf("read keytab %s: %w", path, err)
	}
	kt := keytab.New()
	if len(data) == 2 && data[0] == 0x05 {
		// A version header and no entries (what ktutil writes when empty).
		data = nil
	} else if err := kt.Unmarshal(data); err != nil {
		return nil, fmt.Errorf("keytab %s is not a Kerberos keytab: %w", path, err)
	}
	if data == nil {
		return nil, fmt.Errorf("keytab %s is empty (export the key of %s with kadmin: ktadd -k %s %s)", path, princ, path, princ)
	}
	var others, weak []string
	keep := kt.Entries[:0]
	for _, e := range kt.Entries {
		if e.Principal.Realm != realm || !slices.Equal(e.Principal.Components, pn.NameString) {
			others = append(others, strings.Join(e.Principal.Components, "/")+"@"+e.Principal.Realm)
			continue
		}
		if !isStrong(e.Key.KeyType) || len(e.Key.KeyValue) != KeyLength(e.Key.KeyType) {
			weak = append(weak, EnctypeName(e.Key.KeyType))
			continue
		}
		keep = append(keep, e)
	}
	kt.Entries = keep
	if len(keep) > 0 {
		return kt, nil
	}
	if len(weak) > 0 {
		slices.Sort(weak)
		return nil, fmt.Errorf("keytab %s holds only weak keys for %s (%s); export aes256-cts-hmac-sha1-96 or aes128-cts-hmac-sha1-96 keys (kadmin: ktadd -k %s -e aes256-cts-hmac-sha1-96:normal %s)",
			path, princ, strings.Join(slices.Compact(weak), ", "), path, princ)
	}
	if len(others) == 0 {
		return nil, fmt.Errorf("keytab %s is empty (export the key of %s with kadmin: ktadd -k %s %s)", path, princ, path, princ)
	}
	slices.Sort(others)
	return nil, fmt.Errorf("keytab %s has no key for %s (it holds keys for %s)", path, princ, strings.Join(slices.Compact(others), ", "))
}

// keytabSummary lists a loaded keytab's key versions and types, for the
// start-up log.
func keytabSummary(kt *keytab.Keytab) string {
	var parts []string
	for _, e := range kt.Entries {
		parts = append(parts, fmt.Sprintf("kvno %d %s", e.KVNO, EnctypeName(e.Key.KeyType)))
	}
	return strings.Join(slices.Compact(parts), ", ")
}
