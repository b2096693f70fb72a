package s3

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"testing"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
)

func TestMain(m *testing.M) { s3test.Main(m) }

// newDriver opens a driver over a fresh bucket, with the smallest part
// size so that a few MiB cross part boundaries.
func newDriver(t *testing.T) *Driver {
	t.Helper()
	srv, bucket := s3test.Bucket(t)
	return driverOn(t, srv, bucket)
}

// driverOn opens a driver over bucket of srv, as newDriver: several on one
// bucket are replicas sharing it.
func driverOn(t *testing.T, srv s3test.Server, bucket string) *Driver {
	t.Helper()
	d, err := New(context.Background(), Config{
		Bucket: bucket, Prefix: "kvreg", Endpoint: srv.Endpoint, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: MinPartSize,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// pingedDriver is newDriver after its first Ping, which learns whether the
// server honours conditional writes, as a server's readiness check does
// before the first push.
func pingedDriver(t *testing.T) *Driver {
	t.Helper()
	d := newDriver(t)
	if err := d.Ping(context.Background()); err != nil {
		t.Fatal(err)
	}
	return d
}

// frontOf starts a server in front of the S3 server at endpoint, for tests
// of what a driver does when the server misbehaves, and returns its URL.
// Each request goes to serve with server, the proxy that forwards it as it
// came (the client signs the Host it dials, and the server checks the Host
// it receives, which the proxy leaves alone).
func frontOf(t *testing.T, endpoint string, serve func(w http.ResponseWriter, r *http.Request, server http.Handler)) string {
	t.Helper()
	target, err := url.Parse(endpoint)
	if err != nil {
		t.Fatal(err)
	}
	proxy := httputil.NewSingleHostReverseProxy(target)
	front := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { serve(w, r, proxy) }))
	t.Cleanup(front.Close)
	return front.URL
}
