// Package digest is SASL DIGEST-MD5 (RFC 2831) as Storm's Pacemaker uses it:
// both sides share one password derived from the JAAS section
// PacemakerDigest, the server accepts any SASL username that proves it,
// and the only quality of protection is "auth" (no integrity or privacy
// layer).
package digest

import (
	"crypto/md5"
	"crypto/sha512"
	"encoding/base64"
	"encoding/hex"
	"fmt"

	"github.com/storm-pacemaker/pacemaker/internal/auth/jaas"
)

// What Storm's Java server and client put on the wire.
const (
	// Realm is the realm Storm's server offers ("default", its SASL server name).
	Realm = "default"
	// DigestURI is what Storm's client sends: protocol null, server "default".
	DigestURI = "null/default"
	// Section is the JAAS section holding the credentials.
	Section = "PacemakerDigest"
)

// SecretFromCredentials is Storm's derivation of the shared secret: the
// lowercase hex of SHA-512 over "username:password".
func SecretFromCredentials(user, password string) string {
	sum := sha512.Sum512([]byte(user + ":" + password))
	return hex.EncodeToString(sum[:])
}

// saslPassword is the password both DIGEST-MD5 peers use: the secret in
// base64, as Storm's SaslUtils encodes it.
func saslPassword(secret string) string {
	return base64.StdEncoding.EncodeToString([]byte(secret))
}

// SecretFromJAAS reads section PacemakerDigest and derives the secret. The
// errors say what to add to the file.
func SecretFromJAAS(f *jaas.File) (string, error) {
	s := f.Section(Section)
	if s == nil {
		return "", fmt.Errorf("%s has no %s section; add:\n    %s {\n        username=\"<user>\"\n        password=\"<password>\";\n    };",
			f.Path, Section, Section)
	}
	user, _ := s.Option("username")
	password, _ := s.Option("password")
	switch {
	case user == "" && password == "":
		return "", fmt.Errorf("%s: section %s (line %d) needs username=\"…\" and password=\"…\"", f.Path, Section, s.Line)
	case user == "":
		return "", fmt.Errorf("%s: section %s (line %d) has an empty or missing username=\"…\"", f.Path, Section, s.Line)
	case password == "":
		return "", fmt.Errorf("%s: section %s (line %d) has an empty or missing password=\"…\"", f.Path, Section, s.Line)
	}
	return SecretFromCredentials(user, password), nil
}

// responseValue is RFC 2831 §2.1.2.1's response-value for qop=auth and
// algorithm md5-sess; with method "" it is the server's rspauth (§2.1.3).
// authzid joins A1 only when the client sent one.
func responseValue(user, realm, password, nonce, cnonce, authzid, nc, uri, method string) string {
	inner := md5.Sum([]byte(user + ":" + realm + ":" + password))
	a1 := make([]byte, 0, md5.Size+2+len(nonce)+len(cnonce))
	a1 = append(a1, inner[:]...)
	a1 = append(a1, ':')
	a1 = append(a1, nonce...)
	a1 = append(a1, ':')
	a1 = append(a1, cnonce...)
	if authzid != "" {
		a1 = append(a1, ':')
		a1 = append(a1, authzid...)
	}
	ha1 := md5.Sum(a1)
	ha2 := md5.Sum([]byte(method + ":" + uri))
	kd := hex.EncodeToString(ha1[:]) + ":" + nonce + ":" + nc + ":" + cnonce + ":auth:" + hex.EncodeToString(ha2[:])
	sum := md5.Sum([]byte(kd))
	return hex.EncodeToString(sum[:])
}
