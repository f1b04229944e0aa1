package monitoring

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"testing"
)

// TestAnsibleInstallsRules runs the role's monitoring tasks (and handlers)
// with the real ansible-playbook on this host, from the repository's kit
// in place of the package's copy: the rules land where Prometheus loads
// them, promtool accepts them, and a second run changes nothing.
func TestAnsibleInstallsRules(t *testing.T) {
	playbook, err := exec.LookPath("ansible-playbook")
	if err != nil {
		t.Skip("SKIPPED: ansible-playbook not found: install Debian's ansible package (scripts/install-deps.sh test)")
	}
	promtool := tool(t, "promtool")
	root := filepath.Dir(kitDir(t))
	role := filepath.Join(root, "ansible", "roles", "pacemaker")
	dir := t.TempDir()
	rules, dashboards := filepath.Join(dir, "rules.d"), filepath.Join(dir, "dashboards")
	play := fmt.Sprintf(`- name: Install the monitoring kit
  hosts: localhost
  connection: local
  gather_facts: false
  vars:
    pacemaker_prometheus_rules_dir: %q
    pacemaker_grafana_dashboards_dir: %q
    pacemaker_prometheus_service: ""
    __pacemaker_monitoring_dir: %q
  tasks:
    - name: Monitoring tasks of the role
      ansible.builtin.import_tasks: %q
  handlers:
    - name: Handlers of the role
      ansible.builtin.import_tasks: %q
`, rules, dashboards, kitDir(t), filepath.Join(role, "tasks", "monitoring.yml"), filepath.Join(role, "handlers", "main.yml"))
	path := filepath.Join(dir, "play.yml")
	if err := os.WriteFile(path, []byte(play), 0o644); err != nil {
		t.Fatal(err)
	}
	changed := regexp.MustCompile(`changed=(\d+)`)
	for run, want := range []string{"", "0"} {
		cmd := exec.Command(playbook, "-i", "localhost,", path)
		cmd.Env = append(os.Environ(), "ANSIBLE_NOCOLOR=1", "ANSIBLE_RETRY_FILES_ENABLED=0", "ANSIBLE_LOCAL_TEMP="+filepath.Join(dir, "tmp"))
		out, err := cmd.CombinedOutput()
		if err != nil {
			t.Fatalf("ansible-playbook (run %d): %v\n%s", run+1, err, out)
		}
		m := changed.FindSubmatch(out)
		if m == nil || (want != "" && string(m[1]) != want) || (want == "" && string(m[1]) == "0") {
			t.Errorf("run %d: %s, want changed=%s\n%s", run+1, m, map[bool]string{true: "0", false: ">0"}[want != ""], out)
		}
	}
	installed := []string{filepath.Join(rules, "pacemaker-rules.yml"), filepath.Join(rules, "pacemaker-alerts.yml")}
	if out, err := exec.Command(promtool, append([]string{"check", "rules"}, installed...)...).CombinedOutput(); err != nil {
		t.Errorf("promtool check rules on the installed files: %v\n%s", err, out)
	}
	if _, err := os.Stat(filepath.Join(dashboards, "storm-pacemaker.json")); err != nil {
		t.Errorf("dashboard not installed: %v", err)
	}
}
