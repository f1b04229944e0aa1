// Package interop checks the real daemon against Apache Thrift's own Java
// library, the one Storm's Java peers are built on.
package interop

import (
	"net"
	"os"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
)

func TestMain(m *testing.M) { os.Exit(daemon.Main(m)) }

// TestJavaNone runs java/none/InteropNone.java against a daemon with auth
// NONE: every request type, with message ids, each answer checked, plus a
// pipelined burst.
func TestJavaNone(t *testing.T) {
	classpath := buildJava(t, "java/none/InteropNone.java")
	p := daemon.Start(t, daemon.Options{})
	host, port, _ := net.SplitHostPort(p.Addr())

	out, code := runJava(t, time.Minute, classpath, "InteropNone", host, port)
	t.Logf("InteropNone output:\n%s", out)
	if code != 0 {
		t.Fatalf("InteropNone exited %d", code)
	}
	m := regexp.MustCompile(`(?m)^interop-none: (\d+) checks, (\d+) failures$`).FindStringSubmatch(out)
	if m == nil {
		t.Fatal("no summary line")
	}
	// 26 checks as written today; fewer means the program skipped some.
	if n, _ := strconv.Atoi(m[1]); n < 26 || m[2] != "0" {
		t.Fatalf("summary: %s", m[0])
	}
	for _, req := range []string{"SEND_PULSE", "GET_PULSE hit", "GET_PULSE miss", "GET_ALL_NODES_FOR_PATH /wb/topo-1",
		"GET_ALL_NODES_FOR_PATH /wb", "EXISTS true", "EXISTS false", "CREATE_PATH", "GET_ALL_PULSE_FOR_PATH",
		"DELETE_PULSE_ID", "DELETE_PATH", "GET_ALL_NODES_FOR_PATH after DELETE_PATH", "pipelined"} {
		if !strings.Contains(out, "ok   "+req) {
			t.Errorf("no passing check for %s", req)
		}
	}
	if strings.Contains(p.Log(), "level=ERROR") {
		t.Errorf("daemon logged an error:\n%s", p.Log())
	}
	if err := p.Stop(); err != nil {
		t.Errorf("daemon stop: %v", err)
	}
}
