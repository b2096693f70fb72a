package s3e2e

import (
	"bytes"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/opencontainers/go-digest"
)

// s3Registry is kvreg serve with its blobs in a fresh bucket of the test
// S3 server, at the s3 driver's default part size, with args for serve.
type s3Registry struct {
	t      *testing.T
	srv    s3test.Server
	bucket string
	store  string // the --blob-store URL
	bin    string
	root   string
	args   []string
	s      *testenv.Server
}

func newS3Registry(t *testing.T, args ...string) *s3Registry {
	t.Helper()
	srv, bucket := s3test.Bucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	bin, err := testenv.Kvreg()
	if err != nil {
		t.Fatal(err)
	}
	r := &s3Registry{
		t: t, srv: srv, bucket: bucket, bin: bin, root: filepath.Join(t.TempDir(), "data"), args: args,
		store: fmt.Sprintf("s3://%s/kvreg?endpoint=%s&region=%s&path-style=true", bucket, url.QueryEscape(srv.Endpoint), srv.Region),
	}
	r.start()
	t.Cleanup(func() { r.s.Stop(30 * time.Second) })
	return r
}

func (r *s3Registry) start() {
	r.t.Helper()
	s, err := testenv.Start(r.bin, testenv.Options{Root: r.root, Args: append([]string{"--blob-store", r.store}, r.args...)})
	if err != nil {
		r.t.Fatal(err)
	}
	r.s = s
}

// restart stops kvreg (SIGTERM) and starts it again on the same data.
func (r *s3Registry) restart() {
	r.t.Helper()
	if err := r.s.Stop(30 * time.Second); err != nil {
		r.t.Fatalf("stop: %v\n%s", err, testenv.Tail(r.s.Log(), 2000))
	}
	r.start()
}

// do sends a request to kvreg; path may be a Location header's value. A
// body of known length n goes with that Content-Length.
func (r *s3Registry) do(method, path string, hdr http.Header, body io.Reader, n int64) *http.Response {
	r.t.Helper()
	if !strings.HasPrefix(path, "http") {
		path = r.s.URL + path
	}
	req, err := http.NewRequest(method, path, body)
	if err != nil {
		r.t.Fatal(err)
	}
	if body != nil {
		req.ContentLength = n
	}
	for k, v := range hdr {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		r.t.Fatal(err)
	}
	return resp
}

// expect checks a response's status and returns it with its body read.
func expect(t *testing.T, what string, resp *http.Response, status int) (*http.Response, []byte) {
	t.Helper()
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
	if resp.StatusCode != status {
		t.Fatalf("%s: %d %s, want %d", what, resp.StatusCode, b, status)
	}
	return resp, b
}

// layerRef is a layer as a manifest names it.
type layerRef struct {
	digest string
	size   int64
}

// pushManifest tags an image of config cfg and the layers, so that they
// are referenced blobs a pull may read.
func (r *s3Registry) pushManifest(repo, tag string, cfg []byte, layers ...layerRef) {
	r.t.Helper()
	if resp, b := expect(r.t, "config", r.do(http.MethodPost, "/v2/"+repo+"/blobs/uploads/?digest="+digest.FromBytes(cfg).String(), nil, bytes.NewReader(cfg), int64(len(cfg))), http.StatusCreated); resp == nil {
		r.t.Fatal(string(b))
	}
	var ls []string
	for _, l := range layers {
		ls = append(ls, fmt.Sprintf(`{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}`, l.digest, l.size))
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[%s]}`,
		mtManifest, digest.FromBytes(cfg), len(cfg), strings.Join(ls, ","))
	expect(r.t, "manifest PUT", r.do(http.MethodPut, "/v2/"+repo+"/manifests/"+tag, http.Header{"Content-Type": {mtManifest}}, strings.NewReader(m), int64(len(m))), http.StatusCreated)
}
