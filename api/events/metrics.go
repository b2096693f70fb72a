package events

import (
	"sync"

	"github.com/prometheus/client_golang/prometheus"
)

// counts are the delivery's running totals per endpoint.
type counts struct {
	mu   sync.Mutex
	ok   map[string]uint64
	fail map[string]uint64
}

func newCounts() *counts { return &counts{ok: map[string]uint64{}, fail: map[string]uint64{}} }

func (c *counts) delivered(ep string) { c.mu.Lock(); c.ok[ep]++; c.mu.Unlock() }
func (c *counts) failed(ep string)    { c.mu.Lock(); c.fail[ep]++; c.mu.Unlock() }

var (
	deliveredDesc = prometheus.NewDesc("kvreg_events_delivered_total", "Events delivered (answered 2xx) by this process, by endpoint.", []string{"endpoint"}, nil)
	failedDesc    = prometheus.NewDesc("kvreg_events_failed_attempts_total", "Delivery attempts that failed (no answer, or not 2xx) in this process, by endpoint.", []string{"endpoint"}, nil)
	pendingDesc   = prometheus.NewDesc("kvreg_events_pending", "Events in the outbox waiting for delivery, by endpoint (every replica's).", []string{"endpoint"}, nil)
)

// Describe and Collect make the Delivery a Prometheus collector: the
// counts of this process, and the outbox's pending rows read at scrape
// time (a counter per endpoint: no scan).
func (d *Delivery) Describe(ch chan<- *prometheus.Desc) {
	ch <- deliveredDesc
	ch <- failedDesc
	ch <- pendingDesc
}

func (d *Delivery) Collect(ch chan<- prometheus.Metric) {
	d.count.mu.Lock()
	for _, w := range d.workers {
		ch <- prometheus.MustNewConstMetric(deliveredDesc, prometheus.CounterValue, float64(d.count.ok[w.ep.Name]), w.ep.Name)
		ch <- prometheus.MustNewConstMetric(failedDesc, prometheus.CounterValue, float64(d.count.fail[w.ep.Name]), w.ep.Name)
	}
	d.count.mu.Unlock()
	for _, w := range d.workers {
		n, err := d.reg.EventsPending(w.ep.Name)
		if err != nil {
			ch <- prometheus.NewInvalidMetric(pendingDesc, err)
			continue
		}
		ch <- prometheus.MustNewConstMetric(pendingDesc, prometheus.GaugeValue, float64(n), w.ep.Name)
	}
}
