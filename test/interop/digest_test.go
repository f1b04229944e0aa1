package interop

import (
	"net"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
)

// digestDaemon is a DIGEST daemon whose JAAS file is in Storm's documented,
// module-less form.
var digestDaemon = daemon.Options{
	Config: "pacemaker.auth.method: DIGEST\njava.security.auth.login.config: " + daemon.DirPlaceholder + "/jaas.conf\n",
	Files:  map[string]string{"jaas.conf": "PacemakerDigest {\n  username=\"pmuser\"\n  password=\"pmsecret\";\n};\n"},
}

// TestJavaDigest authenticates with the JDK's own DIGEST-MD5 client, set up
// as Storm's SaslNettyClient does, reads back what it wrote; then a wrong
// password is refused and the daemon goes on serving the right one.
func TestJavaDigest(t *testing.T) {
	classpath := buildJava(t, "java/digest/InteropDigest.java")
	p := daemon.Start(t, digestDaemon)
	host, port, _ := net.SplitHostPort(p.Addr())
	summary := regexp.MustCompile(`(?m)^interop-digest: (\d+) checks, 0 failures$`)

	out, code := runJava(t, time.Minute, classpath, "InteropDigest", host, port, "pmuser", "pmsecret", "ok")
	t.Logf("right password:\n%s", out)
	if code != 0 || !summary.MatchString(out) {
		t.Fatalf("InteropDigest ok exited %d", code)
	}
	for _, c := range []string{"rspauth verified by the JDK client", "SASL_COMPLETE after the exchange", "GET_PULSE reads back", "GET_ALL_NODES_FOR_PATH", "EXISTS"} {
		if !strings.Contains(out, "ok   "+c) {
			t.Errorf("no passing check %q", c)
		}
	}

	out, code = runJava(t, time.Minute, classpath, "InteropDigest", host, port, "pmuser", "pmsecret", "wrong")
	t.Logf("wrong password:\n%s", out)
	if code != 0 || !strings.Contains(out, "ok   connection closed after a wrong response") {
		t.Fatalf("InteropDigest wrong exited %d", code)
	}
	if !p.WaitLog("authentication failed", 30*time.Second) {
		t.Errorf("no log line for the failed handshake:\n%s", p.Log())
	}
	if !regexp.MustCompile(`authentication failed.*peer=127\.0\.0\.1:\d+.*wrong password`).MatchString(p.Log()) {
		t.Errorf("the failed-handshake log line names no peer or reason:\n%s", p.Log())
	}

	// Still serving.
	out, code = runJava(t, time.Minute, classpath, "InteropDigest", host, port, "pmuser", "pmsecret", "ok")
	if code != 0 {
		t.Fatalf("after a wrong password, the right one fails (exit %d):\n%s", code, out)
	}
	if err := p.Stop(); err != nil {
		t.Errorf("daemon stop: %v", err)
	}
}
