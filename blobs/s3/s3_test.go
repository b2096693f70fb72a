package s3

import (
	"context"
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
