package ctl

import (
	"fmt"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/auth/jaas"
)

// kerberosClient is replaced by the GSSAPI client (internal/auth/gssapi).
func kerberosClient(g *Global, jf *jaas.File) (auth.ClientMechanism, error) {
	return nil, fmt.Errorf("--auth %s is not available in this build yet", g.Auth)
}
