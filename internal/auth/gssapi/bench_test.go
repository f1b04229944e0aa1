package gssapi

import (
	"testing"
	"time"

	"github.com/jcmturner/gokrb5/v8/iana/etypeID"

	"github.com/storm-pacemaker/pacemaker/internal/auth/gssapi/rfc4121"
)

// BenchmarkAcceptorHandshake measures the acceptor's whole share of one
// handshake: parse and verify the AP-REQ (decrypt ticket and
// authenticator, replay cache), wrap the offer, unwrap and check the
// answer. The client's work is excluded from the timing.
func BenchmarkAcceptorHandshake(b *testing.B) {
	path, kt := writeKeytab(b, b.TempDir(), testService, testRealm, "svc-secret", 1, etypeID.AES256_CTS_HMAC_SHA1_96)
	m := newTestMechanism(b, path, ServerOptions{})
	tkt, key := mint(b, kt, ticketSpec{client: "nimbus"})
	cname, crealm, _ := parsePrincipal("nimbus", testRealm)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i++ {
		b.StopTimer()
		tok, a, err := newAPReqToken(tkt, key, cname, crealm, time.Now(), rfc4121.FlagInteg)
		if err != nil {
			b.Fatal(err)
		}
		ce := &clientExchange{m: &ClientMechanism{principal: "nimbus@" + testRealm}, key: a.SubKey, mySeq: uint64(uint32(a.SeqNumber)), stage: 1}
		b.StartTimer()
		ex := m.NewExchange("127.0.0.1:1")
		offer, _, err := ex.Step(tok)
		if err != nil {
			b.Fatal(err)
		}
		b.StopTimer()
		resp, err := ce.Step(offer)
		if err != nil {
			b.Fatal(err)
		}
		b.StartTimer()
		if _, done, err := ex.Step(resp); !done || err != nil {
			b.Fatal(done, err)
		}
	}
}
