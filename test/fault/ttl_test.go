package fault

import (
	"context"
	"github.com/storm-pacemaker/pacemaker/internal/store"
	"slices"
	"testing"
	"time"

	"github.com/storm-pacemaker/pacemaker/internal/client"
)

// TestHeartbeatTTL: with pacemaker.heartbeat.ttl.secs set, heartbeats that
// stop being rewritten disappear — keys, their listing entries, their
// bytes — while heartbeats rewritten within the TTL stay.
func TestHeartbeatTTL(t *testing.T) {
	const ttl = time.Second
	p := start(t, "pacemaker.heartbeat.ttl.secs: 1\n", nil)
	c, err := client.Dial(context.Background(), p.Addr(), client.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	ctx := context.Background()
	const (
		live     = "/workerbeats/live-topo/sup-1-6700"
		deadSame = "/workerbeats/live-topo/sup-2-6701" // a dead worker of a live topology
		deadTopo = "/workerbeats/dead-topo/sup-3-6700" // a topology Nimbus never cleaned up
	)
	for _, k := range []string{live, deadSame, deadTopo} {
		if err := c.SendPulse(ctx, k, []byte("beat")); err != nil {
			t.Fatal(err)
		}
	}
	written := time.Now()
	// The live worker rewrites every TTL/5; the others never again.
	var expiredAfter time.Duration
	for time.Since(written) < hangBound {
		time.Sleep(ttl / 5)
		if err := c.SendPulse(ctx, live, []byte("beat")); err != nil {
			t.Fatal(err)
		}
		dead1, err1 := c.Exists(ctx, deadSame)
		dead2, err2 := c.Exists(ctx, deadTopo)
		if err1 != nil || err2 != nil {
			t.Fatal(err1, err2)
		}
		if !dead1 && !dead2 {
			expiredAfter = time.Since(written)
			break
		}
	}
	if expiredAfter == 0 {
		t.Fatalf("heartbeats not rewritten for %v still stored (TTL %v)", hangBound, ttl)
	}
	t.Logf("heartbeats not rewritten were gone %v after their last write (TTL %v, swept every max(TTL/10, 1 s))",
		expiredAfter.Round(time.Millisecond), ttl)
	if ok, err := c.Exists(ctx, live); err != nil || !ok {
		t.Fatalf("the heartbeat rewritten every %v expired: %v %v", ttl/5, ok, err)
	}
	if names, err := c.Children(ctx, "/workerbeats"); err != nil || !slices.Equal(names, []string{"live-topo"}) {
		t.Errorf("topologies listed after expiry: %q %v; want only live-topo", names, err)
	}
	if names, err := c.Children(ctx, "/workerbeats/live-topo"); err != nil || !slices.Equal(names, []string{"sup-1-6700"}) {
		t.Errorf("workers listed after expiry: %q %v; want only sup-1-6700", names, err)
	}
	m := p.scrape(t)
	if want := store.Cost(live, []byte("beat")); m["pacemaker_keys"] != 1 || m["pacemaker_stored_bytes"] != float64(want) {
		t.Errorf("after expiry: keys %v, stored_bytes %v; want 1 and %d", m["pacemaker_keys"], m["pacemaker_stored_bytes"], want)
	}
	if !p.WaitLog("expired stale heartbeats", hangBound) {
		t.Error("expiry not logged")
	}
}
