package status

import (
	"context"
	"errors"
	"net"
	"slices"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/client"
)

// Options say how to judge what the servers hold.
type Options struct {
	// Stale is how old a worker's newest heartbeat may be before it counts
	// as stale (Nimbus's nimbus.task.timeout.secs is 30 s by default).
	Stale time.Duration
	// Now is the time ages are measured from (zero: time.Now()).
	Now time.Time
	// Limits bound each server's walk.
	Limits Limits
}

// Report is the status of a set of Pacemaker servers.
type Report struct {
	Now        time.Time  `json:"now"`
	StaleSecs  float64    `json:"stale_after_secs"`
	Servers    []Server   `json:"servers"`
	Topologies []Topology `json:"topologies"`
	Summary    Summary    `json:"summary"`
}

// Server is one server's line.
type Server struct {
	Addr      string `json:"addr"`
	Reachable bool   `json:"reachable"`
	// AuthOK: the server let us read (a handshake, if any, succeeded and
	// reads were not refused with NOT_AUTHORIZED).
	AuthOK     bool   `json:"auth_ok"`
	Error      string `json:"error,omitempty"`
	Keys       int    `json:"keys"`
	Bytes      int64  `json:"bytes"`
	Topologies int    `json:"topologies"`
	Workers    int    `json:"workers"`
}

// OK reports whether the server was read completely.
func (s Server) OK() bool { return s.Reachable && s.AuthOK && s.Error == "" }

// Topology is one topology's workers, merged across servers.
type Topology struct {
	ID      string   `json:"id"`
	Workers []Worker `json:"workers"`
	Stale   int      `json:"stale"`
	// Partial counts workers held by some readable servers but not all.
	// That is normal: a Storm worker writes to one server and moves to the
	// next only when that one fails.
	Partial int `json:"partial"`
}

// Worker is one worker's heartbeat, the newest copy across servers.
type Worker struct {
	Name       string `json:"worker"` // <supervisor-id>-<port>
	Key        string `json:"key"`
	TimeSecs   int64  `json:"time_secs"`
	AgeSecs    int64  `json:"age_secs"`
	UptimeSecs int32  `json:"uptime_secs"`
	Executors  int    `json:"executors"`
	Bytes      int    `json:"bytes"`
	// Stale: the newest copy is older than the threshold, or no copy decodes.
	Stale bool `json:"stale"`
	// Error says why no copy decodes.
	Error     string   `json:"error,omitempty"`
	NewestOn  string   `json:"newest_on,omitempty"`
	On        []string `json:"on"`
	MissingOn []string `json:"missing_on"`
}

// Summary counts what the exit status depends on.
type Summary struct {
	Servers     int `json:"servers"`
	Failed      int `json:"failed_servers"` // unreachable, refused, or broke mid-scan
	Topologies  int `json:"topologies"`
	Workers     int `json:"workers"`
	Stale       int `json:"stale_workers"`
	PartialOnly int `json:"partial_workers"`
}

// Result is one server's scan outcome.
type Result struct {
	Addr string
	Scan *ServerScan // nil when Err is set
	Err  error
}

// Gather scans every server in p at once and builds the report; order lists
// the servers as the operator gave them (the pool shuffles its own copy).
func Gather(ctx context.Context, p *client.Pool, order []string, opts Options) *Report {
	res := client.All(ctx, p, func(c *client.Conn) (*ServerScan, error) { return Scan(ctx, c, opts.Limits) })
	out := make([]Result, len(res))
	for i, r := range res {
		out[i] = Result{Addr: r.Addr, Scan: r.Value, Err: r.Err}
	}
	slices.SortStableFunc(out, func(a, b Result) int { return indexOf(order, a.Addr) - indexOf(order, b.Addr) })
	return Build(out, opts)
}

func indexOf(list []string, s string) int {
	if i := slices.Index(list, s); i >= 0 {
		return i
	}
	return len(list)
}

// Build merges per-server results into a report. It consumes the scans:
// their Beats are emptied as they are merged, so that a large store is not
// held twice.
func Build(results []Result, opts Options) *Report {
	now := opts.Now
	if now.IsZero() {
		now = time.Now()
	}
	r := &Report{Now: now.UTC(), StaleSecs: opts.Stale.Seconds()}
	var readable []string
	for _, res := range results {
		s := Server{Addr: res.Addr}
		switch {
		case res.Err == nil:
			s.Reachable, s.AuthOK = true, true
			s.Keys, s.Bytes = res.Scan.Keys, res.Scan.Bytes
			s.Topologies = len(res.Scan.Beats)
			for _, ws := range res.Scan.Beats {
				s.Workers += len(ws)
			}
			readable = append(readable, res.Addr)
		case errors.Is(res.Err, client.ErrNotAuthorized):
			s.Reachable = true
			s.Error = "reads refused (NOT_AUTHORIZED): authenticate with --auth and --jaas as Nimbus does"
		case isConnectError(res.Err):
			s.Error = res.Err.Error()
		default:
			// Reached, but the handshake or the scan failed.
			s.Reachable = true
			s.AuthOK = !isHandshakeError(res.Err)
			s.Error = res.Err.Error()
		}
		r.Servers = append(r.Servers, s)
	}

	// Every topology and worker any readable server holds, merged by
	// looking each one up in every scan (no per-worker maps: a store may
	// hold a million workers).
	scans := map[string]*ServerScan{} // by address
	topoSet := map[string]struct{}{}
	for _, res := range results {
		if res.Err == nil {
			scans[res.Addr] = res.Scan
			for topo := range res.Scan.Beats {
				topoSet[topo] = struct{}{}
			}
		}
	}
	for _, topo := range sortedKeys(topoSet) {
		var names []string
		for _, sc := range scans {
			for name := range sc.Beats[topo] {
				names = append(names, name)
			}
		}
		slices.Sort(names)
		t := Topology{ID: topo}
		for _, name := range slices.Compact(names) {
			w := mergeWorker(topo, name, func(addr string) (Beat, bool) {
				b, ok := scans[addr].Beats[topo][name]
				return b, ok
			}, readable, now, opts.Stale)
			if w.Stale {
				t.Stale++
			}
			if len(w.MissingOn) > 0 {
				t.Partial++
			}
			t.Workers = append(t.Workers, w)
		}
		r.Topologies = append(r.Topologies, t)
		for _, sc := range scans {
			delete(sc.Beats, topo) // merged: let it go before the next one grows the report
		}
		r.Summary.Workers += len(t.Workers)
		r.Summary.Stale += t.Stale
		r.Summary.PartialOnly += t.Partial
	}
	r.Summary.Servers = len(r.Servers)
	r.Summary.Topologies = len(r.Topologies)
	for _, s := range r.Servers {
		if !s.OK() {
			r.Summary.Failed++
		}
	}
	return r
}

// mergeWorker picks the newest decodable copy, in the servers' order on
// ties, as Nimbus does; copyOn returns the copy a server holds.
func mergeWorker(topo, name string, copyOn func(addr string) (Beat, bool), readable []string, now time.Time, stale time.Duration) Worker {
	w := Worker{Name: name, On: []string{}, MissingOn: []string{}}
	var newest *Beat
	var lastErr error
	for _, addr := range readable {
		b, ok := copyOn(addr)
		if !ok {
			w.MissingOn = append(w.MissingOn, addr)
			continue
		}
		w.On = append(w.On, addr)
		if w.Key == "" {
			w.Key = b.Key
		}
		if b.Err != nil {
			lastErr = b.Err
			continue
		}
		if newest == nil || b.HB.TimeSecs > newest.HB.TimeSecs {
			newest, w.NewestOn = &b, addr
		}
	}
	if w.Key == "" {
		w.Key = WorkerbeatsRoot + "/" + topo + "/" + name
	}
	if newest == nil {
		w.Stale = true
		if lastErr != nil {
			w.Error = lastErr.Error()
		}
		return w
	}
	w.TimeSecs = newest.HB.TimeSecs
	w.UptimeSecs = newest.HB.UptimeSecs
	w.Executors = newest.HB.Executors
	w.Bytes = newest.Size
	w.AgeSecs = now.Unix() - w.TimeSecs
	w.Stale = time.Duration(w.AgeSecs)*time.Second > stale
	return w
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// isConnectError: the TCP connection could not be opened.
func isConnectError(err error) bool {
	var op *net.OpError
	return errors.As(err, &op) && op.Op == "dial"
}

// isHandshakeError: the connection opened but authentication failed (the
// client wraps client.ErrHandshake).
func isHandshakeError(err error) bool {
	return errors.Is(err, client.ErrHandshake)
}
