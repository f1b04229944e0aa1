package gssapi

import (
	"fmt"
	"strings"

	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/types"
)

// parsePrincipal splits "primary/instance@REALM"; a name without a realm
// gets defaultRealm.
func parsePrincipal(s, defaultRealm string) (types.PrincipalName, string, error) {
	name, realm := s, ""
	if i := strings.LastIndexByte(s, '@'); i >= 0 {
		name, realm = s[:i], s[i+1:]
	}
	if realm == "" {
		realm = defaultRealm
	}
	if name == "" {
		return types.PrincipalName{}, "", fmt.Errorf("principal %q has no name", s)
	}
	if realm == "" {
		return types.PrincipalName{}, "", fmt.Errorf("principal %q has no realm and krb5.conf sets no default_realm", s)
	}
	comps := strings.Split(name, "/")
	for _, c := range comps {
		if c == "" {
			return types.PrincipalName{}, "", fmt.Errorf("principal %q has an empty component", s)
		}
	}
	nt := int32(nametype.KRB_NT_PRINCIPAL)
	if len(comps) == 2 {
		nt = nametype.KRB_NT_SRV_HST
	}
	return types.PrincipalName{NameType: nt, NameString: comps}, realm, nil
}

// principalString formats a principal the way the JDK and MIT print it,
// with MIT's escapes for the separators and control characters inside a
// component or the realm, so that a name such as ["nimbus@OTHER"] from a
// trusted realm's KDC cannot pass for another principal in the log or in
// pacemaker.kerberos.users.
func principalString(pn types.PrincipalName, realm string) string {
	var b strings.Builder
	for i, c := range pn.NameString {
		if i > 0 {
			b.WriteByte('/')
		}
		escapeComponent(&b, c)
	}
	b.WriteByte('@')
	escapeComponent(&b, realm)
	return b.String()
}

func escapeComponent(b *strings.Builder, s string) {
	for i := 0; i < len(s); i++ {
		switch c := s[i]; c {
		case '/', '@', '\\':
			b.WriteByte('\\')
			b.WriteByte(c)
		case '\n':
			b.WriteString(`\n`)
		case '\t':
			b.WriteString(`\t`)
		case '\b':
			b.WriteString(`\b`)
		case 0:
			b.WriteString(`\0`)
		default:
			b.WriteByte(c)
		}
	}
}

// ShortName is what Storm compares with nimbus.daemon.user: the principal
// cut at its first unescaped '/' or '@' ("nimbus/host@REALM" → "nimbus").
func ShortName(principal string) string {
	for i := 0; i < len(principal); i++ {
		switch principal[i] {
		case '\\':
			i++
		case '/', '@':
			return principal[:i]
		}
	}
	return principal
}
