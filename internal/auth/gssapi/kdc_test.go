package gssapi

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/kdc"
)

// run drives a client exchange against a server exchange in memory, the
// way the daemon and the client package carry the tokens.
func run(t *testing.T, cx auth.ClientExchange, sx auth.Exchange) (string, error) {
	t.Helper()
	tok, err := cx.Start()
	if err != nil {
		return "", err
	}
	for i := 0; i < 4; i++ {
		reply, done, err := sx.Step(tok)
		if err != nil {
			return "", err
		}
		if done {
			return sx.Identity(), nil
		}
		if tok, err = cx.Step(reply); err != nil {
			return "", err
		}
	}
	t.Fatal("exchange did not finish in 4 rounds")
	return "", nil
}

// TestAgainstMITKDC: tickets issued by a real MIT KDC, fetched by our
// client from a keytab and from kinit's credential cache, in every AES
// enctype, are accepted; the errors a misconfigured client meets are clear.
func TestAgainstMITKDC(t *testing.T) {
	k := kdc.Start(t, kdc.Options{})
	dir := t.TempDir()
	k.MustAddPrincipal(t, "pacemaker/localhost", "nimbus", "alice", "stale")
	svcKT := filepath.Join(dir, "pacemaker.keytab")
	nimbusKT := filepath.Join(dir, "nimbus.keytab")
	staleKT := filepath.Join(dir, "stale.keytab")
	k.MustKeytab(t, svcKT, "pacemaker/localhost")
	k.MustKeytab(t, nimbusKT, "nimbus")
	k.MustKeytab(t, staleKT, "stale")
	if _, err := k.Kadmin("cpw -randkey " + k.Principal("stale")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("KRB5_CONFIG", k.Krb5Conf)
	t.Setenv("KRB5CCNAME", filepath.Join(dir, "no-such-ccache"))

	server, err := NewMechanism(ServerOptions{Keytab: svcKT, Principal: "pacemaker/localhost", NimbusUser: "nimbus"})
	if err != nil {
		t.Fatal(err)
	}

	t.Run("keytab login, each enctype", func(t *testing.T) {
		for _, et := range []string{"aes256-cts-hmac-sha1-96", "aes128-cts-hmac-sha1-96", "aes256-cts-hmac-sha384-192", "aes128-cts-hmac-sha256-128"} {
			t.Run(et, func(t *testing.T) {
				conf := filepath.Join(t.TempDir(), "krb5.conf")
				if err := k.WriteKrb5Conf(conf, "default_tgs_enctypes = "+et, "default_tkt_enctypes = "+et); err != nil {
					t.Fatal(err)
				}
				cm, err := NewClientMechanism(ClientOptions{Principal: "nimbus", Keytab: nimbusKT, Krb5Conf: conf})
				if err != nil {
					t.Fatal(err)
				}
				cx, err := cm.NewClientExchange("localhost")
				if err != nil {
					t.Fatal(err)
				}
				if got := EnctypeName(cx.(*clientExchange).sessionKey.KeyType); got != et {
					t.Fatalf("session key is %s, want %s", got, et)
				}
				id, err := run(t, cx, server.NewExchange("127.0.0.1:1234"))
				if err != nil {
					t.Fatal(err)
				}
				if id != "nimbus@"+k.Realm {
					t.Errorf("identity %q", id)
				}
			})
		}
	})

	t.Run("credential cache from kinit", func(t *testing.T) {
		cc := filepath.Join(t.TempDir(), "krb5cc")
		if err := k.Kinit(cc, nimbusKT, "nimbus"); err != nil {
			t.Fatal(err)
		}
		t.Setenv("KRB5CCNAME", "FILE:"+cc)
		cm, err := NewClientMechanism(ClientOptions{})
		if err != nil {
			t.Fatal(err)
		}
		cx, err := cm.NewClientExchange("localhost")
		if err != nil {
			t.Fatal(err)
		}
		if id, err := run(t, cx, server.NewExchange("127.0.0.1:1234")); err != nil || id != "nimbus@"+k.Realm {
			t.Fatalf("identity %q, err %v", id, err)
		}
		if _, err := NewClientMechanism(ClientOptions{Principal: "alice", CCache: cc}); err == nil || !strings.Contains(err.Error(), "holds tickets of nimbus@"+k.Realm+", not alice@"+k.Realm) {
			t.Errorf("ccache of another principal: err = %v", err)
		}
	})

	errs := []struct {
		name    string
		opts    ClientOptions
		host    string
		wantErr string
	}{
		{"stale client keytab", ClientOptions{Principal: "stale", Keytab: staleKT}, "", "Kerberos login as stale@" + k.Realm},
		{"unknown server host", ClientOptions{Principal: "nimbus", Keytab: nimbusKT}, "127.0.0.1", "get a Kerberos service ticket for pacemaker/127.0.0.1"},
		{"no credential cache", ClientOptions{CCache: filepath.Join(dir, "absent")}, "", "run kinit first"},
		{"keytab without principal", ClientOptions{Keytab: nimbusKT}, "", "without the principal"},
		{"no krb5.conf", ClientOptions{Principal: "nimbus", Keytab: nimbusKT, Krb5Conf: filepath.Join(dir, "absent.conf")}, "", "does not exist"},
	}
	for _, tc := range errs {
		t.Run(tc.name, func(t *testing.T) {
			cm, err := NewClientMechanism(tc.opts)
			if err == nil && tc.host != "" {
				_, err = cm.NewClientExchange(tc.host)
			}
			if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
				t.Fatalf("err = %v, want one containing %q", err, tc.wantErr)
			}
		})
	}
}
