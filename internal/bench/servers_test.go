package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth/digest"
	"github.com/storm-pacemaker/pacemaker/internal/stormhb"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
)

func TestMain(m *testing.M) { os.Exit(daemon.Main(m)) }

// Short runs against real servers: they check that every mode works end
// to end and counts what it did; they assert nothing about speed.

const (
	testJAAS = `PacemakerDigest {
   username="bench"
   password="bench-secret";
};
`
	digestConfig = "pacemaker.auth.method: DIGEST\njava.security.auth.login.config: {{dir}}/jaas.conf\n"
)

func testTimeline() Timeline {
	return Timeline{Warmup: 300 * time.Millisecond, Duration: 900 * time.Millisecond, Grace: time.Second}
}

func smallCluster() Cluster {
	return Cluster{Supervisors: 5, WorkersPerSupervisor: 2, TopologyWorkers: 4, Executors: 3, Compression: stormhb.Gzip}
}

func startDigestPacemaker(t *testing.T) *daemon.Proc {
	t.Helper()
	return daemon.Start(t, daemon.Options{Config: digestConfig, Files: map[string]string{"jaas.conf": testJAAS}, LogLevel: "warn"})
}

func nimbusAuth() *digest.ClientMechanism {
	return digest.NewClientMechanism(digest.SecretFromCredentials("bench", "bench-secret"), "bench-nimbus")
}

func checkWrites(t *testing.T, r *Result) {
	t.Helper()
	w := r.Writes
	if w == nil || w.Completed == 0 || w.Errors != 0 || w.Missed != 0 || w.DialErrors != 0 {
		t.Fatalf("writes: %+v", w)
	}
	if w.Latency.Count == 0 || w.Latency.P99 <= 0 || w.Latency.Max < w.Latency.P99 {
		t.Fatalf("latency summary: %+v", w.Latency)
	}
	if r.Server == nil || r.Server.RSSBytes <= 0 || r.Server.CPUSeconds < 0 {
		t.Fatalf("server usage: %+v", r.Server)
	}
	if r.Generator == nil {
		t.Fatal("no generator usage")
	}
	if !strings.Contains(r.Summary(), r.Target) {
		t.Fatalf("summary does not name the target:\n%s", r.Summary())
	}
}

// checkIdle checks an idle run counted what it did; the figures per
// connection depend on the machine and are not asserted.
func checkIdle(t *testing.T, r *Result, conns, sources int) {
	t.Helper()
	s := r.Idle
	if r.Mode != "idle" || s == nil || s.Conns != conns || s.Failed != 0 || s.Sources != sources || s.ErrorSamples != nil {
		t.Fatalf("idle: mode %s %+v", r.Mode, s)
	}
	if s.RSSBeforeBytes <= 0 || s.RSSAfterBytes <= 0 || s.AnonBeforeBytes <= 0 || s.AnonAfterBytes <= 0 {
		t.Fatalf("idle memory readings: %+v", s)
	}
	if !strings.Contains(r.Summary(), "per connection") {
		t.Fatalf("summary:\n%s", r.Summary())
	}
}

func TestPacemakerLoadAndStorm(t *testing.T) {
	p := startDigestPacemaker(t)
	ctx := context.Background()
	target, err := NewTarget("pacemaker", TargetOptions{ReaderAuth: nimbusAuth()})
	if err != nil {
		t.Fatal(err)
	}
	common := Common{Target: target, Servers: []string{p.Addr()}, PID: p.PID(), Timeline: testTimeline()}

	t.Run("closed loop", func(t *testing.T) {
		r, err := RunLoad(ctx, LoadOptions{Common: common, Conns: 4, Keys: 50, Value: make([]byte, 1024)})
		if err != nil {
			t.Fatal(err)
		}
		checkWrites(t, r)
		if !r.Params.Closed || r.Writes.Offered != 0 || r.Writes.Achieved <= 0 {
			t.Fatalf("closed loop: params %+v writes %+v", r.Params, r.Writes)
		}
	})

	t.Run("open loop", func(t *testing.T) {
		r, err := RunLoad(ctx, LoadOptions{Common: common, Conns: 4, Rate: 200, Keys: 50, Value: make([]byte, 1024)})
		if err != nil {
			t.Fatal(err)
		}
		checkWrites(t, r)
		// 200/s over a 0.9 s window: the schedule puts 180 sends in it.
		if r.Writes.Scheduled < 176 || r.Writes.Scheduled > 184 {
			t.Fatalf("scheduled %d sends in the window, want about 180", r.Writes.Scheduled)
		}
	})

	t.Run("storm with authenticated nimbus", func(t *testing.T) {
		so := StormOptions{Common: common, Cluster: smallCluster(), Period: 200 * time.Millisecond, NimbusPeriod: 300 * time.Millisecond, Verify: true}
		r, err := RunStorm(ctx, so)
		if err != nil {
			t.Fatal(err)
		}
		checkWrites(t, r)
		n := r.Nimbus
		if n == nil || n.Cycles == 0 || n.WorkersFound != 10 || n.WorkersMissing != 0 || n.DecodeErrors != 0 {
			t.Fatalf("nimbus: %+v", n)
		}
		// Earlier subtests left other topologies behind.
		if n.TopologiesSeen < 3 || n.Get.Errors+n.ListTopology.Errors+n.ListRoot.Errors != 0 || n.Get.Completed == 0 {
			t.Fatalf("nimbus reads: %+v", n)
		}
		if r.Params.Topologies != 3 || r.Params.Conns != 10 || r.Params.Workers != 10 || r.Params.ValueBytes < 500 {
			t.Fatalf("params: %+v", r.Params)
		}
		if r.RequestsPerCPUSecond == 0 && r.Server.CPUSeconds > 0 {
			t.Fatal("no requests per CPU-second")
		}
	})

	t.Run("workers sharing connections", func(t *testing.T) {
		so := StormOptions{Common: common, Cluster: smallCluster(), Period: 200 * time.Millisecond, NimbusPeriod: 300 * time.Millisecond, WorkersPerConn: 2}
		r, err := RunStorm(ctx, so)
		if err != nil {
			t.Fatal(err)
		}
		checkWrites(t, r)
		if r.Params.Conns != 5 || r.Params.Workers != 10 || r.Params.WorkersPerConn != 2 || r.Nimbus.WorkersFound != 10 {
			t.Fatalf("params %+v, nimbus %+v", r.Params, r.Nimbus)
		}
	})

	t.Run("nimbus without auth is refused", func(t *testing.T) {
		plain, _ := NewTarget("pacemaker", TargetOptions{})
		c := common
		c.Target = plain
		r, err := RunStorm(ctx, StormOptions{Common: c, Cluster: smallCluster(), Period: 200 * time.Millisecond, NimbusPeriod: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if r.Nimbus.WorkersFound != 0 || r.Nimbus.ListRoot.Errors == 0 {
			t.Fatalf("unauthenticated nimbus read heartbeats: %+v", r.Nimbus)
		}
		if !strings.Contains(r.Nimbus.String(), "--auth") {
			t.Fatalf("no hint to authenticate: %s", r.Nimbus)
		}
	})

	t.Run("fill", func(t *testing.T) {
		cl := Cluster{Name: "fill", Supervisors: 15, WorkersPerSupervisor: 4, TopologyWorkers: 20, Executors: 2, Compression: stormhb.Gzip}
		r, err := RunFill(ctx, FillOptions{Common: common, Cluster: cl, Conns: 8, ListQueries: 20})
		if err != nil {
			t.Fatal(err)
		}
		f := r.Fill
		if f.Keys != 60 || f.Errors != 0 || f.PayloadBytes < 60*500 || f.KeyBytes == 0 || f.ListNodes != 20 {
			t.Fatalf("fill: %+v", f)
		}
		if f.RSSBytes <= 0 || f.RSSLimitBytes != int64(1.25*float64(f.PayloadBytes))+32<<20 || f.List.Count != 20 || f.Get.Count != 20 {
			t.Fatalf("fill measurements: %+v", f)
		}
	})

	t.Run("idle", func(t *testing.T) {
		r, err := RunIdle(ctx, IdleOptions{Common: common, Conns: 30, Value: make([]byte, 4096), Settle: 100 * time.Millisecond, Baseline: 100 * time.Millisecond, PerSource: 10})
		if err != nil {
			t.Fatal(err)
		}
		checkIdle(t, r, 30, 3)
	})

	t.Run("max", func(t *testing.T) {
		so := StormOptions{Common: common, Cluster: smallCluster(), Period: 200 * time.Millisecond}
		so.Timeline = Timeline{Warmup: 200 * time.Millisecond, Duration: 600 * time.Millisecond, Grace: time.Second}
		r, err := RunMax(ctx, MaxOptions{StormOptions: so, MaxCPU: 10000, Start: 2, Limit: 4, Steps: 2})
		if err != nil {
			t.Fatal(err)
		}
		// The search's shape, not its outcome: on a loaded machine any trial
		// may miss its rate or its p99, and the search then goes down.
		m := r.Max
		if len(m.Trials) == 0 || m.Trials[0].Supervisors != 2 {
			t.Fatalf("trials: %+v", m.Trials)
		}
		best := 0
		for _, tr := range m.Trials {
			if tr.OK && tr.Supervisors > best {
				best = tr.Supervisors
			}
		}
		if m.MaxSupervisors != best || m.LimitedBy == "" {
			t.Fatalf("max %d (limited by %q), but the best passing trial had %d: %+v", m.MaxSupervisors, m.LimitedBy, best, m)
		}
		if best == 4 && !strings.Contains(m.LimitedBy, "search limit") {
			t.Fatalf("4 supervisors passed, but max: %+v", m)
		}
	})
}

func TestRedis(t *testing.T) {
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		t.Skip("SKIP: redis-server not installed (Debian package redis-server; scripts/install-deps.sh installs it)")
	}
	port := daemon.FreePort(t, "127.0.0.1")
	cmd := exec.Command(bin, "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--protected-mode", "no",
		"--save", "", "--appendonly", "no", "--dir", t.TempDir())
	addr := startProcess(t, cmd, port)

	target, _ := NewTarget("redis", TargetOptions{})
	common := Common{Target: target, Servers: []string{addr}, PID: cmd.Process.Pid, Timeline: testTimeline()}
	r, err := RunLoad(context.Background(), LoadOptions{Common: common, Conns: 4, Keys: 50, Value: make([]byte, 4096)})
	if err != nil {
		t.Fatal(err)
	}
	checkWrites(t, r)

	// Storm mode runs without a Nimbus: redis has nothing to list.
	r, err = RunStorm(context.Background(), StormOptions{Common: common, Cluster: smallCluster(), Period: 200 * time.Millisecond, NimbusPeriod: time.Second})
	if err != nil {
		t.Fatal(err)
	}
	if r.Nimbus != nil || r.Writes.Completed == 0 || r.Writes.Errors != 0 {
		t.Fatalf("redis storm: nimbus %+v writes %+v", r.Nimbus, r.Writes)
	}
	r, err = RunIdle(context.Background(), IdleOptions{Common: common, Conns: 20, Value: make([]byte, 4096), Settle: 100 * time.Millisecond, Baseline: 100 * time.Millisecond, PerSource: 100})
	if err != nil {
		t.Fatal(err)
	}
	checkIdle(t, r, 20, 1)
	if _, err := target.DialReader(context.Background(), addr); !errors.Is(err, errors.ErrUnsupported) {
		t.Fatalf("redis reader: %v", err)
	}
}

func TestZooKeeper(t *testing.T) {
	jar := "/usr/share/java/zookeeper.jar"
	java, err := exec.LookPath("java")
	if _, serr := os.Stat(jar); err != nil || serr != nil {
		t.Skipf("SKIP: ZooKeeper needs java and %s (Debian packages default-jre-headless, zookeeper; scripts/install-deps.sh installs them)", jar)
	}
	dir := t.TempDir()
	port := daemon.FreePort(t, "127.0.0.1")
	cfg := filepath.Join(dir, "zoo.cfg")
	conf := fmt.Sprintf("tickTime=2000\ndataDir=%s\nclientPort=%d\nclientPortAddress=127.0.0.1\nmaxClientCnxns=0\nadmin.enableServer=false\n",
		filepath.Join(dir, "data"), port)
	if err := os.WriteFile(cfg, []byte(conf), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(java, "-Xmx256m", "-cp", jar, "org.apache.zookeeper.server.ZooKeeperServerMain", cfg)
	addr := startProcess(t, cmd, port)
	ctx := context.Background()
	// ZooKeeper accepts connections a moment before it serves sessions.
	for deadline := time.Now().Add(30 * time.Second); ; {
		s, err := dialZooKeeper(ctx, addr, nil, time.Second, 10*time.Second)
		if err == nil {
			s.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("zookeeper never opened a session: %v", err)
		}
		time.Sleep(100 * time.Millisecond)
	}

	target := newZooKeeperTarget(TargetOptions{ZooKeeperSessions: 2})
	defer target.Close()
	common := Common{Target: target, Servers: []string{addr}, PID: cmd.Process.Pid, Timeline: testTimeline()}
	r, err := RunLoad(ctx, LoadOptions{Common: common, Conns: 4, Keys: 50, Value: make([]byte, 4096), ZooKeeperSessions: 2})
	if err != nil {
		t.Fatal(err)
	}
	checkWrites(t, r)

	// One session per worker, znodes created by Prepare, read back by the
	// simulated Nimbus with getChildren and getData.
	perWorker, _ := NewTarget("zookeeper", TargetOptions{})
	c := common
	c.Target = perWorker
	r, err = RunStorm(ctx, StormOptions{Common: c, Cluster: smallCluster(), Period: 200 * time.Millisecond, NimbusPeriod: 300 * time.Millisecond, Verify: true})
	if err != nil {
		t.Fatal(err)
	}
	checkWrites(t, r)
	if n := r.Nimbus; n == nil || n.WorkersFound != 10 || n.TopologiesSeen < 3 || n.DecodeErrors != 0 {
		t.Fatalf("zookeeper nimbus: %+v", r.Nimbus)
	}

	// A write to a znode that does not exist creates it and its parents,
	// as Storm's ZooKeeper state store did.
	w, err := target.Dial(ctx, 0, addr, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := w.Write("/fresh/parent/node", []byte("v1")); err != nil {
		t.Fatal(err)
	}
	if err := w.Write("/fresh/parent/node", []byte("v2")); err != nil {
		t.Fatal(err)
	}
	rd, err := target.DialReader(ctx, addr)
	if err != nil {
		t.Fatal(err)
	}
	defer rd.Close()
	if v, ok, err := rd.Get(ctx, "/fresh/parent/node"); err != nil || !ok || string(v) != "v2" {
		t.Fatalf("get = %q %v %v, want v2", v, ok, err)
	}
	if kids, err := rd.Children(ctx, "/fresh/parent"); err != nil || len(kids) != 1 || kids[0] != "node" {
		t.Fatalf("children = %v %v", kids, err)
	}
	if kids, err := rd.Children(ctx, "/no/such"); err != nil || len(kids) != 0 {
		t.Fatalf("children of a missing znode = %v %v", kids, err)
	}
	if _, ok, err := rd.Get(ctx, "/no/such"); ok || err != nil {
		t.Fatalf("get of a missing znode: found %v err %v", ok, err)
	}
}

// startProcess starts cmd, stops it when the test ends, and waits until
// it accepts connections on port.
func startProcess(t *testing.T, cmd *exec.Cmd, port int) string {
	t.Helper()
	var log strings.Builder
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", cmd.Path, err)
	}
	done := make(chan struct{})
	go func() { _ = cmd.Wait(); close(done) }()
	t.Cleanup(func() {
		_ = cmd.Process.Kill()
		<-done
	})
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(port))
	deadline := time.Now().Add(30 * time.Second)
	for {
		select {
		case <-done:
			t.Fatalf("%s exited before accepting connections:\n%s", cmd.Path, log.String())
		default:
		}
		if c, err := net.DialTimeout("tcp", addr, time.Second); err == nil {
			c.Close()
			return addr
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s not accepting on %s after 30s", cmd.Path, addr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}
