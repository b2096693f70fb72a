package api

import (
	"log/slog"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/collectors"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// metrics are the server's Prometheus series, in a registry of its own (no
// global state: two servers in one process count apart).
type metrics struct {
	registry  *prometheus.Registry
	requests  *prometheus.CounterVec
	duration  *prometheus.HistogramVec
	bytesIn   *prometheus.CounterVec
	bytesOut  *prometheus.CounterVec
	inFlight  prometheus.Gauge
	reclaimed prometheus.Counter
	ops       *prometheus.HistogramVec
	handler   http.Handler
}

func newMetrics(reg *refcount.Registry, log *slog.Logger) *metrics {
	m := &metrics{
		registry: prometheus.NewRegistry(),
		requests: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvreg_http_requests_total",
			Help: "HTTP requests answered, by route kind, method and status code.",
		}, []string{"route", "method", "status"}),
		duration: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kvreg_http_request_duration_seconds",
			Help:    "Time to answer an HTTP request, body included, by route kind and method.",
			Buckets: []float64{.001, .005, .025, .1, .25, 1, 2.5, 10, 30, 120, 600},
		}, []string{"route", "method"}),
		bytesIn: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvreg_http_request_bytes_total",
			Help: "Bytes of request bodies read, by route kind.",
		}, []string{"route"}),
		bytesOut: prometheus.NewCounterVec(prometheus.CounterOpts{
			Name: "kvreg_http_response_bytes_total",
			Help: "Bytes of response bodies written, by route kind.",
		}, []string{"route"}),
		inFlight: prometheus.NewGauge(prometheus.GaugeOpts{
			Name: "kvreg_http_requests_in_flight",
			Help: "HTTP requests being answered.",
		}),
		reclaimed: prometheus.NewCounter(prometheus.CounterOpts{
			Name: "kvreg_reclaimed_bytes_total",
			Help: "Bytes of blobs freed by deletes and tag overwrites through the API, at once.",
		}),
		ops: prometheus.NewHistogramVec(prometheus.HistogramOpts{
			Name:    "kvreg_store_operation_seconds",
			Help:    "Time of reference-model writes (one database transaction each, with its fsyncs; commit_upload includes verifying and linking the file), by operation.",
			Buckets: []float64{.0005, .001, .0025, .005, .01, .025, .05, .1, .25, 1, 5},
		}, []string{"op"}),
	}
	m.registry.MustRegister(m.requests, m.duration, m.bytesIn, m.bytesOut, m.inFlight, m.reclaimed, m.ops,
		&storeCollector{reg: reg, log: log, now: reg.Clock},
		dbCollector{reg},
		blobRequestCollector{reg},
		quotaCollector{reg},
		collectors.NewGoCollector(),
		collectors.NewProcessCollector(collectors.ProcessCollectorOpts{}),
	)
	m.handler = promhttp.HandlerFor(m.registry, promhttp.HandlerOpts{ErrorLog: slogPrinter{log}})
	return m
}

// observe records one finished request.
func (m *metrics) observe(route, method string, status int, d time.Duration, in, out int64) {
	switch method {
	case http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete:
	default:
		method = "other" // clients choose methods: keep the label set bounded
	}
	m.requests.WithLabelValues(route, method, strconv.Itoa(status)).Inc()
	m.duration.WithLabelValues(route, method).Observe(d.Seconds())
	m.bytesIn.WithLabelValues(route).Add(float64(in))
	m.bytesOut.WithLabelValues(route).Add(float64(out))
}

// op times a store operation: defer m.op("put_manifest")().
func (m *metrics) op(name string) func() {
	start := time.Now()
	return func() { m.ops.WithLabelValues(name).Observe(time.Since(start).Seconds()) }
}

// storeCollector reads the store's totals at scrape time: counters kept in
// the same transactions as the records, so no scan of the store. The three
// figures that span repositories (shared bytes, unreferenced blobs and
// bytes) are no counters: a scan of the links computes them, and a scrape
// reuses the last one's unless the counters moved since and the scan is
// due again, at most one scan per scanEvery times its duration (so that
// scans take at most about a tenth of the time on a busy store, and a
// quiet or small store is always exact).
type storeCollector struct {
	reg *refcount.Registry
	log *slog.Logger
	now func() time.Time

	mu     sync.Mutex
	have   bool
	last   kv.Counters // the stored counters at the last scan, and its figures
	lastAt time.Time
	took   time.Duration
}

const scanEvery = 10

// totals returns the stored counters as of now and the cross-repository
// figures as of the last scan.
func (c *storeCollector) totals() (kv.Counters, error) {
	t, err := c.reg.Totals(false)
	if err != nil {
		return t, err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	stored := func(x kv.Counters) kv.Counters {
		x.SharedBytes, x.UnreferencedBlobs, x.UnreferencedBytes = 0, 0, 0
		return x
	}
	if !c.have || (stored(c.last) != t && c.now().Sub(c.lastAt) >= scanEvery*c.took) {
		start := c.now()
		full, err := c.reg.Totals(true)
		if err != nil {
			return t, err
		}
		c.have, c.last, c.lastAt, c.took = true, full, start, c.now().Sub(start)
		return full, nil
	}
	t.SharedBytes, t.UnreferencedBlobs, t.UnreferencedBytes = c.last.SharedBytes, c.last.UnreferencedBlobs, c.last.UnreferencedBytes
	return t, nil
}

var storeDescs = struct {
	repos, tags, manifests, manifestBytes, blobs, blobBytes, shared, unrefBlobs, unrefBytes, leases, dbBytes, uploads *prometheus.Desc
}{
	repos:         prometheus.NewDesc("kvreg_store_repositories", "Repositories.", nil, nil),
	tags:          prometheus.NewDesc("kvreg_store_tags", "Tags.", nil, nil),
	manifests:     prometheus.NewDesc("kvreg_store_manifests", "Manifests.", nil, nil),
	manifestBytes: prometheus.NewDesc("kvreg_store_manifest_bytes", "Bytes of manifests.", nil, nil),
	blobs:         prometheus.NewDesc("kvreg_store_blobs", "Blobs stored.", nil, nil),
	blobBytes:     prometheus.NewDesc("kvreg_store_blob_bytes", "Bytes of blobs stored.", nil, nil),
	shared:        prometheus.NewDesc("kvreg_store_shared_bytes", "Bytes of blobs that more than one manifest references.", nil, nil),
	unrefBlobs:    prometheus.NewDesc("kvreg_store_unreferenced_blobs", "Blobs no manifest references (held by a lease).", nil, nil),
	unrefBytes:    prometheus.NewDesc("kvreg_store_unreferenced_bytes", "Bytes of blobs no manifest references (held by a lease).", nil, nil),
	leases:        prometheus.NewDesc("kvreg_store_leases_pending", "Leases not yet ended (pushes in flight, or expired and not yet swept).", nil, nil),
	dbBytes:       prometheus.NewDesc("kvreg_store_db_bytes", "Size of the database file.", nil, nil),
	uploads:       prometheus.NewDesc("kvreg_uploads_in_progress", "Upload sessions open.", nil, nil),
}

func (c *storeCollector) Describe(ch chan<- *prometheus.Desc) {
	d := storeDescs
	for _, x := range []*prometheus.Desc{d.repos, d.tags, d.manifests, d.manifestBytes, d.blobs, d.blobBytes, d.shared, d.unrefBlobs, d.unrefBytes, d.leases, d.dbBytes, d.uploads} {
		ch <- x
	}
}

func (c *storeCollector) Collect(ch chan<- prometheus.Metric) {
	d := storeDescs
	t, err := c.totals()
	if err != nil {
		ch <- prometheus.NewInvalidMetric(d.repos, err)
		return
	}
	for _, g := range []struct {
		desc *prometheus.Desc
		v    int64
	}{
		{d.repos, t.Repos}, {d.tags, t.Tags}, {d.manifests, t.Manifests}, {d.manifestBytes, t.ManifestBytes},
		{d.blobs, t.Blobs}, {d.blobBytes, t.BlobBytes}, {d.shared, t.SharedBytes},
		{d.unrefBlobs, t.UnreferencedBlobs}, {d.unrefBytes, t.UnreferencedBytes},
		{d.leases, t.Leases}, {d.dbBytes, c.reg.DB().Size()},
	} {
		ch <- prometheus.MustNewConstMetric(g.desc, prometheus.GaugeValue, float64(g.v))
	}
	if n, err := c.reg.UploadsInProgress(); err == nil {
		ch <- prometheus.MustNewConstMetric(d.uploads, prometheus.GaugeValue, float64(n))
	}
}

// dbCollector reads the database's own counts at scrape time: write
// transactions, round trips to its server and reruns after conflicts with
// other writers (PostgreSQL's; a database that keeps none, bbolt, has
// none of these series).
type dbCollector struct{ reg *refcount.Registry }

var dbDescs = struct{ updates, roundTrips, retries, gaveUp *prometheus.Desc }{
	updates:    prometheus.NewDesc("kvreg_db_write_transactions_total", "Write transactions asked of the database (reruns not counted).", nil, nil),
	roundTrips: prometheus.NewDesc("kvreg_db_round_trips_total", "Round trips to the database server (statements, BEGIN, COMMIT, ROLLBACK).", nil, nil),
	retries:    prometheus.NewDesc("kvreg_db_retries_total", "Write transactions rerun after a serialization failure, a deadlock or a lock wait.", nil, nil),
	gaveUp:     prometheus.NewDesc("kvreg_db_conflicts_given_up_total", "Write transactions that still conflicted after their last rerun (answered 503).", nil, nil),
}

func (c dbCollector) Describe(ch chan<- *prometheus.Desc) {
	ch <- dbDescs.updates
	ch <- dbDescs.roundTrips
	ch <- dbDescs.retries
	ch <- dbDescs.gaveUp
}

func (c dbCollector) Collect(ch chan<- prometheus.Metric) {
	s, ok := c.reg.StoreStats()
	if !ok {
		return
	}
	d := dbDescs
	for _, x := range []struct {
		desc *prometheus.Desc
		v    uint64
	}{{d.updates, s.Updates}, {d.roundTrips, s.RoundTrips}, {d.retries, s.Retries}, {d.gaveUp, s.GaveUp}} {
		ch <- prometheus.MustNewConstMetric(x.desc, prometheus.CounterValue, float64(x.v))
	}
}

// blobRequestCollector reads the requests the blob driver has sent to its
// storage service at scrape time (an S3 bucket's; a local directory has
// none of these series).
type blobRequestCollector struct{ reg *refcount.Registry }

var blobRequestsDesc = prometheus.NewDesc("kvreg_blob_store_requests_total",
	"Requests sent to the blob store's service, by operation (S3's names; retried attempts count; presigned URLs that clients fetch do not).", []string{"op"}, nil)

func (c blobRequestCollector) Describe(ch chan<- *prometheus.Desc) { ch <- blobRequestsDesc }

func (c blobRequestCollector) Collect(ch chan<- prometheus.Metric) {
	rc, ok := c.reg.Blobs().Driver().(driver.RequestCounter)
	if !ok {
		return
	}
	for op, n := range rc.Requests() {
		ch <- prometheus.MustNewConstMetric(blobRequestsDesc, prometheus.CounterValue, float64(n), op)
	}
}

// slogPrinter lets promhttp report a failed scrape through the logger.
type slogPrinter struct{ log *slog.Logger }

func (p slogPrinter) Println(v ...any) { p.log.Error("metrics", "err", v) }
