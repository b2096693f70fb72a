package s3

import (
	"context"
	"errors"
	"io"
	"net"
	"net/http"
	"sync/atomic"
	"testing"
	"time"

	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/kvreg/kvreg/blobs/s3/s3test"
	"github.com/opencontainers/go-digest"
)

func unavailableDriver(t *testing.T, endpoint, bucket string, srv s3test.Server) *Driver {
	t.Helper()
	d, err := New(context.Background(), Config{
		Bucket: bucket, Endpoint: endpoint, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, MaxAttempts: 3, MaxBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A server nobody listens on, and one that answers 500 to every attempt,
// are outages: the error wraps driver.ErrUnavailable, and so does Ping's.
// A server that answers (a missing blob) is no outage.
func TestUnreachableIsUnavailable(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	closed := "http://" + ln.Addr().String()
	ln.Close()

	var failing atomic.Bool
	var attempts atomic.Int64
	front := frontOf(t, srv.Endpoint, func(w http.ResponseWriter, r *http.Request, server http.Handler) {
		if failing.Load() {
			attempts.Add(1)
			io.Copy(io.Discard, r.Body)
			w.WriteHeader(http.StatusInternalServerError)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code><Message>down</Message></Error>`)
			return
		}
		server.ServeHTTP(w, r)
	})

	missing := digest.FromString("nothing")
	for name, d := range map[string]*Driver{"refused": unavailableDriver(t, closed, bucket, srv), "500": unavailableDriver(t, front, bucket, srv)} {
		failing.Store(true)
		if err := d.CreateUpload("u", "r"); !errors.Is(err, driver.ErrUnavailable) {
			t.Errorf("%s: CreateUpload: %v, want ErrUnavailable", name, err)
		}
		if _, err := d.Stat(missing); !errors.Is(err, driver.ErrUnavailable) || errors.Is(err, driver.ErrNotFound) {
			t.Errorf("%s: Stat: %v, want ErrUnavailable", name, err)
		}
		if err := d.Ping(context.Background()); !errors.Is(err, driver.ErrUnavailable) {
			t.Errorf("%s: Ping: %v, want ErrUnavailable", name, err)
		}
	}
	if attempts.Load() < 3 {
		t.Fatalf("%d attempts at the failing server: the retries did not run before giving up", attempts.Load())
	}

	failing.Store(false)
	d := unavailableDriver(t, front, bucket, srv)
	if _, err := d.Stat(missing); !errors.Is(err, driver.ErrNotFound) || errors.Is(err, driver.ErrUnavailable) {
		t.Fatalf("Stat of a missing blob on a server that answers: %v, want ErrNotFound only", err)
	}
	if err := d.Ping(context.Background()); err != nil {
		t.Fatalf("Ping of a server that answers: %v", err)
	}
}
