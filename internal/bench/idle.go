package bench

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// IdleOptions measure what an idle connection that has served one request
// costs the server: Conns connections each write Value once (all to the
// same key, so the store does not grow), read the answer and then stay
// open, idle. The server's resident memory is read before and after.
type IdleOptions struct {
	Common
	Conns int
	Value []byte
	// Settle is the wait between the last answer and the second memory
	// reading. For a Go server more than two minutes guarantees a garbage
	// collection in between: the runtime forces one at least that often.
	Settle time.Duration
	// Baseline is the pause between the first request and the first
	// reading (default 3 s): a fresh server's garbage is a few hundred KiB
	// at most, a few bytes per connection once spread over thousands.
	Baseline time.Duration
	// PerSource is how many connections share one loopback source address
	// (127.1.x.y), so no source runs out of ephemeral ports.
	PerSource int
}

// IdleStats are an idle run's figures.
type IdleStats struct {
	Conns           int     `json:"connections"` // opened and answered, open at the second reading
	Failed          int     `json:"failed"`
	Sources         int     `json:"source_addresses"`
	OpenSeconds     float64 `json:"open_seconds"`
	BaselineSeconds float64 `json:"baseline_seconds"`
	SettleSeconds   float64 `json:"settle_seconds"`
	// The server's VmRSS and RssAnon (heap, stacks; no file pages) before
	// the connections were opened and Settle after the last answered.
	RSSBeforeBytes  int64 `json:"rss_before_bytes"`
	RSSAfterBytes   int64 `json:"rss_after_bytes"`
	AnonBeforeBytes int64 `json:"rss_anon_before_bytes"`
	AnonAfterBytes  int64 `json:"rss_anon_after_bytes"`
	// PerConnBytes is (after − before) / Conns, of VmRSS and of RssAnon.
	PerConnBytes     float64 `json:"rss_per_connection_bytes"`
	PerConnAnonBytes float64 `json:"rss_anon_per_connection_bytes"`
	// KernelTCP is the kernel's memory for TCP buffers, machine-wide
	// (/proc/net/sockstat "TCP: mem", pages): both ends of every loopback
	// connection, outside any process's RSS; -1 when unreadable.
	KernelTCPBeforeBytes int64             `json:"kernel_tcp_before_bytes"`
	KernelTCPAfterBytes  int64             `json:"kernel_tcp_after_bytes"`
	ErrorSamples         map[string]uint64 `json:"error_samples,omitempty"`
}

// RunIdle opens the connections, lets them sit, and measures.
func RunIdle(ctx context.Context, o IdleOptions) (*Result, error) {
	if len(o.Servers) != 1 || o.PID <= 0 {
		return nil, errors.New("idle: give exactly one server and its --pid")
	}
	if o.Conns <= 0 {
		return nil, errors.New("idle: need at least one connection")
	}
	if err := checkFileLimit(o.Conns); err != nil {
		return nil, err
	}
	addr := o.Servers[0]
	key := LoadKeys(1)[0]
	res := o.newResult("idle")
	res.Params.Conns, res.Params.Keys, res.Params.ValueBytes = o.Conns, 1, len(o.Value)
	src := SourcesFor(o.Servers, max(o.PerSource, 1))

	// One request first, so the key exists and the server has run the
	// request path before the baseline.
	first, err := o.Target.Dial(ctx, 0, addr, nil)
	if err != nil {
		return nil, err
	}
	err = first.Write(key, o.Value)
	_ = first.Close()
	if err != nil {
		return nil, fmt.Errorf("first write: %w", err)
	}
	st := &IdleStats{SettleSeconds: o.Settle.Seconds(), ErrorSamples: map[string]uint64{}}
	if src.enabled {
		st.Sources = (o.Conns + src.PerHost - 1) / src.PerHost
	}
	if o.Baseline <= 0 {
		o.Baseline = 3 * time.Second
	}
	st.BaselineSeconds = o.Baseline.Seconds()
	sleepCtx(ctx, o.Baseline)
	before, err := ReadProc(o.PID)
	if err != nil {
		return nil, err
	}
	st.RSSBeforeBytes, st.AnonBeforeBytes, st.KernelTCPBeforeBytes = before.RSS, before.RSSAnon, KernelTCPMem()

	o.logf("%s: opening %d connections, one %d-byte write each, then idle", o.Target.Name(), o.Conns, len(o.Value))
	open := make([]Writer, o.Conns)
	var (
		next, failed atomic.Int64
		mu           sync.Mutex
		wg           sync.WaitGroup
	)
	start := time.Now()
	// A few dozen dialers: enough to open 20,000 connections in seconds
	// without a burst that would stand in for a load test.
	for range 32 {
		wg.Go(func() {
			for ctx.Err() == nil {
				i := int(next.Add(1)) - 1
				if i >= o.Conns {
					return
				}
				w, err := o.Target.Dial(ctx, i, addr, src.Addr(i))
				if err == nil {
					if err = w.Write(key, o.Value); err != nil {
						_ = w.Close()
					}
				}
				if err != nil {
					failed.Add(1)
					mu.Lock()
					if msg := err.Error(); len(st.ErrorSamples) < maxErrorSamples || st.ErrorSamples[msg] > 0 {
						st.ErrorSamples[msg]++
					}
					mu.Unlock()
					continue
				}
				open[i] = w
			}
		})
	}
	wg.Wait()
	defer func() {
		for _, w := range open {
			if w != nil {
				_ = w.Close()
			}
		}
	}()
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	st.OpenSeconds = time.Since(start).Seconds()
	st.Failed = int(failed.Load())
	st.Conns = o.Conns - st.Failed
	if st.Conns == 0 {
		return nil, fmt.Errorf("no connection could be opened: %v", sortedKeys(st.ErrorSamples))
	}
	o.logf("%s: %d connections open (%d failed) in %.1fs; idle for %v", o.Target.Name(), st.Conns, st.Failed, st.OpenSeconds, o.Settle)
	sleepCtx(ctx, o.Settle)
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	after, err := ReadProc(o.PID)
	if err != nil {
		return nil, err
	}
	st.RSSAfterBytes, st.AnonAfterBytes, st.KernelTCPAfterBytes = after.RSS, after.RSSAnon, KernelTCPMem()
	st.PerConnBytes = float64(st.RSSAfterBytes-st.RSSBeforeBytes) / float64(st.Conns)
	st.PerConnAnonBytes = float64(st.AnonAfterBytes-st.AnonBeforeBytes) / float64(st.Conns)
	if len(st.ErrorSamples) == 0 {
		st.ErrorSamples = nil
	}
	res.Idle = st
	res.Env.LoadAvgEnd = LoadAvg()
	return res, nil
}

// KernelTCPMem is the memory the kernel holds for TCP socket buffers,
// machine-wide, from /proc/net/sockstat ("TCP: … mem N", in pages); -1
// when it cannot be read.
func KernelTCPMem() int64 {
	b, err := os.ReadFile("/proc/net/sockstat")
	if err != nil {
		return -1
	}
	return parseSockstatTCPMem(string(b))
}

func parseSockstatTCPMem(s string) int64 {
	for _, line := range strings.Split(s, "\n") {
		rest, ok := strings.CutPrefix(line, "TCP:")
		if !ok {
			continue
		}
		f := strings.Fields(rest)
		for i := 0; i+1 < len(f); i += 2 {
			if f[i] == "mem" {
				n, err := strconv.ParseInt(f[i+1], 10, 64)
				if err != nil {
					return -1
				}
				return n * int64(os.Getpagesize())
			}
		}
	}
	return -1
}

func (s *IdleStats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  idle: %d connections open (%d failed; %d source addresses), opened in %.1f s, measured %.0f s after\n",
		s.Conns, s.Failed, s.Sources, s.OpenSeconds, s.SettleSeconds)
	fmt.Fprintf(&b, "  server VmRSS %s → %s: %.0f B per connection; RssAnon %s → %s: %.0f B per connection\n",
		MiB(s.RSSBeforeBytes), MiB(s.RSSAfterBytes), s.PerConnBytes, MiB(s.AnonBeforeBytes), MiB(s.AnonAfterBytes), s.PerConnAnonBytes)
	if s.KernelTCPBeforeBytes >= 0 && s.KernelTCPAfterBytes >= 0 {
		fmt.Fprintf(&b, "  kernel TCP buffers (machine-wide, not in RSS): %s → %s\n", MiB(s.KernelTCPBeforeBytes), MiB(s.KernelTCPAfterBytes))
	}
	for _, k := range sortedKeys(s.ErrorSamples) {
		fmt.Fprintf(&b, "  error ×%d: %s\n", s.ErrorSamples[k], k)
	}
	return b.String()
}
