package api_test

import (
	"fmt"
	"math/rand"
	"net/http"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/api"
	"github.com/kvreg/kvreg/blobs/driver"
)

// requestCount is what one API request cost the registry: database round
// trips and write transactions (on a database that counts them) and
// requests to the blob store's service by operation (on a driver that
// counts them).
type requestCount struct {
	label      string
	status     int
	roundTrips uint64
	writes     uint64
	retries    uint64
	blob       map[string]uint64
}

func (c requestCount) blobTotal() (n uint64) {
	for _, v := range c.blob {
		n += v
	}
	return n
}

func (c requestCount) String() string {
	ops := make([]string, 0, len(c.blob))
	for op, n := range c.blob {
		ops = append(ops, fmt.Sprintf("%s %d", op, n))
	}
	sort.Strings(ops)
	return fmt.Sprintf("| %s | %d | %d | %d | %d | %d | %s |", c.label, c.status, c.roundTrips, c.writes, c.retries, c.blobTotal(), strings.Join(ops, ", "))
}

// TestRequestCounts drives a push as docker sends it (per blob: HEAD,
// POST, PATCH, PUT; then the manifest), a pull, HEADs and a DELETE against
// one registry with pin rows (as a replica), and counts what each request
// cost, read from the registry itself rather than from /metrics (a scrape
// reads the database too). With -v it prints the table of the capacity
// model in BENCHMARKS.md; run it on PostgreSQL and S3 for those figures:
//
//	KVREG_TEST_BACKENDS=postgres KVREG_TEST_BLOBS=s3 go test -count=1 -run TestRequestCounts -v ./api/
func TestRequestCounts(t *testing.T) {
	r := startRegistry(t, regOptions{Shared: true, PinWindow: 10 * time.Minute, Config: api.Config{BlobRedirect: time.Minute}})
	// As a server's first readiness check does, before the counted push
	// (on S3 it learns whether the bucket honours conditional writes).
	if err := r.reg.Ready(); err != nil {
		t.Fatal(err)
	}
	rc, counting := r.reg.Blobs().Driver().(driver.RequestCounter)
	snapshot := func() (rt, w, retries uint64, blob map[string]uint64) {
		if s, ok := r.reg.StoreStats(); ok {
			rt, w, retries = s.RoundTrips, s.Updates, s.Retries
		}
		if counting {
			blob = rc.Requests()
		}
		return
	}
	var rows []requestCount
	measure := func(label string, fn func() response) requestCount {
		t.Helper()
		rt0, w0, x0, b0 := snapshot()
		resp := fn()
		rt1, w1, x1, b1 := snapshot()
		c := requestCount{label: label, status: resp.Status, roundTrips: rt1 - rt0, writes: w1 - w0, retries: x1 - x0, blob: map[string]uint64{}}
		for op, n := range b1 {
			if d := n - b0[op]; d > 0 {
				c.blob[op] = d
			}
		}
		rows = append(rows, c)
		return c
	}

	rng := rand.New(rand.NewSource(13))
	const repo = "count/app"
	small := randomLayer(rng, mtOCILayer, 1<<20)
	large := randomLayer(rng, mtOCILayer, 20<<20) // three parts of the S3 driver's 8 MiB
	config := configBlob(rng, mtOCIConfig)
	push := func(name string, b blob) {
		t.Helper()
		measure("push "+name+": HEAD (absent)", func() response { return r.head("/v2/"+repo+"/blobs/"+b.Digest, nil) })
		var loc string
		measure("push "+name+": POST", func() response {
			resp := r.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
			loc = resp.Header.Get("Location")
			return resp
		})
		measure(fmt.Sprintf("push %s: PATCH (%d bytes)", name, len(b.Data)), func() response {
			resp := r.do(http.MethodPatch, loc, hdr("Content-Type", "application/octet-stream"), b.Data)
			if nl := resp.Header.Get("Location"); nl != "" {
				loc = nl
			}
			return resp
		})
		c := measure("push "+name+": PUT (commit)", func() response { return r.do(http.MethodPut, withQuery(loc, "digest", b.Digest), nil, nil) })
		if c.status != http.StatusCreated {
			t.Fatalf("PUT finishing %s: %d", name, c.status)
		}
	}
	push("layer 1 MiB", small)
	push("layer 20 MiB", large)
	push("config", config)
	m := ociImage(config, []blob{small, large}, imageOpts{})
	put := measure("push manifest: PUT by tag", func() response { return r.putManifest(repo, "v1", m.MediaType, m.Body) })
	accept := hdr("Accept", allManifestTypes)
	measure("pull: HEAD manifest by tag", func() response { return r.head("/v2/"+repo+"/manifests/v1", accept) })
	getTag := measure("pull: GET manifest by tag", func() response { return r.get("/v2/"+repo+"/manifests/v1", accept) })
	measure("pull: GET manifest by digest", func() response { return r.get("/v2/"+repo+"/manifests/"+m.Digest, accept) })
	getBlob := measure("pull: GET blob", func() response { return r.get("/v2/"+repo+"/blobs/"+small.Digest, nil) })
	getBlobAgain := measure("pull: GET blob (again)", func() response { return r.get("/v2/"+repo+"/blobs/"+small.Digest, nil) })
	measure("HEAD blob (present, first in its pin window)", func() response { return r.head("/v2/"+repo+"/blobs/"+small.Digest, nil) })
	again := measure("HEAD blob (present, again)", func() response { return r.head("/v2/"+repo+"/blobs/"+small.Digest, nil) })
	del := measure("DELETE manifest (frees its 3 blobs)", func() response { return r.del("/v2/" + repo + "/manifests/" + m.Digest) })

	t.Logf("backend %s, blobs %s; blob GETs %s", r.reg.Backend.DB, r.reg.Backend.Blob,
		map[bool]string{true: "answered 307 to a presigned URL", false: "served by kvreg"}[getBlob.status == http.StatusTemporaryRedirect])
	t.Log("| request | status | DB round trips | DB write transactions | DB retries | blob store requests | by operation |")
	t.Log("|---|---|---:|---:|---:|---:|---|")
	for _, c := range rows {
		t.Log(c.String())
	}

	for _, c := range []struct {
		c    requestCount
		want int
	}{{put, http.StatusCreated}, {getTag, http.StatusOK}, {again, http.StatusOK}, {del, http.StatusAccepted}} {
		if c.c.status != c.want {
			t.Fatalf("%s: status %d, want %d", c.c.label, c.c.status, c.want)
		}
	}
	// Reads stay reads, and never reach the bucket.
	for _, c := range []requestCount{getTag, again} {
		if c.writes != 0 || c.blobTotal() != 0 {
			t.Errorf("%s: %d write transactions, %d blob store requests; want none", c.label, c.writes, c.blobTotal())
		}
	}
	if _, ok := r.reg.StoreStats(); ok {
		// A DELETE that frees blobs: its own, and the claim of the
		// freed blobs' tombstones, all in one, before their bytes go.
		if put.writes != 1 || del.writes != 2 {
			t.Errorf("manifest PUT and DELETE: %d and %d write transactions, want 1 and 2", put.writes, del.writes)
		}
	}
	if counting && getBlob.status == http.StatusTemporaryRedirect {
		// A redirect presigns from the location the blob's record keeps
		// since its commit: no request to the bucket, the first time in a
		// process as after.
		if getBlob.blobTotal() != 0 || getBlobAgain.status != http.StatusTemporaryRedirect || getBlobAgain.blobTotal() != 0 {
			t.Errorf("blob GETs answered by redirect sent %v, then %v (status %d); want nothing, twice",
				getBlob.blob, getBlobAgain.blob, getBlobAgain.status)
		}
	}
	if counting {
		// The DELETE removes the three blobs' bytes before it returns.
		if del.blob["DeleteObject"] < 3 {
			t.Errorf("DELETE freeing 3 blobs sent %v", del.blob)
		}
		// Each blob's tombstone names its data object, as its record
		// did: the removal looks nothing up.
		if del.blob["GetObject"] != 0 {
			t.Errorf("DELETE freeing 3 blobs read %d objects (%v); want none", del.blob["GetObject"], del.blob)
		}
		if r.scrape()[`kvreg_blob_store_requests_total{op="DeleteObject"}`] == 0 {
			t.Errorf("/metrics has no kvreg_blob_store_requests_total{op=\"DeleteObject\"}")
		}
	}
}
