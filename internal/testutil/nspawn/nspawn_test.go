package nspawn

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestBootRunAndNetns boots a container, runs commands in it, and reaches a
// listener inside it from this process through InNetns.
func TestBootRunAndNetns(t *testing.T) {
	m := Boot(t, Options{})

	tests := []struct {
		name string
		args []string
		want string
	}{
		{"systemd is PID 1", []string{"cat", "/proc/1/comm"}, "systemd"},
		{"hostname is the machine name", []string{"hostname"}, m.Name},
		{"Debian 12", []string{"cat", "/etc/debian_version"}, "12."},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if out := m.MustRun(t, tt.args...); !strings.Contains(out, tt.want) {
				t.Errorf("%v: got %q, want it to contain %q", tt.args, out, tt.want)
			}
		})
	}

	m.WriteFile(t, "/root/hello", []byte("hi\n"), 0o600)
	if out := m.MustRun(t, "cat", "/root/hello"); out != "hi\n" {
		t.Errorf("file written in: got %q", out)
	}
	if r := m.Run("false"); r.ExitCode() != 1 {
		t.Errorf("false: exit %d, want 1", r.ExitCode())
	}

	// A listener made in the container's network is not on this machine's
	// loopback; a dial made in it reaches it.
	var ln net.Listener
	if err := m.InNetns(func() (err error) {
		ln, err = net.Listen("tcp", "127.0.0.1:0")
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		if c, err := ln.Accept(); err == nil {
			c.Write([]byte("ok"))
			c.Close()
		}
	}()
	var c net.Conn
	if err := m.InNetns(func() (err error) {
		c, err = net.Dial("tcp", ln.Addr().String())
		return err
	}); err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 2)
	if _, err := c.Read(buf); err != nil || string(buf) != "ok" {
		t.Fatalf("read through the container's network: %q, %v", buf, err)
	}
	if out := m.MustRun(t, "cat", "/proc/net/tcp"); !strings.Contains(strings.ToUpper(out), ":"+strings.ToUpper(hexPort(ln.Addr()))) {
		t.Errorf("the listener is not in the container's network:\n%s", out)
	}
}

func hexPort(a net.Addr) string {
	p := a.(*net.TCPAddr).Port
	const digits = "0123456789ABCDEF"
	return string([]byte{digits[p>>12&15], digits[p>>8&15], digits[p>>4&15], digits[p&15]})
}

// TestExecWithoutSystemd runs commands in a container that is not booted:
// no systemd, as in a chroot, and the root's changes stay in its overlay.
func TestExecWithoutSystemd(t *testing.T) {
	root := NewRoot(t, Options{})
	tests := []struct {
		name string
		args []string
		code int
	}{
		{"no systemd running", []string{"test", "-d", "/run/systemd/system"}, 1},
		{"writes stay in the overlay", []string{"touch", "/etc/pm-overlay-probe"}, 0},
		{"a failing command", []string{"false"}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if r := Exec(t, root, tt.args...); r.ExitCode() != tt.code {
				t.Errorf("%v: exit %d, want %d\n%s", tt.args, r.ExitCode(), tt.code, r)
			}
		})
	}
	if _, err := os.Stat(filepath.Join(root, "etc", "pm-overlay-probe")); err != nil {
		t.Errorf("file made in the container: %v", err)
	}
	if _, err := os.Stat(filepath.Join(CachedRoot(t, nil), "etc", "pm-overlay-probe")); err == nil {
		t.Errorf("the cached root was written to")
	}
}
