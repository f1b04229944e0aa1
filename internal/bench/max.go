package bench

import (
	"context"
	"errors"
	"fmt"
	"strings"
)

// MaxOptions search the largest simulated cluster the server carries
// within MaxCPU percent of one core.
type MaxOptions struct {
	StormOptions
	MaxCPU float64 // percent of one core, e.g. 100
	// Start is the first cluster size tried; sizes double until one
	// fails, then bisect Steps times. Limit caps the size (each worker is
	// a connection on this machine too).
	Start, Limit, Steps int
}

// Trial is one cluster size tried.
type Trial struct {
	Supervisors  int     `json:"supervisors"`
	Workers      int     `json:"workers"`
	Conns        int     `json:"connections"`
	Offered      float64 `json:"offered_per_second"`
	Achieved     float64 `json:"achieved_per_second"`
	CPUPercent   float64 `json:"server_cpu_percent"`
	RSSBytes     int64   `json:"server_rss_bytes"`
	GeneratorCPU float64 `json:"generator_cpu_percent"`
	P99          float64 `json:"p99_ms"`
	Errors       uint64  `json:"errors"`
	Missed       uint64  `json:"missed"`
	NimbusCycle  float64 `json:"nimbus_cycle_p99_ms,omitempty"`
	OK           bool    `json:"ok"`
	Why          string  `json:"why,omitempty"`
}

// MaxStats are the search's outcome.
type MaxStats struct {
	MaxCPU float64 `json:"max_cpu_percent"`
	Trials []Trial `json:"trials"`
	// MaxSupervisors is the largest size that passed; LimitedBy says what
	// stopped the search.
	MaxSupervisors int    `json:"max_supervisors"`
	LimitedBy      string `json:"limited_by"`
	// Extrapolated scales the largest passing size's CPU use linearly to
	// MaxCPU: the estimate when the generator, not the server, ran out.
	Extrapolated int `json:"extrapolated_supervisors,omitempty"`
}

// judge decides whether a trial passed: the server within budget, the
// offered load carried (≥ 97 %), no errors, no sends missed, 99 % of
// heartbeats stored within one heartbeat period (a later one is as good as
// skipped), and Nimbus finishing its cycles within its period.
func judge(t *Trial, maxCPU, periodMS, nimbusPeriodMS float64) {
	var why []string
	if periodMS > 0 && t.P99 > periodMS {
		why = append(why, fmt.Sprintf("write p99 %.0f ms > the %.0f ms heartbeat period", t.P99, periodMS))
	}
	if t.CPUPercent > maxCPU {
		why = append(why, fmt.Sprintf("server CPU %.0f%% > %.0f%%", t.CPUPercent, maxCPU))
	}
	if t.Achieved < 0.97*t.Offered {
		why = append(why, fmt.Sprintf("achieved %.0f/s < 97%% of %.0f/s", t.Achieved, t.Offered))
	}
	if t.Errors > 0 || t.Missed > 0 {
		why = append(why, fmt.Sprintf("%d errors, %d missed", t.Errors, t.Missed))
	}
	if nimbusPeriodMS > 0 && t.NimbusCycle > nimbusPeriodMS {
		why = append(why, fmt.Sprintf("Nimbus cycle p99 %.0f ms > its %.0f ms period", t.NimbusCycle, nimbusPeriodMS))
	}
	t.OK = len(why) == 0
	t.Why = strings.Join(why, "; ")
}

// RunMax runs the search. It needs the server's pid.
func RunMax(ctx context.Context, o MaxOptions) (*Result, error) {
	if o.PID <= 0 {
		return nil, errors.New("max: the server's --pid is needed to measure its CPU")
	}
	if o.Start <= 0 {
		o.Start = 270
	}
	if o.Limit < o.Start {
		o.Limit = o.Start
	}
	ms := &MaxStats{MaxCPU: o.MaxCPU}
	var lastOK *Trial
	try := func(sup int) (*Trial, error) {
		so := o.StormOptions
		so.Cluster.Supervisors = sup
		so.Label = fmt.Sprintf("%s max trial %d supervisors", o.Label, sup)
		r, err := RunStorm(ctx, so)
		if err != nil {
			return nil, err
		}
		t := Trial{Supervisors: sup, Workers: r.Params.Workers, Conns: r.Params.Conns, Offered: r.Writes.Offered, Achieved: r.Writes.Achieved,
			P99: r.Writes.Latency.P99, Errors: r.Writes.Errors + r.Writes.DialErrors, Missed: r.Writes.Missed}
		if r.Server != nil {
			t.CPUPercent, t.RSSBytes = r.Server.CPUPercent, r.Server.MaxRSSBytes
		}
		if r.Generator != nil {
			t.GeneratorCPU = r.Generator.CPUPercent
		}
		var nimbusMS float64
		if r.Nimbus != nil {
			t.NimbusCycle = r.Nimbus.Cycle.P99
			nimbusMS = o.NimbusPeriod.Seconds() * 1000
		}
		judge(&t, o.MaxCPU, o.Period.Seconds()*1000, nimbusMS)
		ms.Trials = append(ms.Trials, t)
		o.logf("max: %d supervisors (%d workers, %.0f/s): server %.0f%% CPU, generator %.0f%%, p99 %.2f ms → %s",
			sup, t.Workers, t.Offered, t.CPUPercent, t.GeneratorCPU, t.P99, verdict(t))
		return &t, nil
	}

	lo, hi := 0, 0 // largest passing, smallest failing (0: none yet)
	for sup := o.Start; ; sup = min(sup*2, o.Limit) {
		t, err := try(sup)
		if err != nil {
			return nil, err
		}
		if !t.OK {
			hi = sup
			break
		}
		lo, lastOK = sup, t
		if sup >= o.Limit {
			ms.LimitedBy = fmt.Sprintf("the search limit of %d supervisors (--max-limit)", o.Limit)
			break
		}
	}
	for step := 0; hi > 0 && step < o.Steps && hi-lo > max(lo/20, 1); step++ {
		mid := lo + (hi-lo)/2
		if lo == 0 {
			mid = hi / 2
			if mid == 0 {
				break
			}
		}
		t, err := try(mid)
		if err != nil {
			return nil, err
		}
		if t.OK {
			lo, lastOK = mid, t
		} else {
			hi = mid
		}
	}
	ms.MaxSupervisors = lo
	if hi > 0 {
		for _, t := range ms.Trials {
			if t.Supervisors == hi {
				ms.LimitedBy = fmt.Sprintf("%d supervisors failed: %s", hi, t.Why)
			}
		}
	}
	if lastOK != nil && lastOK.CPUPercent > 0 {
		ms.Extrapolated = int(float64(lastOK.Supervisors) * o.MaxCPU / lastOK.CPUPercent)
	}
	res := o.newResult("max")
	res.Params = stormParams(res.Params, o.Cluster, o.Period, o.NimbusPeriod)
	res.Params.Supervisors = lo
	res.Max = ms
	res.Env.LoadAvgEnd = LoadAvg()
	return res, nil
}

func verdict(t Trial) string {
	if t.OK {
		return "ok"
	}
	return "fails: " + t.Why
}

func (m *MaxStats) String() string {
	var b strings.Builder
	fmt.Fprintf(&b, "  max supervisors within %.0f%% of one core: %d (stopped by %s)\n", m.MaxCPU, m.MaxSupervisors, m.LimitedBy)
	if m.Extrapolated > 0 {
		fmt.Fprintf(&b, "  linear extrapolation of the largest passing trial to %.0f%%: %d supervisors\n", m.MaxCPU, m.Extrapolated)
	}
	for _, t := range m.Trials {
		fmt.Fprintf(&b, "    %6d supervisors %7d workers %7d conns %8.0f/s offered %8.0f/s done  server %5.1f%% CPU %8s  generator %5.1f%%  p99 %7.2f ms  %s\n",
			t.Supervisors, t.Workers, t.Conns, t.Offered, t.Achieved, t.CPUPercent, MiB(t.RSSBytes), t.GeneratorCPU, t.P99, verdict(t))
	}
	return b.String()
}
