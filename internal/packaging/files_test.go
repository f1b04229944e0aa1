package packaging

import (
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
)

// TestMaintainerScriptsShellcheck runs shellcheck on every maintainer
// script (POSIX sh: dpkg and rpm run them with /bin/sh).
func TestMaintainerScriptsShellcheck(t *testing.T) {
	needTool(t, "shellcheck", "shellcheck")
	scripts, _ := filepath.Glob(filepath.Join(repoRoot(t), "packaging", "scripts", "*", "*"))
	scripts = append(scripts, filepath.Join(repoRoot(t), "packaging", "lint.sh"))
	if len(scripts) < 8 {
		t.Fatalf("found only %v", scripts)
	}
	for _, s := range scripts {
		t.Run(filepath.Base(filepath.Dir(s))+"/"+filepath.Base(s), func(t *testing.T) {
			out, err := exec.Command("shellcheck", "--shell=sh", s).CombinedOutput()
			if err != nil {
				t.Errorf("shellcheck %s: %v\n%s", s, err, out)
			}
		})
	}
}

// TestSysusersLineInRPMPre keeps the user line %pre feeds systemd-sysusers
// (the package's file is not on disk yet then) equal to the sysusers.d file.
func TestSysusersLineInRPMPre(t *testing.T) {
	root := repoRoot(t)
	conf, err := os.ReadFile(filepath.Join(root, "packaging", "sysusers.d", "pacemaker.conf"))
	if err != nil {
		t.Fatal(err)
	}
	var entries []string
	for _, l := range lines(string(conf)) {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			entries = append(entries, l)
		}
	}
	if len(entries) != 1 {
		t.Fatalf("sysusers.d/pacemaker.conf has %d entries, want 1: %q", len(entries), entries)
	}
	pre, err := os.ReadFile(filepath.Join(root, "packaging", "scripts", "rpm", "pre.sh"))
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(pre), "echo '"+entries[0]+"' |") {
		t.Errorf("rpm pre.sh does not feed systemd-sysusers the line %q", entries[0])
	}
}

// TestManPages formats each man page as lintian does and wants no warning,
// and wants pacemaker(8) to describe every key of the sample config.
func TestManPages(t *testing.T) {
	needTool(t, "man", "man-db")
	root := repoRoot(t)
	for _, page := range ManPages {
		t.Run(filepath.Base(page), func(t *testing.T) {
			cmd := exec.Command("man", "--warnings", "-E", "UTF-8", "-l", "-Tutf8", "-Z", filepath.Join(root, page))
			cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8", "MANROFFSEQ=", "MANWIDTH=80")
			var stderr bytes.Buffer
			cmd.Stderr = &stderr
			if err := cmd.Run(); err != nil || stderr.Len() > 0 {
				t.Errorf("man --warnings %s: %v\n%s", page, err, stderr.String())
			}
		})
	}
	sample, err := os.ReadFile(filepath.Join(root, "etc", "pacemaker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	keys := regexp.MustCompile(`(?m)^#([a-z][a-z.]+[a-z]):`).FindAllStringSubmatch(string(sample), -1)
	if len(keys) < 15 {
		t.Fatalf("found only %d keys in etc/pacemaker.yaml", len(keys))
	}
	page, err := os.ReadFile(filepath.Join(root, "docs", "man", "pacemaker.8"))
	if err != nil {
		t.Fatal(err)
	}
	for _, k := range keys {
		if !strings.Contains(string(page), ".BR "+k[1]+" ") {
			t.Errorf("pacemaker.8 does not describe %s", k[1])
		}
	}
}

// TestSampleConfigAllCommented: the packaged config changes nothing, so
// the built-in defaults apply until an admin uncomments a line.
func TestSampleConfigAllCommented(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(repoRoot(t), "etc", "pacemaker.yaml"))
	if err != nil {
		t.Fatal(err)
	}
	for i, l := range lines(string(b)) {
		if s := strings.TrimSpace(l); s != "" && !strings.HasPrefix(s, "#") {
			t.Errorf("etc/pacemaker.yaml:%d is not a comment: %q", i+1, l)
		}
	}
}

// TestJAASSamples: the three sections Storm uses, one per sample file,
// each parseable as JAAS (a section name, a login module, a closing "};").
func TestJAASSamples(t *testing.T) {
	tests := []struct{ file, section string }{
		{"pacemaker-digest.conf.sample", "PacemakerDigest"},
		{"pacemaker-server.conf.sample", "PacemakerServer"},
		{"pacemaker-client.conf.sample", "PacemakerClient"},
	}
	for _, tt := range tests {
		t.Run(tt.section, func(t *testing.T) {
			b, err := os.ReadFile(filepath.Join(repoRoot(t), "etc", "jaas", tt.file))
			if err != nil {
				t.Fatal(err)
			}
			re := regexp.MustCompile(`(?ms)^` + tt.section + ` \{\n\s+\S+ required\n.*;\n\};\n?$`)
			if !re.Match(b) {
				t.Errorf("%s has no well-formed %s section:\n%s", tt.file, tt.section, b)
			}
		})
	}
}

// TestBashCompletion runs the completion function in bash against the
// real pacemakerctl, which lists its own commands.
func TestBashCompletion(t *testing.T) {
	needTool(t, "bash", "bash")
	buildPackages(t) // for the amd64 pacemakerctl
	script := filepath.Join(repoRoot(t), "packaging", "completion", "pacemakerctl.bash")
	tests := []struct {
		name  string
		words []string // the command line, the last word being completed
		want  []string
	}{
		{"commands", []string{"pacemakerctl", ""}, []string{"delete", "delete-path", "exists", "get", "ls", "send", "status"}},
		{"commands by prefix", []string{"pacemakerctl", "de"}, []string{"delete", "delete-path"}},
		{"global flags", []string{"pacemakerctl", "--a"}, []string{"--auth"}},
		{"auth methods", []string{"pacemakerctl", "--auth", ""}, []string{"DIGEST", "KERBEROS", "NONE"}},
		{"command after flags", []string{"pacemakerctl", "--servers", "h:6699", "ge"}, []string{"get"}},
		{"status flags", []string{"pacemakerctl", "status", "--j"}, []string{"--json"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			quoted := make([]string, len(tt.words))
			for i, w := range tt.words {
				quoted[i] = "'" + w + "'"
			}
			prog := `source "$0"; COMP_WORDS=(` + strings.Join(quoted, " ") + `); COMP_CWORD=$((${#COMP_WORDS[@]} - 1)); ` +
				`COMP_LINE="${COMP_WORDS[*]}"; _pacemakerctl; printf '%s\n' "${COMPREPLY[@]}"`
			cmd := exec.Command("bash", "--norc", "--noprofile", "-c", prog, script)
			cmd.Env = append(os.Environ(), "PATH="+built.bin+string(os.PathListSeparator)+os.Getenv("PATH"))
			out, err := cmd.CombinedOutput()
			if err != nil {
				t.Fatalf("bash: %v\n%s", err, out)
			}
			got := lines(string(out))
			sort.Strings(got)
			// The commands are read from pacemakerctl --help, so newer ones
			// may appear; the listed ones must.
			for _, w := range tt.want {
				if !contains(got, w) {
					t.Errorf("completing %q: got %q, want %q among them", tt.words, got, w)
				}
			}
			for _, g := range got {
				if !strings.HasPrefix(g, tt.words[len(tt.words)-1]) {
					t.Errorf("completing %q offered %q", tt.words, g)
				}
			}
		})
	}
}

func contains(list []string, s string) bool {
	for _, l := range list {
		if l == s {
			return true
		}
	}
	return false
}
