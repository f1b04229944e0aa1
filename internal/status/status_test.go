package status

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"strings"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/auth"
	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/server"
	"github.com/storm-pacemaker/pacemaker/internal/store"
	"github.com/storm-pacemaker/pacemaker/internal/stormhb"
	"github.com/storm-pacemaker/pacemaker/internal/wire"
)

// startServer runs a real server on loopback and returns its address and store.
func startServer(t *testing.T) (string, *store.Store) {
	t.Helper()
	st := store.New(store.Limits{})
	srv := server.New(st, slog.New(slog.DiscardHandler), server.Settings{Method: auth.None, MaxFrame: wire.DefaultMaxFrame,
		FrameTimeout: 30 * time.Second, HandshakeTimeout: 30 * time.Second})
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ln)
	t.Cleanup(func() { _ = srv.Shutdown(context.Background()) })
	return ln.Addr().String(), st
}

func TestScanCountsEveryKey(t *testing.T) {
	addr, st := startServer(t)
	ctx := context.Background()
	c, err := client.Dial(ctx, addr, client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var values int64 // the scan counts value bytes; the store's Bytes also counts keys
	put := func(key string, v []byte) {
		t.Helper()
		if err := c.SendPulse(ctx, key, v); err != nil {
			t.Fatal(err)
		}
		values += int64(len(v))
	}
	const workers = 300 // more than scanParallel, over several topologies
	for i := range workers {
		hb := stormhb.Heartbeat{StormID: fmt.Sprintf("topo-%d", i%7), TimeSecs: int64(1000 + i), UptimeSecs: 5}
		put(fmt.Sprintf("/workerbeats/topo-%d/sup-%d-6700", i%7, i), stormhb.Encode(hb, 1+i%5))
	}
	put("/workerbeats/topo-0/sup-x-6700/deeper", []byte("not a worker key"))
	put("/a", []byte("a key that is also a directory"))
	put("/a/b", []byte("below it"))
	put("/other", []byte{})
	put("/workerbeats/topo-9/bad-6700", []byte("undecodable"))

	s, err := Scan(ctx, c, Limits{})
	if err != nil {
		t.Fatal(err)
	}
	if int64(s.Keys) != st.Keys() || s.Bytes != values {
		t.Fatalf("scan found %d keys / %d bytes, the store holds %d / %d", s.Keys, s.Bytes, st.Keys(), values)
	}
	n := 0
	for _, ws := range s.Beats {
		n += len(ws)
	}
	if n != workers+1 || len(s.Beats) != 8 {
		t.Fatalf("%d worker beats in %d topologies, want %d in 8", n, len(s.Beats), workers+1)
	}
	if b := s.Beats["topo-3"]["sup-10-6700"]; b.Err != nil || b.HB.TimeSecs != 1010 || b.HB.Executors != 1 {
		t.Fatalf("sup-10: %+v", b)
	}
	if b := s.Beats["topo-9"]["bad-6700"]; b.Err == nil || b.Size != len("undecodable") {
		t.Fatalf("undecodable beat: %+v", b)
	}

	// A broken connection fails the scan instead of reporting half of it.
	c.Close()
	if _, err := Scan(ctx, c, Limits{}); !errors.Is(err, client.ErrClosed) {
		t.Fatalf("scan on a closed connection: %v", err)
	}
}

func TestSplitWorkerKey(t *testing.T) {
	tests := []struct {
		key, topo, worker string
		ok                bool
	}{
		{"/workerbeats/t-1-1/sup-6700", "t-1-1", "sup-6700", true},
		{"/workerbeats/t-1-1", "", "", false},
		{"/workerbeats/t/w/x", "", "", false},
		{"/workerbeats//w", "", "", false},
		{"/workerbeatsx/t/w", "", "", false},
		{"/other/t/w", "", "", false},
	}
	for _, tc := range tests {
		topo, worker, ok := splitWorkerKey(tc.key)
		if topo != tc.topo || worker != tc.worker || ok != tc.ok {
			t.Errorf("splitWorkerKey(%q) = %q, %q, %v", tc.key, topo, worker, ok)
		}
	}
}

// dialError is a real connect failure to a closed port.
func dialError(t *testing.T) error {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := ln.Addr().String()
	ln.Close()
	_, err = client.Dial(context.Background(), addr, client.Options{DialTimeout: time.Second})
	if err == nil {
		t.Fatal("dial to a closed port succeeded")
	}
	return err
}

func TestBuild(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	beat := func(ago int64) Beat {
		return Beat{Size: 100, HB: stormhb.Heartbeat{StormID: "t", TimeSecs: now.Unix() - ago, UptimeSecs: 60, Executors: 3}}
	}
	undecodable := Beat{Size: 5, Err: errors.New("decode heartbeat: junk")}
	scan := func(addr string, beats map[string]map[string]Beat) Result {
		return Result{Addr: addr, Scan: &ServerScan{Addr: addr, Keys: 1, Bytes: 10, Beats: beats}}
	}
	type want struct {
		failed, stale, partial, workers int
		check                           func(t *testing.T, r *Report)
	}
	tests := []struct {
		name    string
		results []Result
		want    want
	}{
		{
			name: "newest copy across servers decides",
			results: []Result{
				scan("a", map[string]map[string]Beat{"t": {"w1": beat(100), "w2": beat(5)}}),
				scan("b", map[string]map[string]Beat{"t": {"w1": beat(10)}}),
			},
			want: want{workers: 2, partial: 1, check: func(t *testing.T, r *Report) {
				w1 := r.Topologies[0].Workers[0]
				if w1.Stale || w1.AgeSecs != 10 || w1.NewestOn != "b" || strings.Join(w1.On, ",") != "a,b" || len(w1.MissingOn) != 0 {
					t.Errorf("w1 = %+v", w1)
				}
				w2 := r.Topologies[0].Workers[1]
				if strings.Join(w2.MissingOn, ",") != "b" || w2.Executors != 3 || w2.UptimeSecs != 60 || w2.Bytes != 100 {
					t.Errorf("w2 = %+v", w2)
				}
			}},
		},
		{
			name: "stale past the threshold, not at it",
			results: []Result{
				scan("a", map[string]map[string]Beat{"t": {"at": beat(30), "past": beat(31)}}),
			},
			want: want{workers: 2, stale: 1, check: func(t *testing.T, r *Report) {
				if r.Topologies[0].Workers[0].Stale || !r.Topologies[0].Workers[1].Stale {
					t.Errorf("workers = %+v", r.Topologies[0].Workers)
				}
			}},
		},
		{
			name: "ties go to the first server",
			results: []Result{
				scan("a", map[string]map[string]Beat{"t": {"w": beat(3)}}),
				scan("b", map[string]map[string]Beat{"t": {"w": beat(3)}}),
			},
			want: want{workers: 1, check: func(t *testing.T, r *Report) {
				if w := r.Topologies[0].Workers[0]; w.NewestOn != "a" {
					t.Errorf("newest on %q, want a", w.NewestOn)
				}
			}},
		},
		{
			name: "undecodable copies lose to a decodable one and are stale alone",
			results: []Result{
				scan("a", map[string]map[string]Beat{"t": {"w": undecodable, "junk": undecodable}}),
				scan("b", map[string]map[string]Beat{"t": {"w": beat(1)}}),
			},
			want: want{workers: 2, stale: 1, partial: 1, check: func(t *testing.T, r *Report) {
				junk, w := r.Topologies[0].Workers[0], r.Topologies[0].Workers[1]
				if !junk.Stale || junk.Error == "" || junk.NewestOn != "" {
					t.Errorf("junk = %+v", junk)
				}
				if w.Stale || w.NewestOn != "b" {
					t.Errorf("w = %+v", w)
				}
			}},
		},
		{
			name: "failed servers: down, refused, broken; their absence is not 'missing'",
			results: []Result{
				scan("a", map[string]map[string]Beat{"t": {"w": beat(1)}}),
				{Addr: "down", Err: dialError(t)},
				{Addr: "refused", Err: fmt.Errorf("GET_PULSE /x on refused: %w", client.ErrNotAuthorized)},
				{Addr: "badauth", Err: fmt.Errorf("authenticate to badauth with DIGEST-MD5: %w: server closed the handshake", client.ErrHandshake)},
				{Addr: "broken", Err: fmt.Errorf("%w: broken: EOF", client.ErrClosed)},
			},
			want: want{failed: 4, workers: 1, check: func(t *testing.T, r *Report) {
				got := map[string]string{}
				for _, s := range r.Servers {
					got[s.Addr] = fmt.Sprintf("reachable=%v auth=%v ok=%v", s.Reachable, s.AuthOK, s.OK())
				}
				for addr, w := range map[string]string{
					"a":       "reachable=true auth=true ok=true",
					"down":    "reachable=false auth=false ok=false",
					"refused": "reachable=true auth=false ok=false",
					"badauth": "reachable=true auth=false ok=false",
					"broken":  "reachable=true auth=true ok=false",
				} {
					if got[addr] != w {
						t.Errorf("%s: %s, want %s", addr, got[addr], w)
					}
				}
				if w := r.Topologies[0].Workers[0]; len(w.MissingOn) != 0 {
					t.Errorf("missing on failed servers: %v", w.MissingOn)
				}
			}},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			r := Build(tc.results, Options{Stale: 30 * time.Second, Now: now})
			s := r.Summary
			if s.Failed != tc.want.failed || s.Stale != tc.want.stale || s.PartialOnly != tc.want.partial || s.Workers != tc.want.workers {
				t.Fatalf("summary = %+v, want %+v", s, tc.want)
			}
			if tc.want.check != nil {
				tc.want.check(t, r)
			}
		})
	}
}

func TestFormatting(t *testing.T) {
	ages := map[int64]string{0: "0s", 59: "59s", 60: "1m00s", 185: "3m05s", 3600: "1h00m", 7620: "2h07m", 86400: "1d00h",
		273600: "3d04h", -5: "-5s"}
	for secs, want := range ages {
		if got := age(secs); got != want {
			t.Errorf("age(%d) = %q, want %q", secs, got, want)
		}
	}
}

func TestTableColoursOnlyWhenAsked(t *testing.T) {
	now := time.Date(2025, 6, 1, 12, 0, 0, 0, time.UTC)
	r := Build([]Result{
		{Addr: "a", Scan: &ServerScan{Beats: map[string]map[string]Beat{"t": {"w": {HB: stormhb.Heartbeat{TimeSecs: now.Unix() - 90}}}}}},
		{Addr: "down", Err: dialError(t)},
	}, Options{Stale: 30 * time.Second, Now: now})
	var plain, color strings.Builder
	if err := r.WriteTable(&plain, TableOptions{}); err != nil {
		t.Fatal(err)
	}
	if err := r.WriteTable(&color, TableOptions{Color: true}); err != nil {
		t.Fatal(err)
	}
	if strings.Contains(plain.String(), "\x1b[") {
		t.Errorf("plain table has escape codes:\n%s", plain.String())
	}
	if !strings.Contains(color.String(), red+"down"+reset) {
		t.Errorf("colour table lacks a red 'down':\n%q", color.String())
	}
	// Colour never changes the layout: stripped of escapes, both agree.
	stripped := color.String()
	for _, esc := range []string{red, green, yellow, bold, reset} {
		stripped = strings.ReplaceAll(stripped, esc, "")
	}
	if stripped != plain.String() {
		t.Errorf("colour changes the layout:\n%s\nvs\n%s", stripped, plain.String())
	}
	for _, line := range strings.Split(plain.String(), "\n") {
		if strings.HasSuffix(line, " ") {
			t.Errorf("trailing space: %q", line)
		}
	}
}

// WriteJSON streams the bytes json.MarshalIndent gives for the whole report.
func TestWriteJSONIsMarshalIndent(t *testing.T) {
	now := time.Date(2025, 1, 1, 0, 0, 0, 0, time.UTC)
	beats := map[string]map[string]Beat{
		"t1": {"w1": {HB: stormhb.Heartbeat{TimeSecs: now.Unix() - 5}}, "w2": {Err: errors.New("bad")}},
		"t2": {"w3": {HB: stormhb.Heartbeat{TimeSecs: now.Unix() - 50}}},
	}
	for _, results := range [][]Result{
		{{Addr: "a", Scan: &ServerScan{Addr: "a", Beats: beats}}, {Addr: "b", Err: errors.New("down")}},
		{{Addr: "a", Scan: &ServerScan{Addr: "a", Beats: map[string]map[string]Beat{}}}},
	} {
		r := Build(results, Options{Stale: 30 * time.Second, Now: now})
		want, err := json.MarshalIndent(r, "", "  ")
		if err != nil {
			t.Fatal(err)
		}
		var got strings.Builder
		if err := r.WriteJSON(&got); err != nil {
			t.Fatal(err)
		}
		if got.String() != string(want)+"\n" {
			t.Errorf("WriteJSON:\n%s\nwant:\n%s", got.String(), want)
		}
	}
}
