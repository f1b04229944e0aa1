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

// principalString formats a principal the way the JDK and MIT print it.
func principalString(pn types.PrincipalName, realm string) string {
	return strings.Join(pn.NameString, "/") + "@" + realm
}

// ShortName is what Storm compares with nimbus.daemon.user: the principal
// cut at its first '/' or '@' ("nimbus/host@REALM" → "nimbus").
func ShortName(principal string) string {
	if i := strings.IndexAny(principal, "/@"); i >= 0 {
		return principal[:i]
	}
	return principal
}
