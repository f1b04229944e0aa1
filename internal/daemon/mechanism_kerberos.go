package daemon

import (
	"fmt"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/auth/jaas"
	"github.com/storm-pacemaker/pacemaker/internal/config"
)

// kerberosMechanism is replaced by the GSSAPI acceptor (internal/auth/gssapi).
func kerberosMechanism(cfg *config.Config, jf *jaas.File) (auth.Mechanism, error) {
	return nil, fmt.Errorf("pacemaker.auth.method %s is not available in this build yet", cfg.AuthMethod)
}
