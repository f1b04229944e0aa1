package packaging

import (
	"os/exec"
	"strings"
	"testing"
)

func TestPackageVersion(t *testing.T) {
	tests := []struct {
		describe, want string
	}{
		{"1.2.3", "1.2.3"},
		{"v1.2.3", "1.2.3"},
		{"1.2.3-rc.1", "1.2.3~rc.1"},
		{"1.2.3-rc-1", "1.2.3~rc.1"},
		{"1.2.3-4-gabcdef0", "1.2.3+git4.gabcdef0"},
		{"1.2.3-4-gabcdef0-dirty", "1.2.3+git4.gabcdef0.dirty"},
		{"1.2.3-dirty", "1.2.3+dirty"},
		{"1.2.3-rc.1-4-gabcdef0", "1.2.3~rc.1+git4.gabcdef0"},
		{"0.0.0-5f643f0", "0.0.0+git.g5f643f0"},
		{"0.0.0-unknown", "0.0.0+git.gunknown"},
		{"0.0.0+git.g5f643f0", "0.0.0+git.g5f643f0"},
		{"1.2.3-rc.1+build.7", "1.2.3~rc.1+build.7"},
	}
	for _, tt := range tests {
		t.Run(tt.describe, func(t *testing.T) {
			got, err := PackageVersion(tt.describe)
			if err != nil || got != tt.want {
				t.Errorf("PackageVersion(%q) = %q, %v; want %q", tt.describe, got, err, tt.want)
			}
		})
	}
	for _, bad := range []string{"", "dev", "1.2", "abc-1.2.3", "1.2.3 4", "1.2.3+a-b"} {
		if got, err := PackageVersion(bad); err == nil {
			t.Errorf("PackageVersion(%q) = %q, want an error", bad, got)
		}
	}
}

// TestPackageVersionOrder checks with dpkg's and rpm's own comparisons that
// package versions sort the way the commits they come from do.
func TestPackageVersionOrder(t *testing.T) {
	ascending := []string{
		"0.9.0-12-g0000001",
		"1.0.0-rc.1",
		"1.0.0-rc.1-3-gabcdef0",
		"1.0.0-rc.2",
		"1.0.0",
		"1.0.0-1-g1234567",
		"1.0.0-2-g0abcdef",
		"1.0.0-10-g0abcdef",
		"1.0.1",
	}
	versions := make([]string, len(ascending))
	for i, d := range ascending {
		v, err := PackageVersion(d)
		if err != nil {
			t.Fatal(err)
		}
		versions[i] = v + "-" + Release
	}
	_, dpkgErr := exec.LookPath("dpkg")
	_, rpmErr := exec.LookPath("rpm")
	if dpkgErr != nil && rpmErr != nil {
		t.Skip("SKIP: neither dpkg nor rpm is installed to compare versions with")
	}
	for i := 1; i < len(versions); i++ {
		a, b := versions[i-1], versions[i]
		if dpkgErr == nil {
			if err := exec.Command("dpkg", "--compare-versions", a, "lt", b).Run(); err != nil {
				t.Errorf("dpkg: %s is not older than %s (from %s, %s)", a, b, ascending[i-1], ascending[i])
			}
		}
		if rpmErr == nil {
			// rpm -E evaluates Lua; rpm.vercmp is rpm's own comparison.
			out, err := exec.Command("rpm", "-E", `%{lua: print(rpm.vercmp("`+a+`", "`+b+`"))}`).Output()
			if err != nil || strings.TrimSpace(string(out)) != "-1" {
				t.Errorf("rpm: vercmp(%s, %s) = %q, %v; want -1", a, b, out, err)
			}
		}
	}
}
