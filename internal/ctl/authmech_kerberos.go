package ctl

import (
	"errors"
	"fmt"
	"strings"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/auth/gssapi"
	"github.com/storm-pacemaker/pacemaker/internal/auth/jaas"
)

// jaasClientSection is the JAAS section Storm's Pacemaker client (Nimbus)
// logs in with.
const jaasClientSection = "PacemakerClient"

// kerberosClient logs in as the JAAS section PacemakerClient says, the
// way the JDK's Krb5LoginModule reads it: useTicketCache=true takes the
// TGT from the credential cache (ticketCache, else KRB5CCNAME), falling
// back to the keytab when one is configured too; useKeyTab=true (or just a
// keyTab) logs in with keyTab and principal. serviceName (default
// "pacemaker") and each server's host name make the service principal.
func kerberosClient(g *Global, jf *jaas.File) (auth.ClientMechanism, error) {
	sec := jf.Section(jaasClientSection)
	if sec == nil {
		return nil, fmt.Errorf("%s has no %s section; --auth KERBEROS needs one, e.g.:\n%s", jf.Path, jaasClientSection, clientSectionExample)
	}
	opt := func(k string) string { v, _ := sec.Option(k); return v }
	service := opt("serviceName")
	if service == "" {
		service = gssapi.DefaultServiceName
	}
	useKeytab := strings.EqualFold(opt("useKeyTab"), "true") || (opt("keyTab") != "" && opt("useKeyTab") == "")
	useCache := strings.EqualFold(opt("useTicketCache"), "true")

	var errs []error
	if useCache {
		m, err := gssapi.NewClientMechanism(gssapi.ClientOptions{
			Principal: opt("principal"), CCache: opt("ticketCache"), ServiceName: service,
		})
		if err == nil {
			return m, nil
		}
		errs = append(errs, err)
	}
	if useKeytab {
		if opt("keyTab") == "" || opt("principal") == "" {
			return nil, fmt.Errorf("%s: section %s (line %d) has useKeyTab=true but needs keyTab=\"…\" and principal=\"…\"; e.g.:\n%s",
				jf.Path, jaasClientSection, sec.Line, clientSectionExample)
		}
		m, err := gssapi.NewClientMechanism(gssapi.ClientOptions{
			Principal: opt("principal"), Keytab: opt("keyTab"), ServiceName: service,
		})
		if err == nil {
			return m, nil
		}
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		return nil, fmt.Errorf("%s: section %s (line %d) sets neither useKeyTab=true nor useTicketCache=true; e.g.:\n%s",
			jf.Path, jaasClientSection, sec.Line, clientSectionExample)
	}
	return nil, &LoginError{fmt.Errorf("%s: section %s: %w", jf.Path, jaasClientSection, errors.Join(errs...))}
}

// LoginError is a Kerberos login that failed past the JAAS file: the
// keytab or cache, or the KDC's answer.
type LoginError struct{ Err error }

func (e *LoginError) Error() string { return e.Err.Error() }
func (e *LoginError) Unwrap() error { return e.Err }

const clientSectionExample = `    PacemakerClient {
        com.sun.security.auth.module.Krb5LoginModule required
        useKeyTab=true
        keyTab="/etc/storm/keytabs/nimbus.keytab"
        storeKey=true
        useTicketCache=false
        serviceName="pacemaker"
        principal="nimbus@EXAMPLE.COM";
    };`
