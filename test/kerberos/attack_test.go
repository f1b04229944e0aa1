package kerberos

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	krbclient "github.com/jcmturner/gokrb5/v8/client"
	krbconfig "github.com/jcmturner/gokrb5/v8/config"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/iana/nametype"
	"github.com/jcmturner/gokrb5/v8/keytab"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/auth/gssapi/rfc4121"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// The attacks of issue 15 against the real daemon, with tickets from the
// MIT KDC (or forged where the attack needs no key).

// kdcTicket gets a real service ticket for pacemaker/localhost from the
// KDC, as name, with its session key.
func (f *fixture) kdcTicket(t *testing.T, name string) (messages.Ticket, types.EncryptionKey) {
	t.Helper()
	kt, err := keytab.Load(filepath.Join(f.dir, name+".keytab"))
	if err != nil {
		t.Fatal(err)
	}
	cfg, err := krbconfig.Load(f.k.Krb5Conf)
	if err != nil {
		t.Fatal(err)
	}
	cl := krbclient.NewWithKeytab(name, f.k.Realm, kt, cfg, krbclient.DisablePAFXFAST(true))
	if err := cl.Login(); err != nil {
		t.Fatal(err)
	}
	tkt, key, err := cl.GetServiceTicket("pacemaker/localhost")
	if err != nil {
		t.Fatal(err)
	}
	return tkt, key
}

// apReq frames an AP-REQ for tkt whose authenticator, encrypted in key,
// names cname@crealm.
func apReq(t *testing.T, tkt messages.Ticket, key types.EncryptionKey, cname, crealm string) []byte {
	t.Helper()
	a, err := types.NewAuthenticator(crealm, types.PrincipalName{NameType: nametype.KRB_NT_PRINCIPAL, NameString: strings.Split(cname, "/")})
	if err != nil {
		t.Fatal(err)
	}
	a.Cksum = rfc4121.AuthenticatorChecksum(rfc4121.FlagInteg)
	req, err := messages.NewAPReq(tkt, key, a)
	if err != nil {
		t.Fatal(err)
	}
	return frameAPReq(t, req)
}

func frameAPReq(t *testing.T, req messages.APReq) []byte {
	t.Helper()
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return rfc4121.FrameContextToken(rfc4121.TokIDAPReq, b)
}

// forged is an AP-REQ for service with a ticket and authenticator of the
// given enctype and ciphertexts: nothing the daemon could decrypt.
func forged(t *testing.T, service string, et int32, ticket, authenticator []byte) []byte {
	t.Helper()
	return frameAPReq(t, messages.APReq{
		PVNO: 5, MsgType: msgtype.KRB_AP_REQ, APOptions: types.NewKrbFlags(),
		Ticket: messages.Ticket{TktVNO: 5, Realm: "PACEMAKER.TEST",
			SName:   types.PrincipalName{NameType: nametype.KRB_NT_SRV_HST, NameString: strings.Split(service, "/")},
			EncPart: types.EncryptedData{EType: et, Cipher: ticket}}, // kvno absent
		EncryptedAuthenticator: types.EncryptedData{EType: et, Cipher: authenticator},
	})
}

// sendFirstToken opens a connection and sends tok as the first SASL
// token; nil means the daemon answered with a token (the AP-REQ was
// accepted), errClosed that it closed the connection.
func sendFirstToken(t *testing.T, addr string, tok []byte) error {
	t.Helper()
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(wire.AppendFrame(nil, wire.NewSaslToken(tok))); err != nil {
		return fmt.Errorf("%w: %v", errClosed, err)
	}
	body, err := wire.NewFrameReader(bufio.NewReader(nc), 1<<20).Next()
	if err != nil {
		if errors.Is(err, io.EOF) || strings.Contains(err.Error(), "reset") {
			return errClosed
		}
		return err
	}
	var m wire.Message
	if err := wire.Decode(body, &m); err != nil || m.Type != wire.SaslMessageToken {
		return fmt.Errorf("answer %v %v", m.Type, err)
	}
	return nil
}

// authFailureSeries scrapes the metrics endpoint for the
// pacemaker_auth_failures_total series.
func authFailureSeries(t *testing.T, metricsAddr string) map[string]string {
	t.Helper()
	resp, err := http.Get("http://" + metricsAddr + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	series := map[string]string{}
	for _, line := range strings.Split(string(b), "\n") {
		if strings.HasPrefix(line, "pacemaker_auth_failures_total{") {
			i := strings.LastIndexByte(line, ' ')
			series[line[:i]] = line[i+1:]
		}
	}
	return series
}

var fixedReasons = []auth.Reason{auth.ReasonMalformed, auth.ReasonTooLarge, auth.ReasonProtocol, auth.ReasonWrongService,
	auth.ReasonBadCredentials, auth.ReasonExpired, auth.ReasonClockSkew, auth.ReasonReplay, auth.ReasonBeforeStart,
	auth.ReasonReplayCacheFull, auth.ReasonRateLimited, auth.ReasonWeakCrypto, auth.ReasonRealm, auth.ReasonNameMismatch,
	auth.ReasonTimeout, auth.ReasonInternal, auth.ReasonOther}

// TestHostileHandshakes: findings 1, 2, 5 and 6 against the daemon. No
// token crashes it (before: one 5-byte ticket did); the identity is the
// ticket's; oversized tokens are refused unread; the failure metric's
// labels stay a fixed set however many service names an attacker makes
// up. Each refusal closes only that connection.
func TestHostileHandshakes(t *testing.T) {
	f := realm(t)
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", daemon.FreePort(t, "127.0.0.1"))
	p := f.startDaemonWith(t, "localhost", f.serviceKeytab, f.k.Krb5Conf, "pacemaker.metrics.listen: \""+metricsAddr+"\"\n")
	addr := fmt.Sprintf("localhost:%d", p.Port())

	refused := func(what string, tok []byte, logPattern string) {
		t.Helper()
		if err := sendFirstToken(t, addr, tok); !errors.Is(err, errClosed) {
			t.Errorf("%s: err = %v, want the connection closed", what, err)
		}
		if p.Exited() {
			t.Fatalf("%s: the daemon exited:\n%s", what, p.Log())
		}
		waitLogMatch(t, p, logPattern)
	}

	// Finding 1: short encrypted parts, each AES enctype, kvno absent.
	for _, et := range []int32{etypeID.AES128_CTS_HMAC_SHA1_96, etypeID.AES256_CTS_HMAC_SHA1_96,
		etypeID.AES128_CTS_HMAC_SHA256_128, etypeID.AES256_CTS_HMAC_SHA384_192} {
		refused(fmt.Sprintf("5-byte ticket, enctype %d", et), forged(t, "pacemaker/localhost", et, make([]byte, 5), make([]byte, 64)),
			`authentication failed.*err="Kerberos ticket rejected: encrypted part: .* ciphertext is 5 bytes`)
	}
	aliceTkt, aliceKey := f.kdcTicket(t, "alice")
	short := messages.APReq{PVNO: 5, MsgType: msgtype.KRB_AP_REQ, APOptions: types.NewKrbFlags(), Ticket: aliceTkt,
		EncryptedAuthenticator: types.EncryptedData{EType: aliceKey.KeyType, Cipher: make([]byte, 5)}}
	refused("KDC ticket, 5-byte authenticator", frameAPReq(t, short), `err="authenticator of alice@PACEMAKER\.TEST: .*ciphertext is 5 bytes`)

	// Finding 2: the authenticator cannot rename the ticket's client.
	refused("alice's ticket, authenticator claims another realm", apReq(t, aliceTkt, aliceKey, "alice", "OTHER.TEST"),
		`err="authenticator names alice@OTHER\.TEST, but the ticket was issued to alice@PACEMAKER\.TEST"`)
	refused("alice's ticket, authenticator claims nimbus", apReq(t, aliceTkt, aliceKey, "nimbus", f.k.Realm),
		`err="authenticator names nimbus@PACEMAKER\.TEST, but the ticket was issued to alice@PACEMAKER\.TEST"`)
	if err := sendFirstToken(t, addr, apReq(t, aliceTkt, aliceKey, "alice", f.k.Realm)); err != nil {
		t.Errorf("alice as herself: %v", err)
	}

	// Finding 5: a token over 64 KiB is refused before it is parsed.
	refused("100 KiB token", forged(t, "pacemaker/localhost", etypeID.AES256_CTS_HMAC_SHA1_96, make([]byte, 100<<10), make([]byte, 64)),
		`err="GSS-API token of \d+ bytes is larger than 65536; refused unread"`)

	// Finding 6: 40 made-up service names, one label.
	for i := 0; i < 40; i++ {
		tok := forged(t, fmt.Sprintf("pacemaker/evil-%d.example", i), etypeID.AES256_CTS_HMAC_SHA1_96, make([]byte, 64), make([]byte, 64))
		if err := sendFirstToken(t, addr, tok); !errors.Is(err, errClosed) {
			t.Fatalf("made-up service %d: %v", i, err)
		}
	}
	// The first ones are logged with the name; the rest are counted in a
	// "suppressed similar warnings" line (at most 5 per peer and reason).
	waitLogMatch(t, p, `ticket is for pacemaker/evil-0\.example@PACEMAKER\.TEST`)
	series := authFailureSeries(t, metricsAddr)
	label := regexp.MustCompile(`reason="([^"]*)"`)
	for s := range series {
		m := label.FindStringSubmatch(s)
		if m == nil || !slices.Contains(fixedReasons, auth.Reason(m[1])) || strings.Contains(s, "evil") {
			t.Errorf("auth failure series %s is not in the fixed set", s)
		}
	}
	if got := series[`pacemaker_auth_failures_total{method="GSSAPI",reason="wrong service"}`]; got != "40" {
		t.Errorf(`wrong-service failures = %q, want 40; series: %v`, got, series)
	}
	if len(series) > 4 {
		t.Errorf("%d auth failure series after these attacks, want at most 4: %v", len(series), series)
	}

	// Everyone else is still served.
	nimbus, err := dial(t, addr, f.goClient(t, "nimbus"))
	if err != nil {
		t.Fatalf("nimbus after the attacks: %v", err)
	}
	if _, _, err := nimbus.GetPulse(t.Context(), "/x"); err != nil {
		t.Errorf("nimbus reads after the attacks: %v", err)
	}
}

// TestReplayAcrossColdRestart: finding 3. A captured AP-REQ of nimbus is
// refused by the daemon that accepted it, and by a daemon started after
// it was made (no replay cache survived: the start-time rule). The
// hand-over path (replay cache passed to the successor) is pinned by
// gssapi's TestReplayCacheRestartRules and handoff's tests.
func TestReplayAcrossColdRestart(t *testing.T) {
	f := realm(t)
	p := f.startDaemon(t, "localhost", f.serviceKeytab, f.k.Krb5Conf)
	cx, err := f.goClient(t, "nimbus").NewClientExchange("localhost")
	if err != nil {
		t.Fatal(err)
	}
	captured, err := cx.Start()
	if err != nil {
		t.Fatal(err)
	}
	if err := sendFirstToken(t, p.Addr(), captured); err != nil {
		t.Fatalf("the original: %v", err)
	}
	if err := sendFirstToken(t, p.Addr(), captured); !errors.Is(err, errClosed) {
		t.Fatalf("replay to the same daemon: %v", err)
	}
	waitLogMatch(t, p, `err="replayed authenticator from nimbus@PACEMAKER\.TEST"`)
	if err := p.Stop(); err != nil {
		t.Logf("stop: %v", err)
	}

	p2 := f.startDaemon(t, "localhost", f.serviceKeytab, f.k.Krb5Conf)
	if err := sendFirstToken(t, p2.Addr(), captured); !errors.Is(err, errClosed) {
		t.Fatalf("replay after a restart: %v", err)
	}
	waitLogMatch(t, p2, `err="authenticator of nimbus@PACEMAKER\.TEST was made at .*, before this daemon's replay memory starts`)
	if _, err := dial(t, fmt.Sprintf("localhost:%d", p2.Port()), f.goClient(t, "nimbus")); err != nil {
		t.Fatalf("a fresh login after the restart: %v", err)
	}
}

// TestHandshakeRateLimitPerPeer: finding 5. Past
// pacemaker.kerberos.handshakes.per.peer (here 1 a second, bursts of 2),
// AP-REQs from one address are refused before anything is decrypted.
func TestHandshakeRateLimitPerPeer(t *testing.T) {
	f := realm(t)
	p := f.startDaemonWith(t, "localhost", f.serviceKeytab, f.k.Krb5Conf, "pacemaker.kerberos.handshakes.per.peer: 1\n")
	tok := forged(t, "pacemaker/localhost", etypeID.AES256_CTS_HMAC_SHA1_96, make([]byte, 64), make([]byte, 64))
	for i := 0; i < 3; i++ {
		if err := sendFirstToken(t, p.Addr(), tok); !errors.Is(err, errClosed) {
			t.Fatalf("forged AP-REQ %d: %v", i, err)
		}
	}
	waitLogMatch(t, p, `err="more than 1 Kerberos handshakes a second from this address; refused before decrypting"`)
	if n := strings.Count(p.Log(), "Kerberos ticket rejected"); n != 2 {
		t.Errorf("%d tickets decrypted, want 2 (the burst)", n)
	}
}

// waitLogMatch waits (a few seconds at most) for a daemon log line
// matching pattern: the log reaches the test through a pipe, after the
// connection has closed.
func waitLogMatch(t *testing.T, p *daemon.Proc, pattern string) {
	t.Helper()
	re := regexp.MustCompile(pattern)
	for deadline := time.Now().Add(5 * time.Second); !re.MatchString(p.Log()); {
		if time.Now().After(deadline) {
			t.Errorf("daemon log has no line matching %s:\n%s", pattern, p.Log())
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
}
