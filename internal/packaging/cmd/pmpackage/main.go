// Command pmpackage builds pacemaker's deb and rpm packages (see
// internal/packaging): `make deb`, `make rpm` and `make packages` run it.
//
//	pmpackage -version 1.2.3 [-arch amd64,arm64] [-format deb,rpm] [-out dist]
//	pmpackage gen -version 1.2.3 -out DIR   # the generated files only (goreleaser)
//	pmpackage repo -version 1.2.3 [-arch ...] [-out dist/repo]   # signed apt and dnf repositories
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
	"github.com/storm-pacemaker/pacemaker/internal/packaging/repo"
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
	if len(args) > 0 && args[0] == "repo" {
		return publish(ctx, args[1:])
	}
	fs := flag.NewFlagSet("pmpackage", flag.ContinueOnError)
	bf := addBuildFlags(fs, "directory for the binaries and generated files")
	formats := fs.String("format", strings.Join(packaging.Formats, ","), "package formats (deb, rpm), separated by commas or spaces")
	out := fs.String("out", "dist", "directory the packages are written to")
	rootDir, err := bf.parse(fs, args)
	if err != nil {
		return err
	}
	_, err = build(ctx, rootDir, bf, list(*formats), absUnder(rootDir, *out))
	return err
}

// buildFlags are the flags of a build, which both the package build and
// repo take.
type buildFlags struct {
	version, arches, ldflags, work, root *string
}

func addBuildFlags(fs *flag.FlagSet, workUsage string) buildFlags {
	return buildFlags{
		version: fs.String("version", "", "version, as git describe prints it without the v (the Makefile's VERSION)"),
		arches:  fs.String("arch", strings.Join(packaging.Arches, ","), "Go architectures, separated by commas or spaces"),
		ldflags: fs.String("ldflags", "", "Go linker flags (default: -s -w and the version)"),
		work:    fs.String("work", ".cache/packaging", workUsage),
		root:    fs.String("root", ".", "repository root"),
	}
}

// parse parses args, which must set -version and name nothing else, and
// returns the absolute repository root.
func (bf buildFlags) parse(fs *flag.FlagSet, args []string) (string, error) {
	if err := fs.Parse(args); err != nil {
		return "", err
	}
	if *bf.version == "" || fs.NArg() > 0 {
		fs.Usage()
		return "", flag.ErrHelp
	}
	return filepath.Abs(*bf.root)
}

// build builds the packages (packaging.BuildAll) and prints each one's path
// and size.
func build(ctx context.Context, rootDir string, bf buildFlags, formats []string, out string) ([]string, error) {
	paths, err := packaging.BuildAll(ctx, rootDir, *bf.version, *bf.ldflags, list(*bf.arches), formats, out, absUnder(rootDir, *bf.work))
	if err != nil {
		return nil, err
	}
	for _, path := range paths {
		st, err := os.Stat(path)
		if err != nil {
			return nil, err
		}
		rel, _ := filepath.Rel(rootDir, path)
		fmt.Printf("%s (%.1f MiB)\n", rel, float64(st.Size())/(1<<20))
	}
	return paths, nil
}

// publish builds fresh packages of every format and publishes them as the
// signed apt and dnf repositories (internal/packaging/repo).
func publish(ctx context.Context, args []string) error {
	fs := flag.NewFlagSet("pmpackage repo", flag.ContinueOnError)
	bf := addBuildFlags(fs, "directory for the binaries, generated files and packages")
	out := fs.String("out", "dist/repo", "directory the repositories are written to (replaced)")
	keyHome := fs.String("throwaway-key", "dist/throwaway-signing-key", "gpg home of the throwaway key used when $"+repo.KeyEnv+" is unset")
	rootDir, err := bf.parse(fs, args)
	if err != nil {
		return err
	}
	pkgDir := absUnder(rootDir, filepath.Join(*bf.work, "repo-packages"))
	if err := os.RemoveAll(pkgDir); err != nil {
		return err
	}
	paths, err := build(ctx, rootDir, bf, packaging.Formats, pkgDir)
	if err != nil {
		return err
	}
	key, note, err := repo.OpenKey(ctx, os.Getenv(repo.KeyEnv), absUnder(rootDir, *keyHome))
	if err != nil {
		return err
	}
	defer key.Close()
	if note != "" {
		fmt.Fprintln(os.Stderr, "pmpackage repo:", note)
	}
	dir := absUnder(rootDir, *out)
	if err := repo.Publish(ctx, dir, paths, key); err != nil {
		return err
	}
	rel, _ := filepath.Rel(rootDir, dir)
	fmt.Printf("%s: apt (%s/%s, %s) and rpm repositories signed by %s\n", rel, repo.Suite, repo.Component,
		strings.Join(repo.Arches, ", "), key.Fingerprint)
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
