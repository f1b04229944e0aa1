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
	// Realms is pacemaker.kerberos.realms: realms besides the service's
	// own whose clients are accepted, and the only ones a ticket may have
	// transited. Empty: the service's realm alone.
	Realms []string
	// ReplayCacheMax caps the replay cache (0: DefaultReplayCacheMax).
	ReplayCacheMax int
	// HandshakeRate is the most AP-REQs a second one peer address may
	// make us decrypt, with bursts of twice as many (0: no limit).
	HandshakeRate float64
	// Replays is the replay cache (nil: the process's, which reloads
	// share and the restart hand-over carries).
	Replays *ReplayCache
}

// MaxTokenSize is the largest GSS-API token the acceptor reads: real
// AP-REQs are a few KiB (a ticket with a large Active Directory PAC stays
// well under 64 KiB); anything larger is refused before it is parsed.
const MaxTokenSize = 64 << 10

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
	realms     []string // trusted realms, ours first
	replays    *ReplayCache
	replayMax  int
	limiter    *peerLimiter
	rate       float64
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
	realms := []string{realm}
	for _, r := range opts.Realms {
		if r == "" {
			return nil, errors.New("pacemaker.kerberos.realms holds an empty realm name")
		}
		if !slices.Contains(realms, r) {
			realms = append(realms, r)
		}
	}
	if opts.HandshakeRate < 0 {
		return nil, fmt.Errorf("handshake rate %g is negative", opts.HandshakeRate)
	}
	m := &Mechanism{
		principal:  pn,
		realm:      realm,
		name:       principalString(pn, realm),
		keytab:     kt,
		skew:       skew,
		nimbusUser: opts.NimbusUser,
		users:      slices.Clone(opts.Users),
		krb5Conf:   cfgPath,
		realms:     realms,
		replays:    opts.Replays,
		replayMax:  opts.ReplayCacheMax,
		limiter:    processLimiter,
		rate:       opts.HandshakeRate,
	}
	if m.replays == nil {
		m.replays = processReplays
	}
	if m.replayMax <= 0 {
		m.replayMax = DefaultReplayCacheMax
	}
	return m, nil
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
	return []any{"principal", m.name, "keys", keytabSummary(m.keytab), "krb5_conf", conf, "clock_skew", m.skew.String(),
		"realms", m.realms, "replay_cache_max", m.replayMax, "handshakes_per_peer", m.rate}
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
	e := &serverExchange{m: m, peer: peer}
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
	peer     string
	peerAddr types.HostAddress
	stage    serverStage
	key      types.EncryptionKey // the initiator's subkey, else the session key
	mySeq    uint64
	peerSeq  uint64 // the sequence number the initiator's first wrap token must carry
	client   string // authenticated principal
	authzID  string
}

func (e *serverExchange) Start() ([]byte, error) { return nil, nil }

func (e *serverExchange) Identity() string { return e.client }

func (e *serverExchange) Step(token []byte) ([]byte, bool, error) {
	if len(token) > MaxTokenSize {
		e.stage = finished
		return nil, false, auth.Failf(auth.ReasonTooLarge, "GSS-API token of %d bytes is larger than %d; refused unread", len(token), MaxTokenSize)
	}
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
			return nil, false, auth.Failf(auth.ReasonProtocol, "client sent %d bytes after the AP-REP; want an empty response", len(token))
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
	return nil, false, auth.Failf(auth.ReasonProtocol, "GSSAPI exchange already finished")
}

// acceptAPReq verifies the initial context token and returns the AP-REP
// (mutual authentication) or the security-layer offer. It does what
// gokrb5's APReq.Verify does, in our own code, so that nothing a peer sent
// reaches gokrb5's decryption unchecked (v8.4.4 panics on short
// ciphertexts), times are checked against one clock reading, and the
// client's identity comes from the ticket the KDC sealed, not from the
// authenticator the client wrote.
func (e *serverExchange) acceptAPReq(token []byte, now time.Time) ([]byte, error) {
	m := e.m
	tokID, msg, err := rfc4121.ParseContextToken(token)
	if err != nil {
		return nil, auth.Fail(auth.ReasonMalformed, err)
	}
	if tokID != rfc4121.TokIDAPReq {
		return nil, auth.Failf(auth.ReasonMalformed, "first GSS-API token has TOK_ID %x, want an AP-REQ (0100)", tokID)
	}
	var req messages.APReq
	if err := req.Unmarshal(msg); err != nil {
		return nil, auth.Failf(auth.ReasonMalformed, "parse AP-REQ: %w", err)
	}
	if !req.Ticket.SName.Equal(m.principal) || req.Ticket.Realm != m.realm {
		return nil, auth.Failf(auth.ReasonWrongService, "ticket is for %s, but this server is %s (check the client's serviceName and the host name it connects to)",
			principalString(req.Ticket.SName, req.Ticket.Realm), m.name)
	}
	if types.IsFlagSet(&req.APOptions, flags.APOptionUseSessionKey) {
		return nil, auth.Failf(auth.ReasonProtocol, "user-to-user AP-REQ is not supported")
	}
	if !isStrong(req.Ticket.EncPart.EType) {
		return nil, auth.Failf(auth.ReasonWeakCrypto, "ticket is encrypted with weak enctype %s", EnctypeName(req.Ticket.EncPart.EType))
	}
	// Everything below decrypts: the costly part an unauthenticated peer
	// can ask for.
	if !m.limiter.allow(limiterKey(e.peer), now, m.rate, int(2*m.rate)) {
		return nil, auth.Failf(auth.ReasonRateLimited, "more than %g Kerberos handshakes a second from this address; refused before decrypting", m.rate)
	}

	// The ticket, with our key.
	key, _, err := m.keytab.GetEncryptionKey(m.principal, m.realm, req.Ticket.EncPart.KVNO, req.Ticket.EncPart.EType)
	if err != nil {
		return nil, auth.Failf(auth.ReasonBadCredentials, "Kerberos ticket rejected (%s): %w", EnctypeName(req.Ticket.EncPart.EType), err)
	}
	if err := rfc4121.CheckCiphertext(req.Ticket.EncPart, key); err != nil {
		return nil, auth.Failf(auth.ReasonMalformed, "Kerberos ticket rejected: encrypted part: %w", err)
	}
	if err := req.Ticket.Decrypt(key); err != nil {
		return nil, auth.Failf(auth.ReasonBadCredentials, "Kerberos ticket rejected: %w", err)
	}
	tkt := &req.Ticket.DecryptedEncPart
	client := principalString(tkt.CName, tkt.CRealm)
	if err := m.checkTicket(tkt, e.peerAddr, now); err != nil {
		return nil, fmt.Errorf("ticket of %s: %w", client, err)
	}
	sessionKey := tkt.Key
	if err := rfc4121.CheckKey(sessionKey); err != nil {
		return nil, auth.Failf(auth.ReasonWeakCrypto, "session key of %s: %w", client, err)
	}

	// The authenticator, with the session key.
	if err := rfc4121.CheckCiphertext(req.EncryptedAuthenticator, sessionKey); err != nil {
		return nil, auth.Failf(auth.ReasonMalformed, "authenticator of %s: %w", client, err)
	}
	if err := req.DecryptAuthenticator(sessionKey); err != nil {
		return nil, auth.Failf(auth.ReasonBadCredentials, "authenticator of %s does not decrypt with the ticket's session key: %w", client, err)
	}
	a := req.Authenticator
	if !a.CName.Equal(tkt.CName) || a.CRealm != tkt.CRealm {
		return nil, auth.Failf(auth.ReasonNameMismatch, "authenticator names %s, but the ticket was issued to %s",
			principalString(a.CName, a.CRealm), client)
	}
	ctime := a.CTime.Add(time.Duration(a.Cusec) * time.Microsecond)
	if d := now.Sub(ctime); d > m.skew || -d > m.skew {
		return nil, auth.Failf(auth.ReasonClockSkew, "KRB_AP_ERR_SKEW: the clock of %s is %v off ours, more than clockskew %v",
			client, d.Round(time.Second), m.skew)
	}
	if nb := m.replays.NotBefore(); ctime.Before(nb) {
		return nil, auth.Failf(auth.ReasonBeforeStart, "authenticator of %s was made at %s, before this daemon's replay memory starts (%s); the client should retry",
			client, ctime.UTC().Format(time.RFC3339Nano), nb.UTC().Format(time.RFC3339Nano))
	}
	gssFlags, err := rfc4121.ParseAuthenticatorChecksum(a.Cksum)
	if err != nil {
		return nil, auth.Fail(auth.ReasonMalformed, err)
	}
	e.key = sessionKey
	if a.SubKey.KeyType != 0 || len(a.SubKey.KeyValue) != 0 {
		if err := rfc4121.CheckKey(a.SubKey); err != nil {
			return nil, auth.Failf(auth.ReasonMalformed, "subkey of %s: %w", client, err)
		}
		e.key = a.SubKey
	}
	// Last, once everything else holds: a refused token does not take a
	// place in the cache.
	switch err := m.replays.add(req.EncryptedAuthenticator.Cipher, now, 2*m.skew, m.replayMax); err {
	case nil:
	case errReplay:
		return nil, auth.Failf(auth.ReasonReplay, "replayed authenticator from %s", client)
	case errReplayCacheFull:
		return nil, auth.Failf(auth.ReasonReplayCacheFull, "replay cache full (%d authenticators of the last %v, pacemaker.kerberos.replay.cache.max); refusing %s until entries expire",
			m.replayMax, 2*m.skew, client)
	default:
		return nil, auth.Fail(auth.ReasonInternal, err)
	}
	e.client = client
	e.peerSeq = uint64(uint32(a.SeqNumber))

	mutual := types.IsFlagSet(&req.APOptions, flags.APOptionMutualRequired) || gssFlags&rfc4121.FlagMutual != 0
	if !mutual {
		// Without an AP-REP the acceptor starts from the initiator's
		// sequence number, as MIT and the JDK do.
		e.mySeq = e.peerSeq
		e.stage = awaitLayer
		return e.offer()
	}
	var b [4]byte
	if _, err := rand.Read(b[:]); err != nil {
		return nil, auth.Fail(auth.ReasonInternal, err)
	}
	seq := binary.BigEndian.Uint32(b[:]) & 0x3fffffff
	e.mySeq = uint64(seq)
	rep, err := rfc4121.NewAPRepToken(sessionKey, a, seq)
	if err != nil {
		return nil, auth.Fail(auth.ReasonInternal, err)
	}
	e.stage = awaitEmpty
	return rep, nil
}

// checkTicket applies what the KDC sealed in the ticket: its times, the
// addresses it is good from, and the realms it vouches for.
func (m *Mechanism) checkTicket(tkt *messages.EncTicketPart, peer types.HostAddress, now time.Time) error {
	start := tkt.StartTime
	if start.IsZero() {
		start = tkt.AuthTime
	}
	if start.Sub(now) > m.skew || types.IsFlagSet(&tkt.Flags, flags.Invalid) {
		return auth.Failf(auth.ReasonExpired, "service ticket provided is not yet valid (starts %s)", start.UTC().Format(time.RFC3339))
	}
	if now.Sub(tkt.EndTime) > m.skew {
		return auth.Failf(auth.ReasonExpired, "service ticket provided has expired (at %s)", tkt.EndTime.UTC().Format(time.RFC3339))
	}
	if len(tkt.CAddr) > 0 && !types.HostAddressesContains(tkt.CAddr, peer) {
		return auth.Failf(auth.ReasonBadCredentials, "the ticket is not good from this address (KRB_AP_ERR_BADADDR)")
	}
	if !slices.Contains(m.realms, tkt.CRealm) {
		return auth.Failf(auth.ReasonRealm, "client realm %q is not trusted (pacemaker.kerberos.realms: %v)", tkt.CRealm, m.realms)
	}
	transited, err := transitedRealms(tkt.Transited, tkt.CRealm)
	if err != nil {
		return auth.Fail(auth.ReasonRealm, err)
	}
	for _, r := range transited {
		if !slices.Contains(m.realms, r) {
			return auth.Failf(auth.ReasonRealm, "the ticket transited realm %q, which is not trusted (pacemaker.kerberos.realms: %v)", r, m.realms)
		}
	}
	return nil
}

// offer is the wrapped security-layer offer: "no security layer" only.
func (e *serverExchange) offer() ([]byte, error) {
	var payload [4]byte
	binary.BigEndian.PutUint32(payload[:], serverMaxBuf) // 3-byte size after the layer byte
	payload[0] = layerNone
	tok, err := rfc4121.Wrap(e.key, rfc4121.FlagSentByAcceptor, e.mySeq, payload[:])
	if err != nil {
		return nil, auth.Failf(auth.ReasonInternal, "wrap security-layer offer: %w", err)
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
		return auth.Failf(auth.ReasonBadCredentials, "security-layer response of %s: %w", e.client, err)
	}
	if wt.Seq != e.peerSeq {
		return auth.Failf(auth.ReasonProtocol, "security-layer response of %s has sequence number %d, want %d (the authenticator's)", e.client, wt.Seq, e.peerSeq)
	}
	p := wt.Payload
	if len(p) < 4 {
		return auth.Failf(auth.ReasonProtocol, "security-layer response of %s is %d bytes, want at least 4", e.client, len(p))
	}
	if p[0] != layerNone {
		return auth.Failf(auth.ReasonProtocol, "%s chose security layer 0x%02x; only 0x01 (none) was offered", e.client, p[0])
	}
	authz := p[4:]
	if !utf8.Valid(authz) {
		return auth.Failf(auth.ReasonProtocol, "authorization id from %s is not UTF-8", e.client)
	}
	if len(authz) > 0 && string(authz) != e.client {
		return auth.Failf(auth.ReasonNameMismatch, "authorization id %q is not the authenticated principal %s", strings.ToValidUTF8(string(authz), "?"), e.client)
	}
	e.authzID = string(authz)
	return nil
}
