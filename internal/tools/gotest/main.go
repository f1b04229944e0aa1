// Command gotest runs `go test -json` with the given arguments and prints
// what plain `go test` prints (ok/FAIL lines, and the output of failed
// tests), then the list of skipped tests with their reasons and a last line
// `gotest: N passed, N failed, N skipped`. A skip hides a test that did not
// run, so when the CI environment variable is set (to anything but "false",
// "0" or "no") any skip fails the run: on CI every tool a test needs is
// installed by scripts/install-deps.sh.
//
//	go run ./internal/tools/gotest -count=1 ./...
//
// The go command is $GO, or go.
package main

import (
	"bufio"
	"cmp"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
)

func main() {
	goCmd := cmp.Or(os.Getenv("GO"), "go")
	cmd := exec.Command(goCmd, append([]string{"test", "-json"}, os.Args[1:]...)...)
	cmd.Stderr = os.Stderr
	out, err := cmd.StdoutPipe()
	if err != nil {
		fmt.Fprintf(os.Stderr, "gotest: %v\n", err)
		os.Exit(2)
	}
	if err := cmd.Start(); err != nil {
		fmt.Fprintf(os.Stderr, "gotest: %v\n", err)
		os.Exit(2)
	}
	ci := os.Getenv("CI")
	s := summarize(out, os.Stdout, onCI(ci))
	code := 0
	if err := cmd.Wait(); err != nil {
		var exit *exec.ExitError
		if !errors.As(err, &exit) {
			fmt.Fprintf(os.Stderr, "gotest: %s test: %v\n", goCmd, err)
			os.Exit(2)
		}
		code = exit.ExitCode()
	}
	if code == 0 && s.failed > 0 {
		code = 1 // cannot happen with go test's own exit status; kept for safety
	}
	if len(s.skipped) > 0 && onCI(ci) {
		code = cmp.Or(code, 1)
	}
	os.Exit(code)
}

// onCI tells whether the CI environment variable's value means "this is a
// CI run" (CI=true, CI=1, CI=yes...; not empty, "false" or "0").
func onCI(value string) bool {
	switch strings.ToLower(value) {
	case "", "false", "0", "no":
		return false
	}
	return true
}

// event is one line of `go test -json` (cmd/test2json).
type event struct {
	Action     string
	Package    string
	ImportPath string // build-output events
	Test       string
	Output     string
}

// skip is one skipped test and the first line of its reason.
type skip struct{ pkg, test, reason string }

type summary struct {
	passed, failed int
	skipped        []skip
}

// fileLine matches the prefix testing puts on t.Log and t.Skip lines.
var fileLine = regexp.MustCompile(`^\s+\S+\.go:\d+: `)

// summarize reads go test's JSON events from r and writes plain go test
// output to w, followed by the skip list and the counts; failOnSkip says
// that skips fail the run.
func summarize(r io.Reader, w io.Writer, failOnSkip bool) summary {
	var s summary
	// Output of each running top-level test (subtests included), by
	// package and top-level name; printed only if it fails.
	buffered := map[[2]string][]string{}
	sc := bufio.NewScanner(r)
	sc.Buffer(nil, 16<<20)
	for sc.Scan() {
		var e event
		if err := json.Unmarshal(sc.Bytes(), &e); err != nil || e.Action == "" {
			fmt.Fprintln(w, sc.Text()) // not an event: pass it on
			continue
		}
		if e.Action == "build-output" {
			io.WriteString(w, e.Output)
			continue
		}
		if e.Test == "" {
			// The package speaks while tests of it still run only when it
			// ends abnormally (a timeout, a panic): show what they printed.
			for key, lines := range buffered {
				if key[0] == e.Package {
					writeLines(w, lines)
					delete(buffered, key)
				}
			}
			if e.Action == "output" && e.Output != "PASS\n" { // plain go test leaves PASS out
				io.WriteString(w, e.Output)
			}
			continue
		}
		top, _, _ := strings.Cut(e.Test, "/")
		key := [2]string{e.Package, top}
		switch e.Action {
		case "output":
			buffered[key] = append(buffered[key], e.Output)
		case "pass":
			s.passed++
		case "fail":
			s.failed++
		case "skip":
			s.skipped = append(s.skipped, skip{e.Package, e.Test, skipReason(buffered[key], e.Test)})
		}
		if e.Test == top && (e.Action == "pass" || e.Action == "fail" || e.Action == "skip") {
			if e.Action == "fail" {
				writeLines(w, buffered[key])
			}
			delete(buffered, key)
		}
	}
	if err := sc.Err(); err != nil {
		fmt.Fprintf(w, "gotest: reading go test's output: %v\n", err)
		s.failed++
	}
	if len(s.skipped) > 0 {
		slices.SortFunc(s.skipped, func(a, b skip) int { return cmp.Or(cmp.Compare(a.pkg, b.pkg), cmp.Compare(a.test, b.test)) })
		fmt.Fprintf(w, "skipped tests:\n")
		for _, k := range s.skipped {
			fmt.Fprintf(w, "  %s %s: %s\n", k.pkg, k.test, k.reason)
		}
	}
	if failOnSkip && len(s.skipped) > 0 {
		fmt.Fprintf(w, "gotest: FAIL: skipped tests on CI (CI is set): a skip hides a test that did not run, "+
			"and scripts/install-deps.sh installs every tool the tests need\n")
	}
	fmt.Fprintf(w, "gotest: %d passed, %d failed, %d skipped\n", s.passed, s.failed, len(s.skipped))
	return s
}

// writeLines writes a test's output without the === RUN/PAUSE/CONT/NAME
// lines that plain go test leaves out.
func writeLines(w io.Writer, lines []string) {
	for _, l := range lines {
		if !strings.HasPrefix(l, "=== ") {
			io.WriteString(w, l)
		}
	}
}

// skipReason is the first line of test's t.Skip message: the last
// file.go:N: line it printed before its --- SKIP line.
func skipReason(lines []string, test string) string {
	reason := "(no reason given)"
	for _, l := range lines {
		if strings.HasPrefix(strings.TrimSpace(l), "--- SKIP: "+test+" ") {
			break
		}
		if fileLine.MatchString(l) {
			reason = strings.TrimSpace(l)
		}
	}
	return reason
}
