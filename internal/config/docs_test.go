package config

import (
	"os"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"testing"

	"go.yaml.in/yaml/v3"
)

// Keys is the one source of the daemon's keys, defaults and ranges. The
// tests here keep every other place that lists them in step: the README's
// table, the man page, the sample config and the Ansible role.

func readRepoFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile("../../" + path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// defaultOf is d's default as Load returns it.
func defaultOf(t *testing.T, d keyDef) any {
	t.Helper()
	v, err := convert(d, d.def)
	if err != nil {
		t.Fatalf("%s: default %v: %v", d.key, d.def, err)
	}
	return v
}

// checkDocumentedDefault parses a default as written in a document (YAML
// syntax; "empty" for "") and requires it to equal d's.
func checkDocumentedDefault(t *testing.T, where string, d keyDef, text string) {
	t.Helper()
	var raw any
	if text != "empty" {
		if err := yaml.Unmarshal([]byte(text), &raw); err != nil {
			t.Errorf("%s: %s: default %q: %v", where, d.key, text, err)
			return
		}
	}
	got, err := convert(d, raw)
	if err != nil {
		t.Errorf("%s: %s: default %q: %v", where, d.key, text, err)
		return
	}
	if want := defaultOf(t, d); !reflect.DeepEqual(got, want) {
		t.Errorf("%s: %s: default %q, the daemon's is %s", where, d.key, text, formatValue(d, want))
	}
}

// TestSampleFileShowsEveryDefault: etc/pacemaker.yaml shows every key,
// commented out, with the daemon's default, and no other key.
func TestSampleFileShowsEveryDefault(t *testing.T) {
	var uncommented strings.Builder
	shown := map[string]bool{}
	for line := range strings.Lines(readRepoFile(t, "etc/pacemaker.yaml")) {
		if key, _, ok := strings.Cut(strings.TrimPrefix(line, "#"), ": "); ok && strings.HasPrefix(line, "#") && !strings.ContainsAny(key, " #") {
			uncommented.WriteString(line[1:])
			shown[key] = true
		}
	}
	path := writeFile(t, uncommented.String())
	c, err := Load(path, nil, nil)
	if err != nil {
		t.Fatalf("etc/pacemaker.yaml with every line uncommented: %v", err)
	}
	for key := range shown {
		if !isKey(key) {
			t.Errorf("etc/pacemaker.yaml shows %s, which the daemon does not read", key)
		}
	}
	for _, d := range Keys {
		if !shown[d.key] {
			t.Errorf("etc/pacemaker.yaml does not show %s", d.key)
			continue
		}
		if want := defaultOf(t, d); !reflect.DeepEqual(c.values[d.key], want) {
			t.Errorf("etc/pacemaker.yaml: %s: %s, the daemon's default is %s", d.key,
				formatValue(d, c.values[d.key]), formatValue(d, want))
		}
	}
}

// TestReadmeTableInStep: the README's configuration table has a row per
// key with its default and environment variable, and no other key.
func TestReadmeTableInStep(t *testing.T) {
	row := regexp.MustCompile("(?m)^\\| `([a-z][a-z.]*)` \\| ([^|]*) \\| `([A-Z_]+)` \\|")
	rows := map[string][]string{}
	for _, m := range row.FindAllStringSubmatch(readRepoFile(t, "README.md"), -1) {
		rows[m[1]] = m[2:]
		if !isKey(m[1]) {
			t.Errorf("README's configuration table has %s, which the daemon does not read", m[1])
		}
	}
	for _, d := range Keys {
		r, ok := rows[d.key]
		if !ok {
			t.Errorf("README's configuration table has no row for %s", d.key)
			continue
		}
		checkDocumentedDefault(t, "README", d, strings.TrimSpace(r[0]))
		if r[1] != EnvName(d.key) {
			t.Errorf("README: %s: variable %s, the daemon reads %s", d.key, r[1], EnvName(d.key))
		}
	}
}

// TestManPageInStep: pacemaker(8) documents every key with its default.
func TestManPageInStep(t *testing.T) {
	entry := regexp.MustCompile(`(?m)^\.BR ([a-z][a-z.]*) " \(([^)]*)\)"$`)
	entries := map[string]string{}
	for _, m := range entry.FindAllStringSubmatch(readRepoFile(t, "docs/man/pacemaker.8"), -1) {
		entries[m[1]] = m[2]
		if !isKey(m[1]) {
			t.Errorf("pacemaker.8 documents %s, which the daemon does not read", m[1])
		}
	}
	for _, d := range Keys {
		def, ok := entries[d.key]
		if !ok {
			t.Errorf("pacemaker.8 has no entry %q for %s", `.BR `+d.key+` " (default)"`, d.key)
			continue
		}
		checkDocumentedDefault(t, "pacemaker.8", d, def)
	}
}

// ansibleVar is the pacemaker role's variable for key.
func ansibleVar(key string) string {
	if key == "java.security.auth.login.config" {
		return "pacemaker_jaas_file"
	}
	return "pacemaker_" + strings.ReplaceAll(strings.TrimPrefix(key, "pacemaker."), ".", "_")
}

// TestAnsibleRoleInStep: the pacemaker role has a variable per key, typed
// like the key, unset by default (so the daemon's default applies), and its
// template writes the key only when the variable is set. The daemon
// defaults the role uses for what it acts on itself are the daemon's.
func TestAnsibleRoleInStep(t *testing.T) {
	const role = "ansible/roles/pacemaker/"
	var specs struct {
		ArgumentSpecs map[string]struct {
			Options map[string]map[string]any `yaml:"options"`
		} `yaml:"argument_specs"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, role+"meta/argument_specs.yml")), &specs); err != nil {
		t.Fatal(err)
	}
	options := specs.ArgumentSpecs["main"].Options
	var defaults map[string]any
	if err := yaml.Unmarshal([]byte(readRepoFile(t, role+"defaults/main.yml")), &defaults); err != nil {
		t.Fatal(err)
	}
	var vars struct {
		DaemonDefaults map[string]any `yaml:"__pacemaker_daemon_defaults"`
	}
	if err := yaml.Unmarshal([]byte(readRepoFile(t, role+"vars/main.yml")), &vars); err != nil {
		t.Fatal(err)
	}
	template := readRepoFile(t, role+"templates/pacemaker.yaml.j2")

	wantType := map[kind]string{kInt: "int", kBool: "bool", kString: "str", kStrings: "list", kMethod: "str", kLevel: "str", kSeconds: "int"}
	for _, d := range Keys {
		name := ansibleVar(d.key)
		opt, ok := options[name]
		if !ok {
			t.Errorf("argument_specs.yml has no option %s for %s", name, d.key)
			continue
		}
		typ, _ := opt["type"].(string)
		if typ != wantType[d.kind] && !(d.kind == kString && typ == "path") {
			t.Errorf("argument_specs.yml: %s is type %q, %s wants %q", name, typ, d.key, wantType[d.kind])
		}
		if d.kind == kStrings && opt["elements"] != "str" {
			t.Errorf("argument_specs.yml: %s: elements %v, want str", name, opt["elements"])
		}
		if choices, ok := opt["choices"].([]any); ok || d.kind == kMethod || d.kind == kLevel {
			if !slices.ContainsFunc(choices, func(c any) bool { return reflect.DeepEqual(c, d.def) }) {
				t.Errorf("argument_specs.yml: %s: choices %v lack the default %v", name, choices, d.def)
			}
			for _, c := range choices {
				if _, err := convert(d, c); err != nil {
					t.Errorf("argument_specs.yml: %s: choice %v: the daemon refuses it: %v", name, c, err)
				}
			}
		}
		if def, ok := opt["default"]; ok {
			t.Errorf("argument_specs.yml: %s has default %v: leave it unset, the daemon's default applies", name, def)
		}
		if v, ok := defaults[name]; ok {
			t.Errorf("defaults/main.yml sets %s: %v: leave it unset, the daemon's default applies", name, v)
		}
		written := regexp.MustCompile(`(?m)^\{% if ` + name + ` is defined( or [^%]*)? %\}\n` + regexp.QuoteMeta(d.key) + `: `)
		if !written.MatchString(template) {
			t.Errorf("templates/pacemaker.yaml.j2 does not write %s under {%% if %s is defined %%}", d.key, name)
		}
	}
	for line := range strings.Lines(template) {
		if key, _, ok := strings.Cut(line, ": "); ok && regexp.MustCompile(`^[a-z][a-z.]*$`).MatchString(key) && !isKey(key) {
			t.Errorf("templates/pacemaker.yaml.j2 writes %s, which the daemon does not read", key)
		}
	}
	if len(vars.DaemonDefaults) == 0 {
		t.Error("vars/main.yml has no __pacemaker_daemon_defaults")
	}
	for key, v := range vars.DaemonDefaults {
		i := slices.IndexFunc(Keys, func(d keyDef) bool { return d.key == key })
		if i < 0 {
			t.Errorf("vars/main.yml: __pacemaker_daemon_defaults has %s, which the daemon does not read", key)
			continue
		}
		got, err := convert(Keys[i], v)
		if want := defaultOf(t, Keys[i]); err != nil || !reflect.DeepEqual(got, want) {
			t.Errorf("vars/main.yml: __pacemaker_daemon_defaults[%s] = %v, the daemon's default is %s", key, v, formatValue(Keys[i], want))
		}
	}
}
