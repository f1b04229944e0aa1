package daemon

import (
	"bytes"
	"strings"
	"testing"
)

// The shipped daemon (built without -tags pacemaker_testhooks) has no test
// hooks; help goes to stdout and a bad flag is reported once.
func TestFlags(t *testing.T) {
	var stdout, stderr bytes.Buffer
	if code := Run([]string{"--help"}, &stdout, &stderr); code != exitOK || stderr.Len() > 0 ||
		!strings.Contains(stdout.String(), "  --config FILE") || strings.Contains(stdout.String(), "wedge") {
		t.Fatalf("--help: exit %d\nstdout:\n%s\nstderr:\n%s", code, stdout.String(), stderr.String())
	}
	for _, flag := range []string{"--bogus", "--test-wedge-on-sigusr2"} {
		if TestHooks && flag != "--bogus" {
			continue
		}
		stdout.Reset()
		stderr.Reset()
		code := Run([]string{flag}, &stdout, &stderr)
		if code != exitConfig || stdout.Len() > 0 || stderr.String() != "pacemaker: flag provided but not defined: "+flag+" (try --help)\n" {
			t.Errorf("%s: exit %d, stdout %q, stderr %q", flag, code, stdout.String(), stderr.String())
		}
	}
}

func TestRoundRate(t *testing.T) {
	for in, want := range map[float64]float64{0.11666666666666667: 0.12, 7.466: 7.5, 1234.56: 1235, 0: 0} {
		if got := roundRate(in); got != want {
			t.Errorf("roundRate(%v) = %v, want %v", in, got, want)
		}
	}
}
