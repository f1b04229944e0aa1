// Package monitoring proves the operator's kit in monitoring/ against the
// real tools: promtool checks and unit-tests the rules, and a real
// Prometheus (Debian's package) scrapes two real daemons under a small
// Storm-shaped load, then every recording rule and every dashboard query
// must return data, and the alerts the load provokes must fire.
package monitoring

import (
	"bytes"
	"context"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"math"
	"math/rand/v2"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"go.yaml.in/yaml/v3"

	"github.com/storm-pacemaker/pacemaker/internal/auth/digest"
	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/stormhb"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/syncbuf"
)

func TestMain(m *testing.M) { os.Exit(daemon.Main(m)) }

// tool finds a Prometheus binary; the test cannot prove anything without it.
func tool(t *testing.T, name string) string {
	t.Helper()
	path, err := exec.LookPath(name)
	if err != nil {
		t.Skipf("SKIPPED: %s not found: install Debian's prometheus package (scripts/install-deps.sh test)", name)
	}
	return path
}

func kitDir(t *testing.T) string { return filepath.Join(daemon.RepoRoot(t), "monitoring") }

// TestPromtool: the rule files are valid and their unit tests (every alert
// firing and not firing) pass.
func TestPromtool(t *testing.T) {
	promtool := tool(t, "promtool")
	dir := kitDir(t)
	tests, _ := filepath.Glob(filepath.Join(dir, "tests", "*.yml"))
	if len(tests) == 0 {
		t.Fatal("no promtool tests in monitoring/tests")
	}
	for _, args := range [][]string{
		{"check", "rules", filepath.Join(dir, "rules.yml"), filepath.Join(dir, "alerts.yml")},
		append([]string{"test", "rules"}, tests...),
	} {
		out, err := exec.Command(promtool, args...).CombinedOutput()
		if err != nil {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
}

// TestEveryAlertIsUnitTested: each alert of alerts.yml has a promtool test
// that shows it firing and one that shows it quiet.
func TestEveryAlertIsUnitTested(t *testing.T) {
	dir := kitDir(t)
	var alerts ruleFile
	readYAML(t, filepath.Join(dir, "alerts.yml"), &alerts)
	var suite struct {
		Tests []struct {
			AlertRuleTest []struct {
				Alertname string
				ExpAlerts []any `yaml:"exp_alerts"`
			} `yaml:"alert_rule_test"`
		}
	}
	readYAML(t, filepath.Join(dir, "tests", "alerts_test.yml"), &suite)
	fires, quiet := map[string]bool{}, map[string]bool{}
	for _, tc := range suite.Tests {
		for _, a := range tc.AlertRuleTest {
			if len(a.ExpAlerts) > 0 {
				fires[a.Alertname] = true
			} else {
				quiet[a.Alertname] = true
			}
		}
	}
	for _, r := range alerts.rules() {
		if r.Alert == "" {
			continue
		}
		if !fires[r.Alert] || !quiet[r.Alert] {
			t.Errorf("%s: unit tests show it firing %v, quiet %v; want both", r.Alert, fires[r.Alert], quiet[r.Alert])
		}
	}
}

type rule struct {
	Record, Alert, Expr, For string
}

type ruleFile struct {
	Groups []struct {
		Name  string
		Rules []rule
	}
}

func (f ruleFile) rules() []rule {
	var out []rule
	for _, g := range f.Groups {
		out = append(out, g.Rules...)
	}
	return out
}

func readYAML(t *testing.T, path string, v any) {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := yaml.Unmarshal(b, v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// The load: Storm-shaped topologies whose workers each write to one server
// every heartbeat period, as Storm's client does.
var topologies = []struct {
	id      string
	workers int
}{
	{"wordcount-1-1700000000", 4},
	{"etl-2-1700000000", 3},
	{"idle-3-1700000000", 2},
}

const (
	period   = time.Second // task.heartbeat.frequency.secs in the daemons' config
	user     = "pmuser"
	password = "pmsecret"
	job      = "pacemaker"
)

type server struct {
	proc    *daemon.Proc
	opts    daemon.Options // to start it again on the same ports
	metrics string         // host:port of /metrics
}

// startServer starts a DIGEST daemon serving metrics; extra is more config.
func startServer(t *testing.T, extra string) *server {
	port := daemon.FreePort(t, "127.0.0.1")
	s := &server{metrics: fmt.Sprintf("127.0.0.1:%d", port), opts: daemon.Options{LogLevel: "warn",
		Args: []string{"--test-wedge-on-sigusr2"},
		Config: fmt.Sprintf("pacemaker.auth.method: DIGEST\n"+
			"java.security.auth.login.config: %s/jaas.conf\n"+
			"pacemaker.metrics.listen: %q\n"+
			"task.heartbeat.frequency.secs: %d\n%s", daemon.DirPlaceholder, fmt.Sprintf("127.0.0.1:%d", port), int(period/time.Second), extra),
		Files: map[string]string{"jaas.conf": fmt.Sprintf("PacemakerDigest { username=%q password=%q; };\n", user, password)},
	}}
	s.proc = daemon.Start(t, s.opts)
	s.opts.Port = s.proc.Port()
	return s
}

// restart stops the daemon and starts a new process on the same ports.
func (s *server) restart(t *testing.T) {
	if err := s.proc.Stop(); err != nil {
		t.Errorf("stop %s: %v", s.proc.Addr(), err)
	}
	s.proc = daemon.Start(t, s.opts)
}

// worker writes its heartbeat to one server every period until stopped.
type worker struct {
	stop context.CancelFunc
	done chan struct{}
}

func startWorker(t *testing.T, ctx context.Context, addr, topology, key string) *worker {
	c, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		t.Fatalf("worker %s: %v", key, err)
	}
	wctx, cancel := context.WithCancel(ctx)
	w := &worker{stop: cancel, done: make(chan struct{})}
	go func() {
		defer close(w.done)
		defer c.Close()
		start := time.Now()
		tick := time.NewTicker(period)
		defer tick.Stop()
		for {
			if err := c.SendPulse(wctx, key, heartbeat(topology, start)); err != nil && wctx.Err() == nil {
				t.Errorf("worker %s: %v", key, err)
				return
			}
			select {
			case <-wctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return w
}

// heartbeat is what Storm 2.x's worker writes: its executors' stats,
// gzipped, with the time and its uptime.
func heartbeat(topology string, start time.Time) []byte {
	return stormhb.Encode(stormhb.Heartbeat{StormID: topology, TimeSecs: time.Now().Unix(),
		UptimeSecs: int32(time.Since(start).Seconds())}, 4)
}

// halt stops the worker; a second call does nothing.
func (w *worker) halt() {
	w.stop()
	<-w.done
}

// nimbus reads every worker's heartbeat from every server, as Nimbus does
// every nimbus.monitor.freq.secs, authenticated with DIGEST, until ctx ends;
// wg tracks it.
func nimbus(t *testing.T, ctx context.Context, wg *sync.WaitGroup, servers []*server) {
	mech := digest.NewClientMechanism(digest.SecretFromCredentials(user, password), "nimbus")
	conns := make([]*client.Conn, len(servers))
	for i, s := range servers {
		c, err := client.Dial(ctx, s.proc.Addr(), client.Options{Auth: mech})
		if err != nil {
			t.Fatalf("nimbus: %v", err)
		}
		conns[i] = c
	}
	wg.Go(func() {
		defer func() {
			for _, c := range conns {
				c.Close()
			}
		}()
		for ctx.Err() == nil {
			for _, c := range conns {
				topos, err := c.Children(ctx, "/workerbeats")
				for _, topo := range topos {
					workers, _ := c.Children(ctx, "/workerbeats/"+topo)
					for _, w := range workers {
						_, _, err = c.GetPulse(ctx, "/workerbeats/"+topo+"/"+w)
					}
				}
				if err != nil && ctx.Err() == nil {
					t.Errorf("nimbus read: %v", err)
				}
			}
			sleep(ctx, 2*period)
		}
	})
}

// misconfigured keeps trying to authenticate with a wrong password (a
// Nimbus with a stale JAAS file) and sends a frame far over the size
// limit, so the refusal and authentication panels and alerts have data.
func misconfigured(ctx context.Context, wg *sync.WaitGroup, servers []*server) {
	wrong := digest.NewClientMechanism(digest.SecretFromCredentials(user, "guess"), "nimbus")
	wg.Go(func() {
		for ctx.Err() == nil {
			for _, s := range servers {
				if c, err := client.Dial(ctx, s.proc.Addr(), client.Options{Auth: wrong}); err == nil {
					c.Close()
				}
				if nc, err := net.DialTimeout("tcp", s.proc.Addr(), time.Second); err == nil {
					_, _ = nc.Write(binary.BigEndian.AppendUint32(nil, math.MaxInt32))
					nc.Close()
				}
			}
			sleep(ctx, period)
		}
	})
}

func sleep(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// prometheus is a real Prometheus on loopback scraping the servers every
// second and evaluating the kit's rules every second.
type prometheus struct {
	base string
	hc   *http.Client
}

// forLine is an alert's hold time in alerts.yml.
var forLine = regexp.MustCompile(`(?m)^(\s+for:) \S+$`)

func startPrometheus(t *testing.T, servers []*server) *prometheus {
	bin := tool(t, "prometheus")
	dir := t.TempDir()
	kit := kitDir(t)
	rules, err := os.ReadFile(filepath.Join(kit, "rules.yml"))
	if err != nil {
		t.Fatal(err)
	}
	alerts, err := os.ReadFile(filepath.Join(kit, "alerts.yml"))
	if err != nil {
		t.Fatal(err)
	}
	// The shipped expressions unchanged; only the hold times shortened so
	// the test takes seconds (promtool's tests cover the real ones).
	alerts = forLine.ReplaceAll(alerts, []byte("$1 2s"))
	var targets []string
	for _, s := range servers {
		targets = append(targets, strconv.Quote(s.metrics))
	}
	config := fmt.Sprintf(`global:
  scrape_interval: 1s
  scrape_timeout: 900ms
  evaluation_interval: 1s
rule_files: [rules.yml, alerts.yml]
scrape_configs:
  - job_name: %s
    static_configs:
      - targets: [%s]
`, job, strings.Join(targets, ", "))
	for name, content := range map[string][]byte{"rules.yml": rules, "alerts.yml": alerts, "prometheus.yml": []byte(config)} {
		if err := os.WriteFile(filepath.Join(dir, name), content, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	addr := fmt.Sprintf("127.0.0.1:%d", daemon.FreePort(t, "127.0.0.1"))
	var log syncbuf.Buffer
	cmd := exec.Command(bin, "--config.file="+filepath.Join(dir, "prometheus.yml"),
		"--storage.tsdb.path="+filepath.Join(dir, "data"), "--web.listen-address="+addr, "--log.level=warn")
	cmd.Dir = dir
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start prometheus: %v", err)
	}
	exited := make(chan struct{})
	go func() { _ = cmd.Wait(); close(exited) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-exited
		if t.Failed() {
			t.Logf("prometheus log:\n%s", log.String())
		}
	})
	p := &prometheus{base: "http://" + addr, hc: &http.Client{Timeout: 5 * time.Second}}
	deadline := time.Now().Add(30 * time.Second)
	for {
		resp, err := p.hc.Get(p.base + "/-/ready")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK {
				return p
			}
		}
		select {
		case <-exited:
			t.Fatalf("prometheus exited:\n%s", log.String())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("prometheus not ready after 30 s: %v\n%s", err, log.String())
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func (p *prometheus) get(t *testing.T, path string, q url.Values, data any) {
	t.Helper()
	resp, err := p.hc.Get(p.base + path + "?" + q.Encode())
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Status string
		Error  string
		Data   json.RawMessage
	}
	if err := json.NewDecoder(resp.Body).Decode(&body); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	if body.Status != "success" {
		t.Fatalf("%s?%s: %s", path, q.Encode(), body.Error)
	}
	if err := json.Unmarshal(body.Data, data); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
}

// query evaluates expr now and returns how many samples hold a number.
func (p *prometheus) query(t *testing.T, expr string) int {
	t.Helper()
	var data struct {
		ResultType string
		Result     []struct {
			Value [2]any
		}
	}
	p.get(t, "/api/v1/query", url.Values{"query": {expr}}, &data)
	n := 0
	for _, r := range data.Result {
		if s, ok := r.Value[1].(string); ok && s != "NaN" {
			n++
		}
	}
	return n
}

type alert struct {
	Labels map[string]string
	State  string
}

func (p *prometheus) firing(t *testing.T) []alert {
	t.Helper()
	var data struct{ Alerts []alert }
	p.get(t, "/api/v1/alerts", nil, &data)
	var out []alert
	for _, a := range data.Alerts {
		if a.State == "firing" {
			out = append(out, a)
		}
	}
	return out
}

// waitAlerts waits until every wanted alert fires (each a set of labels it
// must have) and returns the alerts firing then.
func (p *prometheus) waitAlerts(t *testing.T, timeout time.Duration, want ...map[string]string) []alert {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for {
		got := p.firing(t)
		missing := slices.DeleteFunc(slices.Clone(want), func(w map[string]string) bool {
			return slices.ContainsFunc(got, func(a alert) bool { return matches(a, w) })
		})
		if len(missing) == 0 {
			return got
		}
		if time.Now().After(deadline) {
			t.Fatalf("after %v these alerts do not fire: %v\nfiring: %v", timeout, missing, got)
		}
		time.Sleep(250 * time.Millisecond)
	}
}

func matches(a alert, want map[string]string) bool {
	for k, v := range want {
		if a.Labels[k] != v {
			return false
		}
	}
	return true
}

// dashboardQueries returns every panel query of dashboard.json with the
// dashboard's variables filled in as Grafana does for "All".
func dashboardQueries(t *testing.T) map[string]string {
	var dash struct {
		Panels []struct {
			Title   string
			Targets []struct{ Expr string }
		}
	}
	b, err := os.ReadFile(filepath.Join(kitDir(t), "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatalf("dashboard.json: %v", err)
	}
	fill := strings.NewReplacer(`"$job"`, strconv.Quote(job), `"$instance"`, `".+"`)
	out := map[string]string{}
	for _, p := range dash.Panels {
		for _, tg := range p.Targets {
			q := fill.Replace(tg.Expr)
			if strings.Contains(q, "$") {
				t.Errorf("panel %q: variable left in %s", p.Title, q)
			}
			out[p.Title+": "+tg.Expr] = q
		}
	}
	if len(out) < 20 {
		t.Fatalf("dashboard.json: only %d queries", len(out))
	}
	return out
}

// TestAgainstPrometheus is the kit in use: two DIGEST servers, 9 workers
// in 3 topologies, a Nimbus reading, a misconfigured client; Prometheus
// scrapes and evaluates every second. Server 0 runs with budgets its load
// nearly fills (its keys exactly; its connections with idle ones added).
func TestAgainstPrometheus(t *testing.T) {
	tool(t, "prometheus")
	ctx, cancel := context.WithTimeout(context.Background(), 4*time.Minute)
	defer cancel()

	// Storm's client picks one server at random and stays on it.
	type placement struct {
		topology, key string
		server        int
	}
	rng := rand.New(rand.NewPCG(1, 2))
	var placements []placement
	keysOn0, bytesOn0 := 0, 0
	for _, topo := range topologies {
		for i := range topo.workers {
			p := placement{topo.id, fmt.Sprintf("/workerbeats/%s/%08x-%04x-%d", topo.id, rng.Uint32(), rng.Uint32()&0xffff, 6700+i), rng.IntN(2)}
			if p.server == 0 {
				keysOn0++
				bytesOn0 += len(p.key) + len(heartbeat(p.topology, time.Now())) + store.EntryOverhead
			}
			placements = append(placements, p)
		}
	}
	// Server 0's budgets: exactly its keys, its stored bytes at 90 % (a
	// heartbeat's size varies by a few bytes), 10 connections.
	const maxConns0 = 10
	servers := []*server{
		startServer(t, fmt.Sprintf("pacemaker.max.keys: %d\npacemaker.max.stored.bytes: %d\npacemaker.max.connections: %d\n",
			keysOn0, bytesOn0*10/9, maxConns0)),
		startServer(t, ""),
	}
	byTopology := map[string][]*worker{}
	var all []*worker
	for _, p := range placements {
		w := startWorker(t, ctx, servers[p.server].proc.Addr(), p.topology, p.key)
		byTopology[p.topology] = append(byTopology[p.topology], w)
		all = append(all, w)
	}
	haltAll := sync.OnceFunc(func() {
		var wg sync.WaitGroup
		for _, w := range all {
			wg.Go(w.halt)
		}
		wg.Wait()
	})
	defer haltAll()
	readers, cancelReaders := context.WithCancel(ctx)
	var readersWG sync.WaitGroup
	stopReaders := func() { cancelReaders(); readersWG.Wait() }
	defer stopReaders()
	nimbus(t, readers, &readersWG, servers)
	misconfigured(readers, &readersWG, servers)
	// Idle connections (loopback may pass the cap a little) bring server
	// 0 to its connection cap.
	for range maxConns0 {
		nc, err := net.Dial("tcp", servers[0].proc.Addr())
		if err != nil {
			t.Fatal(err)
		}
		defer nc.Close()
	}
	prom := startPrometheus(t, servers)

	// Every recording rule and every panel returns data once Prometheus
	// has a few scrapes (rates need two samples in their window).
	var kit ruleFile
	readYAML(t, filepath.Join(kitDir(t), "rules.yml"), &kit)
	queries := dashboardQueries(t)
	deadline := time.Now().Add(45 * time.Second)
	for {
		var empty []string
		for _, r := range kit.rules() {
			if prom.query(t, r.Record) == 0 {
				empty = append(empty, "recording rule "+r.Record)
			}
		}
		for name, q := range queries {
			if prom.query(t, q) == 0 {
				empty = append(empty, "panel "+name)
			}
		}
		if len(empty) == 0 {
			break
		}
		if time.Now().After(deadline) {
			slices.Sort(empty)
			t.Fatalf("no data after 45 s for:\n  %s", strings.Join(empty, "\n  "))
		}
		time.Sleep(time.Second)
	}
	// Every rule evaluates without error.
	var rules struct {
		Groups []struct {
			Rules []struct {
				Name, Health, LastError string
			}
		}
	}
	prom.get(t, "/api/v1/rules", nil, &rules)
	for _, g := range rules.Groups {
		for _, r := range g.Rules {
			if r.Health != "ok" {
				t.Errorf("rule %s: health %q: %s", r.Name, r.Health, r.LastError)
			}
		}
	}
	// The values follow the load: 9 fresh workers in 3 topologies.
	if n := prom.query(t, `topology:pacemaker_topology_workers_fresh:sum{job="pacemaker"} > 0`); n != len(topologies) {
		t.Errorf("%d topologies with fresh workers, want %d", n, len(topologies))
	}
	if n := prom.query(t, `sum(topology:pacemaker_topology_workers_fresh:sum) == 9`); n != 1 {
		t.Errorf("fresh workers across servers are not 9")
	}

	// The misconfigured client's refusals and failed handshakes fire, and
	// server 0's full budgets.
	prom.waitAlerts(t, 30*time.Second,
		map[string]string{"alertname": "PacemakerAuthFailures", "method": "DIGEST-MD5"},
		map[string]string{"alertname": "PacemakerLimitRefusals", "reason": "frame too large"},
		map[string]string{"alertname": "PacemakerKeysNearLimit", "instance": servers[0].metrics},
		map[string]string{"alertname": "PacemakerStoredBytesNearLimit", "instance": servers[0].metrics},
		map[string]string{"alertname": "PacemakerConnectionsNearLimit", "instance": servers[0].metrics})
	for _, a := range prom.firing(t) {
		switch a.Labels["alertname"] {
		case "PacemakerWorkersStale", "PacemakerTopologyStale", "PacemakerDown", "PacemakerSelfCheckFailing", "PacemakerRestarting":
			t.Errorf("%s fires while every worker writes and every server is up: %v", a.Labels["alertname"], a.Labels)
		case "PacemakerKeysNearLimit", "PacemakerStoredBytesNearLimit", "PacemakerConnectionsNearLimit":
			if a.Labels["instance"] != servers[0].metrics {
				t.Errorf("%s fires for %s, far from its limits", a.Labels["alertname"], a.Labels["instance"])
			}
		}
	}

	// Stop every worker of one topology and one worker of another: their
	// keys stop being rewritten, and after 3 periods the alerts fire.
	for _, w := range byTopology["idle-3-1700000000"] {
		w.halt()
	}
	byTopology["wordcount-1-1700000000"][0].halt()
	stopped := time.Now()
	got := prom.waitAlerts(t, 30*time.Second,
		map[string]string{"alertname": "PacemakerWorkersStale", "topology": "idle-3-1700000000"},
		map[string]string{"alertname": "PacemakerWorkersStale", "topology": "wordcount-1-1700000000"},
		map[string]string{"alertname": "PacemakerTopologyStale", "topology": "idle-3-1700000000"})
	t.Logf("stale-worker alerts fired %v after the workers stopped", time.Since(stopped).Round(100*time.Millisecond))
	for _, a := range got {
		if a.Labels["topology"] == "etl-2-1700000000" {
			t.Errorf("an alert fires for etl, whose workers all write: %v", a.Labels)
		}
		if a.Labels["alertname"] == "PacemakerTopologyStale" && a.Labels["topology"] == "wordcount-1-1700000000" {
			t.Errorf("PacemakerTopologyStale fires for wordcount, 3 of whose 4 workers write")
		}
	}

	// The load stops (its clients would report what follows). Server 1's
	// request path is wedged on purpose (its self-check fails; the
	// metrics listener still answers), while server 0 restarts twice.
	haltAll()
	stopReaders()
	if err := servers[1].proc.Signal(syscall.SIGUSR2); err != nil {
		t.Fatal(err)
	}
	for i := range 2 {
		servers[0].restart(t)
		// Prometheus must scrape each process for the restart to count.
		want := fmt.Sprintf(`changes(process_start_time_seconds{instance=%q}[5m]) >= %d`, servers[0].metrics, i+1)
		for deadline := time.Now().Add(20 * time.Second); prom.query(t, want) == 0; time.Sleep(250 * time.Millisecond) {
			if time.Now().After(deadline) {
				t.Fatalf("Prometheus did not see restart %d of %s", i+1, servers[0].metrics)
			}
		}
	}
	prom.waitAlerts(t, 45*time.Second,
		map[string]string{"alertname": "PacemakerRestarting", "instance": servers[0].metrics},
		map[string]string{"alertname": "PacemakerSelfCheckFailing", "instance": servers[1].metrics})

	// A server that stops answering scrapes fires PacemakerDown.
	if err := servers[1].proc.Stop(); err != nil {
		t.Errorf("stop server: %v", err)
	}
	prom.waitAlerts(t, 30*time.Second, map[string]string{"alertname": "PacemakerDown", "instance": servers[1].metrics})
}

// TestDashboardIsGrafanaShaped: the JSON a Grafana import needs: unique
// panel ids, a datasource variable every query uses, one repeated row per
// server.
func TestDashboardIsGrafanaShaped(t *testing.T) {
	b, err := os.ReadFile(filepath.Join(kitDir(t), "dashboard.json"))
	if err != nil {
		t.Fatal(err)
	}
	var dash struct {
		UID        string
		Templating struct {
			List []struct{ Name, Type string }
		}
		Panels []struct {
			ID         int
			Type       string
			Title      string
			Repeat     string
			Datasource struct{ UID string }
			Targets    []struct {
				Expr       string
				Datasource struct{ UID string }
			}
		}
	}
	if err := json.Unmarshal(b, &dash); err != nil {
		t.Fatal(err)
	}
	if dash.UID == "" {
		t.Error("no uid: a re-import would create a copy")
	}
	vars := map[string]string{}
	for _, v := range dash.Templating.List {
		vars[v.Name] = v.Type
	}
	if vars["datasource"] != "datasource" || vars["job"] != "query" || vars["instance"] != "query" {
		t.Errorf("variables %v; want datasource, job and instance", vars)
	}
	ids := map[int]bool{}
	repeated := false
	for _, p := range dash.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.Type == "row" {
			repeated = repeated || p.Repeat == "instance"
			continue
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %q", p.Title, p.Datasource.UID)
		}
		for _, tg := range p.Targets {
			if !bytes.Contains([]byte(tg.Expr), []byte(`job="$job"`)) {
				t.Errorf("panel %q: query does not select the job: %s", p.Title, tg.Expr)
			}
		}
	}
	if !repeated {
		t.Error("no row repeated per instance")
	}
}
