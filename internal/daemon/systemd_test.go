package daemon

import (
	"bytes"
	"log/slog"
	"net"
	"os"
	"strconv"
	"strings"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/config"
)

// TestWarnPassedAddr: the config asking for another port or address than
// the socket systemd passed is logged, not silently ignored.
func TestWarnPassedAddr(t *testing.T) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	port := ln.Addr().(*net.TCPAddr).Port
	tests := []struct {
		name         string
		port         int
		listen       string
		wantPortWarn bool
		wantListen   bool
	}{
		{"same port, every address", port, "", false, false},
		{"other port", port + 1, "", true, false},
		{"listen matches", port, "127.0.0.1", false, false},
		{"listen differs", port, "10.1.2.3", false, true},
		{"listen with its own port", port + 1, "127.0.0.1:" + strconv.Itoa(port), false, false},
		{"listen with another port", port, "127.0.0.1:" + strconv.Itoa(port+1), true, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			log := slog.New(slog.NewTextHandler(&buf, nil))
			warnPassedAddr(&config.Config{Settings: config.Settings{Port: tc.port, Listen: tc.listen}}, []net.Listener{ln}, log)
			out := buf.String()
			if got := strings.Contains(out, "pacemaker.port differs"); got != tc.wantPortWarn {
				t.Errorf("port warning %v, want %v:\n%s", got, tc.wantPortWarn, out)
			}
			if got := strings.Contains(out, "pacemaker.listen differs"); got != tc.wantListen {
				t.Errorf("listen warning %v, want %v:\n%s", got, tc.wantListen, out)
			}
		})
	}
}

func TestFDStoreEnabled(t *testing.T) {
	tests := []struct {
		env  string
		set  bool
		want bool
	}{
		{set: false, want: true}, // systemd < 254 does not say: try
		{env: "16", set: true, want: true},
		{env: "0", set: true, want: false},
		{env: "junk", set: true, want: false},
	}
	for _, tc := range tests {
		if tc.set {
			t.Setenv("FDSTORE", tc.env)
		} else {
			t.Setenv("FDSTORE", "")
			unsetenv(t, "FDSTORE")
		}
		if got := fdStoreEnabled(); got != tc.want {
			t.Errorf("FDSTORE=%q (set %v): %v, want %v", tc.env, tc.set, got, tc.want)
		}
	}
}

func unsetenv(t *testing.T, name string) {
	t.Helper()
	if err := os.Unsetenv(name); err != nil {
		t.Fatal(err)
	}
}
