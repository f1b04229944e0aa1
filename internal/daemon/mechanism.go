package daemon

import (
	"fmt"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/config"
)

// buildMechanism loads what the auth method needs (JAAS file, secret,
// keytab) and returns the server-side SASL mechanism; nil for NONE.
func buildMechanism(cfg *config.Config) (auth.Mechanism, error) {
	switch cfg.AuthMethod {
	case auth.None:
		return nil, nil
	}
	return nil, fmt.Errorf("pacemaker.auth.method %s is not available in this build yet", cfg.AuthMethod)
}
