package ansible

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"
)

// lintIssue is one entry of ansible-lint's codeclimate (JSON) output.
type lintIssue struct {
	CheckName   string `json:"check_name"`
	Severity    string `json:"severity"`
	Description string `json:"description"`
	Location    struct {
		Path  string `json:"path"`
		Lines struct {
			Begin int `json:"begin"`
		} `json:"lines"`
	} `json:"location"`
}

// ansibleLint runs ansible-lint in dir with the config in ansible/ (production
// profile, offline, no warning-only rules) and returns its issues and how
// many files it linted.
func ansibleLint(t *testing.T, dir string) ([]lintIssue, int) {
	t.Helper()
	needTool(t, "ansible-lint", "ansible-lint")
	env := append(ansibleEnv(t), "XDG_CACHE_HOME="+t.TempDir())
	r := run(t, 3*time.Minute, dir, env, "ansible-lint", "--offline",
		"-c", filepath.Join(ansibleDir(t), ".ansible-lint"), "-f", "codeclimate")
	var issues []lintIssue
	if err := json.Unmarshal([]byte(r.stdout), &issues); err != nil {
		t.Fatalf("ansible-lint in %s: output is not codeclimate JSON (%v; exit %v)\n%s", dir, err, r.err, r)
	}
	m := regexp.MustCompile(`on (\d+) files`).FindStringSubmatch(r.stderr)
	if m == nil {
		t.Fatalf("ansible-lint in %s: no summary line (exit %v)\n%s", dir, r.err, r)
	}
	files, _ := strconv.Atoi(m[1])
	if len(issues) == 0 && r.err != nil {
		t.Fatalf("ansible-lint in %s failed without reporting an issue: %v\n%s", dir, r.err, r)
	}
	return issues, files
}

func TestAnsibleLintProductionProfile(t *testing.T) {
	issues, files := ansibleLint(t, ansibleDir(t))
	for _, is := range issues {
		t.Errorf("%s:%d: %s [%s] %s", is.Location.Path, is.Location.Lines.Begin, is.CheckName, is.Severity, is.Description)
	}
	// Both roles, both playbooks, the inventories: far more than a handful.
	if files < 30 {
		t.Errorf("ansible-lint looked at %d files; expected the whole ansible/ tree (30+)", files)
	}
	t.Logf("ansible-lint (production profile, offline): %d violations in %d files", len(issues), files)
}

// The lint run must be able to fail: the same config on a playbook with
// known violations reports them.
func TestAnsibleLintCatchesViolations(t *testing.T) {
	dir := t.TempDir()
	src, err := os.ReadFile(filepath.Join("testdata", "lint-violations", "playbook.yml"))
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "playbook.yml"), src, 0o644); err != nil {
		t.Fatal(err)
	}
	issues, _ := ansibleLint(t, dir)
	var names []string
	for _, is := range issues {
		names = append(names, is.CheckName)
	}
	for _, want := range []string{"fqcn[action-core]", "no-changed-when", "risky-file-permissions", "name[missing]", "yaml[truthy]"} {
		if !slices.Contains(names, want) {
			t.Errorf("ansible-lint did not report %s; reported %v", want, names)
		}
	}
}

func TestYamllint(t *testing.T) {
	needTool(t, "yamllint", "yamllint")
	dir := ansibleDir(t)
	r := run(t, time.Minute, dir, nil, "yamllint", "--strict", "-f", "parsable", ".")
	if r.err != nil || r.stdout != "" {
		t.Errorf("yamllint --strict ansible/: %v\n%s", r.err, r)
	}
}

func TestPlaybookSyntax(t *testing.T) {
	needTool(t, "ansible-playbook", "ansible")
	for _, inv := range []string{"example", "testbed"} {
		for _, pb := range []string{"site.yml", "verify.yml"} {
			t.Run(inv+"/"+pb, func(t *testing.T) {
				r := run(t, time.Minute, ansibleDir(t), ansibleEnv(t), "ansible-playbook",
					"-i", filepath.Join("inventory", inv), "--syntax-check", pb)
				if r.err != nil {
					t.Errorf("ansible-playbook --syntax-check %s with inventory %s: %v\n%s", pb, inv, r.err, r)
				}
			})
		}
	}
}

// Both inventories define the groups site.yml plays on, with hosts in each.
func TestInventoryGroups(t *testing.T) {
	needTool(t, "ansible-inventory", "ansible")
	for _, inv := range []string{"example", "testbed"} {
		t.Run(inv, func(t *testing.T) {
			groups := inventoryGroups(t, filepath.Join(ansibleDir(t), "inventory", inv))
			for _, g := range []string{"pacemaker", "nimbus", "supervisors"} {
				if len(groups[g]) == 0 {
					t.Errorf("inventory %s: group %s has no hosts (groups: %v)", inv, g, groups)
				}
			}
			if len(groups["pacemaker"]) < 2 {
				t.Errorf("inventory %s: want at least two pacemaker hosts, have %v", inv, groups["pacemaker"])
			}
		})
	}
}

// inventoryGroups asks ansible-inventory for each group's hosts.
func inventoryGroups(t *testing.T, inventories ...string) map[string][]string {
	t.Helper()
	args := []string{"--list", "--export"}
	for _, inv := range inventories {
		args = append(args, "-i", inv)
	}
	r := run(t, time.Minute, ansibleDir(t), ansibleEnv(t), "ansible-inventory", args...)
	if r.err != nil {
		t.Fatalf("ansible-inventory %v: %v\n%s", inventories, r.err, r)
	}
	var raw map[string]json.RawMessage
	if err := json.Unmarshal([]byte(r.stdout), &raw); err != nil {
		t.Fatalf("ansible-inventory output: %v", err)
	}
	groups := map[string][]string{}
	for name, msg := range raw {
		if name == "_meta" {
			continue
		}
		var g struct {
			Hosts []string `json:"hosts"`
		}
		if err := json.Unmarshal(msg, &g); err != nil {
			t.Fatalf("ansible-inventory group %s: %v", name, err)
		}
		if len(g.Hosts) > 0 {
			groups[name] = g.Hosts
		}
	}
	return groups
}

func groupsString(groups map[string][]string) string {
	var b strings.Builder
	keys := make([]string, 0, len(groups))
	for k := range groups {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		fmt.Fprintf(&b, "%s=%v ", k, groups[k])
	}
	return b.String()
}
