package config

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
)

func writeFile(t *testing.T, body string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), "pacemaker.yaml")
	if err := os.WriteFile(p, []byte(body), 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}

func TestDefaultsAreStorms(t *testing.T) {
	c, err := Load(writeFile(t, ""), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Port != 6699 || c.AuthMethod != auth.None || c.MaxThreads != 50 || c.MaxFrame != 10485760 {
		t.Fatalf("defaults: %+v", c)
	}
}

func TestLayers(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		env   []string
		flags Overrides
		check func(*Config) bool
		src   string // expected source of pacemaker.port, as a substring
	}{
		{"file flat keys", "pacemaker.port: 7000\npacemaker.auth.method: digest\n", nil, nil,
			func(c *Config) bool { return c.Port == 7000 && c.AuthMethod == auth.Digest }, "pacemaker.yaml"},
		{"file nested keys", "pacemaker:\n  port: 7001\n  heartbeat:\n    ttl:\n      secs: 90\n", nil, nil,
			func(c *Config) bool { return c.Port == 7001 && c.HeartbeatTTL == 90*time.Second }, "pacemaker.yaml"},
		{"env beats file", "pacemaker.port: 7000\n", []string{"PACEMAKER_PORT=7002", "HOME=/root"}, nil,
			func(c *Config) bool { return c.Port == 7002 }, "PACEMAKER_PORT"},
		{"flag beats env", "pacemaker.port: 7000\n", []string{"PACEMAKER_PORT=7002"}, Overrides{"pacemaker.port": "7003"},
			func(c *Config) bool { return c.Port == 7003 }, "flag"},
		{"env list", "", []string{"PACEMAKER_KERBEROS_USERS=a, b", "PACEMAKER_NIMBUS_DAEMON_USER=nimbus", "PACEMAKER_AUTH_METHOD=KERBEROS"}, nil,
			func(c *Config) bool {
				return len(c.KerberosUsers) == 2 && c.KerberosUsers[1] == "b" && c.NimbusUser == "nimbus"
			}, "defaults"},
		{"storm.yaml lines are ignored", "storm.zookeeper.servers: [a, b]\npacemaker.servers: [h1]\npacemaker.childopts: \"-Xmx1g\"\nnimbus.daemon.user: nimbus\n", nil, nil,
			func(c *Config) bool { return c.NimbusUser == "nimbus" && len(c.Notes) == 3 }, "defaults"},
		{"removed read loop key is ignored with a note", "pacemaker.io.read.loop: callback\n", nil, nil,
			func(c *Config) bool { return len(c.Notes) == 1 && c.Notes[0].Key == "pacemaker.io.read.loop" }, "defaults"},
		{"kerberos users yaml list", "pacemaker.kerberos.users: [ops, nimbus2]\n", nil, nil,
			func(c *Config) bool { return len(c.KerberosUsers) == 2 }, "defaults"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := Load(writeFile(t, tt.file), tt.env, tt.flags)
			if err != nil {
				t.Fatal(err)
			}
			if !tt.check(c) {
				t.Fatalf("unexpected config: %+v", c)
			}
			if !strings.Contains(c.Source["pacemaker.port"], tt.src) {
				t.Fatalf("port source %q, want it to mention %q", c.Source["pacemaker.port"], tt.src)
			}
		})
	}
}

func TestInvalid(t *testing.T) {
	tests := []struct {
		name  string
		file  string
		env   []string
		flags Overrides
		want  []string // substrings of the error
	}{
		{"port out of range", "pacemaker.port: 70000\n", nil, nil, []string{"pacemaker.port", "70000", "pacemaker.yaml", "between"}},
		{"port wrong type", "pacemaker.port: [1]\n", nil, nil, []string{"pacemaker.port", "whole number"}},
		{"port fraction", "pacemaker.port: 1.5\n", nil, nil, []string{"pacemaker.port", "whole number"}},
		{"unknown auth", "pacemaker.auth.method: SSL\n", nil, nil, []string{"pacemaker.auth.method", "SSL", "NONE, DIGEST or KERBEROS"}},
		{"bad env", "", []string{"PACEMAKER_PORT=abc"}, nil, []string{"PACEMAKER_PORT", "abc"}},
		{"bad flag", "", nil, Overrides{"pacemaker.log.level": "loud"}, []string{"pacemaker.log.level", "loud", "flag"}},
		{"bad yaml", "pacemaker.port: [\n", nil, nil, []string{"pacemaker.yaml", "YAML"}},
		{"bool", "pacemaker.auth.writes: maybe\n", nil, nil, []string{"pacemaker.auth.writes", "true or false"}},
		{"kerberos without nimbus user", "pacemaker.auth.method: KERBEROS\n", nil, nil, []string{"nimbus.daemon.user"}},
		{"auth writes with NONE", "pacemaker.auth.writes: true\n", nil, nil, []string{"pacemaker.auth.writes", "DIGEST or KERBEROS"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Load(writeFile(t, tt.file), tt.env, tt.flags)
			var ce *Error
			if !errors.As(err, &ce) {
				t.Fatalf("want *Error, got %v", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

func TestMissingExplicitFile(t *testing.T) {
	_, err := Load(filepath.Join(t.TempDir(), "nope.yaml"), nil, nil)
	if err == nil || !strings.Contains(err.Error(), "nope.yaml") {
		t.Fatalf("err = %v", err)
	}
}

func TestPrintListsEveryKey(t *testing.T) {
	c, err := Load(writeFile(t, "pacemaker.port: 7000\n"), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	out := c.Print()
	for _, d := range Keys {
		if !strings.Contains(out, d.key+": ") {
			t.Errorf("Print lacks %s", d.key)
		}
	}
	if !strings.Contains(out, "pacemaker.port: 7000  # ") {
		t.Errorf("Print: %s", out)
	}
}
