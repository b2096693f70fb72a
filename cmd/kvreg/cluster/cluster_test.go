package cluster

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"math/rand"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs"
	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/kvreg/kvreg/kv/pg/pgtest"
	"github.com/opencontainers/go-digest"
)

const replicas = 3

// cluster is three kvreg serve --replicas processes on one database and
// one bucket, behind haproxy.
type cluster struct {
	t        *testing.T
	bin      string
	db       string // postgres://...
	store    string // s3://...
	srv      s3test.Server
	bucket   string
	replicas []*testenv.Server
	lb       *testenv.HAProxy
	blobs    *blobs.Store // the bucket, read directly
	client   *http.Client
}

// storeParams are more query parameters of the s3:// blob store URL.
func newCluster(t *testing.T, storeParams ...string) *cluster {
	t.Helper()
	return newClusterArgs(t, nil, storeParams...)
}

// newClusterArgs is newCluster with more flags of every kvreg serve.
func newClusterArgs(t *testing.T, args []string, storeParams ...string) *cluster {
	t.Helper()
	hap, err := testenv.FindHAProxy()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatal(err)
		}
		t.Skip(err)
	}
	srv, bucket := s3test.Bucket(t)
	db := pgtest.NewDatabase(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	bin, err := testenv.Kvreg()
	if err != nil {
		t.Fatal(err)
	}
	c := &cluster{
		t: t, bin: bin, db: db, srv: srv, bucket: bucket,
		store:  testenv.S3Store(bucket, srv.Endpoint, srv.Region) + strings.Join(append([]string{""}, storeParams...), "&"),
		client: &http.Client{Timeout: 2 * time.Minute},
	}
	t.Cleanup(c.stop)
	cl, err := testenv.StartCluster(testenv.ClusterOptions{Bin: bin, HAProxy: hap, DB: db, Store: c.store, Replicas: replicas, Dir: t.TempDir(), Args: args})
	if err != nil {
		t.Fatal(err)
	}
	c.replicas, c.lb = cl.Replicas, cl.LB
	if c.blobs, err = blobs.OpenTarget(t.TempDir(), c.store); err != nil {
		t.Fatal(err)
	}
	return c
}

// stop stops haproxy and the replicas; a failed test shows their logs.
func (c *cluster) stop() {
	if c.lb != nil {
		c.lb.Stop()
		if c.t.Failed() {
			c.t.Logf("haproxy:\n%s\n%s", c.lb.Config, testenv.Tail(c.lb.Log(), 6000))
		}
	}
	for i, s := range c.replicas {
		if err := s.Stop(30 * time.Second); err != nil {
			c.t.Errorf("replica %d: %v", i, err)
		}
		if c.t.Failed() {
			c.t.Logf("replica %d:\n%s", i, testenv.Tail(s.Log(), 6000))
		}
	}
	c.replicas, c.lb = nil, nil
}

// fsck stops the cluster and runs kvreg fsck --deep over its database and
// bucket, which must be clean.
func (c *cluster) fsck() {
	c.t.Helper()
	c.stop()
	out, err := exec.Command(c.bin, "fsck", "--deep", "--root", c.t.TempDir(), "--db", c.db, "--blob-store", c.store).CombinedOutput()
	if err != nil {
		c.t.Fatalf("fsck --deep of the shared database and bucket: %v\n%s", err, out)
	}
}

// response is an answer read whole.
type response struct {
	Status  int
	Header  http.Header
	Body    []byte
	Replica string // the backend that answered
}

// do sends a request through haproxy; path may be a Location header.
func (c *cluster) do(method, path string, hdr http.Header, body []byte) response {
	c.t.Helper()
	if !strings.HasPrefix(path, "http") {
		path = c.lb.URL + path
	}
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequest(method, path, rd)
	if err != nil {
		c.t.Fatal(err)
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := c.client.Do(req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		c.t.Fatalf("%s %s: %v", method, path, err)
	}
	return response{Status: resp.StatusCode, Header: resp.Header, Body: b, Replica: resp.Header.Get(testenv.ReplicaHeader)}
}

func (c *cluster) expect(what string, r response, status int) {
	c.t.Helper()
	if r.Status != status {
		c.t.Fatalf("%s (via %s): %d, want %d: %s", what, r.Replica, r.Status, status, r.Body)
	}
}

// blob is content with its digest.
type blob struct {
	Digest digest.Digest
	Data   []byte
}

func newBlob(b []byte) blob { return blob{digest.FromBytes(b), b} }

// image is a manifest and what it references.
type image struct {
	Config   blob
	Layers   []blob
	Manifest []byte
	Digest   digest.Digest
}

const mtManifest = "application/vnd.oci.image.manifest.v1+json"

func newImage(config blob, layers ...blob) image {
	var ls []string
	for _, l := range layers {
		ls = append(ls, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}`, l.Digest, len(l.Data)))
	}
	m := []byte(fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[%s]}`,
		mtManifest, config.Digest, len(config.Data), strings.Join(ls, ",")))
	return image{Config: config, Layers: layers, Manifest: m, Digest: digest.FromBytes(m)}
}

func (i image) blobs() []blob { return append([]blob{i.Config}, i.Layers...) }

func randomBlob(rng *rand.Rand, n int) blob {
	b := make([]byte, n)
	rng.Read(b)
	return newBlob(b)
}

// pushBlob uploads a blob the way clients do: HEAD, then POST and PUT
// (two requests, so two replicas).
func (c *cluster) pushBlob(repo string, b blob) {
	c.t.Helper()
	if h := c.do(http.MethodHead, "/v2/"+repo+"/blobs/"+b.Digest.String(), nil, nil); h.Status == http.StatusOK {
		return
	}
	post := c.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	c.expect("POST upload", post, http.StatusAccepted)
	put := c.do(http.MethodPut, withDigest(post.Header.Get("Location"), b.Digest), http.Header{"Content-Type": {"application/octet-stream"}}, b.Data)
	c.expect("PUT upload "+b.Digest.String(), put, http.StatusCreated)
}

// pushChunked uploads a blob in chunks of the given sizes (the last one
// takes what is left), each PATCH with its Content-Range, and checks the
// upload's size through another request after each.
func (c *cluster) pushChunked(repo string, b blob, sizes ...int) {
	c.t.Helper()
	c.pushChunks(repo, b, true, sizes...)
}

// pushStreamed is pushChunked with PATCHes that do not say where they
// start (what docker sends): each replica must know the upload's end.
func (c *cluster) pushStreamed(repo string, b blob, sizes ...int) {
	c.t.Helper()
	c.pushChunks(repo, b, false, sizes...)
}

func (c *cluster) pushChunks(repo string, b blob, withRange bool, sizes ...int) {
	c.t.Helper()
	post := c.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/", nil, nil)
	c.expect("POST upload", post, http.StatusAccepted)
	loc := post.Header.Get("Location")
	at := 0
	for i := 0; at < len(b.Data); i++ {
		n := len(b.Data) - at
		if i < len(sizes) && sizes[i] < n {
			n = sizes[i]
		}
		hdr := http.Header{"Content-Type": {"application/octet-stream"}}
		if withRange {
			hdr.Set("Content-Range", fmt.Sprintf("%d-%d", at, at+n-1))
		}
		p := c.do(http.MethodPatch, loc, hdr, b.Data[at:at+n])
		c.expect(fmt.Sprintf("PATCH chunk %d (%d bytes at %d)", i, n, at), p, http.StatusAccepted)
		at += n
		if got := p.Header.Get("Range"); got != fmt.Sprintf("0-%d", at-1) {
			c.t.Fatalf("PATCH chunk %d via %s: Range %q, want 0-%d", i, p.Replica, got, at-1)
		}
		loc = p.Header.Get("Location")
		st := c.do(http.MethodGet, loc, nil, nil)
		c.expect("GET upload status", st, http.StatusNoContent)
		if got := st.Header.Get("Range"); got != fmt.Sprintf("0-%d", at-1) {
			c.t.Fatalf("upload status via %s after chunk %d (PATCH via %s): Range %q, want 0-%d", st.Replica, i, p.Replica, got, at-1)
		}
	}
	put := c.do(http.MethodPut, withDigest(loc, b.Digest), nil, nil)
	c.expect("PUT closing the chunked upload", put, http.StatusCreated)
}

func withDigest(loc string, d digest.Digest) string {
	sep := "?"
	if strings.Contains(loc, "?") {
		sep = "&"
	}
	return loc + sep + "digest=" + url.QueryEscape(d.String())
}

func (c *cluster) pushManifest(repo, ref string, img image) {
	c.t.Helper()
	r := c.do(http.MethodPut, "/v2/"+repo+"/manifests/"+ref, http.Header{"Content-Type": {mtManifest}}, img.Manifest)
	c.expect("PUT manifest "+repo+":"+ref, r, http.StatusCreated)
}

func (c *cluster) pushImage(repo, tag string, img image) {
	c.t.Helper()
	for _, b := range img.blobs() {
		c.pushBlob(repo, b)
	}
	c.pushManifest(repo, tag, img)
}

// pull reads the manifest and every blob back, byte for byte, each
// replica in turn answering.
func (c *cluster) pull(repo, ref string, img image) {
	c.t.Helper()
	m := c.do(http.MethodGet, "/v2/"+repo+"/manifests/"+ref, http.Header{"Accept": {mtManifest}}, nil)
	c.expect("GET manifest "+repo+":"+ref, m, http.StatusOK)
	if !bytes.Equal(m.Body, img.Manifest) {
		c.t.Fatalf("GET manifest %s:%s via %s: other bytes", repo, ref, m.Replica)
	}
	for _, b := range img.blobs() {
		g := c.do(http.MethodGet, "/v2/"+repo+"/blobs/"+b.Digest.String(), nil, nil)
		c.expect("GET blob", g, http.StatusOK)
		if !bytes.Equal(g.Body, b.Data) {
			c.t.Fatalf("GET blob %s via %s: other bytes", b.Digest, g.Replica)
		}
	}
}

// del sends a DELETE and expects 202.
func (c *cluster) del(path string) {
	c.t.Helper()
	c.expect("DELETE "+path, c.do(http.MethodDelete, path, nil, nil), http.StatusAccepted)
}

// everyReplica asks the same thing of each replica in turn (haproxy's
// round robin: as many requests as replicas).
func (c *cluster) everyReplica(what string, method, path string, status int) {
	c.t.Helper()
	seen := map[string]bool{}
	for range replicas {
		r := c.do(method, path, nil, nil)
		c.expect(what, r, status)
		seen[r.Replica] = true
	}
	if len(seen) != replicas {
		c.t.Fatalf("%s: %d requests reached only %v", what, replicas, seen)
	}
}

// bucketBytes is the size of every object in the bucket.
func (c *cluster) bucketBytes() int64 {
	c.t.Helper()
	objs, err := c.srv.Client(c.bucket).List("")
	if err != nil {
		c.t.Fatal(err)
	}
	var n int64
	for _, size := range objs {
		n += size
	}
	return n
}

// expectFreed checks, right after a DELETE answered, that the bucket holds
// none of the blobs and at least their bytes fewer than before.
func (c *cluster) expectFreed(before int64, gone ...blob) {
	c.t.Helper()
	var want int64
	for _, b := range gone {
		if ok, err := c.blobs.Has(b.Digest); err != nil || ok {
			c.t.Fatalf("blob %s in the bucket after the DELETE answered: %v %v", b.Digest, ok, err)
		}
		want += int64(len(b.Data))
	}
	if after := c.bucketBytes(); before-after < want {
		c.t.Fatalf("the DELETE freed %d bytes of the bucket, want at least %d (before %d, after %d)", before-after, want, before, after)
	}
}

// expectKept checks that the blobs are still in the bucket.
func (c *cluster) expectKept(kept ...blob) {
	c.t.Helper()
	for _, b := range kept {
		if ok, err := c.blobs.Has(b.Digest); err != nil || !ok {
			c.t.Fatalf("blob %s gone from the bucket: %v %v", b.Digest, ok, err)
		}
	}
}

func (c *cluster) catalog() []string {
	c.t.Helper()
	r := c.do(http.MethodGet, "/v2/_catalog", nil, nil)
	c.expect("catalog", r, http.StatusOK)
	var cat struct{ Repositories []string }
	if err := json.Unmarshal(r.Body, &cat); err != nil {
		c.t.Fatalf("catalog: %v: %s", err, r.Body)
	}
	return cat.Repositories
}

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func mib(n int) int { return n << 20 }
