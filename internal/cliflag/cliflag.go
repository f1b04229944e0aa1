// Package cliflag gives the project's commands (pacemaker, pacemakerctl
// and its subcommands, pacemaker-bench) one help style over the standard
// flag package: flags written with two dashes, help on stdout, a parse
// error printed once.
package cliflag

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
)

// New returns a flag set that prints nothing itself: Parse's caller decides
// where help and errors go (see Parse).
func New(name string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.SetOutput(io.Discard)
	fs.Usage = func() {}
	return fs
}

// ErrHelp is returned by Parse after it printed the help.
var ErrHelp = flag.ErrHelp

// Parse parses args. On --help (or -h) it prints help() to stdout and
// returns ErrHelp; on a bad flag it returns the error with "--" spelled
// as the user would type it, for the caller to print once.
func Parse(fs *flag.FlagSet, args []string, stdout io.Writer, help func(io.Writer)) error {
	err := fs.Parse(args)
	if errors.Is(err, flag.ErrHelp) {
		help(stdout)
		return ErrHelp
	}
	if err != nil {
		// The flag package names flags with one dash ("-bogus").
		return errors.New(oneDash.ReplaceAllString(err.Error(), "$1--$2"))
	}
	return nil
}

// oneDash finds a flag named with one dash in the flag package's errors:
// "not defined: -bogus", "needs an argument: -x", "for flag -timeout".
var oneDash = regexp.MustCompile(`(: |flag )-([A-Za-z])`)

// PrintFlags lists fs's flags, two dashes each, aligned: the value's name
// (a `back-quoted` word in the usage, else the flag's type), the usage and
// any non-zero default. Flags with an empty usage are hidden.
func PrintFlags(w io.Writer, fs *flag.FlagSet) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fs.VisitAll(func(f *flag.Flag) {
		if f.Usage == "" {
			return
		}
		name, usage := valueName(f)
		left := "--" + f.Name
		if name != "" {
			left += " " + name
		}
		if def := f.DefValue; def != "" && def != "0" && def != "false" && def != "0s" && !strings.Contains(usage, "(default") {
			usage += " (default " + def + ")"
		}
		fmt.Fprintf(tw, "  %s\t%s\n", left, usage)
	})
	_ = tw.Flush()
}

// Synopsis is fs's flags in one line, "[--json] [--stale DURATION]", for a
// command list.
func Synopsis(fs *flag.FlagSet) string {
	var parts []string
	fs.VisitAll(func(f *flag.Flag) {
		if f.Usage == "" {
			return
		}
		if name, _ := valueName(f); name == "" {
			parts = append(parts, "[--"+f.Name+"]")
		} else {
			parts = append(parts, "[--"+f.Name+" "+name+"]")
		}
	})
	return strings.Join(parts, " ")
}

// Wrap breaks s into lines of at most width columns at spaces, indenting
// every line after the first with indent.
func Wrap(s string, width int, indent string) string {
	var b strings.Builder
	col := 0
	for i, word := range strings.Fields(s) {
		if i > 0 {
			if col+1+len(word) > width {
				b.WriteString("\n" + indent)
				col = len(indent)
			} else {
				b.WriteByte(' ')
				col++
			}
		}
		b.WriteString(word)
		col += len(word)
	}
	return b.String()
}

// valueName is how help names f's value: its usage's `back-quoted` word,
// else N for numbers and VALUE for strings; "" for a boolean.
func valueName(f *flag.Flag) (name, usage string) {
	name, usage = flag.UnquoteUsage(f)
	switch name {
	case "int", "int64", "uint", "uint64", "float":
		name = "N"
	case "string":
		name = "VALUE"
	}
	return strings.ToUpper(name), usage
}
