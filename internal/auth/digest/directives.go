package digest

import (
	"errors"
	"fmt"
	"strings"
)

// directive is one name=value of a DIGEST-MD5 challenge or response.
type directive struct {
	name, value string
	quoted      bool
}

// maxToken bounds what we parse; RFC 2831 limits a response to 4096 bytes.
const maxToken = 4096

var errEmpty = errors.New("empty token")

// parseDirectives splits an RFC 2831 §7.1 list: name=value pairs separated
// by commas and optional white space, values a token or a quoted-string
// with backslash escapes; empty list elements are allowed.
func parseDirectives(s string) ([]directive, error) {
	if len(s) > maxToken {
		return nil, fmt.Errorf("token of %d bytes is longer than %d", len(s), maxToken)
	}
	var out []directive
	i := 0
	skipLWS := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t' || s[i] == '\r' || s[i] == '\n') {
			i++
		}
	}
	for {
		skipLWS()
		for i < len(s) && s[i] == ',' {
			i++
			skipLWS()
		}
		if i >= len(s) {
			break
		}
		start := i
		for i < len(s) && isTokenChar(s[i]) {
			i++
		}
		name := strings.ToLower(s[start:i])
		if name == "" {
			return nil, fmt.Errorf("expected a directive name at offset %d", start)
		}
		skipLWS()
		if i >= len(s) || s[i] != '=' {
			return nil, fmt.Errorf("directive %s has no value", name)
		}
		i++
		skipLWS()
		d := directive{name: name}
		if i < len(s) && s[i] == '"' {
			i++
			var b strings.Builder
			for {
				if i >= len(s) {
					return nil, fmt.Errorf("directive %s: unterminated quoted string", name)
				}
				c := s[i]
				i++
				if c == '"' {
					break
				}
				if c == '\\' {
					if i >= len(s) {
						return nil, fmt.Errorf("directive %s: unterminated quoted string", name)
					}
					c = s[i]
					i++
				}
				b.WriteByte(c)
			}
			d.value, d.quoted = b.String(), true
		} else {
			vs := i
			for i < len(s) && isTokenChar(s[i]) {
				i++
			}
			d.value = s[vs:i]
		}
		out = append(out, d)
		skipLWS()
		if i < len(s) && s[i] != ',' {
			return nil, fmt.Errorf("directive %s: unexpected %q after the value", name, s[i])
		}
	}
	if len(out) == 0 {
		return nil, errEmpty
	}
	return out, nil
}

// isTokenChar is RFC 2616's token: any CHAR except CTLs and separators.
func isTokenChar(c byte) bool {
	if c <= ' ' || c >= 0x7f {
		return false
	}
	return !strings.ContainsRune("()<>@,;:\\\"/[]?={}", rune(c))
}

// quote renders a quoted-string.
func quote(s string) string {
	if !strings.ContainsAny(s, `"\`) {
		return `"` + s + `"`
	}
	var b strings.Builder
	b.WriteByte('"')
	for i := 0; i < len(s); i++ {
		if s[i] == '"' || s[i] == '\\' {
			b.WriteByte('\\')
		}
		b.WriteByte(s[i])
	}
	b.WriteByte('"')
	return b.String()
}
