package api

import (
	"github.com/kvreg/kvreg/api/upstream"
	"github.com/prometheus/client_golang/prometheus"
)

// cacheMetrics count the pull-through cache's hits, misses (fills) and
// evictions; the upstream clients' requests are read at each scrape.
type cacheMetrics struct {
	hits      *prometheus.CounterVec
	misses    *prometheus.CounterVec
	evictions prometheus.Counter
	evicted   prometheus.Counter
}

func newCacheMetrics(reg *prometheus.Registry, clients map[string]*upstream.Client) *cacheMetrics {
	m := &cacheMetrics{
		hits: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvreg_cache_hits_total",
			Help: "Reads of cached repositories answered from the store, by kind (manifest, blob).",
		}, []string{"kind"}),
		misses: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvreg_cache_misses_total",
			Help: "Reads of cached repositories that went to the upstream (a fill, or a tag's recheck), by kind (manifest, tag_recheck, blob).",
		}, []string{"kind"}),
		evictions: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvreg_cache_evictions_total",
			Help: "Cached images evicted to keep within the cache's byte budget.",
		}),
		evicted: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvreg_cache_evicted_bytes_total",
			Help: "Bytes of blobs freed by cache evictions.",
		}),
	}
	reg.MustRegister(m.hits, m.misses, m.evictions, m.evicted, upstreamCollector{clients})
	return m
}

// upstreamCollector reports the upstream clients' request counts.
type upstreamCollector struct {
	clients map[string]*upstream.Client // by mirror prefix
}

var upstreamRequestsDesc = prometheus.NewDesc("kvreg_upstream_requests_total",
	"Requests to mirrors' upstream registries, by mirror (prefix), kind (manifest, manifest_head, blob, token) and outcome (ok, not_found, unavailable, denied, error).",
	[]string{"mirror", "kind", "outcome"}, nil)

func (c upstreamCollector) Describe(ch chan<- *prometheus.Desc) { ch <- upstreamRequestsDesc }

func (c upstreamCollector) Collect(ch chan<- prometheus.Metric) {
	for prefix, cl := range c.clients {
		for k, n := range cl.Requests() {
			ch <- prometheus.MustNewConstMetric(upstreamRequestsDesc, prometheus.CounterValue, float64(n), prefix, k.Kind, k.Outcome)
		}
	}
}
