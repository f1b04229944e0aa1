package cliflag

import (
	"bytes"
	"errors"
	"io"
	"strings"
	"testing"
	"time"
)

func TestParse(t *testing.T) {
	tests := []struct {
		args []string
		err  string
	}{
		{[]string{"--bogus"}, "flag provided but not defined: --bogus"},
		{[]string{"-bogus"}, "flag provided but not defined: --bogus"},
		{[]string{"--timeout"}, "flag needs an argument: --timeout"},
		{[]string{"--timeout", "soon"}, `invalid value "soon" for flag --timeout`},
		{[]string{"--name", "-x"}, ""},
	}
	for _, tt := range tests {
		fs := New("t")
		fs.Duration("timeout", time.Second, "how long")
		fs.String("name", "", "a `name`")
		var out bytes.Buffer
		err := Parse(fs, tt.args, &out, func(w io.Writer) {})
		if (err == nil) != (tt.err == "") || (err != nil && !strings.Contains(err.Error(), tt.err)) {
			t.Errorf("Parse(%q) = %v, want %q", tt.args, err, tt.err)
		}
	}
}

func TestHelp(t *testing.T) {
	fs := New("t")
	fs.Duration("timeout", 10*time.Second, "how long")
	fs.String("servers", "", "comma-separated `host:port` list")
	fs.Int("n", 3, "how many")
	fs.Bool("json", false, "print JSON")
	fs.Bool("hidden", false, "")
	var out bytes.Buffer
	err := Parse(fs, []string{"--help"}, &out, func(w io.Writer) { PrintFlags(w, fs) })
	if !errors.Is(err, ErrHelp) {
		t.Fatalf("--help: %v", err)
	}
	want := "  --json               print JSON\n" +
		"  --n N                how many (default 3)\n" +
		"  --servers HOST:PORT  comma-separated host:port list\n" +
		"  --timeout DURATION   how long (default 10s)\n"
	if out.String() != want {
		t.Errorf("help:\n%s\nwant:\n%s", out.String(), want)
	}
	if got := Synopsis(fs); got != "[--json] [--n N] [--servers HOST:PORT] [--timeout DURATION]" {
		t.Errorf("Synopsis = %q", got)
	}
}

func TestWrap(t *testing.T) {
	if got := Wrap("aa bb cc dd", 5, "  "); got != "aa bb\n  cc\n  dd" {
		t.Errorf("Wrap = %q", got)
	}
}
