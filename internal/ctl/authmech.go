package ctl

import (
	"fmt"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/auth/digest"
	"github.com/storm-pacemaker/pacemaker/internal/auth/jaas"
)

// defaultJAAS is the daemon's own default (java.security.auth.login.config),
// so on a pacemaker host --auth DIGEST works without --jaas.
const defaultJAAS = "/etc/pacemaker/jaas.conf"

// digestClientName is the name sent, base64-encoded, as the SASL username
// (Storm's client sends its topology name the same way).
const digestClientName = "pacemakerctl"

// ClientMechanism builds the SASL client for --auth from the JAAS file
// (nil for NONE). Its errors are the operator's local input.
func ClientMechanism(g *Global) (auth.ClientMechanism, error) {
	if g.Auth == auth.None {
		return nil, nil
	}
	path := g.JAAS
	if path == "" {
		path = defaultJAAS
	}
	jf, err := jaas.ParseFile(path)
	if err != nil {
		return nil, fmt.Errorf("--auth %s needs a JAAS file (--jaas): %w", g.Auth, err)
	}
	switch g.Auth {
	case auth.Digest:
		secret, err := digest.SecretFromJAAS(jf)
		if err != nil {
			return nil, err
		}
		return digest.NewClientMechanism(secret, digestClientName), nil
	case auth.Kerberos:
		return kerberosClient(g, jf)
	}
	return nil, fmt.Errorf("unknown --auth %q", g.Auth)
}
