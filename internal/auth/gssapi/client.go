package gssapi

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/jcmturner/gokrb5/v8/client"
	"github.com/jcmturner/gokrb5/v8/credentials"
	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/auth/gssapi/rfc4121"
)

// DefaultServiceName is the first component of the service principal
// (serviceName in Storm's JAAS PacemakerClient section).
const DefaultServiceName = "pacemaker"

// ClientOptions say how the client logs in.
type ClientOptions struct {
	// Principal is the client's principal ("nimbus@EXAMPLE.COM"; without a
	// realm, krb5.conf's default_realm). Required with Keytab; with a
	// credential cache it must match the cache's principal when given.
	Principal string
	// Keytab logs in with the principal's key. When empty, the credential
	// cache is used.
	Keytab string
	// CCache is the credential cache file (kinit's); "" means KRB5CCNAME,
	// else /tmp/krb5cc_<uid>.
	CCache string
	// ServiceName is the service part of the server's principal
	// (default "pacemaker"); the host part is the server's host name as
	// given to NewClientExchange.
	ServiceName string
	// Krb5Conf is the krb5.conf naming the realm's KDCs ("" =
	// $KRB5_CONFIG, else /etc/krb5.conf).
	Krb5Conf string
}

// ClientMechanism is the initiator side, logged in once; service tickets
// are fetched per server host and cached until they expire.
type ClientMechanism struct {
	cl        *client.Client
	service   string
	principal string // sent as the authorization id
	// gssFlags are the context flags requested: integrity and
	// confidentiality as the JDK requests them, never mutual
	// authentication (Storm's client sets SERVER_AUTH false).
	gssFlags uint32
}

var _ auth.ClientMechanism = (*ClientMechanism)(nil)

// NewClientMechanism logs in to the KDC (keytab) or loads the TGT
// (credential cache).
func NewClientMechanism(opts ClientOptions) (*ClientMechanism, error) {
	cfg, _, err := loadKrb5Conf(opts.Krb5Conf, false)
	if err != nil {
		return nil, err
	}
	service := opts.ServiceName
	if service == "" {
		service = DefaultServiceName
	}
	m := &ClientMechanism{service: service, gssFlags: rfc4121.FlagInteg | rfc4121.FlagConf}
	if opts.Keytab != "" {
		if opts.Principal == "" {
			return nil, fmt.Errorf("keytab %s given without the principal to log in as", opts.Keytab)
		}
		pn, realm, err := parsePrincipal(opts.Principal, cfg.LibDefaults.DefaultRealm)
		if err != nil {
			return nil, err
		}
		kt, err := loadKeytab(opts.Keytab, pn, realm)
		if err != nil {
			return nil, err
		}
		m.principal = principalString(pn, realm)
		m.cl = client.NewWithKeytab(strings.Join(pn.NameString, "/"), realm, kt, cfg, client.DisablePAFXFAST(true))
		if err := m.cl.Login(); err != nil {
			return nil, fmt.Errorf("Kerberos login as %s with keytab %s: %w", m.principal, opts.Keytab, err)
		}
		return m, nil
	}

	path := ccachePath(opts.CCache)
	cc, err := credentials.LoadCCache(path)
	if err != nil {
		return nil, fmt.Errorf("credential cache %s (run kinit first): %w", path, err)
	}
	m.principal = principalString(cc.DefaultPrincipal.PrincipalName, cc.DefaultPrincipal.Realm)
	if opts.Principal != "" {
		pn, realm, err := parsePrincipal(opts.Principal, cc.DefaultPrincipal.Realm)
		if err != nil {
			return nil, err
		}
		if want := principalString(pn, realm); want != m.principal {
			return nil, fmt.Errorf("credential cache %s holds tickets of %s, not %s", path, m.principal, want)
		}
	}
	tgtName := types.PrincipalName{NameType: nametype.KRB_NT_SRV_INST, NameString: []string{"krbtgt", cc.DefaultPrincipal.Realm}}
	tgt, ok := cc.GetEntry(tgtName)
	if !ok {
		return nil, fmt.Errorf("credential cache %s has no TGT for %s (run kinit)", path, m.principal)
	}
	if time.Now().After(tgt.EndTime) {
		return nil, fmt.Errorf("the TGT of %s in %s expired at %s (run kinit)", m.principal, path, tgt.EndTime.Local().Format(time.RFC3339))
	}
	m.cl, err = client.NewFromCCache(cc, cfg, client.DisablePAFXFAST(true))
	if err != nil {
		return nil, fmt.Errorf("credential cache %s: %w", path, err)
	}
	return m, nil
}

// ccachePath resolves the credential cache file the way MIT does for the
// FILE: type, the only one gokrb5 reads.
func ccachePath(p string) string {
	if p == "" {
		p = os.Getenv("KRB5CCNAME")
	}
	if p == "" {
		return fmt.Sprintf("/tmp/krb5cc_%d", os.Getuid())
	}
	return strings.TrimPrefix(p, "FILE:")
}

// Name is "GSSAPI".
func (m *ClientMechanism) Name() string { return MechanismName }

// Principal is the logged-in principal.
func (m *ClientMechanism) Principal() string { return m.principal }

// NewClientExchange gets a service ticket for serviceName/host.
func (m *ClientMechanism) NewClientExchange(host string) (auth.ClientExchange, error) {
	host = strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	if host == "" {
		return nil, errors.New("no server host name to build the service principal from")
	}
	spn := m.service + "/" + host
	tkt, key, err := m.cl.GetServiceTicket(spn)
	if err != nil {
		return nil, fmt.Errorf("get a Kerberos service ticket for %s as %s: %w", spn, m.principal, err)
	}
	return &clientExchange{
		m:          m,
		ticket:     tkt,
		sessionKey: key,
	}, nil
}

type clientExchange struct {
	m              *ClientMechanism
	ticket         messages.Ticket
	sessionKey     types.EncryptionKey
	key            types.EncryptionKey // our subkey, or the acceptor's
	auth           types.Authenticator
	mySeq          uint64
	acceptorSubkey bool
	stage          int // 0: not started, 1: AP-REQ sent, 2: done
}

// Start returns the initial context token (the AP-REQ).
func (e *clientExchange) Start() ([]byte, error) {
	if e.stage != 0 {
		return nil, errors.New("GSSAPI exchange already started")
	}
	creds := e.m.cl.Credentials
	tok, a, err := newAPReqToken(e.ticket, e.sessionKey, creds.CName(), creds.Domain(), time.Now(), e.m.gssFlags)
	if err != nil {
		return nil, err
	}
	e.auth = a
	e.key = a.SubKey
	e.mySeq = uint64(uint32(a.SeqNumber))
	e.stage = 1
	return tok, nil
}

// Step answers the server's security-layer offer (after an AP-REP, when
// a server sends one unasked).
func (e *clientExchange) Step(challenge []byte) ([]byte, error) {
	if e.stage != 1 {
		return nil, errors.New("unexpected GSSAPI token from the server after the exchange")
	}
	if len(challenge) > MaxTokenSize {
		return nil, fmt.Errorf("server's GSS-API token of %d bytes is larger than %d; refused unread", len(challenge), MaxTokenSize)
	}
	if len(challenge) > 0 && challenge[0] == 0x60 {
		return e.contextToken(challenge)
	}
	wt, err := rfc4121.Unwrap(e.key, challenge, true)
	if err != nil {
		return nil, fmt.Errorf("server's security-layer offer: %w", err)
	}
	if len(wt.Payload) != 4 {
		return nil, fmt.Errorf("server's security-layer offer is %d bytes, want 4", len(wt.Payload))
	}
	if wt.Payload[0]&layerNone == 0 {
		return nil, fmt.Errorf("server requires a security layer (offers 0x%02x); only \"none\" is supported", wt.Payload[0])
	}
	// Layer "none", maximum buffer 0 (RFC 4752: no layer, no buffer),
	// then the authorization id: our own principal, as Storm's client
	// sends it.
	resp := append([]byte{layerNone, 0, 0, 0}, e.m.principal...)
	var fl byte
	if e.acceptorSubkey {
		fl = rfc4121.FlagAcceptorSubkey
	}
	tok, err := rfc4121.Wrap(e.key, fl, e.mySeq, resp)
	if err != nil {
		return nil, err
	}
	e.stage = 2
	return tok, nil
}

// contextToken handles an AP-REP or KRB-ERROR from the acceptor.
func (e *clientExchange) contextToken(b []byte) ([]byte, error) {
	tokID, msg, err := rfc4121.ParseContextToken(b)
	if err != nil {
		return nil, err
	}
	switch tokID {
	case rfc4121.TokIDAPRep:
		_, subkey, err := rfc4121.VerifyAPRep(msg, e.sessionKey, e.auth)
		if err != nil {
			return nil, err
		}
		if subkey.KeyType != 0 {
			e.key = subkey
			e.acceptorSubkey = true
		}
		return []byte{}, nil
	case rfc4121.TokIDError:
		var ke messages.KRBError
		if err := ke.Unmarshal(msg); err != nil {
			return nil, fmt.Errorf("server sent an unparseable KRB-ERROR: %w", err)
		}
		return nil, fmt.Errorf("server refused the ticket: %s", ke.Error())
	}
	return nil, fmt.Errorf("unexpected GSS-API context token %x from the server", tokID)
}

// KeyLength is the size in bytes of a key of encryption type et.
func KeyLength(et int32) int { return rfc4121.KeyLength(et) }

// newAPReqToken builds an initial context token: an AP-REQ for tkt with a
// fresh authenticator stamped now, a random subkey and sequence number, and
// the GSS checksum carrying gssFlags (mutual authentication also sets the
// AP option).
func newAPReqToken(tkt messages.Ticket, sessionKey types.EncryptionKey, cname types.PrincipalName, crealm string, now time.Time, gssFlags uint32) ([]byte, types.Authenticator, error) {
	a, err := types.NewAuthenticator(crealm, cname)
	if err != nil {
		return nil, a, err
	}
	now = now.UTC()
	a.CTime = now.Truncate(time.Second)
	a.Cusec = now.Nanosecond() / 1000
	if err := a.GenerateSeqNumberAndSubKey(sessionKey.KeyType, KeyLength(sessionKey.KeyType)); err != nil {
		return nil, a, err
	}
	a.Cksum = rfc4121.AuthenticatorChecksum(gssFlags)
	req, err := messages.NewAPReq(tkt, sessionKey, a)
	if err != nil {
		return nil, a, fmt.Errorf("build AP-REQ: %w", err)
	}
	if gssFlags&rfc4121.FlagMutual != 0 {
		types.SetFlag(&req.APOptions, flags.APOptionMutualRequired)
	}
	b, err := req.Marshal()
	if err != nil {
		return nil, a, fmt.Errorf("marshal AP-REQ: %w", err)
	}
	return rfc4121.FrameContextToken(rfc4121.TokIDAPReq, b), a, nil
}
