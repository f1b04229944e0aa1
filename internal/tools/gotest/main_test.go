package main

import (
	"bytes"
	"os"
	"testing"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/golden"
)

// TestSummarize feeds recorded `go test -json` events (a pass, a skip with
// a two-line reason, a skipped subtest, a failed subtest, a build failure,
// a panic, a timeout) and compares the plain output and the counts.
func TestSummarize(t *testing.T) {
	in, err := os.ReadFile("testdata/events.json")
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		failOnSkip bool
		golden     string
	}{
		{false, "testdata/summary.golden"},
		{true, "testdata/summary-ci.golden"},
	} {
		var out bytes.Buffer
		s := summarize(bytes.NewReader(in), &out, tt.failOnSkip)
		golden.Check(t, tt.golden, out.Bytes())
		if s.passed != 3 || s.failed != 3 || len(s.skipped) != 2 {
			t.Errorf("counts: %d passed, %d failed, %v skipped", s.passed, s.failed, s.skipped)
		}
	}
}

func TestOnCI(t *testing.T) {
	for value, want := range map[string]bool{"": false, "false": false, "0": false, "no": false, "FALSE": false,
		"true": true, "1": true, "yes": true, "woodpecker": true} {
		if got := onCI(value); got != want {
			t.Errorf("onCI(%q) = %v, want %v", value, got, want)
		}
	}
}
