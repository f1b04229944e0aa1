package metrics

import (
	"sync/atomic"

	"github.com/prometheus/client_golang/prometheus"
)

// selfCheckCollector exports the daemon's self-checks. Nothing is exported
// before the first check, so "last check failed" never shows for a check
// that never ran.
type selfCheckCollector struct {
	checks, failures atomic.Uint64
	last             atomic.Int32 // 0 none yet, 1 passed, 2 failed

	checksDesc, failuresDesc, successDesc *prometheus.Desc
}

func (c *selfCheckCollector) init() {
	c.checksDesc = prometheus.NewDesc(namespace+"_self_checks_total",
		"Self-checks run: a request sent through each listener and answered through the whole request path.", nil, nil)
	c.failuresDesc = prometheus.NewDesc(namespace+"_self_check_failures_total",
		"Self-checks that failed (under systemd's watchdog, the daemon then stops pinging it and gets restarted).", nil, nil)
	c.successDesc = prometheus.NewDesc(namespace+"_self_check_success",
		"1 if the last self-check passed, 0 if it failed; absent before the first.", nil, nil)
}

func (c *selfCheckCollector) record(err error) {
	c.checks.Add(1)
	if err != nil {
		c.failures.Add(1)
		c.last.Store(2)
		return
	}
	c.last.Store(1)
}

// Describe implements prometheus.Collector.
func (c *selfCheckCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- c.checksDesc
	ch <- c.failuresDesc
	ch <- c.successDesc
}

// Collect implements prometheus.Collector.
func (c *selfCheckCollector) Collect(ch chan<- prometheus.Metric) {
	last := c.last.Load()
	if last == 0 {
		return
	}
	ch <- prometheus.MustNewConstMetric(c.checksDesc, prometheus.CounterValue, float64(c.checks.Load()))
	ch <- prometheus.MustNewConstMetric(c.failuresDesc, prometheus.CounterValue, float64(c.failures.Load()))
	ch <- prometheus.MustNewConstMetric(c.successDesc, prometheus.GaugeValue, float64(2-last))
}
