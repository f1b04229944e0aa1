package fault

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/client"
	"github.com/storm-pacemaker/pacemaker/internal/testutil/procmem"
)

// dialN opens n client connections.
func dialN(t *testing.T, addr string, n int) []*client.Conn {
	t.Helper()
	cs := make([]*client.Conn, n)
	for i := range cs {
		c, err := client.Dial(context.Background(), addr, client.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		cs[i] = c
	}
	return cs
}

// floodOutcome counts a flood's answers.
type floodOutcome struct {
	ok, refused, failed atomic.Int64
	firstErr            atomic.Pointer[error]
}

func (o *floodOutcome) record(err error) {
	switch {
	case err == nil:
		o.ok.Add(1)
	case errors.Is(err, client.ErrNotAuthorized):
		o.refused.Add(1)
	default:
		if o.failed.Add(1) == 1 {
			o.firstErr.Store(&err)
		}
	}
}

func (o *floodOutcome) check(t *testing.T, phase string) {
	t.Helper()
	t.Logf("%s: %d written, %d refused", phase, o.ok.Load(), o.refused.Load())
	if n := o.failed.Load(); n > 0 {
		t.Fatalf("%s: %d writes failed other than by a refusal; first: %v", phase, n, *o.firstErr.Load())
	}
}

// TestWriteFloodPastByteCap floods a daemon with four times
// pacemaker.max.stored.bytes of new heartbeats from many connections, then
// with rewrites of changing size. The store must stop at the cap, every
// refusal must reach the client as NOT_AUTHORIZED and be counted, the
// workers already stored must keep heartbeating, and the daemon's RSS must
// stay under the cap plus the overhead docs/robustness.md documents — with
// Go's default collector, and with GOMEMLIMIT set as that page suggests.
func TestWriteFloodPastByteCap(t *testing.T) {
	const maxStored, writers, maxFrame = 64 << 20, 16, 2 << 20
	// Each writing connection may keep one frame buffer (≤ 1 MiB).
	buffers := int64(writers * min(maxFrame, 1<<20))
	tests := []struct {
		name  string
		env   []string
		bound int64
	}{
		// The collector lets the heap grow to twice what survived the
		// last collection before it collects again.
		{"default GC", nil, 2*maxStored + 32<<20 + buffers},
		// A soft memory limit makes it collect before the heap doubles.
		{"GOMEMLIMIT cap+32MiB", []string{fmt.Sprintf("GOMEMLIMIT=%d", maxStored+32<<20)}, maxStored + 32<<20 + 32<<20 + buffers},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) { flood(t, maxStored, maxFrame, writers, tt.env, tt.bound) })
	}
}

func flood(t *testing.T, maxStored, maxFrame, writers int, env []string, bound int64) {
	const beat, rewrites = 256 << 10, 8
	newKeys := 4 * maxStored / beat / writers // per writer
	p := start(t, fmt.Sprintf("pacemaker.max.stored.bytes: %d\npacemaker.thrift.message.size.max: %d\n", maxStored, maxFrame), nil, env...)
	baseline(t, p.Addr(), nil)
	rssIdle := procmem.MustRSS(t, p.PID())
	s := startSteady(t, p.Addr(), nil)
	for s.Rounds() < 50 { // all its 50 keys exist before the store fills
		time.Sleep(5 * time.Millisecond)
	}
	before := p.scrape(t)
	rss := procmem.Watch(t, p.PID(), 5*time.Millisecond)
	conns := dialN(t, p.Addr(), writers)
	ctx := context.Background()

	// New keys, four times what fits.
	var fresh floodOutcome
	stored := make([][]string, writers)
	var mu sync.Mutex
	t0 := time.Now()
	var wg sync.WaitGroup
	for w, c := range conns {
		wg.Go(func() {
			value := make([]byte, beat)
			for i := range newKeys {
				key := fmt.Sprintf("/workerbeats/flood-topo/w%d-%d", w, i)
				err := c.SendPulse(ctx, key, value)
				fresh.record(err)
				if err == nil {
					mu.Lock()
					stored[w] = append(stored[w], key)
					mu.Unlock()
				}
			}
		})
	}
	wg.Wait()
	fresh.check(t, fmt.Sprintf("flood of %d new %d KiB heartbeats (%s) in %v", writers*newKeys, beat>>10,
		mib(int64(writers*newKeys*beat)), time.Since(t0).Round(time.Millisecond)))
	m := p.scrape(t)
	checkCap(t, m, before, int64(maxStored), int64(writers), beat, fresh.ok.Load())
	if got := m.rejected("max stored bytes") - before.rejected("max stored bytes"); got != float64(fresh.refused.Load()) {
		t.Errorf("rejected_total{reason=\"max stored bytes\"} grew by %v; clients saw %d NOT_AUTHORIZED", got, fresh.refused.Load())
	}

	// Rewrites of the stored keys, alternating 100 KiB and 256 KiB so each
	// one replaces the buffer: a flood of garbage for the collector. A
	// rewrite that grows is refused while the store is full.
	var again floodOutcome
	t0 = time.Now()
	for w, c := range conns {
		wg.Go(func() {
			small, large := make([]byte, 100<<10), make([]byte, beat)
			for r := range rewrites {
				for _, key := range stored[w] {
					v := large
					if r%2 == 0 {
						v = small
					}
					again.record(c.SendPulse(ctx, key, v))
				}
			}
		})
	}
	wg.Wait()
	again.check(t, fmt.Sprintf("%d rewrites of changing size in %v", rewrites*int(fresh.ok.Load()), time.Since(t0).Round(time.Millisecond)))

	peak := rss.Finish()
	s.Finish(t, "during the write flood")
	m = p.scrape(t)
	checkCap(t, m, before, int64(maxStored), int64(writers), beat, -1)
	t.Logf("daemon RSS: %s idle, peak %s during the flood; cap %s, stored %s; peak over the cap %s; documented bound %s",
		mib(rssIdle), mib(peak), mib(int64(maxStored)), mib(int64(m["pacemaker_stored_bytes"])), mib(peak-int64(maxStored)), mib(bound))
	if peak > bound {
		t.Errorf("peak RSS %s exceeds the documented bound %s", mib(peak), mib(bound))
	}
	t.Logf("rejections: %v", m.matching("pacemaker_rejected_total"))
}

// checkCap checks stored_bytes against the cap. Until store.Put reserves
// bytes atomically, writers racing past the cap check together can each
// add one heartbeat (TestByteCapIsExact shows it); allow that much.
// accepted ≥ 0 also checks how many new heartbeats fitted.
func checkCap(t *testing.T, m, before metricSet, maxStored, writers int64, beat int, accepted int64) {
	t.Helper()
	storedBytes := int64(m["pacemaker_stored_bytes"])
	if storedBytes > maxStored+(writers-1)*int64(beat) {
		t.Errorf("stored_bytes %d exceeds pacemaker.max.stored.bytes %d by more than %d racing writers' heartbeats", storedBytes, maxStored, writers-1)
	}
	if storedBytes > maxStored {
		t.Errorf("stored_bytes %d > pacemaker.max.stored.bytes %d by %d (see TestByteCapIsExact)", storedBytes, maxStored, storedBytes-maxStored)
	} else if fit := (maxStored - int64(before["pacemaker_stored_bytes"])) / int64(beat); accepted >= 0 && accepted != fit {
		t.Errorf("%d new heartbeats stored, want exactly the %d that fit", accepted, fit)
	}
}

// TestByteCapIsExact: concurrent writers must not store more than
// pacemaker.max.stored.bytes between them. The race it looks for needs
// luck; it tries a few rounds.
func TestByteCapIsExact(t *testing.T) {
	const maxStored, writers, beat, rounds = 4 << 20, 16, 512 << 10, 20
	p := start(t, fmt.Sprintf("pacemaker.max.stored.bytes: %d\npacemaker.thrift.message.size.max: %d\n", maxStored, 2*beat), nil)
	conns := dialN(t, p.Addr(), writers)
	ctx := context.Background()
	for round := range rounds {
		var out floodOutcome
		var wg sync.WaitGroup
		for w, c := range conns {
			wg.Go(func() {
				v := make([]byte, beat)
				for i := range 4 * maxStored / beat / writers {
					out.record(c.SendPulse(ctx, fmt.Sprintf("/workerbeats/cap-topo/w%d-%d", w, i), v))
				}
			})
		}
		wg.Wait()
		out.check(t, fmt.Sprintf("round %d: %d KiB heartbeats from %d connections", round, beat>>10, writers))
		if got := int64(p.scrape(t)["pacemaker_stored_bytes"]); got > maxStored {
			// store.Put must reserve before it copies: writers in other
			// shards racing past one check would overshoot the cap.
			t.Fatalf("in round %d, %d writers stored %d bytes (%d heartbeats) past pacemaker.max.stored.bytes %d",
				round, writers, got-maxStored, (got-maxStored)/beat, maxStored)
		}
		if err := conns[0].DeletePath(ctx, "/workerbeats/cap-topo"); err != nil {
			t.Fatal(err)
		}
	}
}

// TestMaxKeysFlood: many connections race past pacemaker.max.keys with
// distinct keys; exactly the limit is stored and every refusal counted.
func TestMaxKeysFlood(t *testing.T) {
	const maxKeys, writers, perWriter = 1000, 16, 250
	p := start(t, fmt.Sprintf("pacemaker.max.keys: %d\n", maxKeys), nil)
	before := p.scrape(t)
	conns := dialN(t, p.Addr(), writers)
	var out floodOutcome
	var wg sync.WaitGroup
	for w, c := range conns {
		wg.Go(func() {
			for i := range perWriter {
				out.record(c.SendPulse(context.Background(), fmt.Sprintf("/workerbeats/keys-topo/w%d-%d", w, i), []byte("hb")))
			}
		})
	}
	wg.Wait()
	out.check(t, fmt.Sprintf("%d distinct keys from %d connections", writers*perWriter, writers))
	m := p.scrape(t)
	if got := m.rejected("max keys") - before.rejected("max keys"); got != float64(out.refused.Load()) {
		t.Errorf("rejected_total{reason=\"max keys\"} grew by %v; clients saw %d NOT_AUTHORIZED", got, out.refused.Load())
	}
	if keys := m["pacemaker_keys"]; keys > maxKeys {
		t.Fatalf("%v keys stored, pacemaker.max.keys is %d: concurrent writers passed the limit check together", keys, maxKeys)
	} else if keys != maxKeys || out.ok.Load() != maxKeys {
		t.Errorf("%v keys stored, %d writes accepted; want exactly %d", keys, out.ok.Load(), maxKeys)
	}
}

// TestHeartbeatLargerThanTheFrameLimit: a heartbeat over
// pacemaker.thrift.message.size.max closes its connection (the protocol has
// no error answer for a frame it will not read); the client sees the
// connection closed, and the daemon counts it.
func TestHeartbeatLargerThanTheFrameLimit(t *testing.T) {
	const maxFrame = 64 << 10
	p := start(t, fmt.Sprintf("pacemaker.thrift.message.size.max: %d\n", maxFrame), nil)
	c := dialN(t, p.Addr(), 1)[0]
	ctx := context.Background()
	if err := c.SendPulse(ctx, "/workerbeats/t/fits", make([]byte, maxFrame-100)); err != nil {
		t.Fatalf("a heartbeat just under the limit: %v", err)
	}
	err := c.SendPulse(ctx, "/workerbeats/t/too-big", make([]byte, maxFrame+1))
	if !errors.Is(err, client.ErrClosed) {
		t.Fatalf("a heartbeat over the limit: %v, want the connection closed", err)
	}
	t.Logf("client sees: %v", err)
	p.waitMetric(t, "the oversized frame to be counted", func(m metricSet) bool { return m.rejected("frame too large") == 1 })
}

// TestLargeHeartbeatBuffersPerConnection: many connections each sending one
// large heartbeat — all to the same key, so the store holds one — must not
// cost memory per connection beyond the frame: what pacemaker.max.stored.bytes
// bounds is the store, and nothing bounds connections' buffers but this.
func TestLargeHeartbeatBuffersPerConnection(t *testing.T) {
	const conns, beat = 100, 1000 << 10
	// A small soft memory limit makes the collector return what is garbage,
	// so RSS shows only what the daemon still holds.
	p := start(t, fmt.Sprintf("pacemaker.thrift.message.size.max: %d\n", 2*beat), nil, "GOMEMLIMIT=48MiB")
	rssIdle := procmem.MustRSS(t, p.PID())
	cs := dialN(t, p.Addr(), conns)
	value := make([]byte, beat)
	for _, c := range cs {
		if err := c.SendPulse(context.Background(), "/workerbeats/big-topo/sup-1-6700", value); err != nil {
			t.Fatal(err)
		}
	}
	// Let the collector run: what stays is what the daemon keeps.
	time.Sleep(200 * time.Millisecond)
	m := p.scrape(t)
	rss := procmem.MustRSS(t, p.PID())
	held := rss - rssIdle - int64(m["pacemaker_stored_bytes"])
	t.Logf("%d connections each sent one %d KiB heartbeat to one key: stored %s, daemon RSS %s idle → %s (%s beyond the store, %.0f KiB per connection)",
		conns, beat>>10, mib(int64(m["pacemaker_stored_bytes"])), mib(rssIdle), mib(rss), mib(held), float64(held)/conns/1024)
	if held > conns*beat/4 {
		t.Fatalf("connections keep their last large frame's buffer: %s for %d idle connections outside "+
			"pacemaker.max.stored.bytes; at the default pacemaker.max.connections (25000) that is unbounded",
			mib(held), conns)
	}
}
