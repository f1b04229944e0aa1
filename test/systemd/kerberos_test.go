package systemd

import (
	"fmt"
	"os"
	"path/filepath"
	"syscall"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth/gssapi"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/kdc"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// answersFirstToken sends tok as a connection's first SASL token and
// reports whether the daemon answered (the AP-REQ was accepted) rather
// than closing the connection.
func answersFirstToken(t *testing.T, addr string, tok []byte) bool {
	t.Helper()
	c, err := dial(addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.nc.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.nc.Write(wire.AppendFrame(nil, wire.NewSaslToken(tok))); err != nil {
		return false
	}
	_, err = c.fr.Next()
	return err == nil
}

// TestRestartKeepsKerberosReplayCache: issue 15, finding 3. An AP-REQ the
// first daemon accepted is refused by its successor after a restart
// through the fd store, as a replay: the replay cache went along with the
// heartbeats. One made before the restart and never used is accepted
// (a cold start would refuse it: it predates the process).
func TestRestartKeepsKerberosReplayCache(t *testing.T) {
	t.Parallel()
	need(t, "sh")
	if err := kdc.Available(); err != nil {
		t.Skipf("SKIPPING the Kerberos hand-over test: %v", err)
	}
	k := kdc.Start(t, kdc.Options{})
	k.MustAddPrincipal(t, "pacemaker/localhost", "nimbus")
	dir := t.TempDir()
	svcKT, nimbusKT := filepath.Join(dir, "pacemaker.keytab"), filepath.Join(dir, "nimbus.keytab")
	k.MustKeytab(t, svcKT, "pacemaker/localhost")
	k.MustKeytab(t, nimbusKT, "nimbus")
	jaas := filepath.Join(dir, "jaas.conf")
	if err := os.WriteFile(jaas, []byte(fmt.Sprintf("PacemakerServer {\n  com.sun.security.auth.module.Krb5LoginModule required\n"+
		"  useKeyTab=true\n  keyTab=%q\n  principal=%q;\n};\n", svcKT, k.Principal("pacemaker/localhost"))), 0o600); err != nil {
		t.Fatal(err)
	}
	o := procOptions{
		config: "pacemaker.auth.method: KERBEROS\njava.security.auth.login.config: " + jaas + "\nnimbus.daemon.user: nimbus\n",
	}
	m := newManager(t)
	sock, addr := heldSocket(t)
	o.env = []string{"NOTIFY_SOCKET=" + m.path, "KRB5_CONFIG=" + k.Krb5Conf}
	o.files, o.names = []*os.File{sock}, []string{"pacemaker"}
	p1 := startProc(t, o)
	m.expect("READY=1", 15*time.Second, func(msg notifyMsg) bool { return msg.has("READY", "1") })

	cm, err := gssapi.NewClientMechanism(gssapi.ClientOptions{Principal: "nimbus", Keytab: nimbusKT, Krb5Conf: k.Krb5Conf})
	if err != nil {
		t.Fatal(err)
	}
	firstToken := func() []byte {
		cx, err := cm.NewClientExchange("localhost")
		if err != nil {
			t.Fatal(err)
		}
		tok, err := cx.Start()
		if err != nil {
			t.Fatal(err)
		}
		return tok
	}
	captured := firstToken()
	if !answersFirstToken(t, addr, captured) {
		t.Fatal("the first daemon refused a fresh AP-REQ")
	}

	// Made now, sent only to the successor: a client whose connection
	// broke at the restart. The successor takes over its predecessor's
	// start as the time before which it refuses authenticators.
	unsent := firstToken()

	p1.signal(syscall.SIGTERM)
	if code := p1.wait(15 * time.Second); code != 0 {
		t.Fatalf("first daemon exit status %d", code)
	}
	for _, s := range m.stored() {
		o.files, o.names = append(o.files, s.file), append(o.names, s.name)
	}
	p2 := startProc(t, o)
	m.expect("READY=1 from the next daemon", 15*time.Second, func(msg notifyMsg) bool { return msg.has("READY", "1") })
	p2.waitLog("took over the Kerberos replay cache", 5*time.Second)

	if answersFirstToken(t, addr, captured) {
		t.Fatal("the successor accepted an AP-REQ its predecessor had accepted")
	}
	p2.waitLog("replayed authenticator from nimbus@"+k.Realm, 5*time.Second)
	if !answersFirstToken(t, addr, unsent) {
		t.Fatal("the successor refused an AP-REQ made before it started that nobody had used")
	}
	if !answersFirstToken(t, addr, firstToken()) {
		t.Fatal("the successor refused a fresh AP-REQ")
	}
	p2.signal(syscall.SIGTERM)
	p2.wait(15 * time.Second)
}
