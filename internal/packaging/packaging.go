// Package packaging builds pacemaker's deb and rpm with nfpm, used as a
// library pinned in go.mod (no tool download): packaging/nfpm.yaml says what
// goes into the packages, this package fills in the version, architecture
// and generated files, and writes the packages under conventional names.
// internal/packaging/cmd/pmpackage is its command line (`make deb rpm`).
package packaging

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/goreleaser/chglog"
	"github.com/goreleaser/nfpm/v2"
	_ "github.com/goreleaser/nfpm/v2/deb" // registers the deb packager
	"github.com/goreleaser/nfpm/v2/files"
	_ "github.com/goreleaser/nfpm/v2/rpm" // registers the rpm packager
	"go.yaml.in/yaml/v3"
)

// Module is the Go module whose internal/version.Version the linker sets.
const Module = "github.com/storm-pacemaker/pacemaker"

// Arches are the Go architectures the packages are built for.
var Arches = []string{"amd64", "arm64"}

// Formats are the package formats built.
var Formats = []string{"deb", "rpm"}

// ConfigPath is nfpm's configuration, relative to the repository root.
const ConfigPath = "packaging/nfpm.yaml"

// ManPages are the man pages shipped, relative to the repository root; each
// is packaged gzip-compressed under /usr/share/man/man<section>/.
var ManPages = []string{"docs/man/pacemaker.8", "docs/man/pacemakerctl.1"}

// Binaries are the commands shipped in /usr/bin, built from ./cmd/<name>.
var Binaries = []string{"pacemaker", "pacemakerctl"}

// Build says what to package.
type Build struct {
	Root     string    // repository root (relative paths in nfpm.yaml are relative to it)
	Version  string    // git describe form, the Makefile's VERSION
	Arch     string    // Go architecture: amd64, arm64
	BinDir   string    // holds this architecture's pacemaker and pacemakerctl
	GenDir   string    // where generated files go (created)
	OutDir   string    // where packages go (created)
	Date     time.Time // file times and the date of a generated changelog entry
	Packager string    // changelog entry author; default: the maintainer in nfpm.yaml
}

// Package builds the package of one format ("deb" or "rpm") and returns its
// path in b.OutDir.
func (b Build) Package(format string) (string, error) {
	pkgVersion, err := PackageVersion(b.Version)
	if err != nil {
		return "", err
	}
	if err := os.MkdirAll(b.GenDir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", b.GenDir, err)
	}
	if err := os.MkdirAll(b.OutDir, 0o755); err != nil {
		return "", fmt.Errorf("create %s: %w", b.OutDir, err)
	}
	for _, name := range Binaries {
		if _, err := os.Stat(filepath.Join(b.BinDir, name)); err != nil {
			return "", fmt.Errorf("package %s: binary: %w", format, err)
		}
	}
	vars := map[string]string{
		"PKG_VERSION": pkgVersion,
		"PKG_RELEASE": Release,
		"PKG_ARCH":    b.Arch,
		"PKG_BINDIR":  b.BinDir,
		"PKG_GENDIR":  b.GenDir,
	}
	// nfpm expands variables in a few fields only (version, arch, ...);
	// resolve does the paths too, and refuses unknown names rather than
	// let them become "".
	var unknown []string
	mapping := func(name string) string {
		if v, ok := vars[name]; ok {
			return v
		}
		if !strings.HasPrefix(name, "NFPM_") { // nfpm's own, for signing keys
			unknown = append(unknown, name)
		}
		return ""
	}
	cfg, err := nfpm.ParseFileWithEnvMapping(filepath.Join(b.Root, ConfigPath), mapping)
	if err != nil {
		return "", fmt.Errorf("parse %s: %w", ConfigPath, err)
	}
	if err := b.generate(cfg.Maintainer, pkgVersion+"-"+Release); err != nil {
		return "", err
	}
	info, err := cfg.Get(format)
	if err != nil {
		return "", fmt.Errorf("%s: %s: %w", ConfigPath, format, err)
	}
	b.resolve(info, mapping)
	if len(unknown) > 0 {
		return "", fmt.Errorf("%s: unknown variables %v", ConfigPath, unknown)
	}
	info.MTime = b.Date
	info = nfpm.WithDefaults(info)
	if err := nfpm.Validate(info); err != nil {
		return "", fmt.Errorf("%s: %s: %w", ConfigPath, format, err)
	}
	pkg, err := nfpm.Get(format)
	if err != nil {
		return "", err
	}
	// ConventionalFileName fills in format defaults (the rpm's arch name),
	// so it goes before Package, as in nfpm's own command.
	target := filepath.Join(b.OutDir, pkg.ConventionalFileName(info))
	info.Target = target
	var buf bytes.Buffer
	if err := pkg.Package(info, &buf); err != nil {
		return "", fmt.Errorf("build %s: %w", filepath.Base(target), err)
	}
	// Write whole or not at all: a half-written package must not be found.
	tmp := target + ".tmp"
	if err := os.WriteFile(tmp, buf.Bytes(), 0o644); err != nil {
		return "", fmt.Errorf("write %s: %w", tmp, err)
	}
	if err := os.Rename(tmp, target); err != nil {
		return "", fmt.Errorf("write %s: %w", target, err)
	}
	return target, nil
}

// resolve expands the variables in the package's paths and makes its
// source paths relative to the repository root rather than to the working
// directory.
func (b Build) resolve(info *nfpm.Info, mapping func(string) string) {
	path := func(p string) string {
		p = os.Expand(p, mapping)
		if p == "" || filepath.IsAbs(p) {
			return p
		}
		return filepath.Join(b.Root, p)
	}
	for _, c := range info.Contents {
		c.Destination = os.Expand(c.Destination, mapping)
		if c.Type != files.TypeDir && c.Type != files.TypeSymlink {
			c.Source = path(c.Source)
		}
	}
	s := &info.Scripts
	s.PreInstall, s.PostInstall = path(s.PreInstall), path(s.PostInstall)
	s.PreRemove, s.PostRemove = path(s.PreRemove), path(s.PostRemove)
	info.Changelog = path(info.Changelog)
}

// generate writes the files nfpm.yaml takes from ${PKG_GENDIR}: the
// gzipped man pages and the changelog, which gets an entry for this build
// when packaging/changelog.yml has none for its version.
func (b Build) generate(maintainer, fullVersion string) error {
	return Generate(b.Root, b.GenDir, fullVersion, b.packager(maintainer), b.Date)
}

func (b Build) packager(maintainer string) string {
	if b.Packager != "" {
		return b.Packager
	}
	return maintainer
}

// Generate writes the man pages (gzip -9n) and changelog.yml into genDir.
// .goreleaser.yaml runs it too (pmpackage gen), so both builds ship the
// same files.
func Generate(root, genDir, fullVersion, packager string, date time.Time) error {
	if err := os.MkdirAll(genDir, 0o755); err != nil {
		return fmt.Errorf("create %s: %w", genDir, err)
	}
	for _, page := range ManPages {
		src, err := os.ReadFile(filepath.Join(root, page))
		if err != nil {
			return fmt.Errorf("man page: %w", err)
		}
		if err := writeGzip(filepath.Join(genDir, filepath.Base(page)+".gz"), src); err != nil {
			return err
		}
	}
	return writeChangelog(root, genDir, fullVersion, packager, date)
}

// writeGzip compresses like gzip -9n: no name, no time, so builds repeat
// byte for byte (lintian checks man pages for this).
func writeGzip(path string, data []byte) error {
	var buf bytes.Buffer
	zw, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := zw.Write(data); err != nil {
		return err
	}
	if err := zw.Close(); err != nil {
		return err
	}
	if err := os.WriteFile(path, buf.Bytes(), 0o644); err != nil {
		return fmt.Errorf("write %s: %w", path, err)
	}
	return nil
}

// ChangelogPath holds the release notes, newest first (chglog's format).
const ChangelogPath = "packaging/changelog.yml"

func writeChangelog(root, genDir, fullVersion, packager string, date time.Time) error {
	src := filepath.Join(root, ChangelogPath)
	entries, err := chglog.Parse(src)
	if err != nil {
		return fmt.Errorf("changelog: %w", err)
	}
	if len(entries) == 0 || entries[0].Semver != fullVersion {
		for _, e := range entries {
			if e.Semver == fullVersion {
				return fmt.Errorf("changelog %s: the entry for %s must come first", src, fullVersion)
			}
		}
		dev := &chglog.ChangeLog{
			Semver:   fullVersion,
			Date:     date.UTC(),
			Packager: packager,
			Changes: chglog.ChangeLogChanges{{
				Note: "Development build from the source tree; no release notes yet.",
			}},
		}
		entries = append(chglog.ChangeLogEntries{dev}, entries...)
	}
	// dpkg's changelog heading needs a distribution and an urgency.
	for _, e := range entries {
		if e.Deb == nil {
			e.Deb = &chglog.ChangelogDeb{}
		}
		if len(e.Deb.Distributions) == 0 {
			e.Deb.Distributions = []string{"unstable"}
		}
		if e.Deb.Urgency == "" {
			e.Deb.Urgency = "medium"
		}
	}
	out, err := yaml.Marshal(entries)
	if err != nil {
		return fmt.Errorf("changelog: %w", err)
	}
	dst := filepath.Join(genDir, "changelog.yml")
	if err := os.WriteFile(dst, out, 0o644); err != nil {
		return fmt.Errorf("write %s: %w", dst, err)
	}
	return nil
}

// BuildFlags are the go build flags of every packaged binary
// (.goreleaser.yaml's builds use the same; a test compares). -buildmode=pie:
// position-independent, so the kernel loads the code at a random address
// as it does every distribution binary. With CGO_ENABLED=0 Go's own linker
// writes it: no shared library is needed (no DT_NEEDED entry), only the
// ELF interpreter that applies the relocations, which every glibc
// distribution has at its standard path.
var BuildFlags = []string{"-trimpath", "-buildmode=pie"}

// GoBuild compiles the binaries for linux/arch into dir, without cgo
// (CGO_ENABLED=0), as PIE (BuildFlags) and stripped, with version embedded.
// ldflags replaces the default "-s -w -X
// <Module>/internal/version.Version=<version>" when set (the Makefile passes
// its own LDFLAGS).
func GoBuild(ctx context.Context, root, dir, arch, version, ldflags string) error {
	if ldflags == "" {
		ldflags = "-s -w -X " + Module + "/internal/version.Version=" + version
	}
	args := append([]string{"build"}, BuildFlags...)
	args = append(args, "-ldflags", ldflags, "-o", dir+string(filepath.Separator))
	for _, name := range Binaries {
		args = append(args, "./cmd/"+name)
	}
	cmd := exec.CommandContext(ctx, "go", args...)
	cmd.Dir = root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH="+arch)
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build for linux/%s: %w\n%s", arch, err, out)
	}
	return nil
}

// BuildAll compiles the binaries for each architecture under work
// (work/linux_<arch>/{bin,gen}) and packages them in each format into out,
// as `make deb rpm` does; it returns the packages' paths.
func BuildAll(ctx context.Context, root, version, ldflags string, arches, formats []string, out, work string) ([]string, error) {
	date := SourceDate(root)
	var paths []string
	for _, arch := range arches {
		b := Build{
			Root:    root,
			Version: version,
			Arch:    arch,
			BinDir:  filepath.Join(work, "linux_"+arch, "bin"),
			GenDir:  filepath.Join(work, "linux_"+arch, "gen"),
			OutDir:  out,
			Date:    date,
		}
		if err := GoBuild(ctx, root, b.BinDir, arch, version, ldflags); err != nil {
			return nil, err
		}
		for _, format := range formats {
			path, err := b.Package(format)
			if err != nil {
				return nil, err
			}
			paths = append(paths, path)
		}
	}
	return paths, nil
}

// Maintainer is the maintainer nfpm.yaml names, the author of generated
// changelog entries.
func Maintainer(root string) (string, error) {
	b, err := os.ReadFile(filepath.Join(root, ConfigPath))
	if err != nil {
		return "", fmt.Errorf("read maintainer: %w", err)
	}
	var c struct {
		Maintainer string `yaml:"maintainer"`
	}
	if err := yaml.Unmarshal(b, &c); err != nil || c.Maintainer == "" {
		return "", fmt.Errorf("%s: no maintainer (%v)", ConfigPath, err)
	}
	return c.Maintainer, nil
}

// SourceDate is the time packaged files carry: $SOURCE_DATE_EPOCH if set,
// else the time of the commit checked out, else now.
func SourceDate(root string) time.Time {
	if s := os.Getenv("SOURCE_DATE_EPOCH"); s != "" {
		if n, err := strconv.ParseInt(s, 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	cmd := exec.Command("git", "log", "-1", "--format=%ct")
	cmd.Dir = root
	cmd.Stderr = io.Discard
	if out, err := cmd.Output(); err == nil {
		if n, err := strconv.ParseInt(strings.TrimSpace(string(out)), 10, 64); err == nil {
			return time.Unix(n, 0).UTC()
		}
	}
	return time.Now().UTC().Truncate(time.Second)
}
