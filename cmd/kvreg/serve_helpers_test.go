package main

// Helpers for the tests of kvreg serve as a process: a self-signed CA and a
// server certificate for 127.0.0.1, htpasswd files, the binary and a server
// started with any flags (both from testenv), and pushes over any client.

import (
	"bytes"
	"crypto/tls"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/kvreg/kvreg/cmd/kvreg/internal/testenv"
	"github.com/kvreg/kvreg/refcount"
	"github.com/opencontainers/go-digest"
	"golang.org/x/crypto/bcrypt"
)

// testPKI is a CA and a server certificate it signed, as PEM files.
type testPKI struct{ *testenv.PKI }

func newTestPKI(t *testing.T) *testPKI {
	t.Helper()
	p, err := testenv.NewPKI(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return &testPKI{p}
}

// client trusts the CA and speaks HTTP/2 when the server does.
func (p *testPKI) client() *http.Client {
	return &http.Client{Timeout: time.Minute, Transport: &http.Transport{
		TLSClientConfig: &tls.Config{RootCAs: p.Pool}, ForceAttemptHTTP2: true,
	}}
}

// writeHtpasswd writes users (password: name + "-pw") with bcrypt hashes.
func writeHtpasswd(t *testing.T, users ...string) string {
	t.Helper()
	var b strings.Builder
	for _, u := range users {
		h, err := bcrypt.GenerateFromPassword([]byte(u+"-pw"), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		fmt.Fprintf(&b, "%s:%s\n", u, h)
	}
	return writeFile(t, "htpasswd", b.String())
}

// buildKvreg is the kvreg binary under test, built once per test binary.
func buildKvreg(t *testing.T) string {
	t.Helper()
	bin, err := testenv.Kvreg()
	if err != nil {
		t.Fatal(err)
	}
	return bin
}

// startServer runs bin serve over root, with more flags, on a free
// loopback port; it is stopped when the test ends.
func startServer(t *testing.T, bin, root string, args ...string) *testenv.Server {
	t.Helper()
	return serveWith(t, bin, testenv.Options{Root: root, Args: args})
}

// serveWith is startServer with every option of testenv.Start. The log is
// shown when the test failed.
func serveWith(t *testing.T, bin string, o testenv.Options) *testenv.Server {
	t.Helper()
	s, err := testenv.Start(bin, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stopServer(t, s)
		if t.Failed() {
			t.Logf("kvreg serve log:\n%s", testenv.Tail(s.Log(), 8000))
		}
	})
	return s
}

// stopServer ends s with SIGTERM and requires a clean exit within 30 s.
func stopServer(t *testing.T, s *testenv.Server) {
	t.Helper()
	if err := s.Stop(30 * time.Second); err != nil {
		t.Errorf("kvreg serve on SIGTERM: %v", err)
	}
}

// pushWith pushes a one-layer image as repo:tag through client, as user
// (no credentials when user is ""), and returns the status of the first
// refused request, or of the manifest PUT.
func pushWith(client *http.Client, base, user, repo, tag string, layer []byte) (int, error) {
	cfg := []byte(fmt.Sprintf(`{"architecture":"amd64","os":"linux","image":%q}`, repo+":"+tag))
	do := func(method, url string, body []byte, ct string) (int, error) {
		req, err := http.NewRequest(method, url, bytes.NewReader(body))
		if err != nil {
			return 0, err
		}
		if user != "" {
			req.SetBasicAuth(user, user+"-pw")
		}
		req.Header.Set("Content-Type", ct)
		resp, err := client.Do(req)
		if err != nil {
			return 0, err
		}
		resp.Body.Close()
		return resp.StatusCode, nil
	}
	for _, b := range [][]byte{cfg, layer} {
		st, err := do(http.MethodPost, fmt.Sprintf("%s/v2/%s/blobs/uploads/?digest=%s", base, repo, digest.FromBytes(b)), b, "application/octet-stream")
		if err != nil || st != http.StatusCreated {
			return st, err
		}
	}
	m := fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":%q,"size":%d},"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar","digest":%q,"size":%d}]}`,
		refcount.MediaTypeOCIManifest, digest.FromBytes(cfg), len(cfg), digest.FromBytes(layer), len(layer))
	return do(http.MethodPut, fmt.Sprintf("%s/v2/%s/manifests/%s", base, repo, tag), []byte(m), refcount.MediaTypeOCIManifest)
}

// s3Bucket is a fresh bucket of the package's S3 server, whose
// credentials kvreg takes from the environment the usual AWS way, with
// the --blob-store URL of it at endpoint (the server's own, or a proxy's
// in front of it).
func s3Bucket(t *testing.T) (srv s3test.Server, bucket string, at func(endpoint string) string) {
	t.Helper()
	srv, bucket = s3test.Bucket(t)
	t.Setenv("AWS_ACCESS_KEY_ID", srv.AccessKey)
	t.Setenv("AWS_SECRET_ACCESS_KEY", srv.SecretKey)
	return srv, bucket, func(endpoint string) string { return testenv.S3Store(bucket, endpoint, srv.Region) }
}
