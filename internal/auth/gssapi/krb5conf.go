package gssapi

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"github.com/jcmturner/gokrb5/v8/config"
)

// DefaultKrb5Conf is read when neither an option nor KRB5_CONFIG names a
// krb5.conf, as MIT Kerberos and the JDK do.
const DefaultKrb5Conf = "/etc/krb5.conf"

// loadKrb5Conf reads the krb5.conf to use: path when given, else the first
// existing file of $KRB5_CONFIG (a colon-separated list, as MIT reads it),
// else /etc/krb5.conf. A named file that is missing is an error; a missing
// default gives the built-in defaults when optional (an acceptor needs no
// KDC) and an error otherwise. It returns the file actually read ("" for
// built-in defaults).
func loadKrb5Conf(path string, optional bool) (*config.Config, string, error) {
	var candidates []string
	source := ""
	switch {
	case path != "":
		candidates, source = []string{path}, "krb5.conf"
	case os.Getenv("KRB5_CONFIG") != "":
		for _, p := range strings.Split(os.Getenv("KRB5_CONFIG"), ":") {
			if p != "" {
				candidates = append(candidates, p)
			}
		}
		source = "KRB5_CONFIG"
	default:
		candidates = []string{DefaultKrb5Conf}
	}
	for _, p := range candidates {
		if _, err := os.Stat(p); err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				continue
			}
			return nil, "", fmt.Errorf("krb5.conf %s: %w", p, err)
		}
		cfg, err := config.Load(p)
		var unsupported config.UnsupportedDirective
		if err != nil && !errors.As(err, &unsupported) {
			return nil, "", fmt.Errorf("krb5.conf %s: %w", p, err)
		}
		return cfg, p, nil
	}
	if source != "" {
		return nil, "", fmt.Errorf("%s names %s, which does not exist", source, strings.Join(candidates, ":"))
	}
	if optional {
		return config.New(), "", nil
	}
	return nil, "", fmt.Errorf("no krb5.conf: %s does not exist (set KRB5_CONFIG or install one naming your realm's KDC)", DefaultKrb5Conf)
}
