package ctl

import (
	"bytes"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

func run(args []string, stdin string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	code = Main(args, strings.NewReader(stdin), &out, &errb)
	return code, out.String(), errb.String()
}

// Help goes to stdout with two-dash flags, in one style for pacemakerctl
// and every command; the main help lists each command's flags.
func TestHelp(t *testing.T) {
	code, out, errs := run([]string{"--help"}, "")
	if code != ExitOK || errs != "" {
		t.Fatalf("--help: exit %d, stderr %q", code, errs)
	}
	for _, want := range []string{"Commands:\n", "  --servers HOST:PORT", "  --timeout DURATION", "[--max-depth LEVELS]", "Exit status:", "4 some servers failed"} {
		if !strings.Contains(out, want) {
			t.Errorf("--help lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "\n  -servers") || strings.Contains(out, "bench") {
		t.Errorf("--help:\n%s", out)
	}
	names := make([]string, 0, len(commands))
	for n := range commands {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		code, out, errs := run([]string{n, "--help"}, "")
		if code != ExitOK || errs != "" || !strings.HasPrefix(out, "Usage: pacemakerctl [flags] "+n) || !strings.Contains(out, "Exit status:") {
			t.Errorf("%s --help: exit %d, stderr %q, stdout:\n%s", n, code, errs, out)
		}
	}
}

// A bad flag is reported once, with the dashes the user typed.
func TestBadFlagOnce(t *testing.T) {
	for _, args := range [][]string{{"--bogus"}, {"status", "--bogus"}} {
		code, out, errs := run(args, "")
		if code != ExitUsage || out != "" || strings.Count(errs, "\n") != 1 || !strings.Contains(errs, "not defined: --bogus") {
			t.Errorf("%q: exit %d, stdout %q, stderr %q", args, code, out, errs)
		}
	}
}

func TestParseServers(t *testing.T) {
	tests := []struct {
		in   string
		want []string
		err  string
	}{
		{"a:1,b:2", []string{"a:1", "b:2"}, ""},
		{" pm1 , [::1]:7000,::1", []string{"pm1:6699", "[::1]:7000", "[::1]:6699"}, ""},
		{"a:b:c", nil, "want host:port"},
		{"pm1:", nil, "port"},
		{"pm1:70000", nil, "port"},
		{":6699", nil, "want host:port"},
		{" , ", nil, "lists no server"},
	}
	for _, tt := range tests {
		got, err := parseServers(tt.in)
		if tt.err != "" {
			if err == nil || !strings.Contains(err.Error(), tt.err) {
				t.Errorf("parseServers(%q) = %v, %v; want error %q", tt.in, got, err, tt.err)
			}
			continue
		}
		if err != nil || !slices.Equal(got, tt.want) {
			t.Errorf("parseServers(%q) = %v, %v; want %v", tt.in, got, err, tt.want)
		}
	}
}

// Exit codes: 2 for the operator's own input, 3 when no server answered,
// 4 when some did not (named), 1 for "not there".
func TestExitCodes(t *testing.T) {
	t.Setenv("PACEMAKER_SERVERS", "")
	a, b, down, down2 := serve(t), serve(t), closedPort(t), closedPort(t)
	both, half := a+","+b, a+","+down
	dir := t.TempDir()
	tooBig := filepath.Join(dir, "big")
	if err := os.WriteFile(tooBig, make([]byte, wire.DefaultMaxFrame), 0o600); err != nil {
		t.Fatal(err)
	}
	noPort := filepath.Join(dir, "storm.yaml")
	if err := os.WriteFile(noPort, []byte("pacemaker.thrift.message.size.max: 100\npacemaker.servers: [\""+a+"\"]\n"), 0o600); err != nil {
		t.Fatal(err)
	}

	tests := []struct {
		name   string
		args   []string
		stdin  string
		code   int
		stdout string // substring
		stderr string // substring
	}{
		// Each key on both servers, so that either one alone still has it.
		{"send", []string{"--servers", a, "send", "/wb/t/w1", "-"}, "hello", ExitOK, "", ""},
		{"send to the other", []string{"--servers", b, "send", "/wb/t/w1"}, "hello", ExitOK, "", ""},
		{"send below it", []string{"--servers", a, "send", "/wb/t/w1/x", "-"}, "x", ExitOK, "", ""},
		{"flags after the command", []string{"send", "--servers", b, "/wb/t/w2"}, "hi", ExitOK, "", ""},
		{"get", []string{"--servers", both, "get", "/wb/t/w1"}, "", ExitOK, "hello", ""},
		{"get missing", []string{"--servers", both, "get", "/nope"}, "", ExitFalse, "", "no such key"},
		{"ls", []string{"--servers", both, "ls", "/wb/t"}, "", ExitOK, "w1\nw2\n", ""},
		{"exists", []string{"--servers", both, "exists", "/wb/t/w1"}, "", ExitOK, "true", ""},
		{"exists not", []string{"--servers", both, "exists", "/wb/t"}, "", ExitFalse, "false", ""},

		{"missing local file", []string{"--servers", both, "send", "/k", filepath.Join(dir, "absent")}, "", ExitUsage, "", "no such file"},
		{"missing JAAS file", []string{"--servers", both, "--auth", "DIGEST", "--jaas", filepath.Join(dir, "absent.conf"), "ls", "/"}, "", ExitUsage, "", "absent.conf"},
		{"malformed servers", []string{"--servers", "a:b:c", "ls", "/"}, "", ExitUsage, "", `"a:b:c"`},
		{"missing storm.yaml", []string{"--storm-config", filepath.Join(dir, "absent.yaml"), "ls", "/"}, "", ExitUsage, "", "absent.yaml"},
		{"unknown command", []string{"frobnicate"}, "", ExitUsage, "", "unknown command"},
		{"heartbeat over the frame maximum", []string{"--servers", both, "send", "/k", tooBig}, "", ExitUsage, "",
			"over the 10485760-byte maximum of pacemaker.thrift.message.size.max"},
		{"the storm.yaml's frame maximum", []string{"--storm-config", noPort, "send", "/k", "-"}, strings.Repeat("x", 100), ExitUsage, "", "100-byte maximum"},

		{"unreachable", []string{"--servers", down, "ls", "/"}, "", ExitFailure, "", "server " + down + " failed"},
		{"send with every server down", []string{"--servers", down + "," + down2, "send", "/k", "-"}, "x", ExitFailure, "", "server " + down2 + ": "},
		{"ls with one server down", []string{"--servers", half, "ls", "/wb/t"}, "", ExitPartial, "w1\n", "server " + down + " failed"},
		{"get with one server down", []string{"--servers", half, "get", "/wb/t/w1"}, "", ExitPartial, "hello", down},
		{"exists is true with one down", []string{"--servers", half, "exists", "/wb/t/w1"}, "", ExitOK, "true", ""},
		{"exists is unknown with one down", []string{"--servers", half, "exists", "/nope"}, "", ExitPartial, "", down},
		{"delete-path with one down", []string{"--servers", half, "delete-path", "/other"}, "", ExitPartial, "on " + a, down},

		{"delete a directory", []string{"--servers", both, "delete", "/wb/t"}, "", ExitFalse, "", "/wb/t is not a key but a directory (2 names below it); nothing deleted"},
		{"delete a missing key", []string{"--servers", both, "delete", "/nope"}, "", ExitFalse, "", "no such key; nothing deleted"},
		{"delete a key", []string{"--servers", both, "delete", "/wb/t/w2"}, "", ExitOK, "deleted key /wb/t/w2 on ", ""},
		{"the key is gone", []string{"--servers", both, "exists", "/wb/t/w2"}, "", ExitFalse, "false", ""},
		{"the key below the deleted key stays", []string{"--servers", both, "get", "/wb/t/w1/x"}, "", ExitOK, "x", ""},
		{"delete-path", []string{"--servers", both, "delete-path", "/wb/t/w1"}, "", ExitOK, "deleted /wb/t/w1 and every key below it on", ""},
		{"delete-path took the key and below", []string{"--servers", both, "exists", "/wb/t/w1/x"}, "", ExitFalse, "false", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, out, errs := run(tt.args, tt.stdin)
			if code != tt.code || !strings.Contains(out, tt.stdout) || !strings.Contains(errs, tt.stderr) {
				t.Fatalf("exit %d (want %d)\nstdout: %q (want %q)\nstderr: %q (want %q)", code, tt.code, out, tt.stdout, errs, tt.stderr)
			}
			if tt.code == ExitOK && errs != "" {
				t.Fatalf("stderr on success: %q", errs)
			}
		})
	}
}
