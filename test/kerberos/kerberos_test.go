// Package kerberos shows KERBEROS authentication end to end: a real MIT
// KDC, the real daemon, and three clients — the JDK's own SASL GSSAPI
// client logging in through Storm's JAAS PacemakerClient section, our Go
// client, and pacemakerctl.
package kerberos

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/auth/gssapi"
	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

var javaSummary = regexp.MustCompile(`(?m)^interop-kerberos: \d+ checks, 0 failures$`)

func requireChecks(t *testing.T, what, out string, code int, checks ...string) {
	t.Helper()
	if code != 0 || !javaSummary.MatchString(out) {
		t.Fatalf("%s: InteropKerberos exited %d:\n%s", what, code, out)
	}
	for _, c := range checks {
		if !strings.Contains(out, "ok   "+c) {
			t.Errorf("%s: no passing check %q:\n%s", what, c, out)
		}
	}
}

func requireLog(t *testing.T, logText, pattern string) {
	t.Helper()
	if !regexp.MustCompile(pattern).MatchString(logText) {
		t.Errorf("daemon log has no line matching %s:\n%s", pattern, logText)
	}
}

// TestJDKClient: the JDK's GSSAPI client, set up as Storm's, authenticates
// as nimbus and reads back what it wrote, with and without mutual
// authentication; another principal authenticates but may only write.
func TestJDKClient(t *testing.T) {
	f := realm(t)
	javaClasspath(t)
	p := f.startDaemon(t, "localhost", f.serviceKeytab, f.k.Krb5Conf)
	_, port, _ := net.SplitHostPort(p.Addr())

	start := time.Now()
	out, code := f.runJava(t, f.jaas["nimbus"], "localhost", port, "ok")
	t.Logf("nimbus (%v):\n%s", time.Since(start).Round(time.Millisecond), out)
	requireChecks(t, "nimbus", out, code, "initial token is a GSS-API context token", "SASL_COMPLETE after the exchange",
		"server rounds 1 (offer)", "negotiated QOP auth", "GET_PULSE reads back", "GET_ALL_NODES_FOR_PATH", "EXISTS")
	requireLog(t, p.Log(), `client authenticated.*method=GSSAPI.*identity=nimbus@PACEMAKER\.TEST.*may_read=true`)

	out, code = f.runJava(t, f.jaas["nimbus"], "localhost", port, "mutual")
	requireChecks(t, "nimbus, mutual authentication", out, code, "server rounds 2 (AP-REP, offer)", "GET_PULSE reads back")

	// The JDK with each SHA-2 enctype (RFC 8009): the wrap tokens of both
	// sides use the HMAC-SHA256/384 checksums.
	for _, et := range []string{"aes128-cts-hmac-sha256-128", "aes256-cts-hmac-sha384-192"} {
		conf := filepath.Join(t.TempDir(), "krb5.conf")
		if err := f.k.WriteKrb5Conf(conf, "default_tkt_enctypes = "+et, "default_tgs_enctypes = "+et, "permitted_enctypes = "+et); err != nil {
			t.Fatal(err)
		}
		out, code = f.runJavaConf(t, conf, f.jaas["nimbus"], "localhost", port, "ok")
		requireChecks(t, "nimbus with "+et, out, code, "SASL_COMPLETE after the exchange", "GET_PULSE reads back")
		// The KDC's log shows the session key type it issued.
		requireLog(t, f.k.Log(), `ses=`+regexp.QuoteMeta(et)+`\(\d+\)\}, nimbus@PACEMAKER\.TEST for pacemaker/localhost@PACEMAKER\.TEST`)
	}

	out, code = f.runJava(t, f.jaas["alice"], "localhost", port, "noread")
	requireChecks(t, "alice", out, code, "SEND_PULSE accepted", "GET_PULSE refused", "EXISTS refused")
	requireLog(t, p.Log(), `client authenticated.*identity=alice@PACEMAKER\.TEST.*may_read=false`)
	requireLog(t, p.Log(), `read refused.*identity=alice@PACEMAKER\.TEST.*reason=.*short name \\"alice\\".*nimbus\.daemon\.user is \\"nimbus\\"`)
	if err := p.Stop(); err != nil {
		t.Errorf("daemon stop: %v", err)
	}
}

// TestStartupErrors: the daemon refuses to start, exit code 2, with a
// message saying what to fix, when its Kerberos credentials are unusable.
func TestStartupErrors(t *testing.T) {
	f := realm(t)
	tests := []struct {
		name  string
		jaas  string
		files map[string]string
		want  string
	}{
		{"no PacemakerServer section", "PacemakerDigest { username=\"u\" password=\"p\"; };\n", nil,
			"has no PacemakerServer section; pacemaker.auth.method KERBEROS needs one"},
		{"no keyTab option", "PacemakerServer {\n com.sun.security.auth.module.Krb5LoginModule required\n useKeyTab=true\n principal=\"pacemaker/localhost\";\n};\n", nil,
			`needs keyTab="/etc/pacemaker/keytabs/pacemaker.keytab"`},
		{"keytab missing", serverJAAS("pacemaker/localhost"), map[string]string{},
			"pacemaker.keytab does not exist (export the key of pacemaker/localhost@PACEMAKER.TEST with kadmin: ktadd -k"},
		{"keytab of another principal", serverJAAS("pacemaker/otherhost"), map[string]string{"pacemaker.keytab": string(f.serviceKeytab)},
			"has no key for pacemaker/otherhost@PACEMAKER.TEST (it holds keys for pacemaker/localhost@PACEMAKER.TEST)"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			files := map[string]string{"jaas.conf": tc.jaas}
			for k, v := range tc.files {
				files[k] = v
			}
			p := daemon.Start(t, daemon.Options{
				Config: "pacemaker.auth.method: KERBEROS\njava.security.auth.login.config: " + daemon.DirPlaceholder + "/jaas.conf\nnimbus.daemon.user: nimbus\n",
				Files:  files,
				Env:    []string{"KRB5_CONFIG=" + f.k.Krb5Conf},
				NoWait: true,
			})
			if code := p.Wait(15 * time.Second); code != 2 {
				t.Fatalf("exit code %d, want 2:\n%s", code, p.Log())
			}
			if !strings.Contains(p.Log(), tc.want) {
				t.Errorf("log does not say %q:\n%s", tc.want, p.Log())
			}
		})
	}
}

func (f *fixture) goClient(t *testing.T, name string) *gssapi.ClientMechanism {
	t.Helper()
	m, err := gssapi.NewClientMechanism(gssapi.ClientOptions{
		Principal: name,
		Keytab:    filepath.Join(f.dir, name+".keytab"),
		Krb5Conf:  f.k.Krb5Conf,
	})
	if err != nil {
		t.Fatalf("log in as %s: %v", name, err)
	}
	return m
}

func dial(t *testing.T, addr string, mech auth.ClientMechanism) (*client.Conn, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	c, err := client.Dial(ctx, addr, client.Options{Auth: mech})
	if err == nil {
		t.Cleanup(func() { c.Close() })
	}
	return c, err
}

// TestGoClientAndPacemakerctl: the same with our client package and with
// pacemakerctl --auth KERBEROS --jaas reading Storm's JAAS file.
func TestGoClientAndPacemakerctl(t *testing.T) {
	f := realm(t)
	p := f.startDaemon(t, "localhost", f.serviceKeytab, f.k.Krb5Conf)
	_, port, _ := net.SplitHostPort(p.Addr())
	addr := "localhost:" + port
	ctx := context.Background()
	key := "/workerbeats/topo-k/sup-1-6700"

	nimbus, err := dial(t, addr, f.goClient(t, "nimbus"))
	if err != nil {
		t.Fatalf("nimbus: %v", err)
	}
	if err := nimbus.SendPulse(ctx, key, []byte("beat-from-go")); err != nil {
		t.Fatal(err)
	}
	if got, found, err := nimbus.GetPulse(ctx, key); err != nil || !found || string(got) != "beat-from-go" {
		t.Fatalf("nimbus reads %q %v %v", got, found, err)
	}
	alice, err := dial(t, addr, f.goClient(t, "alice"))
	if err != nil {
		t.Fatalf("alice: %v", err)
	}
	if err := alice.SendPulse(ctx, key+"-alice", []byte("x")); err != nil {
		t.Errorf("alice may write: %v", err)
	}
	if _, _, err := alice.GetPulse(ctx, key); !errors.Is(err, client.ErrNotAuthorized) {
		t.Errorf("alice reads: err = %v, want NOT_AUTHORIZED", err)
	}

	srv := "--servers=" + addr
	out, stderr, code := f.runCtl(t, srv, "--auth", "KERBEROS", "--jaas", f.jaas["nimbus"], "get", key)
	if code != 0 || out != "beat-from-go" {
		t.Errorf("pacemakerctl as nimbus: exit %d, out %q, stderr %q", code, out, stderr)
	}
	_, stderr, code = f.runCtl(t, srv, "--auth", "KERBEROS", "--jaas", f.jaas["alice"], "get", key)
	if code != 3 {
		t.Errorf("pacemakerctl as alice: exit %d (want 3, not authorized), stderr %q", code, stderr)
	}
	_, stderr, code = f.runCtl(t, srv, "--auth", "KERBEROS", "--jaas", f.jaas["stale"], "get", key)
	if code == 0 || !strings.Contains(stderr, "Kerberos login as stale@PACEMAKER.TEST") {
		t.Errorf("pacemakerctl with an out-of-date keytab: exit %d, stderr %q", code, stderr)
	}
	requireLog(t, p.Log(), `read refused.*identity=alice@PACEMAKER\.TEST`)

	// useTicketCache=true: the TGT comes from kinit's credential cache.
	cc := filepath.Join(t.TempDir(), "krb5cc")
	if err := f.k.Kinit(cc, filepath.Join(f.dir, "nimbus.keytab"), "nimbus"); err != nil {
		t.Fatal(err)
	}
	cacheJAAS := filepath.Join(t.TempDir(), "cache.jaas")
	if err := os.WriteFile(cacheJAAS, []byte("PacemakerClient {\n  com.sun.security.auth.module.Krb5LoginModule required\n"+
		"  useTicketCache=true\n  ticketCache=\""+cc+"\"\n  serviceName=\"pacemaker\";\n};\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	out, stderr, code = f.runCtl(t, srv, "--auth", "KERBEROS", "--jaas", cacheJAAS, "get", key)
	if code != 0 || out != "beat-from-go" {
		t.Errorf("pacemakerctl from a credential cache: exit %d, out %q, stderr %q", code, out, stderr)
	}
}

// TestWrongServerKeytabAndReload: a daemon whose keytab does not match the
// KDC refuses every Kerberos handshake (JDK and Go), says why, and keeps
// serving; the right keytab and a SIGHUP fix it without a restart.
func TestWrongServerKeytabAndReload(t *testing.T) {
	f := realm(t)
	javaClasspath(t)
	p := f.startDaemon(t, "localhost", f.wrongKeytab, f.k.Krb5Conf)
	_, port, _ := net.SplitHostPort(p.Addr())
	addr := "localhost:" + port
	ctx := context.Background()

	out, code := f.runJava(t, f.jaas["nimbus"], "localhost", port, "refused")
	requireChecks(t, "JDK against a wrong keytab", out, code, "connection closed during the handshake")
	requireLog(t, p.Log(), `authentication failed; closing connection.*method=GSSAPI.*err=.*Kerberos ticket rejected.*decrypt`)

	if _, err := dial(t, addr, f.goClient(t, "nimbus")); !errors.Is(err, client.ErrHandshake) {
		t.Errorf("Go client against a wrong keytab: err = %v, want ErrHandshake", err)
	}
	worker, err := dial(t, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := worker.SendPulse(ctx, "/workerbeats/t/w-1", []byte("still serving")); err != nil {
		t.Fatalf("a worker's write after failed handshakes: %v", err)
	}

	if err := os.WriteFile(filepath.Join(p.Dir(), "pacemaker.keytab"), f.serviceKeytab, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := p.Signal(syscall.SIGHUP); err != nil {
		t.Fatal(err)
	}
	if !p.WaitLog("config reloaded", 10*time.Second) {
		t.Fatalf("no reload:\n%s", p.Log())
	}
	out, code = f.runJava(t, f.jaas["nimbus"], "localhost", port, "ok")
	requireChecks(t, "JDK after the keytab was fixed", out, code, "GET_PULSE reads back")
	nimbus, err := dial(t, addr, f.goClient(t, "nimbus"))
	if err != nil {
		t.Fatalf("Go client after reload: %v", err)
	}
	if got, _, err := nimbus.GetPulse(ctx, "/workerbeats/t/w-1"); err != nil || string(got) != "still serving" {
		t.Errorf("read after reload: %q %v", got, err)
	}
}

// TestExpiredTicket: tickets for pacemaker/shortlived live 3 s and this
// daemon allows 1 s of clock skew (krb5.conf clockskew, via KRB5_CONFIG).
// A token sent at once is accepted; one sent 5 s after it was made carries
// an expired ticket and is refused — from the JDK and from our client.
func TestExpiredTicket(t *testing.T) {
	f := realm(t)
	javaClasspath(t)
	p := f.startDaemon(t, "shortlived", f.shortKeytab, f.skewConf)
	_, port, _ := net.SplitHostPort(p.Addr())

	if err := rawHandshake(t, f.goClient(t, "nimbus"), p.Addr(), "shortlived", 0); err != nil {
		t.Fatalf("fresh ticket refused: %v", err)
	}

	var wg sync.WaitGroup
	var out string
	var code int
	wg.Add(1)
	go func() {
		defer wg.Done()
		out, code = f.runJava(t, f.jaas["nimbus"], "127.0.0.1", port, "refused", "shortlived", "5000")
	}()
	goErr := rawHandshake(t, f.goClient(t, "nimbus"), p.Addr(), "shortlived", 5*time.Second)
	wg.Wait()
	requireChecks(t, "JDK with an expired ticket", out, code, "connection closed during the handshake")
	if goErr == nil || !strings.Contains(goErr.Error(), "closed") {
		t.Errorf("Go client with an expired ticket: err = %v, want the connection closed", goErr)
	}
	if n := strings.Count(p.Log(), "service ticket provided has expired"); n != 2 {
		t.Errorf("%d log lines for expired tickets, want 2:\n%s", n, p.Log())
	}
}

var errClosed = errors.New("server closed the connection")

// rawHandshake authenticates on a plain connection to addr, naming the
// server host in the service principal, waiting delay between making the
// first token and sending it.
func rawHandshake(t *testing.T, mech *gssapi.ClientMechanism, addr, host string, delay time.Duration) error {
	t.Helper()
	cx, err := mech.NewClientExchange(host)
	if err != nil {
		return err
	}
	first, err := cx.Start()
	if err != nil {
		return err
	}
	time.Sleep(delay)
	nc, err := net.DialTimeout("tcp", addr, 5*time.Second)
	if err != nil {
		return err
	}
	defer nc.Close()
	_ = nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := nc.Write(wire.AppendFrame(nil, wire.NewSaslToken(first))); err != nil {
		return err
	}
	fr := wire.NewFrameReader(bufio.NewReader(nc), 1<<20)
	for {
		body, err := fr.Next()
		if err != nil {
			return fmt.Errorf("%w: %v", errClosed, err)
		}
		var m wire.Message
		if err := wire.Decode(body, &m); err != nil {
			return err
		}
		switch m.Type {
		case wire.ControlMessage:
			if code, err := wire.ParseControl(&m); err != nil || code != wire.ControlSaslComplete {
				return fmt.Errorf("control %d %v", code, err)
			}
			return nil
		case wire.SaslMessageToken:
			tok, err := wire.ParseSaslToken(&m)
			if err != nil {
				return err
			}
			resp, err := cx.Step(tok)
			if err != nil {
				return err
			}
			if _, err := nc.Write(wire.AppendFrame(nil, wire.NewSaslToken(resp))); err != nil {
				return err
			}
		default:
			return fmt.Errorf("unexpected %s", m.Type)
		}
	}
}
