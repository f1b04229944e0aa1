package ansible

import (
	"bytes"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/storm-pacemaker/pacemaker/internal/testutil/golden"
)

// The keys a Nimbus host with DIGEST gets.
var nimbusSettings = map[string]any{
	"storm.cluster.state.store":       "org.apache.storm.cluster.PaceMakerStateStorageFactory",
	"pacemaker.servers":               []any{"pm1.example.com", "pm2.example.com"},
	"pacemaker.port":                  6699,
	"pacemaker.auth.method":           "DIGEST",
	"java.security.auth.login.config": "/opt/storm/conf/storm_jaas.conf",
}

// moduleRun is the JSON a module prints.
type moduleRun struct {
	Changed      bool     `json:"changed"`
	Failed       bool     `json:"failed"`
	Msg          string   `json:"msg"`
	CommentedOut []string `json:"commented_out"`
	Diff         struct {
		Before string `json:"before"`
		After  string `json:"after"`
	} `json:"diff"`
}

// runStormYAMLModule runs the role's storm_yaml_settings module the way
// Ansible does on a host: Python with the arguments in a JSON file.
func runStormYAMLModule(t *testing.T, args map[string]any) moduleRun {
	t.Helper()
	python := "/usr/bin/python3" // Debian's, where the ansible package lives
	if _, err := os.Stat(python); err != nil {
		t.Skipf("SKIP: %s missing (apt-get install python3 ansible)", python)
	}
	if err := exec.Command(python, "-c", "import ansible, yaml").Run(); err != nil {
		t.Skipf("SKIP: %s cannot import ansible and yaml (apt-get install ansible python3-yaml): %v", python, err)
	}
	argsFile := filepath.Join(t.TempDir(), "args.json")
	b, err := json.Marshal(map[string]any{"ANSIBLE_MODULE_ARGS": args})
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(argsFile, b, 0o600); err != nil {
		t.Fatal(err)
	}
	module := filepath.Join(ansibleDir(t), "roles", "storm_pacemaker", "library", "storm_yaml_settings.py")
	r := run(t, time.Minute, t.TempDir(), []string{"PYTHONPATH="}, python, module, argsFile)
	var out moduleRun
	if err := json.Unmarshal([]byte(r.stdout), &out); err != nil {
		t.Fatalf("module output is not JSON (%v; exit %v)\n%s", err, r.err, r)
	}
	if (r.err != nil) != out.Failed {
		t.Fatalf("module exit %v but failed=%v\n%s", r.err, out.Failed, r)
	}
	return out
}

func TestStormYAMLSettings(t *testing.T) {
	tests := []struct {
		name     string
		input    string // testdata/storm_yaml/<input>.yaml; "" = no file
		settings map[string]any
		state    string
		create   bool
		commentd []string // keys the run comments out
		fails    string   // part of the failure message; "" = succeeds
	}{
		{name: "new-file", create: true, settings: nimbusSettings},
		{name: "missing-without-create", settings: nimbusSettings, fails: "does not exist"},
		{name: "empty-file", input: "empty", settings: nimbusSettings},
		{name: "keeps-operator-config", input: "operator", settings: nimbusSettings},
		{name: "comments-out-conflicts", input: "conflicts", settings: nimbusSettings,
			commentd: []string{"pacemaker.port", "pacemaker.servers", "storm.cluster.state.store", "pacemaker.auth.method", "pacemaker.port"}},
		{name: "rewrites-block-in-place", input: "block-in-middle", settings: nimbusSettings},
		{name: "conflicts-around-block", input: "conflicts-before-block", settings: nimbusSettings,
			commentd: []string{"pacemaker.port", "pacemaker.servers"}},
		{name: "worker-settings", input: "operator", settings: map[string]any{
			"storm.cluster.state.store": "org.apache.storm.cluster.PaceMakerStateStorageFactory",
			"pacemaker.servers":         []any{"192.168.56.11", "192.168.56.12"},
			"pacemaker.port":            6699,
			"pacemaker.auth.method":     "NONE",
		}},
		{name: "absent-removes-block", input: "block-in-middle", state: "absent"},
		{name: "absent-without-block", input: "operator", state: "absent"},
		{name: "not-a-mapping", input: "list", settings: nimbusSettings, fails: "not a mapping"},
		{name: "alias-would-break", input: "alias", settings: nimbusSettings, fails: "would not be valid YAML"},
		{name: "unterminated-block", input: "unterminated", settings: nimbusSettings, fails: "but not"},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "conf", "storm.yaml")
			var before []byte
			if tc.input != "" {
				var err error
				if before, err = os.ReadFile(filepath.Join("testdata", "storm_yaml", tc.input+".yaml")); err != nil {
					t.Fatal(err)
				}
				if err := os.MkdirAll(filepath.Dir(path), 0o755); err != nil {
					t.Fatal(err)
				}
				if err := os.WriteFile(path, before, 0o640); err != nil {
					t.Fatal(err)
				}
			}
			args := map[string]any{"path": path, "settings": tc.settings, "create": tc.create, "_ansible_diff": true}
			if tc.state != "" {
				args["state"] = tc.state
			}

			// Check mode reports what a real run does and writes nothing.
			check := runStormYAMLModule(t, merge(args, map[string]any{"_ansible_check_mode": true}))
			assertUnchanged(t, path, before, tc.input != "")

			first := runStormYAMLModule(t, args)
			if tc.fails != "" {
				if !first.Failed || !strings.Contains(first.Msg, tc.fails) {
					t.Fatalf("want a failure containing %q, got failed=%v msg=%q", tc.fails, first.Failed, first.Msg)
				}
				assertUnchanged(t, path, before, tc.input != "")
				return
			}
			if first.Failed {
				t.Fatalf("module failed: %s", first.Msg)
			}
			if check.Changed != first.Changed || check.Failed {
				t.Errorf("check mode said changed=%v failed=%v, the run changed=%v", check.Changed, check.Failed, first.Changed)
			}
			after, err := os.ReadFile(path)
			if err != nil && !(os.IsNotExist(err) && tc.state == "absent") {
				t.Fatal(err)
			}
			if first.Changed != !bytes.Equal(before, after) {
				t.Errorf("changed=%v but the file changed: %v", first.Changed, !bytes.Equal(before, after))
			}
			if first.Changed && (first.Diff.Before != string(before) || first.Diff.After != string(after)) {
				t.Errorf("diff does not show the change:\nbefore %q\nafter %q", first.Diff.Before, first.Diff.After)
			}
			if !reflect.DeepEqual(first.CommentedOut, tc.commentd) && !(len(first.CommentedOut) == 0 && len(tc.commentd) == 0) {
				t.Errorf("commented out %v, want %v", first.CommentedOut, tc.commentd)
			}
			if tc.input != "" {
				if st, err := os.Stat(path); err == nil && st.Mode().Perm() != 0o640 {
					t.Errorf("mode %v: the edit must keep the file's mode 0640", st.Mode().Perm())
				}
			}
			checkSemantics(t, before, after, tc.settings, tc.state)
			golden.Check(t, filepath.Join("testdata", "storm_yaml", tc.name+".golden"), after)

			// A second run finds nothing to do.
			second := runStormYAMLModule(t, args)
			again, _ := os.ReadFile(path)
			if second.Failed || second.Changed || !bytes.Equal(again, after) {
				t.Errorf("second run: changed=%v failed=%v msg=%q; file changed: %v", second.Changed, second.Failed, second.Msg, !bytes.Equal(again, after))
			}
		})
	}
}

func merge(a, b map[string]any) map[string]any {
	out := map[string]any{}
	for k, v := range a {
		out[k] = v
	}
	for k, v := range b {
		out[k] = v
	}
	return out
}

func assertUnchanged(t *testing.T, path string, before []byte, existed bool) {
	t.Helper()
	now, err := os.ReadFile(path)
	switch {
	case !existed && err == nil:
		t.Errorf("%s was created", path)
	case existed && !bytes.Equal(now, before):
		t.Errorf("%s changed:\n%s", path, now)
	}
}

// checkSemantics parses the result with a second YAML implementation (Go's,
// which also refuses duplicate keys): the block's keys have their values and
// every other key kept its value.
func checkSemantics(t *testing.T, before, after []byte, settings map[string]any, state string) {
	t.Helper()
	old := lastWins(t, before)
	var now map[string]any
	if err := yaml.Unmarshal(after, &now); err != nil {
		t.Fatalf("result is not valid YAML with unique keys: %v\n%s", err, after)
	}
	if state == "absent" {
		for k := range now {
			if _, ok := old[k]; !ok {
				t.Errorf("absent added key %s", k)
			}
		}
		return
	}
	for k, want := range settings {
		if !reflect.DeepEqual(now[k], want) {
			t.Errorf("%s = %#v, want %#v", k, now[k], want)
		}
	}
	for k, v := range old {
		if _, managed := settings[k]; managed {
			continue
		}
		if !reflect.DeepEqual(now[k], v) {
			t.Errorf("key %s outside the block changed from %#v to %#v", k, v, now[k])
		}
	}
	for k := range now {
		_, managed := settings[k]
		if _, had := old[k]; !had && !managed {
			t.Errorf("key %s appeared", k)
		}
	}
}

// lastWins reads a top-level mapping as Storm's parser (SnakeYAML) does when
// a key repeats: the last one counts.
func lastWins(t *testing.T, b []byte) map[string]any {
	t.Helper()
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("input: %v", err)
	}
	out := map[string]any{}
	if len(doc.Content) == 0 {
		return out
	}
	root := doc.Content[0]
	if root.Kind != yaml.MappingNode {
		t.Fatalf("input: top level is not a mapping")
	}
	for i := 0; i+1 < len(root.Content); i += 2 {
		var v any
		if err := root.Content[i+1].Decode(&v); err != nil {
			t.Fatalf("input: key %s: %v", root.Content[i].Value, err)
		}
		out[root.Content[i].Value] = v
	}
	return out
}
