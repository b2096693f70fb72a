package api_test

import (
	"bufio"
	"bytes"
	"math/rand"
	"net/http"
	"strconv"
	"strings"
	"testing"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/kv"
	"github.com/kvreg/kvreg/refcount/regtest"
)

// scrape reads /metrics into series -> value (series as printed, labels
// sorted by name).
func (r *testRegistry) scrape() map[string]float64 {
	r.t.Helper()
	resp := r.get("/metrics", nil)
	expectStatus(r.t, "GET /metrics", resp, http.StatusOK)
	out := map[string]float64{}
	sc := bufio.NewScanner(bytes.NewReader(resp.Body))
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, "#") || line == "" {
			continue
		}
		i := strings.LastIndexByte(line, ' ')
		v, err := strconv.ParseFloat(line[i+1:], 64)
		if err != nil {
			r.t.Fatalf("metrics line %q: %v", line, err)
		}
		out[line[:i]] = v
	}
	return out
}

func expectMetric(t testing.TB, m map[string]float64, series string, want float64) {
	t.Helper()
	got, ok := m[series]
	if !ok {
		t.Errorf("no series %s", series)
		return
	}
	if got != want {
		t.Errorf("%s = %v, want %v", series, got, want)
	}
}

// /metrics after a push shows the push and what is stored; after a delete,
// the bytes it reclaimed.
func TestMetricsShowPushAndReclaim(t *testing.T) {
	r, rng := startSeeded(t, 81)
	img := randomOCIImage(rng, nil, 5<<10, 7<<10)
	var blobBytes int64
	for _, b := range img.Blobs() {
		blobBytes += int64(len(b.Data))
	}
	r.pushImage("m/app", "v1", img)

	m := r.scrape()
	expectMetric(t, m, `kvreg_http_requests_total{method="PUT",route="manifest",status="201"}`, 1)
	expectMetric(t, m, `kvreg_http_requests_total{method="POST",route="upload_start",status="201"}`, float64(len(img.Blobs())))
	expectMetric(t, m, `kvreg_http_request_bytes_total{route="upload_start"}`, float64(blobBytes))
	expectMetric(t, m, `kvreg_http_request_bytes_total{route="manifest"}`, float64(len(img.Body)))
	expectMetric(t, m, `kvreg_http_request_duration_seconds_count{method="PUT",route="manifest"}`, 1)
	expectMetric(t, m, `kvreg_store_operation_seconds_count{op="put_manifest"}`, 1)
	expectMetric(t, m, `kvreg_store_repositories`, 1)
	expectMetric(t, m, `kvreg_store_tags`, 1)
	expectMetric(t, m, `kvreg_store_manifests`, 1)
	expectMetric(t, m, `kvreg_store_blobs`, float64(len(img.Blobs())))
	expectMetric(t, m, `kvreg_store_blob_bytes`, float64(blobBytes))
	expectMetric(t, m, `kvreg_store_leases_pending`, 0)
	expectMetric(t, m, `kvreg_reclaimed_bytes_total`, 0)
	if m[`kvreg_store_db_bytes`] <= 0 {
		t.Errorf("kvreg_store_db_bytes %v", m[`kvreg_store_db_bytes`])
	}

	// A pull counts the bytes out.
	r.pull("m/app", "v1", img)
	m = r.scrape()
	expectMetric(t, m, `kvreg_http_response_bytes_total{route="blob"}`, float64(blobBytes))
	expectMetric(t, m, `kvreg_http_response_bytes_total{route="manifest"}`, float64(len(img.Body)))

	// A blob pushed alone is held by a lease until a manifest takes it.
	loose := randomLayer(rng, mtOCILayer, 3<<10)
	r.pushBlob("m/app", loose)
	m = r.scrape()
	expectMetric(t, m, `kvreg_store_leases_pending`, 1)
	expectMetric(t, m, `kvreg_store_unreferenced_bytes`, float64(len(loose.Data)))

	// Deleting the tag frees the image's blobs at once.
	expectStatus(t, "delete tag", r.del("/v2/m/app/manifests/v1"), http.StatusAccepted)
	m = r.scrape()
	expectMetric(t, m, `kvreg_reclaimed_bytes_total`, float64(blobBytes))
	expectMetric(t, m, `kvreg_http_requests_total{method="DELETE",route="manifest",status="202"}`, 1)
	expectMetric(t, m, `kvreg_store_manifests`, 0)
	expectMetric(t, m, `kvreg_store_blobs`, 1)
	expectMetric(t, m, `kvreg_store_blob_bytes`, float64(len(loose.Data)))
	// Deleting the loose blob frees it too.
	expectStatus(t, "delete blob", r.del("/v2/m/app/blobs/"+loose.Digest), http.StatusAccepted)
	m = r.scrape()
	expectMetric(t, m, `kvreg_reclaimed_bytes_total`, float64(blobBytes+int64(len(loose.Data))))
	expectMetric(t, m, `kvreg_store_blob_bytes`, 0)
	// Scrapes count themselves under their own route.
	if m[`kvreg_http_requests_total{method="GET",route="metrics",status="200"}`] < 4 {
		t.Errorf("scrapes not counted: %v", m[`kvreg_http_requests_total{method="GET",route="metrics",status="200"}`])
	}
}

// With --metrics-auth, /metrics wants a user's credentials; health never does.
func TestMetricsAuth(t *testing.T) {
	open := startRegistry(t, regOptions{Config: authConfig(t, api.Config{}, teamRules)})
	expectStatus(t, "open metrics", open.get("/metrics", nil), http.StatusOK)
	closed := startRegistry(t, regOptions{Config: authConfig(t, api.Config{MetricsAuth: true}, teamRules)})
	expectError(t, "metrics without credentials", closed.get("/metrics", nil), http.StatusUnauthorized, "UNAUTHORIZED")
	expectError(t, "metrics with a wrong password", closed.withAuthorization(basicHeader("carol", "x")).get("/metrics", nil), http.StatusUnauthorized, "UNAUTHORIZED")
	expectStatus(t, "metrics as carol", closed.as("carol").get("/metrics", nil), http.StatusOK)
	expectStatus(t, "healthz", closed.get("/healthz", nil), http.StatusOK)
	expectStatus(t, "readyz", closed.get("/readyz", nil), http.StatusOK)
}

// kvreg rm through the admin socket counts what it reclaims in the same
// metrics as the API's deletes.
func TestMetricsCountAdminRemovals(t *testing.T) {
	reg := regtest.Open(t, regtest.Options{})
	s := api.New(reg.Registry, api.Config{})
	r := serve(t, reg, s)
	admin := r.also(s.Admin()).srv
	img := randomOCIImage(rand.New(rand.NewSource(82)), nil, 6<<10)
	var blobBytes int64
	for _, b := range img.Blobs() {
		blobBytes += int64(len(b.Data))
	}
	r.pushImage("rm/app", "v1", img)
	resp, err := http.Post(admin.URL+"/v1/rm?target=rm/app:v1", "", nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("admin rm: %s", resp.Status)
	}
	expectMetric(t, r.scrape(), `kvreg_reclaimed_bytes_total`, float64(blobBytes))
}

// The database's own counters: on PostgreSQL /metrics shows its write
// transactions, round trips and reruns, and each request of a push, a
// pull, a tag overwrite and a tag delete moves them by its round trips
// (logged, per request, as the figures of BENCHMARKS.md); a database that
// keeps no such counts (bbolt) shows none of the series.
func TestMetricsDatabaseRoundTrips(t *testing.T) {
	r, rng := startSeeded(t, 83)
	series := []string{"kvreg_db_write_transactions_total", "kvreg_db_round_trips_total", "kvreg_db_retries_total", "kvreg_db_conflicts_given_up_total"}
	if r.reg.Backend.DB != "postgres" {
		m := r.scrape()
		for _, s := range series {
			if _, ok := m[s]; ok {
				t.Errorf("%s on %s, a database that keeps no such count", s, r.reg.Backend.Name)
			}
		}
		return
	}
	stats := func() kv.TxStats {
		s, ok := r.reg.Registry.StoreStats()
		if !ok {
			t.Fatal("PostgreSQL's store keeps no statistics")
		}
		return s
	}
	// per runs op n times and returns its mean round trips and write
	// transactions per request.
	const n = 5
	per := func(name string, op func(i int)) (trips, writes float64) {
		t.Helper()
		before := stats()
		for i := range n {
			op(i)
		}
		after := stats()
		trips = float64(after.RoundTrips-before.RoundTrips) / n
		writes = float64(after.Updates-before.Updates) / n
		t.Logf("%-40s %5.1f round trips, %.1f write transactions per request", name, trips, writes)
		return trips, writes
	}
	imgs := make([]manifest, 3*n)
	for i := range imgs {
		imgs[i] = randomOCIImage(rng, nil, 2<<10, 3<<10)
	}
	var blobs []blob
	for _, m := range imgs {
		blobs = append(blobs, m.Blobs()...)
	}
	m0 := r.scrape()

	trips, _ := per("POST blob upload (monolithic)", func(i int) {
		r.pushBlob("rt/app", blobs[i])
	})
	for _, b := range blobs[n:] {
		r.pushBlob("rt/app", b)
	}
	if trips < 1 {
		t.Errorf("a blob upload took %v round trips", trips)
	}
	// imgs[0..n) get new tags; imgs[n..2n) overwrite them, each freeing
	// the image it replaces; the tags of imgs[2n..3n) are deleted, each
	// delete freeing its image.
	putTrips, putWrites := per("PUT manifest, new tag", func(i int) {
		r.pushManifest("rt/app", "t"+strconv.Itoa(i), imgs[i])
	})
	per("PUT manifest, tag overwrite reclaiming", func(i int) {
		r.pushManifest("rt/app", "t"+strconv.Itoa(i), imgs[n+i])
	})
	for i := range n {
		r.pushManifest("rt/app", "d"+strconv.Itoa(i), imgs[2*n+i])
	}
	delTrips, _ := per("DELETE tag, reclaiming", func(i int) {
		expectStatus(t, "DELETE tag", r.del("/v2/rt/app/manifests/d"+strconv.Itoa(i)), http.StatusAccepted)
	})
	per("GET manifest by tag", func(i int) {
		expectStatus(t, "GET manifest", r.get("/v2/rt/app/manifests/t"+strconv.Itoa(i), hdr("Accept", mtOCIManifest)), http.StatusOK)
	})
	per("HEAD manifest by tag", func(i int) {
		expectStatus(t, "HEAD manifest", r.head("/v2/rt/app/manifests/t"+strconv.Itoa(i), hdr("Accept", mtOCIManifest)), http.StatusOK)
	})
	per("HEAD blob (a layer of a tagged image)", func(i int) {
		expectStatus(t, "HEAD blob", r.head("/v2/rt/app/blobs/"+imgs[n+i].Blobs()[1].Digest, nil), http.StatusOK)
	})
	if putTrips < 1 || putWrites < 1 || delTrips < 1 {
		t.Errorf("manifest PUT %v round trips in %v write transactions, tag delete %v round trips", putTrips, putWrites, delTrips)
	}

	m1 := r.scrape()
	for _, s := range series[:2] {
		if m1[s] <= m0[s] {
			t.Errorf("%s did not move: %v, then %v", s, m0[s], m1[s])
		}
	}
	// One client, one request at a time: nothing to conflict with.
	expectMetric(t, m1, "kvreg_db_retries_total", 0)
	expectMetric(t, m1, "kvreg_db_conflicts_given_up_total", 0)
}
