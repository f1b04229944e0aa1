package packaging

import (
	"fmt"
	"regexp"
	"strings"
)

// Release is the packaging revision of every build: the deb's Debian
// revision and the rpm's Release. Our packages are built from the upstream
// tree itself, so it only changes if a package is ever rebuilt unchanged.
const Release = "1"

var (
	// 0.0.0-<hash>: the Makefile's fallback before the first tag.
	untaggedRe = regexp.MustCompile(`^0\.0\.0-([0-9a-f]{4,40}|unknown)$`)
	// <semver>[-<prerelease>][-<n>-g<hash>][-dirty]: git describe of a v*
	// tag; or a semver with build metadata (+...), which goreleaser's
	// snapshots are.
	describeRe = regexp.MustCompile(`^(\d+\.\d+\.\d+)(?:-([0-9A-Za-z.-]+?))??(?:-(\d+)-g([0-9a-f]{4,40}))?(-dirty)?(?:\+([0-9A-Za-z.]+))?$`)
)

// PackageVersion turns the Makefile's VERSION (git describe without the
// leading v) into an upstream version that dpkg and rpm both order the way
// the commits are ordered:
//
//	1.2.3                 → 1.2.3
//	1.2.3-rc.1            → 1.2.3~rc.1              (before 1.2.3)
//	1.2.3-4-gabcdef0      → 1.2.3+git4.gabcdef0     (after 1.2.3, before 1.2.4)
//	1.2.3-4-gabcdef0-dirty→ 1.2.3+git4.gabcdef0.dirty
//	0.0.0-abcdef0         → 0.0.0+git.gabcdef0      (no tag yet: not ordered)
//	1.2.3+git.gabcdef0    → 1.2.3+git.gabcdef0      (semver build metadata kept)
//
// A '-' would end the upstream version in dpkg and is not allowed in an rpm
// Version, so none survives; '~' sorts before the empty string in both.
func PackageVersion(describe string) (string, error) {
	d := strings.TrimPrefix(strings.TrimSpace(describe), "v")
	if m := untaggedRe.FindStringSubmatch(d); m != nil {
		return "0.0.0+git.g" + m[1], nil
	}
	m := describeRe.FindStringSubmatch(d)
	if m == nil {
		return "", fmt.Errorf("package version of %q: not a git describe of a vX.Y.Z tag", describe)
	}
	v := m[1]
	if pre := m[2]; pre != "" {
		v += "~" + strings.ReplaceAll(pre, "-", ".")
	}
	var meta []string
	if m[3] != "" {
		meta = append(meta, "git"+m[3], "g"+m[4])
	}
	if m[5] != "" {
		meta = append(meta, "dirty")
	}
	if m[6] != "" {
		meta = append(meta, m[6])
	}
	if len(meta) > 0 {
		v += "+" + strings.Join(meta, ".")
	}
	return v, nil
}
