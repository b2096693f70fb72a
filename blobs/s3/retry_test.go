package s3

import (
	"bytes"
	"context"
	"io"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/opencontainers/go-digest"
)

// A server that answers every other request 503 SlowDown (the first 40 of
// them) slows a push down but does not fail it.
func TestRetriesSlowDown(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	var seen, refused atomic.Int64
	front := frontOf(t, srv.Endpoint, func(w http.ResponseWriter, r *http.Request, server http.Handler) {
		if seen.Add(1)%2 == 1 && refused.Load() < 40 {
			refused.Add(1)
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusServiceUnavailable)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>Please reduce your request rate.</Message></Error>`)
			return
		}
		server.ServeHTTP(w, r)
	})
	d, err := New(context.Background(), Config{
		Bucket: bucket, Endpoint: front, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, PartSize: MinPartSize, MaxBackoff: 5 * time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	body := randomBytes(6<<20, 300)
	if err := d.CreateUpload("u", "r"); err != nil {
		t.Fatal(err)
	}
	appendAll(t, d, "u", body)
	if err := d.Seal("u"); err != nil {
		t.Fatal(err)
	}
	dg := digest.FromBytes(body)
	if created, err := d.Promote("u", dg); err != nil || !created {
		t.Fatalf("promote: %v, %v", created, err)
	}
	f, err := d.Open(dg)
	if err != nil {
		t.Fatal(err)
	}
	got, err := io.ReadAll(f)
	f.Close()
	if err != nil || !bytes.Equal(got, body) {
		t.Fatalf("read back %d bytes, %v", len(got), err)
	}
	if refused.Load() < 10 {
		t.Fatalf("only %d requests were refused: the test checked little", refused.Load())
	}
}
