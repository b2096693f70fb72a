package s3

import (
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/kvreg/kvreg/blobs/s3/s3test"
)

// A blob's bytes whose GET the store cuts short (a proxy in front of the
// server sends the headers and half the body, then closes the connection)
// read as the store being unavailable, not as other bytes: a check that
// reads them must not take the blob for a damaged one.
func TestReadCutShortIsUnavailable(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	front := s3test.CutReads(t, srv.Endpoint, "/data/")
	d, err := New(context.Background(), Config{
		Bucket: bucket, Endpoint: front, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, MaxAttempts: 1,
	})
	if err != nil {
		t.Fatal(err)
	}
	b := randomBytes(64<<10, 10)
	dg := promoted(t, d, "u", b)
	f, err := d.Open(dg)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := io.ReadAll(f)
	if !errors.Is(err, driver.ErrUnavailable) {
		t.Fatalf("read of a body cut short: %d bytes, %v; want driver.ErrUnavailable", len(got), err)
	}
	if !bytes.Equal(got, b[:len(got)]) {
		t.Fatal("the bytes read before the cut differ")
	}
}
