package daemon

import (
	"fmt"
	"strings"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/auth/gssapi"
	"github.com/storm-pacemaker/pacemaker/internal/auth/jaas"
	"github.com/storm-pacemaker/pacemaker/internal/config"
)

// jaasServerSection is the JAAS section Storm's Pacemaker reads its own
// Kerberos credentials from.
const jaasServerSection = "PacemakerServer"

// kerberosMechanism builds the GSSAPI acceptor from the keyTab and
// principal of the JAAS section PacemakerServer (Storm's
// Krb5LoginModule entry) and krb5.conf ($KRB5_CONFIG, else
// /etc/krb5.conf). It runs at start and on every reload, so a replaced
// keytab takes effect on reload.
func kerberosMechanism(cfg *config.Config, jf *jaas.File) (auth.Mechanism, error) {
	sec := jf.Section(jaasServerSection)
	if sec == nil {
		return nil, fmt.Errorf("%s has no %s section; pacemaker.auth.method KERBEROS needs one, e.g.:\n%s",
			jf.Path, jaasServerSection, serverSectionExample)
	}
	keytab, _ := sec.Option("keyTab")
	principal, _ := sec.Option("principal")
	var missing []string
	if keytab == "" {
		missing = append(missing, `keyTab="/etc/pacemaker/keytabs/pacemaker.keytab"`)
	}
	if principal == "" {
		missing = append(missing, `principal="pacemaker/<this host's FQDN>@<REALM>"`)
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("%s: section %s (line %d) needs %s; e.g.:\n%s",
			jf.Path, jaasServerSection, sec.Line, strings.Join(missing, " and "), serverSectionExample)
	}
	if v, ok := sec.Option("useKeyTab"); ok && !strings.EqualFold(v, "true") {
		return nil, fmt.Errorf("%s: section %s (line %d) has useKeyTab=%s; the daemon authenticates only from its keytab (useKeyTab=true)",
			jf.Path, jaasServerSection, sec.Line, v)
	}
	m, err := gssapi.NewMechanism(gssapi.ServerOptions{
		Keytab:         keytab,
		Principal:      principal,
		NimbusUser:     cfg.NimbusUser,
		Users:          cfg.KerberosUsers,
		Realms:         cfg.KerberosRealms,
		ReplayCacheMax: cfg.KerberosReplayCacheMax,
		HandshakeRate:  float64(cfg.KerberosHandshakeRate),
	})
	if err != nil {
		return nil, fmt.Errorf("%s: section %s: %w", jf.Path, jaasServerSection, err)
	}
	return m, nil
}

const serverSectionExample = `    PacemakerServer {
        com.sun.security.auth.module.Krb5LoginModule required
        useKeyTab=true
        keyTab="/etc/pacemaker/keytabs/pacemaker.keytab"
        storeKey=true
        useTicketCache=false
        principal="pacemaker/pacemaker1.example.com@EXAMPLE.COM";
    };`
