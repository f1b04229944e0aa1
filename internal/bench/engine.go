package bench

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// WriteLoad says what the writers of a run do.
type WriteLoad struct {
	Pacing Pacing
	// Dial opens writer i's connection.
	Dial func(ctx context.Context, i int) (Writer, error)
	// Key and Value give writer i's seq-th request.
	Key   func(i, seq int) string
	Value func(i, seq int) []byte
	// DialConcurrency bounds connections opened at once (default 256).
	DialConcurrency int
	// Share is how many consecutive senders take turns on one connection
	// (default 1: a connection each). Dial is called with the first
	// sender's index.
	Share int
}

// Timeline places a run's phases as offsets from its start.
type Timeline struct {
	Warmup, Duration time.Duration
	// Grace is how long after the window writers may still work off sends
	// scheduled inside it before the rest count as missed.
	Grace time.Duration
}

// Window is the measured part of the timeline.
func (t Timeline) Window() Window { return Window{Start: t.Warmup, End: t.Warmup + t.Duration} }

// OpStats are the measured requests of one kind.
type OpStats struct {
	// Offered is the scheduled rate (requests/s; 0 for closed loop),
	// Achieved the rate completed inside the window.
	Offered  float64 `json:"offered_per_second"`
	Achieved float64 `json:"achieved_per_second"`
	// Completed counts requests finished inside the window; Scheduled
	// those an open-loop schedule put there.
	Completed uint64 `json:"completed"`
	Scheduled uint64 `json:"scheduled,omitempty"`
	Errors    uint64 `json:"errors"`
	// Missed are scheduled sends that never went out before the grace ran
	// out: the server (or the generator) could not keep up.
	Missed uint64 `json:"missed,omitempty"`
	// Latency runs from the scheduled time (open loop; includes any wait
	// behind a slow previous request) or from the send (closed loop).
	Latency Latency `json:"latency"`
	// Service runs from the actual send to the answer.
	Service Latency `json:"service_time"`
	// ErrorSamples counts errors by message (first few kinds).
	ErrorSamples map[string]uint64 `json:"error_samples,omitempty"`
	DialErrors   uint64            `json:"dial_errors,omitempty"`
	Reconnects   uint64            `json:"reconnects,omitempty"`
}

// answered counts every request of this process answered without error,
// whenever: sampled from outside a run (pacemaker-bench prints it on
// SIGUSR1) to count the answers within an interval another tool measures.
var answered atomic.Uint64

// Answered is the number of requests answered so far by this process.
func Answered() uint64 { return answered.Load() }

// opRecorder collects one kind of request's measurements.
type opRecorder struct {
	window    Window
	latency   *Histogram
	service   *Histogram
	completed atomic.Uint64
	scheduled atomic.Uint64
	errs      atomic.Uint64
	missed    atomic.Uint64
	dialErrs  atomic.Uint64
	redials   atomic.Uint64

	mu      sync.Mutex
	samples map[string]uint64
}

func newOpRecorder(w Window) *opRecorder {
	return &opRecorder{window: w, latency: NewHistogram(), service: NewHistogram(), samples: map[string]uint64{}}
}

// done records a request scheduled at due, sent at sent, answered at end
// (offsets from the run's start).
func (r *opRecorder) done(due, sent, end time.Duration, err error) {
	if err != nil {
		if r.window.Contains(due) {
			r.errs.Add(1)
			r.sample(err)
		}
		return
	}
	answered.Add(1)
	if r.window.Contains(end) {
		r.completed.Add(1)
	}
	if r.window.Contains(due) {
		r.latency.Record(end - due)
		r.service.Record(end - sent)
	}
}

const maxErrorSamples = 8

func (r *opRecorder) sample(err error) {
	msg := err.Error()
	if len(msg) > 200 {
		msg = msg[:200]
	}
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.samples[msg]; ok || len(r.samples) < maxErrorSamples {
		r.samples[msg]++
	}
}

func (r *opRecorder) stats(offered float64) OpStats {
	s := OpStats{
		Offered:    offered,
		Completed:  r.completed.Load(),
		Scheduled:  r.scheduled.Load(),
		Errors:     r.errs.Load(),
		Missed:     r.missed.Load(),
		Latency:    r.latency.Summary(),
		Service:    r.service.Summary(),
		DialErrors: r.dialErrs.Load(),
		Reconnects: r.redials.Load(),
	}
	if l := r.window.Length(); l > 0 {
		s.Achieved = float64(s.Completed) / l.Seconds()
	}
	r.mu.Lock()
	if len(r.samples) > 0 {
		s.ErrorSamples = make(map[string]uint64, len(r.samples))
		for k, v := range r.samples {
			s.ErrorSamples[k] = v
		}
	}
	r.mu.Unlock()
	return s
}

// slot is one connection and the senders sharing it (one, unless
// WriteLoad.Share says otherwise); they take turns.
type slot struct {
	mu      sync.Mutex
	w       Writer
	retryAt time.Duration // no redial before this offset after a failure
}

// writerPool holds the run's connections.
type writerPool struct {
	share int
	slots []slot
}

// slotOf is sender i's connection.
func (p *writerPool) slotOf(i int) *slot { return &p.slots[i/p.share] }

// connections is how many connections load opens.
func (load WriteLoad) connections() int {
	share := max(load.Share, 1)
	return (load.Pacing.Conns + share - 1) / share
}

// checkFileLimit refuses a run that needs more sockets than this process
// may open: it would fail in confusing ways half way through.
func checkFileLimit(conns int) error {
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		return nil
	}
	if need := uint64(conns) + 64; need > lim.Cur {
		return fmt.Errorf("%d connections need %d open files, the limit is %d (hard %d): raise it (ulimit -n) or share connections (--workers-per-conn)",
			conns, need, lim.Cur, lim.Max)
	}
	return nil
}

// dialAll opens every connection before the clock starts, so connecting
// is not measured. Connections that fail retry at their first send.
func dialAll(ctx context.Context, load WriteLoad, rec *opRecorder) (*writerPool, error) {
	n := load.connections()
	if err := checkFileLimit(n); err != nil {
		return nil, err
	}
	p := &writerPool{share: max(load.Share, 1), slots: make([]slot, n)}
	conc := load.DialConcurrency
	if conc <= 0 {
		conc = 256
	}
	sem := make(chan struct{}, conc)
	var wg sync.WaitGroup
	var (
		failed   atomic.Int64
		once     sync.Once
		firstErr error
	)
	for c := range n {
		if ctx.Err() != nil {
			break
		}
		sem <- struct{}{}
		wg.Go(func() {
			defer func() { <-sem }()
			w, err := load.Dial(ctx, c*p.share)
			if err != nil {
				failed.Add(1)
				rec.dialErrs.Add(1)
				once.Do(func() { firstErr = err })
				return
			}
			p.slots[c].w = w
		})
	}
	wg.Wait()
	if err := ctx.Err(); err != nil {
		p.close()
		return nil, err
	}
	if f := failed.Load(); f == int64(n) && n > 0 {
		p.close()
		return nil, fmt.Errorf("no connection could be opened: %w", firstErr)
	}
	return p, nil
}

func (p *writerPool) close() {
	var wg sync.WaitGroup
	for i := range p.slots {
		if w := p.slots[i].w; w != nil {
			wg.Go(func() { _ = w.Close() })
		}
	}
	wg.Wait()
}

// runWriters drives every sender from start until the window (plus grace)
// is over.
func runWriters(ctx context.Context, start time.Time, tl Timeline, load WriteLoad, pool *writerPool, rec *opRecorder) {
	var wg sync.WaitGroup
	for i := range load.Pacing.Conns {
		rec.scheduled.Add(uint64(load.Pacing.InWindow(i, tl.Window())))
		wg.Go(func() { runWriter(ctx, start, tl, load, pool, rec, i) })
	}
	wg.Wait()
}

func runWriter(ctx context.Context, start time.Time, tl Timeline, load WriteLoad, pool *writerPool, rec *opRecorder, i int) {
	win := tl.Window()
	hardStop := win.End + tl.Grace
	p := load.Pacing
	sl := pool.slotOf(i)
	for seq := 0; ; seq++ {
		var due time.Duration
		if p.Closed() {
			due = time.Since(start)
			if due >= win.End || ctx.Err() != nil {
				return
			}
		} else {
			due = p.Due(i, seq)
			if due >= win.End {
				return
			}
			if wait := due - time.Since(start); wait > 0 {
				select {
				case <-time.After(wait):
				case <-ctx.Done():
					return
				}
			}
			if now := time.Since(start); now >= hardStop || ctx.Err() != nil {
				rec.missOpen(p, i, seq, win, hardStop)
				return
			}
		}
		if wait := sl.send(ctx, start, load, rec, i, seq, due); wait > 0 && p.Closed() {
			sleepCtx(ctx, wait)
		}
	}
}

// send makes sender i's seq-th request on its connection, (re)dialing it
// when needed, and records the outcome. It returns how long to wait before
// the connection may be redialed, when it is down.
func (sl *slot) send(ctx context.Context, start time.Time, load WriteLoad, rec *opRecorder, i, seq int, due time.Duration) time.Duration {
	sl.mu.Lock()
	defer sl.mu.Unlock()
	if sl.w == nil {
		now := time.Since(start)
		if now < sl.retryAt {
			if !load.Pacing.Closed() {
				rec.done(due, now, now, errors.New("not connected (reconnecting)"))
			}
			return sl.retryAt - now
		}
		w, err := load.Dial(ctx, i)
		if err != nil {
			rec.dialErrs.Add(1)
			rec.done(due, now, now, fmt.Errorf("reconnect: %w", err))
			sl.retryAt = time.Since(start) + 200*time.Millisecond
			return 200 * time.Millisecond
		}
		sl.w = w
		rec.redials.Add(1)
	}
	sent := time.Since(start)
	err := sl.w.Write(load.Key(i, seq), load.Value(i, seq))
	end := time.Since(start)
	rec.done(due, sent, end, err)
	if err != nil {
		_ = sl.w.Close()
		sl.w = nil
		sl.retryAt = end + 200*time.Millisecond
	}
	return 0
}

// missOpen charges every send of writer i from seq on that was scheduled
// inside the window but never went out: each waited at least until hardStop.
func (r *opRecorder) missOpen(p Pacing, i, seq int, win Window, hardStop time.Duration) {
	for ; ; seq++ {
		due := p.Due(i, seq)
		if due >= win.End {
			return
		}
		if win.Contains(due) {
			r.missed.Add(1)
			r.latency.Record(hardStop - due)
		}
	}
}

func sleepCtx(ctx context.Context, d time.Duration) {
	if d <= 0 {
		return
	}
	select {
	case <-time.After(d):
	case <-ctx.Done():
	}
}

// sortedKeys returns m's keys in order, for stable output.
func sortedKeys[V any](m map[string]V) []string {
	out := make([]string, 0, len(m))
	for k := range m {
		out = append(out, k)
	}
	sort.Strings(out)
	return out
}
