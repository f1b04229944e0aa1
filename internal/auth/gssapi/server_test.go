package gssapi

import (
	"bytes"
	"crypto/rand"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/asnAppTag"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/storm-pacemaker/pacemaker/internal/auth/gssapi/rfc4121"
)

const (
	testRealm   = "PACEMAKER.TEST"
	testService = "pacemaker/localhost"
)

// writeKeytab writes a keytab with keys derived from password for the
// principal (name without realm) in each enctype, and returns its path and
// the keytab.
func writeKeytab(t testing.TB, dir, name, realm, password string, kvno uint8, enctypes ...int32) (string, *keytab.Keytab) {
	t.Helper()
	kt := keytab.New()
	for _, et := range enctypes {
		if err := kt.AddEntry(name, realm, password, time.Now(), kvno, et); err != nil {
			t.Fatal(err)
		}
	}
	b, err := kt.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, strings.ReplaceAll(name, "/", "_")+"-"+password+".keytab")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return path, kt
}

// ticketSpec describes a ticket minted as a KDC would, encrypted in a
// service key from kt.
type ticketSpec struct {
	client     string // "nimbus"
	service    string // "pacemaker/localhost"
	etype      int32
	start, end time.Time
	crealm     string // the client's realm (default testRealm)
	transited  string // DOMAIN-X500-COMPRESS contents
}

func mint(t testing.TB, kt *keytab.Keytab, s ticketSpec) (messages.Ticket, types.EncryptionKey) {
	t.Helper()
	now := time.Now().UTC()
	if s.start.IsZero() {
		s.start = now.Add(-time.Minute)
	}
	if s.end.IsZero() {
		s.end = now.Add(time.Hour)
	}
	if s.service == "" {
		s.service = testService
	}
	if s.etype == 0 {
		s.etype = etypeID.AES256_CTS_HMAC_SHA1_96
	}
	if s.crealm == "" {
		s.crealm = testRealm
	}
	cname, _, _ := parsePrincipal(s.client, s.crealm)
	sname, _, _ := parsePrincipal(s.service, testRealm)
	// Like messages.NewTicket, but with a session key of the right size
	// for aes256-cts-hmac-sha384-192 (see KeyLength).
	kvno := int(kt.Entries[0].KVNO)
	sessionKey := types.EncryptionKey{KeyType: s.etype, KeyValue: make([]byte, KeyLength(s.etype))}
	rand.Read(sessionKey.KeyValue)
	b, err := asn1.Marshal(messages.EncTicketPart{
		Flags: types.NewKrbFlags(), Key: sessionKey, CRealm: s.crealm, CName: cname,
		Transited: messages.TransitedEncoding{TRType: trDomainX500Compress, Contents: []byte(s.transited)},
		AuthTime:  s.start, StartTime: s.start, EndTime: s.end, RenewTill: s.end,
	})
	if err != nil {
		t.Fatal(err)
	}
	skey, _, err := kt.GetEncryptionKey(sname, testRealm, kvno, s.etype)
	if err != nil {
		t.Fatalf("mint ticket: %v", err)
	}
	enc, err := crypto.GetEncryptedData(asn1tools.AddASNAppTag(b, asnAppTag.EncTicketPart), skey, keyusage.KDC_REP_TICKET, kvno)
	if err != nil {
		t.Fatal(err)
	}
	return messages.Ticket{TktVNO: 5, Realm: testRealm, SName: sname, EncPart: enc}, sessionKey
}

func newTestMechanism(t testing.TB, keytabPath string, opts ServerOptions) *Mechanism {
	t.Helper()
	emptyConf := filepath.Join(t.TempDir(), "krb5.conf")
	if err := os.WriteFile(emptyConf, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KRB5_CONFIG", emptyConf)
	opts.Keytab = keytabPath
	if opts.Principal == "" {
		opts.Principal = testService + "@" + testRealm
	}
	if opts.NimbusUser == "" {
		opts.NimbusUser = "nimbus"
	}
	m, err := NewMechanism(opts)
	if err != nil {
		t.Fatalf("NewMechanism: %v", err)
	}
	return m
}

// handshake runs a whole exchange between our client code and the
// acceptor, with hooks to spoil it; it returns the acceptor's identity or
// the first error.
type spoil struct {
	now       time.Time // client clock
	mutual    bool
	authz     *string // authorization id to send instead of the principal
	layer     byte    // layer to choose instead of none
	tamper    bool    // flip a byte of the client's wrap token
	replayTok []byte  // send this AP-REQ instead of a fresh one
}

func handshake(t testing.TB, m *Mechanism, tkt messages.Ticket, key types.EncryptionKey, client string, sp spoil) (string, []byte, error) {
	t.Helper()
	if sp.now.IsZero() {
		sp.now = time.Now()
	}
	cname, crealm, _ := parsePrincipal(client, testRealm)
	fl := rfc4121.FlagInteg | rfc4121.FlagConf
	if sp.mutual {
		fl |= rfc4121.FlagMutual
	}
	tok, a, err := newAPReqToken(tkt, key, cname, crealm, sp.now, fl)
	if err != nil {
		t.Fatal(err)
	}
	if sp.replayTok != nil {
		tok = sp.replayTok
	}
	ex := m.NewExchange("127.0.0.1:50000")
	if first, err := ex.Start(); first != nil || err != nil {
		t.Fatalf("Start = %x, %v; want nil, nil (the client speaks first)", first, err)
	}
	reply, done, err := ex.Step(tok)
	if err != nil {
		return "", tok, err
	}
	if done {
		t.Fatal("done after the AP-REQ")
	}
	ce := &clientExchange{m: &ClientMechanism{principal: principalString(cname, crealm)}, sessionKey: key, auth: a, key: a.SubKey, mySeq: uint64(uint32(a.SeqNumber)), stage: 1}
	if sp.mutual {
		if reply[0] != 0x60 {
			t.Fatalf("mutual authentication asked, but the reply is not an AP-REP: %x", reply)
		}
		empty, err := ce.Step(reply)
		if err != nil {
			t.Fatalf("client rejects our AP-REP: %v", err)
		}
		if empty == nil || len(empty) != 0 {
			t.Fatalf("client answer to the AP-REP = %x, want empty", empty)
		}
		reply, done, err = ex.Step(empty)
		if err != nil || done {
			t.Fatalf("after the empty token: done %v err %v", done, err)
		}
	} else if reply[0] == 0x60 {
		t.Fatal("AP-REP sent although the client did not ask for mutual authentication")
	}
	wt, err := rfc4121.Unwrap(ce.key, reply, true)
	if err != nil {
		t.Fatalf("offer does not unwrap: %v", err)
	}
	if !bytes.Equal(wt.Payload, []byte{0x01, 0x01, 0x00, 0x00}) {
		t.Fatalf("offer = %x, want 01010000 (no security layer, 65536 as the JDK sends)", wt.Payload)
	}
	resp, err := ce.Step(reply)
	if err != nil {
		t.Fatalf("client rejects the offer: %v", err)
	}
	if sp.authz != nil || sp.layer != 0 {
		payload := append([]byte{0x01, 0, 0, 0}, ce.m.principal...)
		if sp.authz != nil {
			payload = append([]byte{0x01, 0, 0, 0}, *sp.authz...)
		}
		if sp.layer != 0 {
			payload[0] = sp.layer
		}
		resp, _ = rfc4121.Wrap(ce.key, 0, ce.mySeq, payload)
	}
	if sp.tamper {
		resp[len(resp)-1] ^= 1
	}
	last, done, err := ex.Step(resp)
	if err != nil {
		return "", tok, err
	}
	if !done || last != nil {
		t.Fatalf("final step: done %v reply %x; want done, no reply", done, last)
	}
	if _, _, err := ex.Step(nil); err == nil {
		t.Error("a step after the end is accepted")
	}
	return ex.Identity(), tok, nil
}

func TestAcceptorHandshake(t *testing.T) {
	dir := t.TempDir()
	all := []int32{etypeID.AES256_CTS_HMAC_SHA1_96, etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA384_192, etypeID.AES128_CTS_HMAC_SHA256_128}
	path, kt := writeKeytab(t, dir, testService, testRealm, "svc-secret", 3, all...)
	_, otherKT := writeKeytab(t, dir, testService, testRealm, "other-secret", 3, all...)
	_, wrongSvcKT := writeKeytab(t, dir, "pacemaker/elsewhere", testRealm, "svc-secret", 3, all...)
	m := newTestMechanism(t, path, ServerOptions{})
	now := time.Now().UTC()
	str := func(s string) *string { return &s }

	tests := []struct {
		name    string
		client  string
		kt      *keytab.Keytab
		spec    ticketSpec
		sp      spoil
		wantErr string
	}{
		{name: "aes256-sha1", client: "nimbus", spec: ticketSpec{etype: etypeID.AES256_CTS_HMAC_SHA1_96}},
		{name: "aes128-sha1", client: "nimbus", spec: ticketSpec{etype: etypeID.AES128_CTS_HMAC_SHA1_96}},
		{name: "aes256-sha384", client: "nimbus", spec: ticketSpec{etype: etypeID.AES256_CTS_HMAC_SHA384_192}},
		{name: "aes128-sha256", client: "nimbus", spec: ticketSpec{etype: etypeID.AES128_CTS_HMAC_SHA256_128}},
		{name: "mutual authentication", client: "nimbus/host.example.com", sp: spoil{mutual: true}},
		{name: "empty authorization id", client: "nimbus", sp: spoil{authz: str("")}},
		{name: "client clock 10 min behind", client: "nimbus", sp: spoil{now: now.Add(-10 * time.Minute)}, wantErr: "skew"},
		{name: "client clock 10 min ahead", client: "nimbus", sp: spoil{now: now.Add(10 * time.Minute)}, wantErr: "skew"},
		{name: "expired ticket", client: "nimbus", spec: ticketSpec{start: now.Add(-2 * time.Hour), end: now.Add(-10 * time.Minute)}, wantErr: "expired"},
		{name: "ticket not yet valid", client: "nimbus", spec: ticketSpec{start: now.Add(time.Hour), end: now.Add(2 * time.Hour)}, wantErr: "not yet valid"},
		{name: "ticket from a KDC with another key", client: "nimbus", kt: otherKT, wantErr: "rejected"},
		{name: "ticket for another service", client: "nimbus", kt: wrongSvcKT, spec: ticketSpec{service: "pacemaker/elsewhere"}, wantErr: "ticket is for pacemaker/elsewhere@PACEMAKER.TEST, but this server is pacemaker/localhost@PACEMAKER.TEST"},
		{name: "authorization id of someone else", client: "alice", sp: spoil{authz: str("nimbus@PACEMAKER.TEST")}, wantErr: `authorization id "nimbus@PACEMAKER.TEST" is not the authenticated principal alice@PACEMAKER.TEST`},
		{name: "integrity layer chosen", client: "nimbus", sp: spoil{layer: 0x02}, wantErr: "chose security layer 0x02"},
		{name: "tampered wrap token", client: "nimbus", sp: spoil{tamper: true}, wantErr: "checksum does not verify"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			k := kt
			if tc.kt != nil {
				k = tc.kt
			}
			tkt, key := mint(t, k, ticketSpec{client: tc.client, service: tc.spec.service, etype: tc.spec.etype, start: tc.spec.start, end: tc.spec.end})
			id, _, err := handshake(t, m, tkt, key, tc.client, tc.sp)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if want := tc.client + "@" + testRealm; id != want {
				t.Errorf("Identity = %q, want %q", id, want)
			}
		})
	}
}

func TestAcceptorRejectsReplay(t *testing.T) {
	path, kt := writeKeytab(t, t.TempDir(), testService, testRealm, "svc-secret", 1, etypeID.AES256_CTS_HMAC_SHA1_96)
	m := newTestMechanism(t, path, ServerOptions{})
	tkt, key := mint(t, kt, ticketSpec{client: "nimbus"})
	if _, tok, err := handshake(t, m, tkt, key, "nimbus", spoil{}); err != nil {
		t.Fatal(err)
	} else if _, _, err := handshake(t, m, tkt, key, "nimbus", spoil{replayTok: tok}); err == nil || !strings.Contains(err.Error(), "replayed authenticator from nimbus@PACEMAKER.TEST") {
		t.Fatalf("replayed AP-REQ: err = %v", err)
	}
	// A new authenticator with the same ticket is fine.
	if _, _, err := handshake(t, m, tkt, key, "nimbus", spoil{}); err != nil {
		t.Fatal(err)
	}
}

func TestAcceptorRejectsMalformedTokens(t *testing.T) {
	path, _ := writeKeytab(t, t.TempDir(), testService, testRealm, "svc-secret", 1, etypeID.AES256_CTS_HMAC_SHA1_96)
	m := newTestMechanism(t, path, ServerOptions{})
	for name, tok := range map[string][]byte{
		"empty":            {},
		"garbage":          []byte("hello"),
		"framing only":     rfc4121.FrameContextToken(rfc4121.TokIDAPReq, nil),
		"AP-REP from peer": rfc4121.FrameContextToken(rfc4121.TokIDAPRep, []byte{1, 2, 3}),
		"bad AP-REQ":       rfc4121.FrameContextToken(rfc4121.TokIDAPReq, []byte{0x6e, 0x03, 1, 2, 3}),
	} {
		t.Run(name, func(t *testing.T) {
			_, done, err := m.NewExchange("127.0.0.1:1").Step(tok)
			if err == nil || done {
				t.Fatalf("Step(%x) = done %v, err %v; want an error", tok, done, err)
			}
		})
	}
}

func TestMayRead(t *testing.T) {
	path, _ := writeKeytab(t, t.TempDir(), testService, testRealm, "svc-secret", 1, etypeID.AES256_CTS_HMAC_SHA1_96)
	m := newTestMechanism(t, path, ServerOptions{NimbusUser: "nimbus", Users: []string{"ops", "audit/tool@OTHER.REALM"}})
	tests := []struct {
		identity string
		ok       bool
	}{
		{"nimbus@PACEMAKER.TEST", true},
		{"nimbus/nimbus1.example.com@PACEMAKER.TEST", true},
		{"nimbus@OTHER.REALM", true}, // Storm ignores the realm too
		{"ops@PACEMAKER.TEST", true},
		{"ops/host@PACEMAKER.TEST", true},
		{"audit/tool@OTHER.REALM", true},
		{"audit@OTHER.REALM", false},
		{"alice@PACEMAKER.TEST", false},
		{"nimbusx@PACEMAKER.TEST", false},
		{"pacemaker/localhost@PACEMAKER.TEST", false},
	}
	for _, tc := range tests {
		ok, reason := m.MayRead(tc.identity)
		if ok != tc.ok {
			t.Errorf("MayRead(%q) = %v (%s), want %v", tc.identity, ok, reason, tc.ok)
		}
		if !ok && !strings.Contains(reason, ShortName(tc.identity)) {
			t.Errorf("MayRead(%q) reason %q does not name the short name", tc.identity, reason)
		}
	}
	_, reason := m.MayRead("alice@PACEMAKER.TEST")
	if want := `short name "alice" of alice@PACEMAKER.TEST is not allowed to read: nimbus.daemon.user is "nimbus" and pacemaker.kerberos.users is [ops audit/tool@OTHER.REALM]`; reason != want {
		t.Errorf("reason = %q\nwant     %q", reason, want)
	}
}

func TestShortName(t *testing.T) {
	for in, want := range map[string]string{
		"nimbus":                     "nimbus",
		"nimbus@R":                   "nimbus",
		"nimbus/host@R":              "nimbus",
		"nimbus/host/extra@R":        "nimbus",
		"storm-nimbus/h.example.com": "storm-nimbus",
		"":                           "",
	} {
		if got := ShortName(in); got != want {
			t.Errorf("ShortName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestNewMechanismErrors(t *testing.T) {
	dir := t.TempDir()
	good, _ := writeKeytab(t, dir, testService, testRealm, "svc-secret", 1, etypeID.AES256_CTS_HMAC_SHA1_96)
	weak, _ := writeKeytab(t, dir, testService, testRealm, "weak-secret", 1, etypeID.RC4_HMAC, etypeID.DES3_CBC_SHA1_KD)
	other, _ := writeKeytab(t, dir, "pacemaker/otherhost", testRealm, "svc-secret", 1, etypeID.AES256_CTS_HMAC_SHA1_96)
	empty := filepath.Join(dir, "empty.keytab")
	os.WriteFile(empty, []byte{0x05, 0x02}, 0o600)
	garbage := filepath.Join(dir, "garbage.keytab")
	os.WriteFile(garbage, []byte("not a keytab at all"), 0o600)
	emptyConf := filepath.Join(dir, "empty-krb5.conf")
	os.WriteFile(emptyConf, nil, 0o644)
	conf := filepath.Join(dir, "krb5.conf")
	os.WriteFile(conf, []byte("[libdefaults]\n  default_realm = PACEMAKER.TEST\n  clockskew = 42\n"), 0o644)

	tests := []struct {
		name    string
		opts    ServerOptions
		env     string // KRB5_CONFIG
		wantErr string
	}{
		{"missing keytab", ServerOptions{Keytab: filepath.Join(dir, "nope.keytab"), Principal: testService}, conf,
			"nope.keytab does not exist (export the key of pacemaker/localhost@PACEMAKER.TEST with kadmin: ktadd -k"},
		{"keytab is a directory", ServerOptions{Keytab: dir, Principal: testService}, conf, "read keytab"},
		{"not a keytab", ServerOptions{Keytab: garbage, Principal: testService}, conf, "is not a Kerberos keytab"},
		{"empty keytab", ServerOptions{Keytab: empty, Principal: testService}, conf, "is empty"},
		{"no key for the principal", ServerOptions{Keytab: other, Principal: testService}, conf,
			"has no key for pacemaker/localhost@PACEMAKER.TEST (it holds keys for pacemaker/otherhost@PACEMAKER.TEST)"},
		{"only weak keys", ServerOptions{Keytab: weak, Principal: testService}, conf,
			"holds only weak keys for pacemaker/localhost@PACEMAKER.TEST (arcfour-hmac, des3-cbc-sha1)"},
		{"no principal", ServerOptions{Keytab: good}, conf, "no Kerberos service principal"},
		{"no realm anywhere", ServerOptions{Keytab: good, Principal: testService}, emptyConf, "has no realm"},
		{"KRB5_CONFIG list: first existing file wins", ServerOptions{Keytab: good, Principal: testService}, filepath.Join(dir, "absent.conf") + ":" + emptyConf, "has no realm"},
		{"KRB5_CONFIG names a missing file", ServerOptions{Keytab: good, Principal: testService}, filepath.Join(dir, "absent.conf"), "KRB5_CONFIG names"},
		{"explicit krb5.conf missing", ServerOptions{Keytab: good, Principal: testService, Krb5Conf: filepath.Join(dir, "absent.conf")}, conf, "does not exist"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("KRB5_CONFIG", tc.env)
			_, err := NewMechanism(tc.opts)
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v\nwant one containing %q", err, tc.wantErr)
			}
		})
	}

	// The default realm and clock skew come from KRB5_CONFIG.
	t.Setenv("KRB5_CONFIG", conf)
	m, err := NewMechanism(ServerOptions{Keytab: good, Principal: testService, NimbusUser: "nimbus"})
	if err != nil {
		t.Fatal(err)
	}
	if m.Principal() != "pacemaker/localhost@PACEMAKER.TEST" || m.skew != 42*time.Second {
		t.Errorf("principal %s skew %v; want the realm and clockskew of %s", m.Principal(), m.skew, conf)
	}
}

// TestKeytabKeepsStrongKeysOnly: a keytab mixing weak and strong keys
// loads, and a ticket in the weak type is refused.
func TestKeytabKeepsStrongKeysOnly(t *testing.T) {
	path, kt := writeKeytab(t, t.TempDir(), testService, testRealm, "svc-secret", 1, etypeID.RC4_HMAC, etypeID.AES128_CTS_HMAC_SHA1_96)
	m := newTestMechanism(t, path, ServerOptions{})
	if got := keytabSummary(m.keytab); got != "kvno 1 aes128-cts-hmac-sha1-96" {
		t.Errorf("loaded keys: %s", got)
	}
	tkt, key := mint(t, kt, ticketSpec{client: "nimbus", etype: etypeID.RC4_HMAC})
	if _, _, err := handshake(t, m, tkt, key, "nimbus", spoil{}); err == nil || !strings.Contains(err.Error(), "weak enctype arcfour-hmac") {
		t.Fatalf("rc4 ticket: err = %v", err)
	}
}

// TestConcurrentHandshakes: one Mechanism serves many connections at once
// (run with -race).
func TestConcurrentHandshakes(t *testing.T) {
	path, kt := writeKeytab(t, t.TempDir(), testService, testRealm, "svc-secret", 1, etypeID.AES128_CTS_HMAC_SHA1_96)
	m := newTestMechanism(t, path, ServerOptions{})
	tkt, key := mint(t, kt, ticketSpec{client: "nimbus", etype: etypeID.AES128_CTS_HMAC_SHA1_96})
	errs := make(chan error, 8)
	for g := 0; g < 8; g++ {
		go func() {
			for i := 0; i < 20; i++ {
				if _, _, err := handshake(t, m, tkt, key, "nimbus", spoil{mutual: i%2 == 0}); err != nil {
					errs <- err
					return
				}
			}
			errs <- nil
		}()
	}
	for g := 0; g < 8; g++ {
		if err := <-errs; err != nil {
			t.Error(err)
		}
	}
}
