package daemon

import (
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"log/slog"
	"os"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/auth/digest"
	"github.com/storm-pacemaker/pacemaker/internal/auth/jaas"
	"github.com/storm-pacemaker/pacemaker/internal/config"
)

// buildMechanism loads what the auth method needs (JAAS file, secret,
// keytab) and returns the server-side SASL mechanism; nil for NONE. It runs
// at start and on every reload, so edited credentials take effect on reload.
func buildMechanism(cfg *config.Config) (auth.Mechanism, error) {
	if cfg.AuthMethod == auth.None {
		return nil, nil
	}
	jf, err := jaas.ParseFile(cfg.JAASPath)
	if err != nil {
		return nil, fmt.Errorf("pacemaker.auth.method %s needs the JAAS file java.security.auth.login.config: %w", cfg.AuthMethod, err)
	}
	switch cfg.AuthMethod {
	case auth.Digest:
		secret, err := digest.SecretFromJAAS(jf)
		if err != nil {
			return nil, err
		}
		return digest.NewMechanism(secret), nil
	case auth.Kerberos:
		return kerberosMechanism(cfg, jf)
	}
	return nil, fmt.Errorf("unknown pacemaker.auth.method %q", cfg.AuthMethod)
}

// credentialsFingerprint names the credentials in force without holding
// them: a hash of the JAAS file and of every keytab it names. A reload
// that changes them makes connections authenticated under the old ones
// count as unauthenticated. Files that cannot be read hash as empty: the
// mechanism's own loading reports them.
func credentialsFingerprint(cfg *config.Config) string {
	if cfg.AuthMethod == auth.None {
		return ""
	}
	h := sha256.New()
	raw, _ := os.ReadFile(cfg.JAASPath)
	h.Write(raw)
	if jf, err := jaas.Parse(cfg.JAASPath, raw); err == nil {
		for _, s := range jf.Sections {
			for i := range s.Entries {
				if kt, ok := s.Entries[i].Option("keyTab"); ok {
					b, _ := os.ReadFile(kt)
					h.Write([]byte{0})
					h.Write(b)
				}
			}
		}
	}
	return hex.EncodeToString(h.Sum(nil)[:12])
}

// logMechanism says what credentials were loaded, and warns when the
// config lets nobody read.
func logMechanism(log *slog.Logger, cfg *config.Config, mech auth.Mechanism) {
	if d, ok := mech.(interface{ Describe() []any }); ok {
		log.Info("credentials loaded", append([]any{"method", string(cfg.AuthMethod), "jaas", cfg.JAASPath}, d.Describe()...)...)
	} else if mech != nil {
		log.Info("credentials loaded", "method", string(cfg.AuthMethod), "jaas", cfg.JAASPath)
	}
	if cfg.AuthMethod == auth.Kerberos && cfg.NimbusUser == "" && len(cfg.KerberosUsers) == 0 {
		log.Warn("no principal may read: set nimbus.daemon.user (Nimbus's principal short name) or pacemaker.kerberos.users",
			"key", "nimbus.daemon.user")
	}
}
