package ctl

import (
	"fmt"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
)

// clientMechanism builds the SASL client for --auth from the JAAS file.
func clientMechanism(g *Global) (auth.ClientMechanism, error) {
	if g.Auth == auth.None {
		return nil, nil
	}
	return nil, fmt.Errorf("--auth %s is not available in this build yet", g.Auth)
}
