package s3

import (
	"context"
	"errors"
	"io"
	"net/http"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/smithy-go"
	"github.com/kvreg/kvreg/blobs/driver"
	"github.com/kvreg/kvreg/blobs/s3/s3test"
)

// driverAt opens a driver over bucket through endpoint (a front of the
// server), with quick retries.
func driverAt(t *testing.T, srv s3test.Server, endpoint, bucket string, attempts int) *Driver {
	t.Helper()
	d, err := New(context.Background(), Config{
		Bucket: bucket, Endpoint: endpoint, Region: srv.Region, PathStyle: true,
		AccessKey: srv.AccessKey, SecretKey: srv.SecretKey, MaxAttempts: attempts, MaxBackoff: time.Millisecond,
	})
	if err != nil {
		t.Fatal(err)
	}
	return d
}

// A refusal of a request sent directly (a 403 with S3's XML error) is the
// server's answer: sent once, not retried, not an outage, and its status
// and code read as the SDK's errors do.
func TestDirectRefusalIsAnAnswer(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	front := frontOf(t, srv.Endpoint, func(w http.ResponseWriter, r *http.Request, server http.Handler) {
		if r.Method == http.MethodPut && strings.Contains(r.URL.Path, "/uploads/") {
			io.Copy(io.Discard, r.Body)
			w.Header().Set("Content-Type", "application/xml")
			w.WriteHeader(http.StatusForbidden)
			io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>AccessDenied</Code><Message>no writes here</Message></Error>`)
			return
		}
		server.ServeHTTP(w, r)
	})
	d := driverAt(t, srv, front, bucket, 5)
	var err error
	got := delta(d, func() { err = d.CreateUpload("u", "r") })
	if err == nil || errors.Is(err, driver.ErrUnavailable) {
		t.Fatalf("CreateUpload refused with 403: %v, want an error that is no outage", err)
	}
	var ae smithy.APIError
	if !errors.As(err, &ae) || ae.ErrorCode() != "AccessDenied" || ae.ErrorMessage() != "no writes here" || httpStatus(err) != 403 {
		t.Fatalf("the refusal reads as %v (status %d)", err, httpStatus(err))
	}
	exactly(t, "a refused PUT", got, map[string]uint64{"PutObject": 1})
}

// A small object's GET whose body the server cuts short is sent again; a
// cut every time is the store unavailable, after every attempt, and never
// bytes of the object.
func TestDirectReadCutShort(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	// Cut while cuts are left.
	var cuts atomic.Int64
	front := s3test.CutReadsWhile(t, srv.Endpoint, "/blobs/", func() bool { return cuts.Add(-1) >= 0 })
	d := driverAt(t, srv, front, bucket, 3)
	b := randomBytes(1000, 11)
	dg := promoted(t, d, "u", b)

	cuts.Store(1)
	var size int64
	var err error
	got := delta(d, func() { size, err = d.Stat(dg) })
	if err != nil || size != int64(len(b)) {
		t.Fatalf("Stat after one cut read: %d, %v; want %d bytes", size, err, len(b))
	}
	exactly(t, "a Stat whose first read was cut", got, map[string]uint64{"GetObject": 2})

	cuts.Store(100)
	got = delta(d, func() { _, err = d.Stat(dg) })
	if !errors.Is(err, driver.ErrUnavailable) || errors.Is(err, ErrCorrupt) || errors.Is(err, driver.ErrNotFound) {
		t.Fatalf("Stat with every read cut: %v, want driver.ErrUnavailable alone", err)
	}
	exactly(t, "a Stat with every read cut", got, map[string]uint64{"GetObject": 3})
}

// Refusals worth a retry and cut bodies share one count of attempts: a
// GET answered 503 and cut short by turns costs the driver's attempts
// once, not attempts for each read it tried.
func TestDirectCutsAndRefusalsShareAttempts(t *testing.T) {
	srv, bucket := s3test.Bucket(t)
	var gets atomic.Int64
	var armed atomic.Bool
	front := frontOf(t, srv.Endpoint, func(w http.ResponseWriter, r *http.Request, server http.Handler) {
		if !armed.Load() || r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") {
			server.ServeHTTP(w, r)
			return
		}
		if gets.Add(1)%2 == 0 {
			s3test.ServeCut(w, r, server)
			return
		}
		w.Header().Set("Content-Type", "application/xml")
		w.WriteHeader(http.StatusServiceUnavailable)
		io.WriteString(w, `<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code><Message>later</Message></Error>`)
	})
	d := driverAt(t, srv, front, bucket, 3)
	dg := promoted(t, d, "u", randomBytes(1000, 12))

	armed.Store(true)
	var err error
	got := delta(d, func() { _, err = d.Stat(dg) })
	if !errors.Is(err, driver.ErrUnavailable) || errors.Is(err, ErrCorrupt) {
		t.Fatalf("Stat with every read refused or cut: %v, want driver.ErrUnavailable", err)
	}
	exactly(t, "a Stat whose reads were refused and cut by turns", got, map[string]uint64{"GetObject": 3})
	if n := gets.Load(); n != 3 {
		t.Fatalf("the server was asked %d times, want 3", n)
	}
}
