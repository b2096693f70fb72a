package api

import (
	"github.com/kvreg/kvreg/refcount"
	"github.com/prometheus/client_golang/prometheus"
)

// quotaCollector reads every quota's usage at scrape time, one series per
// namespace (its repository globs, as `kvreg stats` names it); a store
// without quotas has none of these series. A limit of 0 is no limit.
type quotaCollector struct{ reg *refcount.Registry }

var quotaDescs = struct{ bytes, maxBytes, tags, maxTags *prometheus.Desc }{
	bytes:    prometheus.NewDesc("kvreg_quota_used_bytes", "Bytes a quota's namespace holds (a blob shared by its repositories counted once).", []string{"namespace"}, nil),
	maxBytes: prometheus.NewDesc("kvreg_quota_limit_bytes", "A quota's limit of bytes (0: none).", []string{"namespace"}, nil),
	tags:     prometheus.NewDesc("kvreg_quota_used_tags", "Tags a quota's namespace holds.", []string{"namespace"}, nil),
	maxTags:  prometheus.NewDesc("kvreg_quota_limit_tags", "A quota's limit of tags (0: none).", []string{"namespace"}, nil),
}

func (c quotaCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- quotaDescs.bytes
	ch <- quotaDescs.maxBytes
	ch <- quotaDescs.tags
	ch <- quotaDescs.maxTags
}

func (c quotaCollector) Collect(ch chan<- prometheus.Metric) {
	qs, err := c.reg.Quotas()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(quotaDescs.bytes, err)
		return
	}
	d := quotaDescs
	for _, q := range qs {
		for _, g := range []struct {
			desc *prometheus.Desc
			v    int64
		}{{d.bytes, q.Bytes}, {d.maxBytes, q.MaxBytes}, {d.tags, q.Tags}, {d.maxTags, q.MaxTags}} {
			ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(g.v), q.Namespace)
		}
	}
}
