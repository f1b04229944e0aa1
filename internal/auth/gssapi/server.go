// Package gssapi is Kerberos authentication for Pacemaker: the SASL GSSAPI
// mechanism (RFC 4752) as Storm's KERBEROS auth method uses it, on
// gokrb5. The acceptor verifies the client's AP-REQ against the daemon's
// keytab (clock skew, replay cache, strong enctypes only), answers an
// AP-REP only when the client asked for mutual authentication, offers "no
// security layer" in an RFC 4121 Wrap token and checks the authorization id
// the client wraps back. The client logs in from a keytab or a credential
// cache and does the same from the other side.
package gssapi

import (
	"crypto/rand"
	"encoding/binary"
	"errors"
	"fmt"
	"net"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/jcmturner/gokrb5/v8/iana/flags"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/auth/gssapi/rfc4121"
)

// MechanismName is the SASL name of Kerberos V5 over GSS-API.
const MechanismName = "GSSAPI"

// Security layers of RFC 4752 §3.3: the only one offered is "none", as
// Storm's server (QOP "auth") offers.
const layerNone = 0x01

// serverMaxBuf is the maximum buffer size the server states in its offer.
// With no security layer it means nothing; it is 65536, the value the
// JDK's SASL server (and so Storm's) sends.
const serverMaxBuf = 65536

// ServerOptions configure the acceptor.
type ServerOptions struct {
	// Keytab is the path of the keytab holding Principal's keys.
	Keytab string
	// Principal is the service principal clients get tickets for,
	// "pacemaker/host.example.com@EXAMPLE.COM"; without "@REALM",
	// krb5.conf's default_realm is used.
	Principal string
	// Krb5Conf is the krb5.conf to read ("" = $KRB5_CONFIG, else
	// /etc/krb5.conf; when neither exists, built-in defaults). Only
	// default_realm and clockskew matter to an acceptor.
	Krb5Conf string
	// NimbusUser is nimbus.daemon.user: the short name allowed to read.
	NimbusUser string
	// Users is pacemaker.kerberos.users: more readers, each a short name
	// or a full principal.
	Users []string
	// MaxClockSkew overrides krb5.conf's clockskew (default 5 minutes).
	MaxClockSkew time.Duration
}

// Mechanism is the server side: one per configuration, one Exchange per
// connection. It is safe for concurrent use.
type Mechanism struct {
	principal  types.PrincipalName
	realm      string
	name       string
	keytab     *keytab.Keytab
	skew       time.Duration
	nimbusUser string
	users      []string
	krb5Conf   string
}

var _ auth.Mechanism = (*Mechanism)(nil)

// NewMechanism loads the keytab and checks it holds a strong key for the
// principal; its errors say what to fix.
func NewMechanism(opts ServerOptions) (*Mechanism, error) {
	if opts.Principal == "" {
		return nil, errors.New("no Kerberos service principal given")
	}
	if opts.Keytab == "" {
		return nil, fmt.Errorf("no keytab given for %s", opts.Principal)
	}
	cfg, cfgPath, err := loadKrb5Conf(opts.Krb5Conf, true)
	if err != nil {
		return nil, err
	}
	pn, realm, err := parsePrincipal(opts.Principal, cfg.LibDefaults.DefaultRealm)
	if err != nil {
		return nil, err
	}
	kt, err := loadKeytab(opts.Keytab, pn, realm)
	if err != nil {
		return nil, err
	}
	skew := opts.MaxClockSkew
	if skew <= 0 {
		skew = cfg.LibDefaults.Clockskew
	}
	if skew <= 0 {
		skew = 5 * time.Minute
	}
	return &Mechanism{
		principal:  pn,
		realm:      realm,
		name:       principalString(pn, realm),
		keytab:     kt,
		skew:       skew,
		nimbusUser: opts.NimbusUser,
		users:      slices.Clone(opts.Users),
		krb5Conf:   cfgPath,
	}, nil
}

// Name is "GSSAPI".
func (m *Mechanism) Name() string { return MechanismName }

// Principal is the service principal, with its realm.
func (m *Mechanism) Principal() string { return m.name }

// Describe summarises the loaded credentials for the start-up log.
func (m *Mechanism) Describe() []any {
	conf := m.krb5Conf
	if conf == "" {
		conf = "(none; built-in defaults)"
	}
	return []any{"principal", m.name, "keys", keytabSummary(m.keytab), "krb5_conf", conf, "clock_skew", m.skew.String()}
}

// MayRead applies Storm's rule: the principal's short name must be
// nimbus.daemon.user; we also take any entry of pacemaker.kerberos.users,
// given as a short name or as the full principal.
func (m *Mechanism) MayRead(identity string) (bool, string) {
	short := ShortName(identity)
	if m.nimbusUser != "" && short == m.nimbusUser {
		return true, ""
	}
	for _, u := range m.users {
		if u == short || u == identity {
			return true, ""
		}
	}
	who := fmt.Sprintf("nimbus.daemon.user is %q", m.nimbusUser)
	if m.nimbusUser == "" {
		who = "nimbus.daemon.user is not set"
	}
	return false, fmt.Sprintf("short name %q of %s is not allowed to read: %s and pacemaker.kerberos.users is %v",
		short, identity, who, m.users)
}

// NewExchange starts the acceptor side for a connection from peer
// ("ip:port"), whose address is checked against tickets that carry
// addresses.
func (m *Mechanism) NewExchange(peer string) auth.Exchange {
	e := &serverExchange{m: m}
	host, _, err := net.SplitHostPort(peer)
	if err != nil {
		host = peer
	}
	if ip := net.ParseIP(host); ip != nil {
		e.peerAddr = types.HostAddressFromNetIP(ip)
	}
	return e
}

type serverStage int

const (
	awaitAPReq serverStage = iota
	awaitEmpty             // after an AP-REP: the client answers with no data
	awaitLayer             // after our offer: the client's wrapped choice
	finished
)

type serverExchange struct {
	m        *Mechanism
	peerAddr types.HostAddress
	stage    serverStage
	key      types.EncryptionKey // the initiator's subkey, else the session key
	mySeq    uint64
	client   string // authenticated principal
	authzID  string
}

func (e *serverExchange) Start() ([]byte, error) { return nil, nil }

func (e *serverExchange) Identity() string { return e.client }

func (e *serverExchange) Step(token []byte) ([]byte, bool, error) {
	switch e.stage {
	case awaitAPReq:
		reply, err := e.acceptAPReq(token, time.Now())
		if err != nil {
			e.stage = finished
			return nil, false, err
		}
		return reply, false, nil
	case awaitEmpty:
		if len(token) != 0 {
			e.stage = finished
			return nil, false, fmt.Errorf("client sent %d bytes after the AP-REP; want an empty response", len(token))
		}
		e.stage = awaitLayer
		offer, err := e.offer()
		return offer, false, err
	case awaitLayer:
		e.stage = finished
		if err := e.checkLayer(token); err != nil {
			return nil, false, err
		}
		return nil, true, nil
	}
	return nil, false, errors.New("GSSAPI exchange already finished")
}

// acceptAPReq verifies the initial context token and returns the AP-REP
// (mutual authentication) or the security-layer offer.
func (e *serverExchange) acceptAPReq(token []byte, now time.Time) ([]byte, error) {
	m := e.m
	tokID, msg, err := rfc4121.ParseContextToken(token)
	if err != nil {
		return nil, err
	}
	if tokID != rfc4121.TokIDAPReq {
		return nil, fmt.Errorf("first GSS-API token has TOK_ID %x, want an AP-REQ (0100)", tokID)
	}
	var req messages.APReq
	if err := req.Unmarshal(msg); err != nil {
		return nil, fmt.Errorf("parse AP-REQ: %w", err)
	}
	if !req.Ticket.SName.Equal(m.principal) || req.Ticket.Realm != m.realm {
		return nil, fmt.Errorf("ticket is for %s, but this server is %s (check the client's serviceName and the host name it connects to)",
			principalString(req.Ticket.SName, req.Ticket.Realm), m.name)
	}
	if types.IsFlagSet(&req.APOptions, flags.APOptionUseSessionKey) {
		return nil, errors.New("user-to-user AP-REQ is not supported")
	}
	if !isStrong(req.Ticket.EncPart.EType) {
		return nil, fmt.Errorf("ticket is encrypted with weak enctype %s", EnctypeName(req.Ticket.EncPart.EType))
	}
	// Verify decrypts the ticket with our key, checks its times and
	// addresses, decrypts the authenticator with the session key and
	// checks the client's clock.
	ok, err := req.Verify(m.keytab, m.skew, e.peerAddr, nil)
	if err != nil {
		return nil, fmt.Errorf("Kerberos ticket rejected: %w", err)
	}
	if !ok {
		return nil, errors.New("Kerberos ticket rejected")
	}
	a := req.Authenticator
	client := principalString(a.CName, a.CRealm)
	if replays.check(req.EncryptedAuthenticator.Cipher, now, 2*m.skew) {
		return nil, fmt.Errorf("replayed authenticator from %s", client)
	}
	gssFlags, err := rfc4121.ParseAuthenticatorChecksum(a.Cksum)
	if err != nil {
		return nil, err
	}
	sessionKey := req.Ticket.DecryptedEncPart.Key
	e.key = sessionKey
	if a.SubKey.KeyType != 0 {
		e.key = a.SubKey
	}
	if !rfc4121.SupportsKey(e.key) {
		return nil, fmt.Errorf("session key of %s is %s; want an AES enctype", client, EnctypeName(e.key.KeyType))
	}
	e.client = client

	mutual := types.IsFlagSet(&req.APOptions, flags.APOptionMutualRequired) || gssFlags&rfc4121.FlagMutual != 0
	if !mutual {
		// Without an AP-REP the acceptor starts from the initiator's
		// sequence number, as MIT and the JDK do.
		e.mySeq = uint64(uint32(a.SeqNumber))
		e.stage = awaitLayer
		return e.offer()
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, err
	}
	seq := binary.BigEndian.Uint32(b[:]) & 0x3fffffff
	e.mySeq = uint64(seq)
	rep, err := rfc4121.NewAPRepToken(sessionKey, a, seq)
	if err != nil {
		return nil, err
	}
	e.stage = awaitEmpty
	return rep, nil
}

// offer is the wrapped security-layer offer: "no security layer" only.
func (e *serverExchange) offer() ([]byte, error) {
	var payload [4]byte
	binary.BigEndian.PutUint32(payload[:], serverMaxBuf) // 3-byte size after the layer byte
	payload[0] = layerNone
	tok, err := rfc4121.Wrap(e.key, rfc4121.FlagSentByAcceptor, e.mySeq, payload[:])
	if err != nil {
		return nil, fmt.Errorf("wrap security-layer offer: %w", err)
	}
	e.mySeq++
	return tok, nil
}

// checkLayer unwraps the client's choice: "no security layer", and an
// authorization id that is empty or the authenticated principal itself
// (what Storm's server callback requires).
func (e *serverExchange) checkLayer(token []byte) error {
	wt, err := rfc4121.Unwrap(e.key, token, false)
	if err != nil {
		return fmt.Errorf("security-layer response of %s: %w", e.client, err)
	}
	p := wt.Payload
	if len(p) < 4 {
		return fmt.Errorf("security-layer response of %s is %d bytes, want at least 4", e.client, len(p))
	}
	if p[0] != layerNone {
		return fmt.Errorf("%s chose security layer 0x%02x; only 0x01 (none) was offered", e.client, p[0])
	}
	authz := p[4:]
	if !utf8.Valid(authz) {
		return fmt.Errorf("authorization id from %s is not UTF-8", e.client)
	}
	if len(authz) > 0 && string(authz) != e.client {
		return fmt.Errorf("authorization id %q is not the authenticated principal %s", strings.ToValidUTF8(string(authz), "?"), e.client)
	}
	e.authzID = string(authz)
	return nil
}
