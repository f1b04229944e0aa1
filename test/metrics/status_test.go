// Package metrics tests what operators look at, end to end against the
// built binaries: `pacemakerctl status` over two live daemons holding a
// hand-made set of Storm worker heartbeats, and the daemon's metrics
// endpoint.
package metrics

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/status"
	"github.com/storm-pacemaker/pacemaker/internal/stormhb"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/daemon"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/golden"
)

func TestMain(m *testing.M) { os.Exit(daemon.Main(m)) }

// fixedNow makes the golden table independent of the clock.
var fixedNow = time.Date(2025, 3, 14, 15, 9, 26, 0, time.UTC)

// beat is one hand-made heartbeat on one server.
type beat struct {
	server  int // 0 = A, 1 = B
	key     string
	payload []byte
}

// cluster writes what a small Storm cluster would have left in two
// Pacemaker servers, relative to now: workers spread over A and B (a worker
// writes to one server), one that failed over from B to A (an old copy
// left on B), a worker that stopped an hour ago, one whose heartbeat is
// garbage, and a key that is not a worker heartbeat.
func cluster(now time.Time) []beat {
	at := func(agoSecs int64) stormhb.Heartbeat {
		return stormhb.Heartbeat{StormID: "", TimeSecs: now.Unix() - agoSecs, UptimeSecs: 3600}
	}
	hb := func(topo string, agoSecs int64, executors int, opts ...stormhb.Option) []byte {
		h := at(agoSecs)
		h.StormID = topo
		return stormhb.Encode(h, executors, opts...)
	}
	const wc, etl = "wordcount-1-1741964000", "etl-2-1741960000"
	return []beat{
		{0, "/workerbeats/" + wc + "/sup-a-6700", hb(wc, 2, 8)}, // Storm 2.x: gzip, i32 time
		{1, "/workerbeats/" + wc + "/sup-b-6700", hb(wc, 1, 8, stormhb.WithCompression(stormhb.Zstd), stormhb.WithWideTime())},
		{0, "/workerbeats/" + wc + "/sup-c-6701", hb(wc, 95, 4)},  // failed over to A, then stopped
		{1, "/workerbeats/" + wc + "/sup-c-6701", hb(wc, 400, 4)}, // the copy left on B before the failover
		{0, "/workerbeats/" + etl + "/sup-a-6702", hb(etl, 4, 2, stormhb.WithCompression(stormhb.Raw))},
		{1, "/workerbeats/" + etl + "/sup-d-6700", hb(etl, 3700, 2)},
		{0, "/workerbeats/" + etl + "/sup-e-6700", []byte("not a heartbeat")},
		{1, "/backpressure/" + etl + "/sup-d-6700", []byte("x")},
	}
}

// load writes the beats into the two daemons.
func load(t *testing.T, servers []*daemon.Proc, beats []beat) {
	t.Helper()
	ctx := context.Background()
	for _, b := range beats {
		c, err := client.Dial(ctx, servers[b.server].Addr(), client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		err = c.SendPulse(ctx, b.key, b.payload)
		c.Close()
		if err != nil {
			t.Fatal(err)
		}
	}
}

// ctl runs the built pacemakerctl and returns its stdout, stderr and exit code.
func ctl(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	cmd := exec.Command(filepath.Join(daemon.Build(t), "pacemakerctl"), args...)
	var stdout, stderr bytes.Buffer
	cmd.Stdout, cmd.Stderr = &stdout, &stderr
	cmd.Env = append(os.Environ(), "PACEMAKER_SERVERS=", "NO_COLOR=")
	err := cmd.Run()
	var exit *exec.ExitError
	if err != nil && !errors.As(err, &exit) {
		t.Fatalf("run pacemakerctl: %v", err)
	}
	return stdout.String(), stderr.String(), cmd.ProcessState.ExitCode()
}

func TestStatusAgainstTwoDaemons(t *testing.T) {
	a := daemon.Start(t, daemon.Options{LogLevel: "info"})
	b := daemon.Start(t, daemon.Options{LogLevel: "info"})
	servers := []*daemon.Proc{a, b}
	addrs := []string{a.Addr(), b.Addr()}
	load(t, servers, cluster(fixedNow))

	t.Run("golden table", func(t *testing.T) {
		pool := client.NewPool(addrs, client.Options{})
		defer pool.Close()
		r := status.Gather(context.Background(), pool, addrs, status.Options{Stale: 30 * time.Second, Now: fixedNow})
		// The daemons listen on random ports; name them as an operator's
		// storm.yaml would, so the table is the same on every run.
		rename(r, map[string]string{a.Addr(): "pacemaker-a:6699", b.Addr(): "pacemaker-b:6699"})
		var got bytes.Buffer
		if err := r.WriteTable(&got, status.TableOptions{All: true}); err != nil {
			t.Fatal(err)
		}
		golden.Check(t, "testdata/status.golden", got.Bytes())

		var js bytes.Buffer
		if err := r.WriteJSON(&js); err != nil {
			t.Fatal(err)
		}
		var back status.Report
		if err := json.Unmarshal(js.Bytes(), &back); err != nil {
			t.Fatalf("JSON does not read back: %v\n%s", err, js.String())
		}
		want := status.Summary{Servers: 2, Failed: 0, Topologies: 2, Workers: 6, Stale: 3, PartialOnly: 5}
		if back.Summary != want {
			t.Errorf("summary = %+v, want %+v", back.Summary, want)
		}
		w := worker(t, &back, "wordcount-1-1741964000", "sup-c-6701")
		if !w.Stale || w.AgeSecs != 95 || w.NewestOn != "pacemaker-a:6699" || len(w.On) != 2 || w.Executors != 4 {
			t.Errorf("failed-over worker = %+v", w)
		}
		if w := worker(t, &back, "wordcount-1-1741964000", "sup-b-6700"); w.Stale || w.AgeSecs != 1 ||
			!slices.Equal(w.MissingOn, []string{"pacemaker-a:6699"}) {
			t.Errorf("fresh zstd worker = %+v", w)
		}
		if w := worker(t, &back, "etl-2-1741960000", "sup-e-6700"); !w.Stale || !strings.Contains(w.Error, "decode heartbeat") {
			t.Errorf("garbage worker = %+v", w)
		}
		if s := back.Servers[1]; s.Keys != 4 || s.Topologies != 2 || s.Workers != 3 {
			t.Errorf("server B = %+v", s) // 3 heartbeats and the backpressure key
		}
	})

	t.Run("command line exit codes and JSON", func(t *testing.T) {
		servers := strings.Join(addrs, ",")
		// Relative to the real clock every hand-made heartbeat is old.
		out, errOut, code := ctl(t, "--servers", servers, "status", "--json")
		if code != 1 {
			t.Fatalf("status with stale workers: exit %d, want 1\n%s%s", code, out, errOut)
		}
		var r status.Report
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatalf("--json output: %v\n%s", err, out)
		}
		if r.Summary.Stale != 6 || r.Summary.Failed != 0 || r.Servers[0].Addr != a.Addr() {
			t.Errorf("summary %+v, first server %s", r.Summary, r.Servers[0].Addr)
		}

		// With a threshold no real heartbeat exceeds, only the garbage one is stale.
		_, _, code = ctl(t, "--servers", servers, "status", "--stale", "100000h")
		if code != 1 {
			t.Fatalf("status with an undecodable heartbeat: exit %d, want 1", code)
		}
		if _, errOut, code := ctl(t, "--servers", servers, "delete", "/workerbeats/etl-2-1741960000/sup-e-6700"); code != 0 {
			t.Fatalf("delete: exit %d: %s", code, errOut)
		}
		out, _, code = ctl(t, "--servers", servers, "status", "--stale", "100000h")
		if code != 0 {
			t.Fatalf("healthy status: exit %d, want 0\n%s", code, out)
		}
		if strings.Contains(out, "\x1b[") || !strings.Contains(out, "2 server(s), 0 failed; 2 topologies, 5 workers, 0 stale") {
			t.Errorf("healthy table (not a terminal: no colour):\n%s", out)
		}

		// One server of three down makes the exit status 4 (partial), and
		// it is named; all down makes it 3.
		down := daemon.FreePort(t, "127.0.0.1")
		downAddr := "127.0.0.1:" + strconv.Itoa(down)
		out, errOut, code = ctl(t, "--servers", servers+","+downAddr, "status", "--stale", "100000h", "--json")
		if code != 4 || !strings.Contains(errOut, "server "+downAddr+" failed") {
			t.Fatalf("status with a server down: exit %d, want 4\n%s%s", code, out, errOut)
		}
		if _, _, code := ctl(t, "--servers", downAddr, "status"); code != 3 {
			t.Errorf("status with every server down: exit %d, want 3", code)
		}
		r = status.Report{}
		if err := json.Unmarshal([]byte(out), &r); err != nil {
			t.Fatal(err)
		}
		if s := r.Servers[2]; s.Addr != downAddr || s.Reachable || s.Error == "" || r.Summary.Failed != 1 {
			t.Errorf("down server = %+v", s)
		}

		out, _, _ = ctl(t, "--servers", servers, "status", "--color", "always")
		if !strings.Contains(out, "\x1b[32mup\x1b[0m") {
			t.Errorf("--color always: no green 'up':\n%q", out)
		}
		if _, errOut, code := ctl(t, "--servers", servers, "status", "--stale", "-1s"); code != 2 || !strings.Contains(errOut, "usage") {
			t.Errorf("bad --stale: exit %d, %s", code, errOut)
		}
	})
}

func worker(t *testing.T, r *status.Report, topo, name string) status.Worker {
	t.Helper()
	for _, tp := range r.Topologies {
		for _, w := range tp.Workers {
			if tp.ID == topo && w.Name == name {
				return w
			}
		}
	}
	t.Fatalf("no worker %s/%s in the report", topo, name)
	return status.Worker{}
}

// rename replaces server addresses everywhere in r.
func rename(r *status.Report, names map[string]string) {
	sub := func(s string) string {
		if n, ok := names[s]; ok {
			return n
		}
		return s
	}
	for i := range r.Servers {
		r.Servers[i].Addr = sub(r.Servers[i].Addr)
	}
	for ti := range r.Topologies {
		for wi := range r.Topologies[ti].Workers {
			w := &r.Topologies[ti].Workers[wi]
			w.NewestOn = sub(w.NewestOn)
			for i := range w.On {
				w.On[i] = sub(w.On[i])
			}
			for i := range w.MissingOn {
				w.MissingOn[i] = sub(w.MissingOn[i])
			}
		}
	}
}
