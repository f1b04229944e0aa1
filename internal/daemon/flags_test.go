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
