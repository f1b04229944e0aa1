// Command pmpackage builds pacemaker's deb and rpm packages (see
// internal/packaging): `make deb`, `make rpm` and `make packages` run it.
//
//	pmpackage -version 1.2.3 [-arch amd64,arm64] [-format deb,rpm] [-out dist]
//	pmpackage gen -version 1.2.3 -out DIR   # the generated files only (goreleaser)
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"

	"github.com/storm-pacemaker/pacemaker/internal/packaging"
)

func main() {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := run(ctx, os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			os.Exit(2)
		}
		fmt.Fprintln(os.Stderr, "pmpackage:", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, args []string) error {
	if len(args) > 0 && args[0] == "gen" {
		return gen(args[1:])
	}
	fs := flag.NewFlagSet("pmpackage", flag.ContinueOnError)
	version := fs.String("version", "", "version, as git describe prints it without the v (the Makefile's VERSION)")
	arches := fs.String("arch", strings.Join(packaging.Arches, ","), "Go architectures, separated by commas or spaces")
	formats := fs.String("format", strings.Join(packaging.Formats, ","), "package formats (deb, rpm), separated by commas or spaces")
	out := fs.String("out", "dist", "directory the packages are written to")
	work := fs.String("work", ".cache/packaging", "directory for the binaries and generated files")
	ldflags := fs.String("ldflags", "", "Go linker flags (default: -s -w and the version)")
	root := fs.String("root", ".", "repository root")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version == "" || fs.NArg() > 0 {
		fs.Usage()
		return flag.ErrHelp
	}
	rootDir, err := filepath.Abs(*root)
	if err != nil {
		return err
	}
	absOut, absWork := absUnder(rootDir, *out), absUnder(rootDir, *work)
	date := packaging.SourceDate(rootDir)
	for _, arch := range list(*arches) {
		bin := filepath.Join(absWork, "linux_"+arch, "bin")
		if err := packaging.GoBuild(ctx, rootDir, bin, arch, *version, *ldflags); err != nil {
			return err
		}
		b := packaging.Build{
			Root:    rootDir,
			Version: *version,
			Arch:    arch,
			BinDir:  bin,
			GenDir:  filepath.Join(absWork, "linux_"+arch, "gen"),
			OutDir:  absOut,
			Date:    date,
		}
		for _, format := range list(*formats) {
			path, err := b.Package(format)
			if err != nil {
				return err
			}
			st, err := os.Stat(path)
			if err != nil {
				return err
			}
			rel, _ := filepath.Rel(rootDir, path)
			fmt.Printf("%s (%.1f MiB)\n", rel, float64(st.Size())/(1<<20))
		}
	}
	return nil
}

// gen writes the man pages and changelog that nfpm.yaml and .goreleaser.yaml
// take from the generated-files directory.
func gen(args []string) error {
	fs := flag.NewFlagSet("pmpackage gen", flag.ContinueOnError)
	version := fs.String("version", "", "version, as git describe prints it without the v")
	out := fs.String("out", "", "directory to write to")
	root := fs.String("root", ".", "repository root")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *version == "" || *out == "" || fs.NArg() > 0 {
		fs.Usage()
		return flag.ErrHelp
	}
	v, err := packaging.PackageVersion(*version)
	if err != nil {
		return err
	}
	rootDir, err := filepath.Abs(*root)
	if err != nil {
		return err
	}
	packager, err := packaging.Maintainer(rootDir)
	if err != nil {
		return err
	}
	return packaging.Generate(rootDir, absUnder(rootDir, *out), v+"-"+packaging.Release, packager, packaging.SourceDate(rootDir))
}

// list splits a flag's value at commas and spaces.
func list(s string) []string {
	return strings.FieldsFunc(s, func(r rune) bool { return r == ',' || r == ' ' })
}

func absUnder(root, p string) string {
	if filepath.IsAbs(p) {
		return p
	}
	return filepath.Join(root, p)
}
