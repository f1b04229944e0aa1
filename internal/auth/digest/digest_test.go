package digest

import (
	"strings"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/auth/jaas"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/stormwire"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// The credentials Storm's recordings were made with (internal/testutil/stormwire/testdata/README.md).
const (
	recUser     = "pmuser"
	recPassword = "pmsecret"
)

// TestRFC2831Example checks the arithmetic against RFC 2831 §4's example.
func TestRFC2831Example(t *testing.T) {
	const (
		user, realm, pass = "chris", "elwood.innosoft.com", "secret"
		nonce, cnonce     = "OA6MG9tEQGm2hh", "OA6MHXh6VqTrRk"
		uri               = "imap/elwood.innosoft.com"
	)
	if got := responseValue(user, realm, pass, nonce, cnonce, "", "00000001", uri, "AUTHENTICATE"); got != "d388dad90d4bbd760a152321f2143af7" {
		t.Errorf("response = %s", got)
	}
	if got := responseValue(user, realm, pass, nonce, cnonce, "", "00000001", uri, ""); got != "ea40f60335c427b5527b84dbabcdfffd" {
		t.Errorf("rspauth = %s", got)
	}
}

func TestSecretFromJAAS(t *testing.T) {
	tests := []struct {
		name, src, want, err string
	}{
		{"storm docs form", `PacemakerDigest { username="pmuser" password="pmsecret"; };`,
			SecretFromCredentials("pmuser", "pmsecret"), ""},
		{"with a module", `PacemakerDigest { org.apache.zookeeper.server.auth.DigestLoginModule required username="pmuser" password="pmsecret"; };`,
			SecretFromCredentials("pmuser", "pmsecret"), ""},
		{"no section", `StormServer { a=b; };`, "", "has no PacemakerDigest section; add:"},
		{"empty password", `PacemakerDigest { username="u" password=""; };`, "", "empty or missing password"},
		{"no username", `PacemakerDigest { password="p"; };`, "", "empty or missing username"},
		{"neither", `PacemakerDigest { };`, "", `needs username="…" and password="…"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f, err := jaas.Parse("jaas.conf", []byte(tt.src))
			if err != nil {
				t.Fatal(err)
			}
			got, err := SecretFromJAAS(f)
			if tt.err != "" {
				if err == nil || !strings.Contains(err.Error(), tt.err) || !strings.Contains(err.Error(), "jaas.conf") {
					t.Fatalf("err = %v, want one naming the file and %q", err, tt.err)
				}
				return
			}
			if err != nil || got != tt.want {
				t.Fatalf("got %q, %v", got, err)
			}
		})
	}
	// The secret is lowercase hex of SHA-512: 128 characters.
	if s := SecretFromCredentials("a", "b"); len(s) != 128 || strings.ToLower(s) != s {
		t.Errorf("secret %q", s)
	}
}

// tokens returns the SASL tokens of one of Storm's recorded connections,
// each side's in order.
func tokens(t *testing.T, recording string) (fromServer, fromClient []string) {
	t.Helper()
	for _, f := range stormwire.Load(t, recording) {
		var m wire.Message
		if err := wire.Decode(f.Body(), &m); err != nil {
			t.Fatalf("%s line %d: %v", recording, f.Line, err)
		}
		if m.Type != wire.SaslMessageToken {
			continue
		}
		tok, err := wire.ParseSaslToken(&m)
		if err != nil {
			t.Fatalf("%s line %d: %v", recording, f.Line, err)
		}
		if f.FromClient {
			fromClient = append(fromClient, string(tok))
		} else {
			fromServer = append(fromServer, string(tok))
		}
	}
	return
}

func directiveMap(t *testing.T, s string) map[string]string {
	ds, err := parseDirectives(s)
	if err != nil {
		t.Fatalf("%q: %v", s, err)
	}
	m := map[string]string{}
	for _, d := range ds {
		m[d.name] = d.value
	}
	return m
}

// TestRecordedHandshakes feeds each response Storm's Java client recorded
// to our server (with the nonce Storm's server issued) and requires the
// rspauth Storm's server answered, byte for byte; the wrong-password
// recording must fail.
func TestRecordedHandshakes(t *testing.T) {
	m := NewMechanism(SecretFromCredentials(recUser, recPassword))
	for _, name := range []string{"digest-all-ops.txt", "digest-unmodified-client-a.txt", "digest-unmodified-client-b.txt", "digest-wrong-password.txt"} {
		t.Run(name, func(t *testing.T) {
			srv, cli := tokens(t, name)
			if len(srv) < 1 || len(cli) != 1 {
				t.Fatalf("recording has %d server and %d client tokens", len(srv), len(cli))
			}
			challenge := directiveMap(t, srv[0])
			ex := m.NewExchange("recorded").(*serverExchange)
			mine, err := ex.Start()
			if err != nil {
				t.Fatal(err)
			}
			// Our challenge has Storm's shape: the same text but for the nonce.
			if want := strings.Replace(srv[0], challenge["nonce"], ex.nonce, 1); string(mine) != want {
				t.Errorf("challenge %q, Storm's shape %q", mine, want)
			}
			if len(ex.nonce) != len(challenge["nonce"]) {
				t.Errorf("nonce %q has not the length of Storm's %q", ex.nonce, challenge["nonce"])
			}
			ex.nonce = challenge["nonce"]
			reply, done, err := ex.Step([]byte(cli[0]))
			if name == "digest-wrong-password.txt" {
				if err == nil || !strings.Contains(err.Error(), "wrong password") {
					t.Fatalf("wrong password accepted: %q %v %v", reply, done, err)
				}
				return
			}
			if err != nil || !done {
				t.Fatalf("Step: %v done=%v", err, done)
			}
			if string(reply) != srv[1] {
				t.Errorf("rspauth %q, Storm sent %q", reply, srv[1])
			}
			if ex.Identity() != "cG0tZHJpdmVy" {
				t.Errorf("identity %q", ex.Identity())
			}
		})
	}
}

// TestClientAgainstRecordedChallenge answers Storm's recorded challenge and
// checks the response directive by directive against Storm's client's.
func TestClientAgainstRecordedChallenge(t *testing.T) {
	srv, cli := tokens(t, "digest-all-ops.txt")
	c := NewClientMechanism(SecretFromCredentials(recUser, recPassword), "pm-driver")
	ex, _ := c.NewClientExchange("localhost")
	if first, err := ex.Start(); first != nil || err != nil {
		t.Fatalf("Start = %q, %v; DIGEST opens with CONTROL -202", first, err)
	}
	resp, err := ex.Step([]byte(srv[0]))
	if err != nil {
		t.Fatal(err)
	}
	got, want := directiveMap(t, string(resp)), directiveMap(t, cli[0])
	for k, v := range want {
		if k == "cnonce" || k == "response" {
			continue
		}
		if got[k] != v {
			t.Errorf("%s=%q, Storm's client sends %q", k, got[k], v)
		}
	}
	// Its response verifies with the recorded nonce and its own cnonce.
	pw := saslPassword(SecretFromCredentials(recUser, recPassword))
	if r := responseValue(got["username"], got["realm"], pw, got["nonce"], got["cnonce"], "", got["nc"], got["digest-uri"], "AUTHENTICATE"); r != got["response"] {
		t.Errorf("response %s, want %s", got["response"], r)
	}
	if _, err := ex.Step([]byte("rspauth=00000000000000000000000000000000")); err == nil {
		t.Error("a forged rspauth was accepted")
	}
}

// TestHandshake runs our client against our server, and a client with the
// wrong secret.
func TestHandshake(t *testing.T) {
	secret := SecretFromCredentials(recUser, recPassword)
	for _, tt := range []struct {
		name   string
		secret string
		ok     bool
	}{{"right secret", secret, true}, {"wrong secret", SecretFromCredentials(recUser, "nope"), false}} {
		t.Run(tt.name, func(t *testing.T) {
			srv := NewMechanism(secret).NewExchange("peer")
			cli, _ := NewClientMechanism(tt.secret, "pacemakerctl").NewClientExchange("h")
			ch, err := srv.Start()
			if err != nil {
				t.Fatal(err)
			}
			resp, err := cli.Step(ch)
			if err != nil {
				t.Fatal(err)
			}
			rsp, done, err := srv.Step(resp)
			if !tt.ok {
				if err == nil {
					t.Fatal("wrong secret accepted")
				}
				return
			}
			if err != nil || !done {
				t.Fatalf("server: %v %v", done, err)
			}
			if out, err := cli.Step(rsp); err != nil || out != nil {
				t.Fatalf("client rejected rspauth: %q %v", out, err)
			}
			if srv.Identity() != "cGFjZW1ha2VyY3Rs" {
				t.Errorf("identity %q", srv.Identity())
			}
		})
	}
}

// TestServerRejects covers every way a response can be wrong.
func TestServerRejects(t *testing.T) {
	secret := SecretFromCredentials(recUser, recPassword)
	good := func(nonce string, mod func(map[string]string)) string {
		pw := saslPassword(secret)
		v := map[string]string{"username": "dXNlcg==", "realm": Realm, "nonce": nonce, "cnonce": "abc", "nc": "00000001", "digest-uri": DigestURI, "qop": "auth", "charset": "utf-8"}
		if mod != nil {
			mod(v)
		}
		if _, ok := v["response"]; !ok {
			val := func(k string) string { return strings.TrimPrefix(v[k], "\x00") } // "\x00": left out
			v["response"] = responseValue(val("username"), val("realm"), pw, val("nonce"), val("cnonce"), val("authzid"), val("nc"), val("digest-uri"), "AUTHENTICATE")
		}
		var parts []string
		for _, k := range []string{"charset", "username", "realm", "nonce", "nc", "cnonce", "digest-uri", "response", "qop", "authzid"} {
			if val, ok := v[k]; ok && val != "\x00" {
				parts = append(parts, k+"="+quote(val))
			}
		}
		return strings.Join(parts, ",")
	}
	tests := []struct {
		name string
		resp func(nonce string) string
		err  string
	}{
		{"valid", func(n string) string { return good(n, nil) }, ""},
		{"valid without realm directive", func(n string) string {
			return good(n, func(v map[string]string) { v["realm"] = "\x00" })
		}, ""},
		{"valid with same authzid", func(n string) string {
			return good(n, func(v map[string]string) { v["authzid"] = v["username"] })
		}, ""},
		{"other authzid", func(n string) string {
			return good(n, func(v map[string]string) { v["authzid"] = "admin" })
		}, "authorization id"},
		{"stale nonce", func(string) string { return good("AAAA", nil) }, "nonce this server did not issue"},
		{"bad nc", func(n string) string { return good(n, func(v map[string]string) { v["nc"] = "00000002" }) }, "nonce-count"},
		{"auth-conf", func(n string) string { return good(n, func(v map[string]string) { v["qop"] = "auth-conf" }) }, "qop"},
		{"other realm", func(n string) string { return good(n, func(v map[string]string) { v["realm"] = "EVIL" }) }, "realm"},
		{"other uri", func(n string) string {
			return good(n, func(v map[string]string) { v["digest-uri"] = "ldap/default" })
		}, "digest-uri"},
		{"latin1", func(n string) string { return good(n, func(v map[string]string) { v["charset"] = "iso-8859-1" }) }, "charset"},
		{"no response", func(n string) string { return good(n, func(v map[string]string) { v["response"] = "\x00" }) }, "no response"},
		{"no cnonce", func(n string) string { return good(n, func(v map[string]string) { v["cnonce"] = "\x00" }) }, "no cnonce"},
		{"wrong response", func(n string) string {
			return good(n, func(v map[string]string) { v["response"] = strings.Repeat("0", 32) })
		}, "wrong password"},
		{"duplicate", func(n string) string { return good(n, nil) + `,nonce="x"` }, "given twice"},
		{"garbage", func(string) string { return `username="unterminated` }, "malformed"},
		{"empty", func(string) string { return "" }, "malformed"},
		{"huge", func(string) string { return strings.Repeat("a", maxToken+1) }, "longer than"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ex := NewMechanism(secret).NewExchange("peer")
			ch, _ := ex.Start()
			nonce := directiveMap(t, string(ch))["nonce"]
			reply, done, err := ex.Step([]byte(tt.resp(nonce)))
			if tt.err == "" {
				if err != nil || !done || !strings.HasPrefix(string(reply), "rspauth=") {
					t.Fatalf("rejected: %q %v %v", reply, done, err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Fatalf("err = %v, want %q", err, tt.err)
			}
		})
	}
}

func TestServerOutOfOrder(t *testing.T) {
	m := NewMechanism("s")
	ex := m.NewExchange("p")
	if _, _, err := ex.Step([]byte("username=x")); err == nil || !strings.Contains(err.Error(), "before the client asked") {
		t.Errorf("response before challenge: %v", err)
	}
	ex.Start()
	if _, err := ex.Start(); err == nil {
		t.Error("second Start accepted")
	}
	// Fresh nonces per connection.
	a, _ := m.NewExchange("p").Start()
	b, _ := m.NewExchange("p").Start()
	if string(a) == string(b) {
		t.Error("two connections got the same nonce")
	}
}

func TestParseDirectives(t *testing.T) {
	tests := []struct {
		in   string
		want []directive
		err  bool
	}{
		{`a=b`, []directive{{"a", "b", false}}, false},
		{` A = "x, \"y\"" ,, b=c ,`, []directive{{"a", `x, "y"`, true}, {"b", "c", false}}, false},
		{`a="b"c`, nil, true},
		{`=b`, nil, true},
		{`a`, nil, true},
		{`,,`, nil, true},
	}
	for _, tt := range tests {
		got, err := parseDirectives(tt.in)
		if (err != nil) != tt.err {
			t.Errorf("%q: err %v", tt.in, err)
			continue
		}
		if !tt.err && len(got) != len(tt.want) {
			t.Errorf("%q: got %v", tt.in, got)
			continue
		}
		for i := range tt.want {
			if got[i] != tt.want[i] {
				t.Errorf("%q: got %v want %v", tt.in, got, tt.want)
			}
		}
	}
}

// FuzzServerStep feeds arbitrary responses after a real challenge: errors
// are fine, panics and acceptance without the secret are not.
func FuzzServerStep(f *testing.F) {
	f.Add([]byte(`charset=utf-8,username="cG0tZHJpdmVy",realm="default",nonce="x",nc=00000001,cnonce="y",digest-uri="null/default",maxbuf=65536,response=c48211467ccbc8b7bc23391302fe6747,qop=auth`))
	f.Add([]byte(`a="\"`))
	f.Fuzz(func(t *testing.T, tok []byte) {
		ex := NewMechanism("secret").NewExchange("fuzz")
		ex.Start()
		if _, done, err := ex.Step(tok); err == nil || done {
			t.Fatalf("accepted %q without knowing the nonce", tok)
		}
	})
}

// FuzzParseDirectives checks that parsed directives re-render and parse to
// the same thing.
func FuzzParseDirectives(f *testing.F) {
	f.Add(`realm="default",nonce="GDKhsyWsA1eDs6D2Mr4TGoH981x+d5EH+w2qOYb3",charset=utf-8,algorithm=md5-sess`)
	f.Add(`a="b\"c",,d=e`)
	f.Fuzz(func(t *testing.T, s string) {
		ds, err := parseDirectives(s)
		if err != nil {
			return
		}
		var parts []string
		for _, d := range ds {
			parts = append(parts, d.name+"="+quote(d.value))
		}
		again, err := parseDirectives(strings.Join(parts, ","))
		if err != nil || len(again) != len(ds) {
			t.Fatalf("re-parse of %q: %v %v", parts, again, err)
		}
		for i := range ds {
			if again[i].name != ds[i].name || again[i].value != ds[i].value {
				t.Fatalf("%v != %v", again[i], ds[i])
			}
		}
	})
}

func BenchmarkServerHandshake(b *testing.B) {
	secret := SecretFromCredentials(recUser, recPassword)
	m, c := NewMechanism(secret), NewClientMechanism(secret, "bench")
	b.ReportAllocs()
	for b.Loop() {
		srv := m.NewExchange("p")
		cli, _ := c.NewClientExchange("h")
		ch, _ := srv.Start()
		resp, _ := cli.Step(ch)
		if _, done, err := srv.Step(resp); !done || err != nil {
			b.Fatal(err)
		}
	}
}

// The log shows a DIGEST client's name, not the base64 it is sent as.
func TestIdentityName(t *testing.T) {
	m := NewMechanism("secret")
	tests := []struct{ user, want string }{
		{"cGFjZW1ha2VyY3Rs", "pacemakerctl"},
		{"d29yZGNvdW50LTEtMTcwMDAwMDAwMA==", "wordcount-1-1700000000"},
		{"not base64!", "not base64!"},
		{"AAEC", "AAEC"}, // decodes to control bytes: shown as sent
		{"", ""},
	}
	for _, tt := range tests {
		if got := m.IdentityName(tt.user); got != tt.want {
			t.Errorf("IdentityName(%q) = %q, want %q", tt.user, got, tt.want)
		}
	}
}
