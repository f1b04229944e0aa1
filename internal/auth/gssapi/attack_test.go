package gssapi

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jcmturner/gofork/encoding/asn1"
	"github.com/jcmturner/gokrb5/v8/asn1tools"
	"github.com/jcmturner/gokrb5/v8/crypto"
	"github.com/jcmturner/gokrb5/v8/iana/etypeID"
	"github.com/jcmturner/gokrb5/v8/iana/keyusage"
	"github.com/jcmturner/gokrb5/v8/iana/msgtype"
	"github.com/jcmturner/gokrb5/v8/messages"
	"github.com/jcmturner/gokrb5/v8/types"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/auth/gssapi/rfc4121"
)

// The attacks of issue 15, one test each, against the acceptor (and the
// initiator where a hostile server is the attacker). Tickets are forged
// with the service key, as the KDC would seal them.

var allEnctypes = []int32{
	etypeID.AES128_CTS_HMAC_SHA1_96,
	etypeID.AES256_CTS_HMAC_SHA1_96,
	etypeID.AES128_CTS_HMAC_SHA256_128,
	etypeID.AES256_CTS_HMAC_SHA384_192,
}

// minCiphertext is confounder + checksum for et.
func minCiphertext(t testing.TB, et int32) int {
	e, err := crypto.GetEtype(et)
	if err != nil {
		t.Fatal(err)
	}
	return e.GetConfounderByteSize() + e.GetHMACBitLength()/8
}

// apReqToken frames an AP-REQ made of the given ticket and encrypted
// authenticator, whatever they hold.
func apReqToken(t testing.TB, tkt messages.Ticket, encAuth types.EncryptedData) []byte {
	t.Helper()
	req := messages.APReq{PVNO: 5, MsgType: msgtype.KRB_AP_REQ, APOptions: types.NewKrbFlags(), Ticket: tkt, EncryptedAuthenticator: encAuth}
	b, err := req.Marshal()
	if err != nil {
		t.Fatal(err)
	}
	return rfc4121.FrameContextToken(rfc4121.TokIDAPReq, b)
}

// step runs the acceptor's first step on tok, failing the test on a panic.
func step(t *testing.T, m *Mechanism, peer string, tok []byte) (err error) {
	t.Helper()
	defer func() {
		if r := recover(); r != nil {
			t.Fatalf("acceptor panicked: %v", r)
		}
	}()
	_, _, err = m.NewExchange(peer).Step(tok)
	return err
}

func wantReason(t *testing.T, err error, reason auth.Reason, text string) {
	t.Helper()
	if err == nil {
		t.Fatalf("accepted; want a refusal (%s) containing %q", reason, text)
	}
	if got := auth.ReasonOf(err); got != reason || !strings.Contains(err.Error(), text) {
		t.Fatalf("err = %v (reason %q); want reason %q and text %q", err, got, reason, text)
	}
}

// TestGokrb5StillPanicsOnShortCiphertext documents why the length checks
// exist: gokrb5 v8.4.4 slices a short ciphertext unchecked. Should a
// gokrb5 upgrade fix it, this says so and does not fail.
func TestGokrb5StillPanicsOnShortCiphertext(t *testing.T) {
	for _, et := range allEnctypes {
		key := types.EncryptionKey{KeyType: et, KeyValue: make([]byte, KeyLength(et))}
		panicked := func() (p any) {
			defer func() { p = recover() }()
			_, _ = crypto.DecryptEncPart(types.EncryptedData{EType: et, Cipher: make([]byte, 5)}, key, keyusage.KDC_REP_TICKET)
			return nil
		}()
		if panicked == nil {
			t.Logf("%s: gokrb5 no longer panics on a 5-byte ciphertext; the checks in rfc4121.CheckCiphertext stay as defence", EnctypeName(et))
		} else {
			t.Logf("%s: gokrb5 panics on a 5-byte ciphertext: %v", EnctypeName(et), panicked)
		}
	}
}

// TestShortCiphertextsAreRefused: finding 1. A ticket or authenticator
// whose encrypted part is shorter than confounder + checksum is refused
// with an error, in every enctype; the same for the AP-REP the initiator
// checks (pacemakerctl against a hostile server).
func TestShortCiphertextsAreRefused(t *testing.T) {
	dir := t.TempDir()
	path, kt := writeKeytab(t, dir, testService, testRealm, "svc-secret", 2, allEnctypes...)
	m := newTestMechanism(t, path, ServerOptions{})
	sname, _, _ := parsePrincipal(testService, testRealm)
	cname, _, _ := parsePrincipal("nimbus", testRealm)
	for _, et := range allEnctypes {
		min := minCiphertext(t, et)
		for _, n := range []int{0, 5, min - 1, min} {
			t.Run(fmt.Sprintf("%s/%d bytes", EnctypeName(et), n), func(t *testing.T) {
				cipher := bytes.Repeat([]byte{0xa5}, n)
				// The ticket, kvno absent (0: the newest key).
				forged := messages.Ticket{TktVNO: 5, Realm: testRealm, SName: sname, EncPart: types.EncryptedData{EType: et, Cipher: cipher}}
				err := step(t, m, "127.0.0.1:1", apReqToken(t, forged, types.EncryptedData{EType: et, Cipher: make([]byte, 64)}))
				if n < min {
					wantReason(t, err, auth.ReasonMalformed, "ciphertext is")
				} else {
					wantReason(t, err, auth.ReasonBadCredentials, "Kerberos ticket rejected")
				}

				// A good ticket, the authenticator short.
				tkt, key := mint(t, kt, ticketSpec{client: "nimbus", etype: et})
				err = step(t, m, "127.0.0.1:1", apReqToken(t, tkt, types.EncryptedData{EType: et, Cipher: cipher}))
				if n < min {
					wantReason(t, err, auth.ReasonMalformed, "authenticator of nimbus@PACEMAKER.TEST")
				} else {
					wantReason(t, err, auth.ReasonBadCredentials, "does not decrypt")
				}

				// The AP-REP a hostile server sends back.
				a, _ := types.NewAuthenticator(testRealm, cname)
				rep := fakeAPRep(t, types.EncryptedData{EType: et, Cipher: cipher})
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Fatalf("initiator panicked on the AP-REP: %v", r)
						}
					}()
					if _, _, err := rfc4121.VerifyAPRep(rep, key, a); err == nil {
						t.Fatal("short AP-REP accepted")
					}
				}()
			})
		}
	}
}

// fakeAPRep is an AP-REP message (RFC 4120 §5.5.2) with the given
// encrypted part.
func fakeAPRep(t *testing.T, enc types.EncryptedData) []byte {
	t.Helper()
	b, err := asn1.Marshal(struct {
		PVNO    int                 `asn1:"explicit,tag:0"`
		MsgType int                 `asn1:"explicit,tag:1"`
		EncPart types.EncryptedData `asn1:"explicit,tag:2"`
	}{5, msgtype.KRB_AP_REP, enc})
	if err != nil {
		t.Fatal(err)
	}
	return asn1tools.AddASNAppTag(b, 15)
}

// TestIdentityComesFromTheTicket: finding 2. The authenticator is the
// client's own writing; the principal and realm come from the ticket, and
// an authenticator naming anyone else is refused.
func TestIdentityComesFromTheTicket(t *testing.T) {
	path, kt := writeKeytab(t, t.TempDir(), testService, testRealm, "svc-secret", 1, etypeID.AES256_CTS_HMAC_SHA1_96)
	m := newTestMechanism(t, path, ServerOptions{Users: []string{"audit/tool@" + testRealm}, Realms: []string{"OTHER.TEST"}})
	tests := []struct {
		name        string
		ticket      ticketSpec
		authName    string // what the authenticator claims
		wantID      string
		wantErr     string
		wantReason  auth.Reason
		mayRead     bool
		wantNoReads bool
	}{
		{name: "cross-realm client claims our realm", ticket: ticketSpec{client: "audit/tool", crealm: "OTHER.TEST"}, authName: "audit/tool@" + testRealm,
			wantErr: "authenticator names audit/tool@PACEMAKER.TEST, but the ticket was issued to audit/tool@OTHER.TEST", wantReason: auth.ReasonNameMismatch},
		{name: "cross-realm client as itself is matched by its real realm", ticket: ticketSpec{client: "audit/tool", crealm: "OTHER.TEST"}, authName: "audit/tool@OTHER.TEST",
			wantID: "audit/tool@OTHER.TEST", wantNoReads: true},
		{name: "our client as itself", ticket: ticketSpec{client: "audit/tool"}, authName: "audit/tool@" + testRealm, wantID: "audit/tool@PACEMAKER.TEST", mayRead: true},
		{name: "authenticator names another principal", ticket: ticketSpec{client: "alice"}, authName: "nimbus@" + testRealm,
			wantErr: "authenticator names nimbus@PACEMAKER.TEST, but the ticket was issued to alice@PACEMAKER.TEST", wantReason: auth.ReasonNameMismatch},
		{name: "client realm not trusted", ticket: ticketSpec{client: "nimbus", crealm: "EVIL.TEST"}, authName: "nimbus@EVIL.TEST",
			wantErr: `client realm "EVIL.TEST" is not trusted`, wantReason: auth.ReasonRealm},
		{name: "transited a trusted realm", ticket: ticketSpec{client: "nimbus", crealm: "OTHER.TEST", transited: "OTHER.TEST"}, authName: "nimbus@OTHER.TEST",
			wantID: "nimbus@OTHER.TEST", mayRead: true},
		{name: "transited an untrusted realm", ticket: ticketSpec{client: "nimbus", crealm: "OTHER.TEST", transited: "MIDDLE.TEST"}, authName: "nimbus@OTHER.TEST",
			wantErr: `transited realm "MIDDLE.TEST"`, wantReason: auth.ReasonRealm},
		{name: "transited, compressed", ticket: ticketSpec{client: "nimbus", crealm: "OTHER.TEST", transited: "EVIL."}, authName: "nimbus@OTHER.TEST",
			wantErr: `transited realm "EVIL.OTHER.TEST"`, wantReason: auth.ReasonRealm},
		{name: "transited X.500 form", ticket: ticketSpec{client: "nimbus", crealm: "OTHER.TEST", transited: "/COM/EVIL"}, authName: "nimbus@OTHER.TEST",
			wantErr: "X.500", wantReason: auth.ReasonRealm},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			tkt, key := mint(t, kt, tc.ticket)
			id, _, err := handshake(t, m, tkt, key, tc.authName, spoil{})
			if tc.wantErr != "" {
				wantReason(t, err, tc.wantReason, tc.wantErr)
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if id != tc.wantID {
				t.Fatalf("identity %q, want %q", id, tc.wantID)
			}
			ok, _ := m.MayRead(id)
			if tc.wantNoReads && ok || tc.mayRead && !ok {
				t.Errorf("MayRead(%q) = %v", id, ok)
			}
		})
	}
}

func TestTransitedRealms(t *testing.T) {
	tests := []struct {
		contents string
		want     []string
		err      string
	}{
		{"", nil, ""},
		{"B.TEST", []string{"B.TEST"}, ""},
		{"EDU,MIT.,ATHENA.,WASHINGTON.EDU,CS.", []string{"EDU", "MIT.EDU", "ATHENA.MIT.EDU", "WASHINGTON.EDU", "CS.WASHINGTON.EDU"}, ""},
		{"SUB.", []string{"SUB.A.TEST"}, ""}, // completed by the client's realm
		{"B.TEST,,C.TEST", nil, "empty field"},
		{",B.TEST", nil, "empty field"},
		{"/COM/HP", nil, "X.500"},
		{`B\,C`, nil, "escapes"},
		{strings.Repeat("R,", 40) + "R", nil, "more than"},
	}
	for _, tc := range tests {
		got, err := transitedRealms(messages.TransitedEncoding{TRType: trDomainX500Compress, Contents: []byte(tc.contents)}, "A.TEST")
		if tc.err != "" {
			if err == nil || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("%q: err %v, want %q", tc.contents, err, tc.err)
			}
			continue
		}
		if err != nil || strings.Join(got, " ") != strings.Join(tc.want, " ") {
			t.Errorf("%q = %q, %v; want %q", tc.contents, got, err, tc.want)
		}
	}
	if _, err := transitedRealms(messages.TransitedEncoding{TRType: 2, Contents: []byte("X")}, "A"); err == nil {
		t.Error("unknown transited encoding accepted")
	}
}

// TestReplayCacheRestartRules: finding 3. A replayed AP-REQ is refused by
// the process that accepted it, by its successor that took over the cache
// in the restart hand-over, and by a cold-started process (older than its
// start).
func TestReplayCacheRestartRules(t *testing.T) {
	path, kt := writeKeytab(t, t.TempDir(), testService, testRealm, "svc-secret", 1, etypeID.AES256_CTS_HMAC_SHA1_96)
	start := time.Now().Add(-time.Minute)
	first := NewReplayCache(start)
	m1 := newTestMechanism(t, path, ServerOptions{Replays: first})
	tkt, key := mint(t, kt, ticketSpec{client: "nimbus"})
	_, tok, err := handshake(t, m1, tkt, key, "nimbus", spoil{})
	if err != nil {
		t.Fatal(err)
	}
	if _, _, err := handshake(t, m1, tkt, key, "nimbus", spoil{replayTok: tok}); auth.ReasonOf(err) != auth.ReasonReplay {
		t.Fatalf("replay to the same process: %v", err)
	}

	// Hand-over: the successor starts later, takes the snapshot.
	snap, err := first.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	second := NewReplayCache(time.Now().Add(time.Hour)) // its own start would refuse everything
	if err := second.Restore(snap, time.Now()); err != nil {
		t.Fatal(err)
	}
	if second.Len() != 1 || !second.NotBefore().Equal(first.NotBefore()) {
		t.Fatalf("restored %d entries, not before %v (want 1, %v)", second.Len(), second.NotBefore(), first.NotBefore())
	}
	m2 := newTestMechanism(t, path, ServerOptions{Replays: second})
	if _, _, err := handshake(t, m2, tkt, key, "nimbus", spoil{replayTok: tok}); auth.ReasonOf(err) != auth.ReasonReplay {
		t.Fatalf("replay to the successor: %v", err)
	}
	if _, _, err := handshake(t, m2, tkt, key, "nimbus", spoil{}); err != nil {
		t.Fatalf("fresh handshake with the successor: %v", err)
	}
	for _, bad := range [][]byte{nil, []byte("PMRC1"), append(append([]byte{}, snap...), 0)} {
		if err := NewReplayCache(time.Now()).Restore(bad, time.Now()); err == nil {
			t.Errorf("damaged snapshot %x restored", bad)
		}
	}

	// Cold start: no snapshot; the authenticator predates the process.
	m3 := newTestMechanism(t, path, ServerOptions{Replays: NewReplayCache(time.Now())})
	_, _, err = handshake(t, m3, tkt, key, "nimbus", spoil{replayTok: tok})
	wantReason(t, err, auth.ReasonBeforeStart, "before this daemon's replay memory starts")
	if _, _, err := handshake(t, m3, tkt, key, "nimbus", spoil{}); err != nil {
		t.Fatalf("fresh handshake after a cold start: %v", err)
	}
}

// TestReplayCacheIsBounded: finding 4. The cache refuses rather than
// grows past its cap, says so, and takes new entries again once old ones
// expire; expiry needs no walk of the whole cache.
func TestReplayCacheIsBounded(t *testing.T) {
	path, kt := writeKeytab(t, t.TempDir(), testService, testRealm, "svc-secret", 1, etypeID.AES256_CTS_HMAC_SHA1_96)
	c := NewReplayCache(time.Now().Add(-time.Minute))
	m := newTestMechanism(t, path, ServerOptions{Replays: c, ReplayCacheMax: 3})
	tkt, key := mint(t, kt, ticketSpec{client: "nimbus"})
	for i := 0; i < 3; i++ {
		if _, _, err := handshake(t, m, tkt, key, "nimbus", spoil{}); err != nil {
			t.Fatal(err)
		}
	}
	_, _, err := handshake(t, m, tkt, key, "nimbus", spoil{})
	wantReason(t, err, auth.ReasonReplayCacheFull, "replay cache full (3 authenticators")
	if c.Len() != 3 {
		t.Fatalf("cache holds %d, want 3", c.Len())
	}

	// Unit level: entries expire a shard front at a time.
	now := time.Now()
	small := NewReplayCache(now)
	for i := 0; i < 1000; i++ {
		if err := small.add([]byte(fmt.Sprint(i)), now, time.Minute, 1000); err != nil {
			t.Fatal(i, err)
		}
	}
	if err := small.add([]byte("one more"), now, time.Minute, 1000); !errors.Is(err, errReplayCacheFull) {
		t.Fatalf("full cache: %v", err)
	}
	later := now.Add(2 * time.Minute)
	if err := small.add([]byte("one more"), later, time.Minute, 1000); err != nil {
		t.Fatalf("after expiry: %v", err)
	}
	if small.Len() != 1 {
		t.Fatalf("after expiry the cache holds %d, want 1", small.Len())
	}
	if err := small.add([]byte("one more"), later, time.Minute, 1000); !errors.Is(err, errReplay) {
		t.Fatalf("replay: %v", err)
	}

	// Concurrent adds at the cap, with time passing (run with -race): the
	// count never passes the cap and matches what the shards hold.
	busy := NewReplayCache(now)
	var wg sync.WaitGroup
	for g := 0; g < 8; g++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for i := 0; i < 2000; i++ {
				_ = busy.add([]byte(fmt.Sprint(g, "/", i)), now.Add(time.Duration(i)*time.Millisecond), 100*time.Millisecond, 64)
				if n := busy.Len(); n > 64+8 {
					t.Errorf("cache holds %d, cap 64", n)
					return
				}
			}
		}()
	}
	wg.Wait()
	held := 0
	for i := range busy.shards {
		held += len(busy.shards[i].seen)
	}
	if held != busy.Len() || held > 64 {
		t.Fatalf("shards hold %d entries, count says %d (cap 64)", held, busy.Len())
	}
}

// TestOversizedTokenRefusedUnparsed: finding 5. A token over MaxTokenSize
// is refused before parsing or decrypting.
func TestOversizedTokenRefusedUnparsed(t *testing.T) {
	path, kt := writeKeytab(t, t.TempDir(), testService, testRealm, "svc-secret", 1, etypeID.AES256_CTS_HMAC_SHA1_96)
	m := newTestMechanism(t, path, ServerOptions{})
	tkt, _ := mint(t, kt, ticketSpec{client: "nimbus"})
	tkt.EncPart.Cipher = append(tkt.EncPart.Cipher, make([]byte, MaxTokenSize)...)
	err := step(t, m, "127.0.0.1:1", apReqToken(t, tkt, types.EncryptedData{EType: tkt.EncPart.EType, Cipher: make([]byte, 64)}))
	wantReason(t, err, auth.ReasonTooLarge, "larger than 65536")
	// Just under the limit it is parsed (and fails on the forged ticket).
	tkt.EncPart.Cipher = tkt.EncPart.Cipher[:MaxTokenSize-1024]
	err = step(t, m, "127.0.0.1:1", apReqToken(t, tkt, types.EncryptedData{EType: tkt.EncPart.EType, Cipher: make([]byte, 64)}))
	wantReason(t, err, auth.ReasonBadCredentials, "Kerberos ticket rejected")
}

// TestHandshakeRateLimit: finding 5. Past the per-peer rate, an AP-REQ is
// refused before anything is decrypted; other peers are not affected, and
// an IPv6 /64 counts as one peer.
func TestHandshakeRateLimit(t *testing.T) {
	path, kt := writeKeytab(t, t.TempDir(), testService, testRealm, "svc-secret", 1, etypeID.AES256_CTS_HMAC_SHA1_96)
	m := newTestMechanism(t, path, ServerOptions{HandshakeRate: 2})
	m.limiter = newPeerLimiter()
	tkt, _ := mint(t, kt, ticketSpec{client: "nimbus"})
	bad := apReqToken(t, tkt, types.EncryptedData{EType: tkt.EncPart.EType, Cipher: make([]byte, 64)})
	for i := 0; i < 4; i++ { // the burst: twice the rate
		if err := step(t, m, "192.0.2.1:1000", bad); auth.ReasonOf(err) != auth.ReasonBadCredentials {
			t.Fatalf("handshake %d: %v", i, err)
		}
	}
	wantReason(t, step(t, m, "192.0.2.1:1001", bad), auth.ReasonRateLimited, "refused before decrypting")
	if err := step(t, m, "192.0.2.2:1000", bad); auth.ReasonOf(err) != auth.ReasonBadCredentials {
		t.Fatalf("another peer: %v", err)
	}
	for i := 0; i < 4; i++ {
		_ = step(t, m, fmt.Sprintf("[2001:db8::%d]:1", i+1), bad)
	}
	wantReason(t, step(t, m, "[2001:db8::ffff]:1", bad), auth.ReasonRateLimited, "refused before decrypting")

	// The table of peers is bounded.
	l := newPeerLimiter()
	now := time.Now()
	for i := 0; i < limiterShards*limiterShardCap*2; i++ {
		l.allow(limiterKey(fmt.Sprintf("10.%d.%d.%d:1", i>>16&0xff, i>>8&0xff, i&0xff)), now, 1, 2)
	}
	n := 0
	for i := range l.shards {
		n += len(l.shards[i].tat)
	}
	if n > limiterShards*limiterShardCap {
		t.Fatalf("limiter holds %d peers, more than %d", n, limiterShards*limiterShardCap)
	}
}

// TestSubkeyAndSequenceChecks: finding 7. A subkey of the wrong length for
// its enctype is refused; the client's wrapped answer must carry the
// sequence number of its authenticator.
func TestSubkeyAndSequenceChecks(t *testing.T) {
	path, kt := writeKeytab(t, t.TempDir(), testService, testRealm, "svc-secret", 1, allEnctypes...)
	m := newTestMechanism(t, path, ServerOptions{})
	cname, _, _ := parsePrincipal("nimbus", testRealm)
	for _, et := range allEnctypes {
		for _, n := range []int{1, KeyLength(et) - 1, KeyLength(et) + 1, 1000} {
			t.Run(fmt.Sprintf("%s subkey of %d bytes", EnctypeName(et), n), func(t *testing.T) {
				tkt, key := mint(t, kt, ticketSpec{client: "nimbus", etype: et})
				a, _ := types.NewAuthenticator(testRealm, cname)
				a.Cksum = rfc4121.AuthenticatorChecksum(rfc4121.FlagInteg)
				a.SubKey = types.EncryptionKey{KeyType: et, KeyValue: bytes.Repeat([]byte{7}, n)}
				req, err := messages.NewAPReq(tkt, key, a)
				if err != nil {
					t.Fatal(err)
				}
				wantReason(t, step(t, m, "127.0.0.1:1", apReqToken(t, req.Ticket, req.EncryptedAuthenticator)), auth.ReasonMalformed, "subkey of nimbus@PACEMAKER.TEST")
			})
		}
	}

	tkt, key := mint(t, kt, ticketSpec{client: "nimbus"})
	tok, a, err := newAPReqToken(tkt, key, cname, testRealm, time.Now(), rfc4121.FlagInteg)
	if err != nil {
		t.Fatal(err)
	}
	ex := m.NewExchange("127.0.0.1:1")
	if _, _, err := ex.Step(tok); err != nil {
		t.Fatal(err)
	}
	resp, _ := rfc4121.Wrap(a.SubKey, 0, uint64(uint32(a.SeqNumber))+1, append([]byte{1, 0, 0, 0}, "nimbus@"+testRealm...))
	_, _, err = ex.Step(resp)
	wantReason(t, err, auth.ReasonProtocol, "sequence number")
}

// TestPrincipalEscapes: a component holding a separator cannot pass for
// another principal.
func TestPrincipalEscapes(t *testing.T) {
	name := principalString(types.PrincipalName{NameString: []string{"nimbus@" + testRealm}}, "OTHER.TEST")
	if name != `nimbus\@PACEMAKER.TEST@OTHER.TEST` {
		t.Fatalf("principalString = %q", name)
	}
	if s := ShortName(name); s != `nimbus\@PACEMAKER.TEST` {
		t.Fatalf("ShortName = %q", s)
	}
	if s := principalString(types.PrincipalName{NameString: []string{"a/b", "c\n"}}, "R"); s != `a\/b/c\n@R` {
		t.Fatalf("principalString = %q", s)
	}
}
