package bench

import (
	"bytes"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"time"
)

// userHZ is the unit of utime/stime in /proc/PID/stat. Linux fixes
// USER_HZ at 100 for user space on every architecture it runs on.
const userHZ = 100

// ProcUsage is one reading of a process's resource use.
type ProcUsage struct {
	CPU      time.Duration // user + system time of all its threads
	RSS      int64         // resident bytes now (VmRSS)
	RSSAnon  int64         // resident anonymous bytes (RssAnon: heap, stacks; no mapped files)
	PeakRSS  int64         // high-water mark (VmHWM)
	Threads  int
	Captured time.Time
}

// ReadProc reads pid's CPU time and memory from /proc.
func ReadProc(pid int) (ProcUsage, error) {
	return readProcAt("/proc", pid)
}

func readProcAt(root string, pid int) (ProcUsage, error) {
	u := ProcUsage{Captured: time.Now()}
	stat, err := os.ReadFile(fmt.Sprintf("%s/%d/stat", root, pid))
	if err != nil {
		return u, fmt.Errorf("read cpu time of pid %d: %w", pid, err)
	}
	// The command name (field 2) may hold spaces and parentheses; the
	// fields we want follow the last ')'.
	end := bytes.LastIndexByte(stat, ')')
	if end < 0 {
		return u, fmt.Errorf("parse %s/%d/stat: no command name", root, pid)
	}
	f := strings.Fields(string(stat[end+1:]))
	// f[0] is field 3 (state); utime is field 14, stime field 15.
	if len(f) < 13 {
		return u, fmt.Errorf("parse %s/%d/stat: %d fields", root, pid, len(f)+2)
	}
	utime, err1 := strconv.ParseInt(f[11], 10, 64)
	stime, err2 := strconv.ParseInt(f[12], 10, 64)
	if err1 != nil || err2 != nil {
		return u, fmt.Errorf("parse %s/%d/stat: utime %q stime %q", root, pid, f[11], f[12])
	}
	u.CPU = time.Duration(utime+stime) * time.Second / userHZ

	status, err := os.ReadFile(fmt.Sprintf("%s/%d/status", root, pid))
	if err != nil {
		return u, fmt.Errorf("read memory of pid %d: %w", pid, err)
	}
	for _, line := range strings.Split(string(status), "\n") {
		k, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		v = strings.TrimSpace(v)
		switch k {
		case "VmRSS":
			u.RSS = parseKB(v)
		case "RssAnon":
			u.RSSAnon = parseKB(v)
		case "VmHWM":
			u.PeakRSS = parseKB(v)
		case "Threads":
			u.Threads, _ = strconv.Atoi(v)
		}
	}
	return u, nil
}

// parseKB reads "1234 kB" as bytes.
func parseKB(v string) int64 {
	n, _ := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(v, "kB")), 10, 64)
	return n << 10
}

// LoadAvg is /proc/loadavg's one-minute figure, to show how busy the
// (possibly shared) machine was during a run.
func LoadAvg() float64 {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return -1
	}
	f := strings.Fields(string(b))
	if len(f) == 0 {
		return -1
	}
	v, _ := strconv.ParseFloat(f[0], 64)
	return v
}

// ProcWatch follows a process during a measurement window: CPU time at the
// start and end, RSS sampled every second for its maximum.
type ProcWatch struct {
	pid   int
	start ProcUsage
	stop  chan struct{}
	done  chan struct{}

	mu      sync.Mutex
	maxRSS  int64
	lastErr error
}

// WatchProc starts watching pid; pid <= 0 gives a watch that reports nothing.
func WatchProc(pid int) (*ProcWatch, error) {
	w := &ProcWatch{pid: pid, stop: make(chan struct{}), done: make(chan struct{})}
	if pid <= 0 {
		close(w.done)
		return w, nil
	}
	u, err := ReadProc(pid)
	if err != nil {
		return nil, err
	}
	w.start, w.maxRSS = u, u.RSS
	go w.sample()
	return w, nil
}

func (w *ProcWatch) sample() {
	defer close(w.done)
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-w.stop:
			return
		case <-t.C:
			u, err := ReadProc(w.pid)
			w.mu.Lock()
			if err != nil {
				w.lastErr = err
			} else {
				w.maxRSS = max(w.maxRSS, u.RSS)
			}
			w.mu.Unlock()
		}
	}
}

// ServerUsage is what a server process spent during a window.
type ServerUsage struct {
	PID        int     `json:"pid"`
	CPUSeconds float64 `json:"cpu_seconds"`
	// CPUPercent is of one core, averaged over the window.
	CPUPercent  float64 `json:"cpu_percent_of_one_core"`
	RSSBytes    int64   `json:"rss_bytes"`     // at the end
	MaxRSSBytes int64   `json:"max_rss_bytes"` // largest sample during the window
	PeakRSS     int64   `json:"peak_rss_bytes"`
	Threads     int     `json:"threads"`
	// OpsPerCPUSecond and CPUSecondsPerMillion relate the window's completed
	// requests to the server's CPU time.
	OpsPerCPUSecond      float64 `json:"ops_per_cpu_second,omitempty"`
	CPUSecondsPerMillion float64 `json:"cpu_seconds_per_million_ops,omitempty"`
}

// Finish stops sampling and returns the usage since WatchProc, relating it
// to ops requests completed in the window.
func (w *ProcWatch) Finish(ops uint64) (*ServerUsage, error) {
	if w.pid <= 0 {
		return nil, nil
	}
	close(w.stop)
	<-w.done
	end, err := ReadProc(w.pid)
	if err != nil {
		return nil, err
	}
	w.mu.Lock()
	defer w.mu.Unlock()
	cpu := end.CPU - w.start.CPU
	wall := end.Captured.Sub(w.start.Captured)
	u := &ServerUsage{
		PID:         w.pid,
		CPUSeconds:  cpu.Seconds(),
		RSSBytes:    end.RSS,
		MaxRSSBytes: max(w.maxRSS, end.RSS),
		PeakRSS:     end.PeakRSS,
		Threads:     end.Threads,
	}
	if wall > 0 {
		u.CPUPercent = 100 * cpu.Seconds() / wall.Seconds()
	}
	if cpu > 0 && ops > 0 {
		u.OpsPerCPUSecond = float64(ops) / cpu.Seconds()
		u.CPUSecondsPerMillion = cpu.Seconds() / float64(ops) * 1e6
	}
	return u, nil
}
